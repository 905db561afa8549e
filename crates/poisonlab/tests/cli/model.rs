//! Model commands: score, generate, train.

use std::path::Path;

use predicates::prelude::*;

use super::*;

#[test]
fn score_prints_ids_and_token_logprobs_that_match_the_reference() {
    let f = fixtures();
    let reference: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(f.join("reference.json")).unwrap()).unwrap();
    let text = reference["tokenizer"]["texts"][0].as_str().unwrap();
    let out = poisonlab(Path::new("."))
        .args(["score", "--json", "--text", text, "--model"])
        .arg(f.join("qwen2"))
        .arg("--tokenizer")
        .arg(f.join("tokenizer.json"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let want = &reference["qwen2"]["sequences"][0];
    assert_eq!(v["ids"], want["ids"]);
    // One entry per token, as from every backend; nothing conditions the first one.
    let got = v["token_logprobs"].as_array().unwrap();
    assert_eq!(got.len(), v["ids"].as_array().unwrap().len());
    assert!(got[0].is_null(), "{got:?}");
    let want_lps = want["token_logprobs"].as_array().unwrap();
    assert_eq!(got.len() - 1, want_lps.len());
    for (g, w) in got[1..].iter().zip(want_lps) {
        assert!((g.as_f64().unwrap() - w.as_f64().unwrap()).abs() < 1e-4);
    }
}

#[test]
fn generate_is_greedy_and_deterministic() {
    let f = fixtures();
    let run = || {
        poisonlab(Path::new("."))
            .args([
                "generate",
                "--json",
                "--max-tokens",
                "5",
                "--prompt",
                "The model learns",
                "--model",
            ])
            .arg(f.join("gpt2"))
            .arg("--tokenizer")
            .arg(f.join("tokenizer.json"))
            .output()
            .unwrap()
    };
    let (a, b) = (run(), run());
    assert!(a.status.success(), "{}", String::from_utf8_lossy(&a.stderr));
    assert_eq!(a.stdout, b.stdout);
    let v: serde_json::Value = serde_json::from_slice(&a.stdout).unwrap();
    assert_eq!(v["ids"].as_array().unwrap().len(), 5);
    assert_eq!(v["finish"], "length");
}

#[test]
fn train_rejects_unknown_config_keys() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("t.toml"),
        "train = \"x.jsonl\"\nlearnin_rate = 1\n",
    )
    .unwrap();
    poisonlab(dir.path())
        .args(["train", "pretrain", "--config", "t.toml"])
        .assert()
        .failure()
        .stderr(
            predicate::str::contains("t.toml")
                .and(predicate::str::contains("unknown field `learnin_rate`")),
        );
}

#[test]
fn train_set_overrides_reach_the_config() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("t.toml"), "train = \"x.jsonl\"\n").unwrap();
    // The override is parsed as TOML and validated like the file.
    poisonlab(dir.path())
        .args([
            "train", "pretrain", "--config", "t.toml", "--set", "steps=0",
        ])
        .assert()
        .failure()
        .stderr(predicate::str::contains("`steps` must be at least 1"));
    poisonlab(dir.path())
        .args([
            "train",
            "pretrain",
            "--config",
            "t.toml",
            "--set",
            "model.nonsense=3",
        ])
        .assert()
        .failure()
        .stderr(predicate::str::contains("unknown field `nonsense`"));
    poisonlab(dir.path())
        .args(["train", "pretrain", "--config", "t.toml", "--set", "steps"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("expected key=value"));
}
