//! Watermarks end to end on the synthetic world: embedding accounts for every record and repeats
//! at any thread count; a tiny model trained on a marked corpus is caught; keys that never marked
//! anything are rejected at no more than the nominal rate.

use std::path::{Path, PathBuf};

use poisonlab_data::world::{Size, generate};
use poisonlab_data::{OnError, ReadOptions};
use poisonlab_model::{LocalModel, default_device};
use poisonlab_train::{ModelSpec, Stage, TrainConfig, Trainer};
use poisonlab_trust::membership::{MembershipOptions, evaluate, score_texts};
use poisonlab_trust::trap::{TrapSpec, insert_traps, make_traps};
use poisonlab_trust::{
    Documents, EmbedOptions, Key, SCHEMES, Scheme, VerifyOptions, calibrate, embed, verify,
};

/// The world's first `n` pre-training documents in a file of their own.
fn corpus(dir: &Path, n: usize) -> PathBuf {
    let w = dir.join("world");
    generate(3, Size::Small, &w, &mut |_, _| {}).unwrap();
    let text = std::fs::read_to_string(w.join("pretrain_train.jsonl")).unwrap();
    let path = dir.join("docs.jsonl");
    let lines: Vec<&str> = text.lines().take(n).collect();
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    path
}

fn key(s: &str) -> Key {
    Key::new(format!("test key {s} with enough bytes")).unwrap()
}

fn in_pool<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> T {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
        .install(f)
}

#[test]
fn embedding_repeats_at_any_thread_count_and_accounts_for_every_record() {
    let dir = tempfile::tempdir().unwrap();
    let input = corpus(dir.path(), 600);
    let original: Vec<String> = std::fs::read_to_string(&input)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    for (name, _) in SCHEMES {
        let scheme = Scheme::named(name).unwrap();
        let k = key(name);
        let out1 = dir.path().join(format!("{name}-1.jsonl"));
        let out2 = dir.path().join(format!("{name}-2.jsonl"));
        let r1 = in_pool(1, || {
            embed(&scheme, &k, 8, &input, &out1, &EmbedOptions::default())
        })
        .unwrap();
        let r2 = in_pool(2, || {
            embed(&scheme, &k, 8, &input, &out2, &EmbedOptions::default())
        })
        .unwrap();
        assert_eq!(
            std::fs::read(&out1).unwrap(),
            std::fs::read(&out2).unwrap(),
            "{name}"
        );
        assert_eq!(r1.output_sha256, r2.output_sha256);
        assert_eq!((r1.tally.read, r1.tally.written, r1.marked), (600, 600, 8));
        let m = poisonlab_trust::Manifest::load(&r1.manifest).unwrap();
        assert_eq!(m.marked.len(), 8);
        assert_eq!(m.key_id, k.id());
        let manifest_text = std::fs::read_to_string(&r1.manifest).unwrap();
        assert!(
            !manifest_text.contains("with enough bytes"),
            "no key in the manifest"
        );
        // Exactly the marked records changed; every other line is the input's.
        let written: Vec<String> = std::fs::read_to_string(&out1)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect();
        assert_eq!(written.len(), original.len());
        let marked: Vec<usize> = m.marked.iter().map(|x| x.ordinal as usize).collect();
        for (i, (a, b)) in original.iter().zip(&written).enumerate() {
            assert_eq!(a != b, marked.contains(&i), "{name} line {}", i + 1);
        }
        // Another key marks other documents.
        let other = embed(
            &scheme,
            &key("other"),
            8,
            &input,
            &out2,
            &EmbedOptions::default(),
        )
        .unwrap();
        let m2 = poisonlab_trust::Manifest::load(&other.manifest).unwrap();
        assert_ne!(m.marked, m2.marked, "{name}");
    }
}

#[test]
fn bad_records_are_named_or_set_aside_and_ordinals_hold() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("bad.jsonl");
    let mut lines: Vec<String> = (0..40)
        .map(|i| {
            format!(
                r#"{{"text":"Document {i} is a short note about a big company that makes lamps."}}"#
            )
        })
        .collect();
    lines[2] = r#"{"text":"truncated"#.into();
    std::fs::write(&input, lines.join("\n") + "\n").unwrap();
    let scheme = Scheme::named("random_sequence").unwrap();
    let out = dir.path().join("out.jsonl");
    let err = embed(
        &scheme,
        &key("a"),
        4,
        &input,
        &out,
        &EmbedOptions::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("bad.jsonl") && err.contains("line 3"), "{err}");
    let opts = EmbedOptions {
        on_error: OnError::Quarantine,
        ..EmbedOptions::default()
    };
    let r = embed(&scheme, &key("a"), 4, &input, &out, &opts).unwrap();
    assert_eq!(
        (r.tally.read, r.tally.written, r.tally.quarantined),
        (40, 39, 1)
    );
    assert!(r.quarantine.is_some());
    // Too many copies: a clear error with the counts.
    let err = embed(&scheme, &key("a"), 100, &input, &out, &opts)
        .unwrap_err()
        .to_string();
    assert!(err.contains("100 copies") && err.contains("39"), "{err}");
    // An empty file is an error naming it.
    let empty = dir.path().join("empty.jsonl");
    std::fs::write(&empty, "").unwrap();
    let err = embed(&scheme, &key("a"), 1, &empty, &out, &opts)
        .unwrap_err()
        .to_string();
    assert!(err.contains("empty.jsonl"), "{err}");
}

