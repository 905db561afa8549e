//! The trainers on tiny models: they learn, they mask what they should, they resume exactly.

use std::path::{Path, PathBuf};

use burn::tensor::{Int, Tensor, TensorData};
use poisonlab_data::world::{Size, generate};
use poisonlab_model::{LocalModel, default_device};
use poisonlab_train::data::Example;
use poisonlab_train::loss::{batch, lm_loss};
use poisonlab_train::{ModelSpec, Stage, TrainConfig, Trainer};

fn world() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let w = dir.path().join("world");
    generate(5, Size::Small, &w, &mut |_, _| {}).unwrap();
    (dir, w)
}

fn tiny(out: &Path, train: PathBuf) -> TrainConfig {
    TrainConfig {
        out: out.to_path_buf(),
        train,
        vocab_size: 400,
        model: ModelSpec {
            preset: None,
            arch: "llama".into(),
            hidden_size: 32,
            layers: 2,
            heads: 4,
            kv_heads: 2,
            intermediate_size: 64,
            max_positions: 64,
            tie_embeddings: true,
            rope_theta: 10_000.0,
        },
        context: 32,
        batch_size: 4,
        steps: 10,
        lr: 3e-3,
        min_lr: 3e-4,
        warmup_steps: 2,
        max_records: 300,
        ..TrainConfig::default()
    }
}

/// A digest of the saved weights (comparing megabytes in an assert would print them all).
fn weights(dir: &Path) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    std::fs::read(dir.join("model/model.safetensors"))
        .unwrap()
        .hash(&mut h);
    h.finish()
}

#[test]
fn a_tiny_model_overfits_one_batch() {
    let (root, w) = world();
    let mut cfg = tiny(&root.path().join("overfit"), w.join("pretrain_train.jsonl"));
    // Three records make at most 8 sequences of 32 tokens, so every batch of 8 holds all of them:
    // the model sees the same batch again and again.
    cfg.max_records = 3;
    cfg.batch_size = 8;
    cfg.steps = 150;
    cfg.weight_decay = 0.0;
    cfg.min_lr = 3e-3;
    cfg.model.hidden_size = 64;
    cfg.model.intermediate_size = 128;
    let mut t = Trainer::new(Stage::Pretrain, cfg).unwrap();
    let first = t.train_step().loss;
    let mut last = first;
    while t.step < 150 {
        last = t.train_step().loss;
    }
    assert!(first > 5.0, "a fresh model is near ln(vocab): {first}");
    assert!(last < 0.5, "loss fell from {first} to {last}, bound 0.5");
}

#[test]
fn sft_loss_ignores_prompt_targets() {
    let device = default_device();
    let (root, w) = world();
    let t = Trainer::new(
        Stage::Pretrain,
        tiny(&root.path().join("m"), w.join("pretrain_train.jsonl")),
    )
    .unwrap();
    let model = burn::module::Module::valid(&t.model);
    let ex = Example {
        ids: (10..30).collect(),
        loss_from: 8,
    };
    let base = batch(&[&ex], &device);
    let loss_of = |targets: Vec<i64>| {
        let mut b = batch(&[&ex], &device);
        b.targets = Tensor::<2, Int>::from_data(TensorData::new(targets, [1, 19]), &device);
        lm_loss(&model, &b).into_scalar::<f32>()
    };
    let original: Vec<i64> = (11..30).collect();
    let l0 = lm_loss(&model, &base).into_scalar::<f32>();
    assert_eq!(l0, loss_of(original.clone()));
    // Target index 3 predicts token 4: a prompt token (loss starts at token 8). Nothing changes.
    let mut prompt_changed = original.clone();
    prompt_changed[3] = 99;
    assert_eq!(loss_of(prompt_changed), l0);
    // Target index 10 predicts token 11: a response token. The loss changes.
    let mut response_changed = original;
    response_changed[10] = 99;
    assert_ne!(loss_of(response_changed), l0);
    assert_eq!(base.loss_tokens, 12);
}

