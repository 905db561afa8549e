//! `poisonlab exposure` end to end on a fixture checkpoint, and its errors.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::*;

#[path = "../../../tests/support/shared.rs"]
mod support;

fn fixtures() -> PathBuf {
    support::shared().join("fixtures/hf-tiny")
}

fn exposure(args: &[&str]) -> assert_cmd::assert::Assert {
    let f = fixtures();
    Command::cargo_bin("poisonlab")
        .unwrap()
        .current_dir(Path::new("."))
        .arg("--quiet")
        .arg("exposure")
        .arg("--model")
        .arg(f.join("llama"))
        .arg("--tokenizer")
        .arg(f.join("tokenizer.json"))
        .args(args)
        .assert()
}

#[test]
fn exposure_ranks_the_secret_among_every_candidate() {
    let out = exposure(&[
        "--canary",
        "The secret number of Vorika Dralun is {secret}.",
        "--secret",
        "37",
        "--beam",
        "5",
        "--json",
    ])
    .success();
    let v: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(v["method"], "exact");
    assert_eq!(v["candidates_scored"], 100);
    let bits = v["exposure_bits"].as_f64().unwrap();
    let rank = v["rank"].as_f64().unwrap();
    assert!((bits - (100f64.log2() - rank.log2())).abs() < 1e-9, "{v}");
    assert!((v["max_bits"].as_f64().unwrap() - 100f64.log2()).abs() < 1e-12);
    assert_eq!(v["extracted"].as_str().unwrap().len(), 3, "{v}");
    // Above --exact-max, the skew-normal estimate.
    let out = exposure(&[
        "--canary",
        "The secret number of Vorika Dralun is {secret}.",
        "--secret",
        "4719",
        "--exact-max",
        "100",
        "--samples",
        "200",
        "--json",
    ])
    .success();
    let v: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(v["method"], "skew_normal");
    assert_eq!(v["candidates_scored"], 201);
    let bits = v["exposure_bits"].as_f64().unwrap();
    assert!((0.0..=10000f64.log2()).contains(&bits), "{v}");
}

#[test]
fn exposure_refuses_what_it_cannot_rank() {
    exposure(&["--canary", "no placeholder", "--secret", "12"])
        .failure()
        .stderr(predicate::str::contains("{secret}"));
    exposure(&["--canary", "a {secret} b", "--secret", "4x"])
        .failure()
        .stderr(predicate::str::contains("4x"));
    exposure(&["--canary", "a {secret} b {secret}", "--secret", "12"])
        .failure()
        .stderr(predicate::str::contains("more than once"));
}