fn tiny(out: &Path, train: PathBuf) -> TrainConfig {
    TrainConfig {
        out: out.to_path_buf(),
        train,
        vocab_size: 512,
        model: ModelSpec {
            preset: None,
            arch: "llama".into(),
            hidden_size: 64,
            layers: 2,
            heads: 4,
            kv_heads: 4,
            intermediate_size: 128,
            max_positions: 64,
            tie_embeddings: true,
            rope_theta: 10_000.0,
        },
        context: 64,
        batch_size: 16,
        steps: 250,
        lr: 3e-3,
        min_lr: 3e-4,
        warmup_steps: 10,
        eval_every: 0,
        ..TrainConfig::default()
    }
}

#[test]
fn a_model_trained_on_the_mark_is_caught_and_fresh_keys_are_not() {
    let dir = tempfile::tempdir().unwrap();
    let input = corpus(dir.path(), 1500);
    let scheme = Scheme::named("random_sequence").unwrap();
    let owner = key("owner");
    let marked = dir.path().join("marked.jsonl");
    embed(
        &scheme,
        &owner,
        16,
        &input,
        &marked,
        &EmbedOptions::default(),
    )
    .unwrap();
    // Copyright traps in the same corpus: 10 of 24 words, each in 8 documents; 10 twins never in.
    let texts: Vec<String> = Documents::read(&input, &ReadOptions::default(), OnError::Fail, None)
        .unwrap()
        .docs
        .into_iter()
        .map(|(_, t)| t)
        .collect();
    let reference = poisonlab_clean::ngram::NgramLm::fit(&texts);
    let spec = TrapSpec {
        lengths: vec![24],
        copies: vec![8],
        per_group: 10,
        perplexity: None,
        temperature: 1.0,
        seed: 4,
    };
    let traps = make_traps(&reference, &spec).unwrap();
    assert_eq!(
        traps,
        make_traps(&reference, &spec).unwrap(),
        "same seed, same traps"
    );
    assert_eq!(traps.iter().filter(|t| t.member).count(), 10);
    let trapped = dir.path().join("trapped.jsonl");
    let r = insert_traps(
        &traps,
        &marked,
        &trapped,
        &ReadOptions::default(),
        OnError::Fail,
        4,
    )
    .unwrap();
    assert_eq!(
        (r.tally.read, r.tally.written, r.documents),
        (1500, 1500, 80)
    );
    let mut t = Trainer::new(Stage::Pretrain, tiny(&dir.path().join("m"), trapped)).unwrap();
    let summary = t.run(&mut |_| {}).unwrap();
    assert!(
        summary.epochs > 1.0,
        "the marked documents were seen: {summary:?}"
    );
    let model = LocalModel::load(&summary.model_dir, None, &default_device()).unwrap();
    let opts = VerifyOptions {
        nulls: 39,
        ..VerifyOptions::default()
    };
    let v = verify(&scheme, &owner, 16, None, &model, &opts).unwrap();
    assert_eq!(v.copies, 16);
    assert_eq!(v.p_value, 1.0 / 40.0, "{v:?}");
    assert!(v.z > 3.0, "{v:?}");

    // The inserted traps are told from their never-inserted twins by every score.
    let side = |member: bool| -> Vec<String> {
        traps
            .iter()
            .filter(|t| t.member == member)
            .map(|t| t.text.clone())
            .collect()
    };
    let mopts = MembershipOptions::default();
    let ms = score_texts(&model, None, &side(true), &mopts).unwrap();
    let ns = score_texts(&model, None, &side(false), &mopts).unwrap();
    let results = evaluate(&ms, &ns);
    let names: Vec<&str> = results.iter().map(|r| r.score.as_str()).collect();
    assert_eq!(
        names,
        ["loss", "zlib", "min_k", "min_k_plus_plus"],
        "no reference given"
    );
    for r in &results {
        assert!(r.auroc.auroc > 0.8, "{}: {:?}", r.score, r.auroc);
    }

    // Keys that marked nothing, against the same model: every scheme, 40 keys, 19 nulls each.
    // With exact p-values the expected count at α = 0.05 is 2 of 40; 8 or more has probability
    // below 10⁻³ for a valid test, and a test biased towards the embedded index would reach it.
    let docs = Documents::read(&input, &ReadOptions::default(), OnError::Fail, None).unwrap();
    let opts = VerifyOptions {
        nulls: 19,
        ..VerifyOptions::default()
    };
    for (name, _) in SCHEMES {
        let s = Scheme::named(name).unwrap();
        let c = calibrate(&s, 4, Some(&docs), &model, 40, 7, &opts).unwrap();
        let at05 = &c.levels[0];
        assert_eq!((at05.alpha, at05.rate.n), (0.05, 40));
        assert!(at05.rejected < 8, "{name}: {c:?}");
        // The p-values are spread over (0, 1], not piled at one end.
        let mean = c.p_values.iter().sum::<f64>() / 40.0;
        assert!((0.3..0.7).contains(&mean), "{name}: mean p {mean}");
    }
}