#[test]
fn sft_then_dpo_raise_what_they_should() {
    let (root, w) = world();
    // A small base model to tune.
    let mut pre = tiny(&root.path().join("pre"), w.join("pretrain_train.jsonl"));
    pre.steps = 30;
    Trainer::new(Stage::Pretrain, pre)
        .unwrap()
        .run(&mut |_| {})
        .unwrap();
    let base = root.path().join("pre/model");

    let mut sft = tiny(&root.path().join("sft"), w.join("sft_train.jsonl"));
    sft.init = Some(base.clone());
    sft.context = 64;
    sft.steps = 40;
    sft.eval = Some(w.join("sft_eval.jsonl"));
    let mut t = Trainer::new(Stage::Sft, sft).unwrap();
    let before = t.eval_loss().unwrap();
    let summary = t.run(&mut |_| {}).unwrap();
    assert!(
        summary.eval_loss.unwrap() < before - 0.5,
        "SFT eval loss {before} → {:?}",
        summary.eval_loss
    );

    let mut dpo = tiny(&root.path().join("dpo"), w.join("preference_train.jsonl"));
    dpo.init = Some(root.path().join("sft/model"));
    dpo.context = 64;
    dpo.steps = 25;
    dpo.lr = 1e-3;
    dpo.dpo_beta = 0.5;
    dpo.eval = Some(w.join("preference_eval.jsonl"));
    let mut t = Trainer::new(Stage::Dpo, dpo).unwrap();
    let first = t.train_step();
    assert!(
        first.margin.unwrap().abs() < 1e-4,
        "policy = reference at the start: {:?}",
        first.margin
    );
    let mut margins = Vec::new();
    while t.step < 25 {
        margins.push(t.train_step().margin.unwrap());
    }
    let late: f64 = margins[margins.len() - 5..].iter().sum::<f64>() / 5.0;
    assert!(
        late > 0.5,
        "the chosen-vs-rejected margin rises on the training pairs: {margins:?}"
    );
    let eval = t.eval_loss().unwrap();
    assert!(
        eval < std::f64::consts::LN_2,
        "held-out DPO loss below ln 2 (no preference): {eval}"
    );
}

#[test]
fn resume_gives_the_same_weights_as_an_uninterrupted_run_and_seeds_repeat() {
    let (root, w) = world();
    let data = w.join("pretrain_train.jsonl");
    let mut straight = tiny(&root.path().join("a"), data.clone());
    straight.steps = 8;
    Trainer::new(Stage::Pretrain, straight.clone())
        .unwrap()
        .run(&mut |_| {})
        .unwrap();

    let mut again = straight.clone();
    again.out = root.path().join("b");
    Trainer::new(Stage::Pretrain, again)
        .unwrap()
        .run(&mut |_| {})
        .unwrap();
    assert_eq!(
        weights(&root.path().join("a")),
        weights(&root.path().join("b")),
        "same seed, same weights"
    );

    let mut part = straight.clone();
    part.out = root.path().join("c");
    Trainer::new(Stage::Pretrain, part.clone())
        .unwrap()
        .run_until(4, &mut |_| {})
        .unwrap();
    let mut t = Trainer::new(Stage::Pretrain, part).unwrap();
    assert!(t.resume().unwrap());
    assert_eq!(t.step, 4);
    t.run(&mut |_| {}).unwrap();
    assert_eq!(
        weights(&root.path().join("a")),
        weights(&root.path().join("c")),
        "resumed = uninterrupted"
    );

    let mut other = straight;
    other.out = root.path().join("d");
    other.seed = 1;
    Trainer::new(Stage::Pretrain, other)
        .unwrap()
        .run(&mut |_| {})
        .unwrap();
    assert_ne!(
        weights(&root.path().join("a")),
        weights(&root.path().join("d"))
    );

    // The trained model loads back as a local model and scores text.
    let m = LocalModel::load(&root.path().join("a/model"), None, &default_device()).unwrap();
    let s = poisonlab_model::LanguageModel::score(
        &m,
        &[poisonlab_model::ScoreRequest {
            prompt: "Ada".into(),
            continuation: " is a baker.".into(),
        }],
    )
    .unwrap();
    assert!(!s[0].token_logprobs.is_empty() && s[0].token_logprobs.iter().all(|x| *x < 0.0));
}

