//! Data commands: the README's main job, generate, stats, convert, flags, list.

use std::path::Path;

use predicates::prelude::*;

use super::*;

#[test]
fn the_readme_main_job_generates_and_inspects() {
    let dir = tempfile::tempdir().unwrap();
    poisonlab(dir.path())
        .args([
            "data", "generate", "--seed", "1", "--size", "small", "--out", "world",
        ])
        .assert()
        .success()
        .stdout(
            predicate::str::contains("sft_train.jsonl").and(predicate::str::contains("17 files")),
        );
    poisonlab(dir.path())
        .args(["data", "inspect", "world/sft_train.jsonl", "-n", "1"])
        .assert()
        .success()
        .stdout(
            predicate::str::contains("convention: alpaca")
                .and(predicate::str::contains("\"id\": \"sft-train-0000000\"")),
        );
}

#[test]
fn generate_twice_gives_identical_files() {
    let dir = tempfile::tempdir().unwrap();
    for out in ["a", "b"] {
        poisonlab(dir.path())
            .args(["data", "generate", "--seed", "1", "--out", out])
            .assert()
            .success();
    }
    let mut names: Vec<_> = std::fs::read_dir(dir.path().join("a"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    assert_eq!(
        names.len(),
        19,
        "17 data files + world.json + manifest.json"
    );
    for n in names {
        let a = std::fs::read(dir.path().join("a").join(&n)).unwrap();
        let b = std::fs::read(dir.path().join("b").join(&n)).unwrap();
        assert!(a == b, "{n:?} differs");
    }
}

#[test]
fn stats_prints_the_record_count() {
    let alpaca = shared().join("data/alpaca/alpaca_data_1k.json");
    poisonlab(Path::new("."))
        .args(["data", "stats"])
        .arg(&alpaca)
        .assert()
        .success()
        .stdout(
            predicate::str::contains("records:     1000").and(predicate::str::contains(
                "1000 read = 1000 good + 0 quarantined",
            )),
        );
    let out = poisonlab(Path::new("."))
        .args(["data", "stats", "--json"])
        .arg(shared().join("data/sst2/train.tsv"))
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["records"], 67_349);
    assert_eq!(v["convention"], "sst2");
}

#[test]
fn convert_quarantines_and_accounts() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("in.jsonl"),
        "{\"prompt\": \"p\", \"chosen\": \"c\", \"rejected\": \"r\"}\n{\"prompt\": \"p\", \"chosen\": 5, \"rejected\": \"r\"}\n",
    )
    .unwrap();
    poisonlab(dir.path())
        .args(["data", "convert", "in.jsonl", "out.jsonl"])
        .assert()
        .failure()
        .stderr(predicate::str::contains(
            "in.jsonl: line 2: field `chosen`: expected a string, found a number (5)",
        ));
    poisonlab(dir.path())
        .args([
            "data",
            "convert",
            "in.jsonl",
            "out.parquet",
            "--on-error",
            "quarantine",
        ])
        .assert()
        .success()
        .stdout(
            predicate::str::contains("2 read = 1 written + 1 quarantined")
                .and(predicate::str::contains("out.parquet.quarantine.jsonl")),
        );
    let q = std::fs::read_to_string(dir.path().join("out.parquet.quarantine.jsonl")).unwrap();
    assert!(
        q.contains("\"line\":2") && q.contains("\"field\":\"chosen\""),
        "{q}"
    );
    poisonlab(dir.path())
        .args(["data", "inspect", "out.parquet"])
        .assert()
        .success()
        .stdout(
            predicate::str::contains("format:     parquet")
                .and(predicate::str::contains("convention: preference")),
        );
}

#[test]
fn convert_between_chat_conventions() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("c.json"), r#"[{"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "yo"}]}]"#).unwrap();
    poisonlab(dir.path())
        .args([
            "data",
            "convert",
            "c.json",
            "c.jsonl.gz",
            "--to",
            "openai-chat",
        ])
        .assert()
        .success();
    poisonlab(dir.path())
        .args(["data", "inspect", "c.jsonl.gz"])
        .assert()
        .success()
        .stdout(
            predicate::str::contains("\"role\": \"assistant\"")
                .and(predicate::str::contains("convention: openai-chat")),
        );
}

#[test]
fn bad_flags_are_clear() {
    poisonlab(Path::new("."))
        .args(["data", "stats", "x.jsonl", "--convention", "alpacka"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("unknown convention `alpacka`"));
    poisonlab(Path::new("."))
        .args(["data", "stats", "/nonexistent/x.jsonl"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("/nonexistent/x.jsonl"));
}

#[test]
fn list_and_completions() {
    poisonlab(Path::new("."))
        .arg("list")
        .assert()
        .success()
        .stdout(
            predicate::str::contains("hh-rlhf")
                .and(predicate::str::contains("detectors:"))
                .and(predicate::str::contains("probes:")),
        );
    poisonlab(Path::new("."))
        .args(["completions", "bash"])
        .assert()
        .success()
        .stdout(predicate::str::contains("_poisonlab()"));
    poisonlab(Path::new("."))
        .arg("--help")
        .assert()
        .success()
        .stdout(predicate::str::contains("data"));
}