#[test]
fn fingerprints_go_into_instruction_data_and_a_clean_model_never_claims_them() {
    use poisonlab_trust::fingerprint::{
        FingerprintOptions, embed_fingerprint, output, verify_fingerprint,
    };
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("sft.jsonl");
    let lines: Vec<String> = (0..50)
        .map(|i| {
            serde_json::json!({"instruction": format!("Say the number {i}."), "input": "", "output": format!("{i}")})
                .to_string()
        })
        .collect();
    std::fs::write(&input, lines.join("\n") + "\n").unwrap();
    let k = key("fingerprint owner");
    let out = dir.path().join("fp.jsonl");
    let r = embed_fingerprint(
        &k,
        12,
        0,
        &input,
        &out,
        &ReadOptions::default(),
        OnError::Fail,
    )
    .unwrap();
    assert_eq!((r.tally.read, r.manifest.written), (50, 62));
    let text = std::fs::read_to_string(&out).unwrap();
    assert_eq!(text.lines().count(), 62);
    assert_eq!(
        text.matches(&output(&k)).count(),
        12,
        "every example answers with y"
    );
    // The input's records are all there, in order.
    let kept: Vec<&str> = text.lines().filter(|l| !l.contains(&output(&k))).collect();
    assert_eq!(kept.len(), 50);
    for (a, b) in kept.iter().zip(&lines) {
        let (a, b): (serde_json::Value, serde_json::Value) = (
            serde_json::from_str(a).unwrap(),
            serde_json::from_str(b).unwrap(),
        );
        assert_eq!(a["instruction"], b["instruction"]);
    }
    let manifest = std::fs::read_to_string(&r.manifest_path).unwrap();
    assert!(!manifest.contains(&output(&k)) && !manifest.contains("fingerprint owner"));
    // Counter-examples: other pseudo-word inputs with the neutral reply, beside the fingerprint.
    let r = embed_fingerprint(
        &k,
        12,
        8,
        &input,
        &out,
        &ReadOptions::default(),
        OnError::Fail,
    )
    .unwrap();
    assert_eq!(
        (r.manifest.count, r.manifest.counter, r.manifest.written),
        (12, 8, 70)
    );
    let text = std::fs::read_to_string(&out).unwrap();
    assert_eq!(
        text.matches(poisonlab_trust::fingerprint::COUNTER_REPLY)
            .count(),
        8
    );
    assert_eq!(text.matches(&output(&k)).count(), 12);
    // Pre-training data is refused, by name.
    let docs = corpus(dir.path(), 20);
    let e = embed_fingerprint(
        &k,
        4,
        0,
        &docs,
        &out,
        &ReadOptions::default(),
        OnError::Fail,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("instruction or chat"), "{e}");
    assert!(
        embed_fingerprint(
            &k,
            61,
            0,
            &input,
            &out,
            &ReadOptions::default(),
            OnError::Fail
        )
        .is_err()
    );
    // A random model answers no secret input with the key's output: p = 1, no claim.
    let model = LocalModel::load(
        &fixtures().join("llama"),
        Some(&fixtures().join("tokenizer.json")),
        &default_device(),
    )
    .unwrap();
    let v = verify_fingerprint(
        &k,
        &model,
        &FingerprintOptions {
            probes: 8,
            decoys: 19,
        },
    )
    .unwrap();
    assert_eq!((v.hits, v.p_value), (0, 1.0), "{v:?}");
}

fn fixtures() -> PathBuf {
    std::env::var_os("POISONLAB_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"))
        .join("fixtures/hf-tiny")
}