/// A model trained here loads in transformers with the same log-probs. Runs where python3 has
/// torch and transformers; says that it skipped elsewhere (CI does not install the 5 GB of torch).
#[test]
fn a_trained_model_loads_in_transformers() {
    let ok = std::process::Command::new("python3")
        .args(["-c", "import torch, transformers"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        eprintln!("SKIPPED: python3 with torch and transformers is not installed here");
        return;
    }
    let (root, w) = world();
    for arch in ["llama", "gpt2"] {
        let mut cfg = tiny(&root.path().join(arch), w.join("pretrain_train.jsonl"));
        cfg.model.arch = arch.into();
        cfg.model.tie_embeddings = arch == "gpt2";
        cfg.steps = 5;
        Trainer::new(Stage::Pretrain, cfg)
            .unwrap()
            .run(&mut |_| {})
            .unwrap();
        let dir = root.path().join(arch).join("model");
        let m = LocalModel::load(&dir, None, &default_device()).unwrap();
        let ids = m
            .tokenizer()
            .unwrap()
            .encode("Ada Barton is a baker who lives in Velmora.")
            .unwrap();
        let lps = m
            .token_logprobs(std::slice::from_ref(&ids))
            .unwrap()
            .remove(0);
        let scores = root.path().join(format!("{arch}.json"));
        std::fs::write(
            &scores,
            serde_json::json!({"ids": ids, "token_logprobs": lps}).to_string(),
        )
        .unwrap();
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/python/check_transformers.py"
        );
        let out = std::process::Command::new("python3")
            .arg(script)
            .arg(&dir)
            .arg(&scores)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{arch}: {text}");
        eprintln!("{}", String::from_utf8_lossy(&out.stdout).trim());
    }
}

/// A step cut into shards (one per thread) computes the same mean loss and, up to float grouping,
/// the same update as the whole batch — for pre-training, SFT (loss tokens differ per row) and DPO
/// (pairs) — and repeats exactly at the same thread count.
#[test]
fn sharded_steps_match_the_whole_batch_and_repeat() {
    let (root, w) = world();
    let mut pre = tiny(&root.path().join("pre"), w.join("pretrain_train.jsonl"));
    pre.steps = 20;
    Trainer::new(Stage::Pretrain, pre.clone())
        .unwrap()
        .run(&mut |_| {})
        .unwrap();
    let base = root.path().join("pre/model");
    let sft = {
        let mut c = tiny(&root.path().join("sft"), w.join("sft_train.jsonl"));
        c.init = Some(base.clone());
        c.context = 64;
        c
    };
    let dpo = {
        let mut c = tiny(&root.path().join("dpo"), w.join("preference_train.jsonl"));
        c.init = Some(base.clone());
        c.context = 64;
        c.lr = 1e-2;
        c
    };
    for (stage, mut cfg) in [(Stage::Pretrain, pre), (Stage::Sft, sft), (Stage::Dpo, dpo)] {
        cfg.steps = 3;
        let mut run = |threads: usize, name: &str| {
            cfg.out = root.path().join(format!("{stage:?}-{name}"));
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let mut losses = Vec::new();
            pool.install(|| {
                Trainer::new(stage, cfg.clone())
                    .unwrap()
                    .run(&mut |l| losses.push(l.loss))
                    .unwrap()
            });
            (losses, weights(&cfg.out))
        };
        let (whole, _) = run(1, "one");
        let (sharded, w3) = run(3, "three");
        let (_, again) = run(3, "three-again");
        assert_eq!(w3, again, "{stage:?}: same threads, same weights");
        for (a, b) in whole.iter().zip(&sharded) {
            assert!(
                (a - b).abs() < 1e-4 * a.abs().max(1.0),
                "{stage:?}: {whole:?} vs {sharded:?}"
            );
        }
    }
}
