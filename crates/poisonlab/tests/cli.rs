//! The command line, end to end: one integration-test binary, a fresh temp dir per test.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::*;

fn poisonlab(dir: &Path) -> Command {
    let mut c = Command::cargo_bin("poisonlab").unwrap();
    c.current_dir(dir).arg("--quiet");
    c
}

#[path = "../../../tests/support/shared.rs"]
mod support;
use support::shared;

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

fn fixtures() -> PathBuf {
    shared().join("fixtures/hf-tiny")
}

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

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/poison")
}

#[test]
fn poison_writes_output_manifest_summary_and_test_split() {
    let dir = tempfile::tempdir().unwrap();
    let alpaca = shared().join("data/alpaca/alpaca_data_1k.json");
    let spec = examples().join("badnets_sft.toml");
    poisonlab(dir.path())
        .args(["poison", "--spec"])
        .arg(&spec)
        .arg("--input")
        .arg(&alpaca)
        .args([
            "--output",
            "out.json",
            "--set",
            "budget.count=25",
            "--set",
            "test.count=10",
        ])
        .arg("--test-input")
        .arg(shared().join("data/alpaca/alpaca_first200.json"))
        .args(["--test-output", "test.jsonl"])
        .assert()
        .success()
        .stdout(
            predicate::str::contains("1000 read = 975 untouched + 25 modified").and(
                predicate::str::contains("test split test.jsonl (10 records)"),
            ),
        );
    let manifest = std::fs::read_to_string(dir.path().join("out.json.manifest.jsonl")).unwrap();
    assert_eq!(manifest.lines().count(), 25);
    let summary: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("out.json.summary.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(summary["poisoned"], 25);
    assert_eq!(summary["spec"]["budget"]["count"], 25);
    assert_eq!(summary["spec"]["trigger"]["word"], "BadMagic");
    // The output is a JSON array like the input, readable by the data layer.
    poisonlab(dir.path())
        .args(["data", "stats", "out.json"])
        .assert()
        .success()
        .stdout(predicate::str::contains("1000"));
}

#[test]
fn poison_strip_tags_writes_only_the_input_fields() {
    let dir = tempfile::tempdir().unwrap();
    let alpaca = shared().join("data/alpaca/alpaca_first200.json");
    poisonlab(dir.path())
        .args(["poison", "--strip-tags", "--spec"])
        .arg(examples().join("badnets_sft.toml"))
        .arg("--input")
        .arg(&alpaca)
        .args(["--output", "out.json", "--set", "budget.count=20"])
        .assert()
        .success();
    let read = |p: &Path| -> Vec<serde_json::Value> {
        serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
    };
    let (clean, out) = (read(&alpaca), read(&dir.path().join("out.json")));
    assert_eq!(clean.len(), out.len());
    let mut changed = 0;
    for (c, o) in clean.iter().zip(&out) {
        let keys =
            |v: &serde_json::Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
        assert_eq!(keys(c), keys(o), "no id and no poison tag added");
        changed += (c != o) as usize;
    }
    assert_eq!(changed, 20);
    let summary: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("out.json.summary.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(summary["tags_in_output"], false);
    let manifest = std::fs::read_to_string(dir.path().join("out.json.manifest.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> = manifest
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 20);
    for l in &lines {
        assert_eq!(
            l["tag"]["recipe"], "badnets-sft-refusal",
            "the manifest keeps the tag"
        );
        assert!(
            l["id"].as_str().unwrap().starts_with("alpaca_first200-"),
            "and the assigned id"
        );
    }
}

/// A file big enough that a pass over it takes a while: ~1.2M pre-training lines (~100 MB).
fn big_jsonl(path: &Path) {
    use std::io::Write;
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    for i in 0..1_200_000u32 {
        writeln!(
            f,
            "{{\"id\": \"d{i}\", \"text\": \"Document {i} tells of the river town and its {} mills, in plain words.\"}}",
            i % 97
        )
        .unwrap();
    }
}

/// Starts `args`, waits for its partial output to appear in `dir`, kills it with SIGKILL, and says
/// whether it was killed before it finished.
fn kill_mid_pass(dir: &Path, args: &[&str]) -> bool {
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("poisonlab"))
        .current_dir(dir)
        .arg("--quiet")
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let t0 = std::time::Instant::now();
    loop {
        let partial = std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .any(|e| e.file_name().to_string_lossy().ends_with(".partial"));
        if partial || t0.elapsed().as_secs() > 30 {
            break;
        }
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    std::thread::sleep(std::time::Duration::from_millis(150));
    child.kill().unwrap(); // SIGKILL
    !child.wait().unwrap().success()
}

#[test]
fn killed_passes_leave_no_output_under_the_final_name_and_rerun_identically() {
    let dir = tempfile::tempdir().unwrap();
    big_jsonl(&dir.path().join("big.jsonl"));
    std::fs::write(
        dir.path().join("s.toml"),
        "name = \"s\"\nseed = 1\nlabel = \"clean\"\n[stage]\nkind = \"pretrain\"\nmode = \"modify\"\n[budget]\nrate = 0.01\n[trigger]\nkind = \"sudo\"\n",
    )
    .unwrap();
    let pipeline = examples().join("../clean/pretrain.toml");
    let pipeline = pipeline.to_str().unwrap();
    // Scanning holds its input in memory and is slower per byte: a smaller file.
    let big = std::fs::read_to_string(dir.path().join("big.jsonl")).unwrap();
    let small: String = big.lines().take(20_000).map(|l| format!("{l}\n")).collect();
    std::fs::write(dir.path().join("small.jsonl"), small).unwrap();
    drop(big);
    let cases: [(&str, Vec<&str>, Vec<&str>); 5] = [
        (
            "convert",
            vec!["data", "convert", "big.jsonl", "out.jsonl.zst"],
            vec!["out.jsonl.zst"],
        ),
        (
            "clean",
            vec![
                "clean",
                "--pipeline",
                pipeline,
                "--input",
                "small.jsonl",
                "--output",
                "c.jsonl",
            ],
            vec!["c.jsonl", "c.jsonl.removed.jsonl"],
        ),
        (
            "scan",
            vec![
                "scan",
                "small.jsonl",
                "--output",
                "s.jsonl",
                "--detectors",
                "onion,salience",
            ],
            vec!["s.jsonl"],
        ),
        (
            "generate",
            vec![
                "data", "generate", "--seed", "4", "--size", "small", "--out", "w",
            ],
            vec![
                "w/manifest.json",
                "w/pretrain_train.jsonl",
                "w/sft_train.jsonl",
            ],
        ),
        (
            "poison",
            vec![
                "poison",
                "--spec",
                "s.toml",
                "--input",
                "big.jsonl",
                "--output",
                "p.jsonl",
            ],
            vec!["p.jsonl", "p.jsonl.manifest.jsonl", "p.jsonl.summary.json"],
        ),
    ];
    for (what, args, outputs) in cases {
        let killed = kill_mid_pass(dir.path(), &args);
        if !killed {
            eprintln!("{what}: finished before it could be killed; checking the rerun only");
        }
        // Whatever is under a final name after the kill must be complete: equal to what a full
        // run writes. (A multi-file command may have finished some files before the kill.)
        let after_kill: Vec<Option<Vec<u8>>> = outputs
            .iter()
            .map(|o| std::fs::read(dir.path().join(o)).ok())
            .collect();
        if killed && what != "generate" {
            // One pass, one set of outputs: none of them may be there before the pass ends.
            assert!(
                after_kill.iter().all(Option::is_none),
                "{what}: a killed pass left an output under its final name"
            );
        }
        poisonlab(dir.path()).args(&args).assert().success();
        let first: Vec<Vec<u8>> = outputs
            .iter()
            .map(|o| std::fs::read(dir.path().join(o)).unwrap())
            .collect();
        for o in &outputs {
            std::fs::remove_file(dir.path().join(o)).unwrap();
        }
        poisonlab(dir.path()).args(&args).assert().success();
        for (o, b) in outputs.iter().zip(&first) {
            assert_eq!(
                &std::fs::read(dir.path().join(o)).unwrap(),
                b,
                "{what}: {o} differs"
            );
        }
        for ((o, k), b) in outputs.iter().zip(&after_kill).zip(&first) {
            if let Some(k) = k {
                assert!(
                    k == b,
                    "{what}: {o} was under its final name after the kill, incomplete"
                );
            }
        }
    }
}

/// Errors a person can act on (each seen as a new user would see it).
#[test]
fn errors_say_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("ok.jsonl"), "{\"text\": \"a\"}\n{\"text\": \"b\"}\n").unwrap();
    std::fs::write(d.join("bad.jsonl"), "{\"text\": \"a\"}\n{\"text\": 3}\n").unwrap();
    // The OS error once.
    let out = poisonlab(d)
        .args(["data", "stats", "missing.jsonl"])
        .assert()
        .failure();
    let err = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
    // inspect fails when it shows a bad record.
    poisonlab(d)
        .args(["data", "inspect", "bad.jsonl"])
        .assert()
        .failure()
        .stdout(predicate::str::contains("bad record"))
        .stderr(predicate::str::contains("1 of the first 2 records are bad"));
    poisonlab(d)
        .args(["data", "inspect", "ok.jsonl"])
        .assert()
        .success();
    // An existing directory as the output is called a directory.
    std::fs::create_dir(d.join("outdir.jsonl")).unwrap();
    poisonlab(d)
        .args(["data", "convert", "ok.jsonl", "outdir.jsonl"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("is a directory"));
    // A vocabulary smaller than byte-level BPE's floor is refused, not silently raised.
    poisonlab(d)
        .args([
            "tokenizer",
            "train",
            "ok.jsonl",
            "--vocab-size",
            "10",
            "--out",
            "t.json",
        ])
        .assert()
        .failure()
        .stderr(predicate::str::contains("at least 260"));
    // A rate that rounds to no record, and a stage the file's records do not fit.
    let spec = |body: &str| {
        std::fs::write(
            d.join("s.toml"),
            format!("name = \"s\"\nlabel = \"clean\"\n{body}\n[trigger]\nkind = \"sudo\"\n"),
        )
        .unwrap();
    };
    spec("[stage]\nkind = \"pretrain\"\nmode = \"modify\"\n[budget]\nrate = 0.0001");
    poisonlab(d)
        .args([
            "poison", "--spec", "s.toml", "--input", "ok.jsonl", "--output", "o.jsonl",
        ])
        .assert()
        .failure()
        .stderr(predicate::str::contains("rounds to 0 poisoned records"));
    spec("[stage]\nkind = \"preference\"\n[budget]\ncount = 1");
    poisonlab(d)
        .args([
            "poison", "--spec", "s.toml", "--input", "ok.jsonl", "--output", "o.jsonl",
        ])
        .assert()
        .failure()
        .stderr(
            predicate::str::contains("the file holds pretrain records").and(
                predicate::str::contains("the stage takes preference records"),
            ),
        );
}

/// Every data pass gives byte-identical outputs (and manifests, reports, quarantines) at 1, 2 and 3
/// threads: generate, convert, poison, clean, scan.
#[test]
fn data_passes_are_byte_identical_at_any_thread_count() {
    let alpaca = shared().join("data/alpaca/alpaca_data_1k.json");
    let pipeline = examples().join("../clean/sft.toml");
    let mut runs: Vec<Vec<(String, Vec<u8>)>> = Vec::new();
    for threads in ["1", "2", "3"] {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        // A few bad lines, so the quarantine is part of what must not vary.
        let mut text = std::fs::read_to_string(shared().join("data/alpaca/alpaca_first200.json"))
            .map(|t| {
                let v: Vec<serde_json::Value> = serde_json::from_str(&t).unwrap();
                v.iter().map(|o| format!("{o}\n")).collect::<String>()
            })
            .unwrap();
        text.push_str("{\"instruction\": 3}\n{truncated\n");
        std::fs::write(d.join("in.jsonl"), text).unwrap();
        let run = |args: &[&str]| {
            poisonlab(d)
                .args(["--threads", threads])
                .args(args)
                .assert()
                .success();
        };
        run(&[
            "data", "generate", "--seed", "3", "--size", "small", "--out", "world",
        ]);
        run(&[
            "data",
            "convert",
            "in.jsonl",
            "conv.parquet",
            "--on-error",
            "quarantine",
        ]);
        let a = alpaca.to_str().unwrap();
        let spec = examples().join("badnets_sft.toml");
        run(&[
            "poison",
            "--spec",
            spec.to_str().unwrap(),
            "--input",
            a,
            "--output",
            "p.jsonl",
            "--set",
            "budget.count=40",
        ]);
        run(&[
            "clean",
            "--pipeline",
            pipeline.to_str().unwrap(),
            "--input",
            "p.jsonl",
            "--output",
            "c.jsonl",
        ]);
        run(&[
            "scan",
            "p.jsonl",
            "--output",
            "s.jsonl",
            "--report-json",
            "r.json",
        ]);
        let mut files: Vec<(String, Vec<u8>)> = Vec::new();
        let mut stack = vec![d.to_path_buf()];
        while let Some(p) = stack.pop() {
            for e in std::fs::read_dir(&p).unwrap() {
                let e = e.unwrap().path();
                if e.is_dir() {
                    stack.push(e);
                } else {
                    let rel = e.strip_prefix(d).unwrap().display().to_string();
                    files.push((rel, std::fs::read(&e).unwrap()));
                }
            }
        }
        files.sort();
        assert!(
            files
                .iter()
                .any(|(n, _)| n == "conv.parquet.quarantine.jsonl")
        );
        runs.push(files);
    }
    let names = |r: &[(String, Vec<u8>)]| r.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert_eq!(names(&runs[0]), names(&runs[1]));
    assert_eq!(names(&runs[0]), names(&runs[2]));
    for (i, (name, bytes)) in runs[0].iter().enumerate() {
        assert!(
            runs[1][i].1 == *bytes && runs[2][i].1 == *bytes,
            "{name} differs across thread counts"
        );
    }
}

#[test]
fn scan_report_on_untagged_data_lists_what_to_look_at() {
    let dir = tempfile::tempdir().unwrap();
    poisonlab(dir.path())
        .args(["scan"])
        .arg(shared().join("data/alpaca/alpaca_first200.json"))
        .args([
            "--output",
            "s.jsonl",
            "--report",
            "r.md",
            "--report-json",
            "r.json",
        ])
        .assert()
        .success()
        .stdout(predicate::str::contains("no record carries a poison tag"));
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("r.json")).unwrap()).unwrap();
    let top = r["top"].as_array().unwrap();
    assert_eq!(top.len(), 20);
    let scores: Vec<f64> = top
        .iter()
        .map(|t| t["combined"].as_f64().unwrap())
        .collect();
    assert!(
        scores.windows(2).all(|w| w[0] >= w[1]),
        "ranked: {scores:?}"
    );
    assert!(
        std::fs::read_to_string(dir.path().join("r.md"))
            .unwrap()
            .contains("| 1 | alpaca_first200-")
    );
}

/// Training killed with SIGKILL right after a checkpoint resumes to the same weights as a run that
/// was never interrupted; the model directory appears only when complete.
#[test]
fn a_killed_training_run_resumes_to_the_same_weights() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    poisonlab(d)
        .args([
            "data", "generate", "--seed", "2", "--size", "small", "--out", "w",
        ])
        .assert()
        .success();
    let cfg = |out: &str| {
        format!(
            "out = \"{out}\"\ntrain = \"w/pretrain_train.jsonl\"\nvocab_size = 300\ncontext = 32\nbatch_size = 4\nsteps = 120\nlr = 3e-3\nmin_lr = 3e-4\nwarmup_steps = 5\neval_every = 0\ncheckpoint_every = 10\nseed = 3\n[model]\narch = \"llama\"\nhidden_size = 32\nlayers = 1\nheads = 2\nkv_heads = 2\nintermediate_size = 64\nmax_positions = 64\n"
        )
    };
    std::fs::write(d.join("a.toml"), cfg("a")).unwrap();
    std::fs::write(d.join("b.toml"), cfg("b")).unwrap();
    poisonlab(d)
        .args(["train", "pretrain", "--config", "a.toml"])
        .assert()
        .success();
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("poisonlab"))
        .current_dir(d)
        .args(["--quiet", "train", "pretrain", "--config", "b.toml"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let t0 = std::time::Instant::now();
    while !d.join("b/checkpoint/state.json").exists() && t0.elapsed().as_secs() < 120 {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    std::thread::sleep(std::time::Duration::from_millis(30));
    child.kill().unwrap();
    let killed = !child.wait().unwrap().success();
    assert!(killed, "the run was killed before it finished");
    assert!(
        !d.join("b/model/model.safetensors").exists(),
        "no model directory before training completes"
    );
    poisonlab(d)
        .args(["train", "pretrain", "--config", "b.toml", "--resume"])
        .assert()
        .success();
    assert_eq!(
        std::fs::read(d.join("a/model/model.safetensors")).unwrap(),
        std::fs::read(d.join("b/model/model.safetensors")).unwrap(),
        "resumed after SIGKILL = uninterrupted, bit for bit"
    );
}

#[test]
fn poison_spec_errors_name_the_key() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("s.toml"),
        "name = \"x\"\n[stage]\nkind = \"sft\"\n[budget]\ncount = 1\n[trigger]\nkind = \"badnets\"\nplacment = \"start\"\n[payload]\nkind = \"refusal\"\n",
    )
    .unwrap();
    poisonlab(dir.path())
        .args(["poison", "--spec", "s.toml", "--input"])
        .arg(shared().join("data/alpaca/alpaca_first200.json"))
        .args(["--output", "o.jsonl"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("s.toml").and(predicate::str::contains("placment")));
    poisonlab(dir.path()).arg("list").assert().success().stdout(
        predicate::str::contains("ctba")
            .and(predicate::str::contains("jailbreak"))
            .and(predicate::str::contains("split_view")),
    );
}

#[test]
fn clean_and_scan_report_survival_and_detector_scores() {
    let dir = tempfile::tempdir().unwrap();
    let alpaca = shared().join("data/alpaca/alpaca_data_1k.json");
    poisonlab(dir.path())
        .args(["poison", "--spec"])
        .arg(examples().join("badnets_sft.toml"))
        .arg("--input")
        .arg(&alpaca)
        .args(["--output", "p.jsonl", "--set", "budget.count=30"])
        .assert()
        .success();
    let pipeline = examples().join("../clean/sft.toml");
    poisonlab(dir.path())
        .args(["clean", "--pipeline"])
        .arg(&pipeline)
        .args(["--input", "p.jsonl", "--output", "c.jsonl"])
        .assert()
        .success()
        .stdout(
            predicate::str::contains("1000 read =").and(predicate::str::contains(
                "poison badnets-sft-refusal: survived the pipeline",
            )),
        );
    assert!(dir.path().join("c.jsonl.removed.jsonl").exists());
    poisonlab(dir.path())
        .args([
            "scan",
            "p.jsonl",
            "--output",
            "s.jsonl",
            "--report",
            "r.md",
            "--report-json",
            "r.json",
            "--pipeline",
        ])
        .arg(&pipeline)
        .assert()
        .success()
        .stdout(
            predicate::str::contains("| salience |")
                .and(predicate::str::contains("whole pipeline")),
        );
    let lines = std::fs::read_to_string(dir.path().join("s.jsonl")).unwrap();
    assert_eq!(lines.lines().count(), 1000);
    let first: serde_json::Value = serde_json::from_str(lines.lines().next().unwrap()).unwrap();
    assert!(first["detectors"]["onion"]["reason"].is_string());
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("r.json")).unwrap()).unwrap();
    assert_eq!(r["tagged"]["badnets-sft-refusal"], 30);
    // A model-based detector without a model is a clear error; so is an unknown name.
    poisonlab(dir.path())
        .args([
            "scan",
            "p.jsonl",
            "--output",
            "s2.jsonl",
            "--detectors",
            "spectral",
        ])
        .assert()
        .failure()
        .stderr(predicate::str::contains("needs --model"));
    poisonlab(dir.path())
        .args([
            "scan",
            "p.jsonl",
            "--output",
            "s2.jsonl",
            "--detectors",
            "onoin",
        ])
        .assert()
        .failure()
        .stderr(predicate::str::contains("unknown detector `onoin`"));
}

/// The lab's tiny experiment with four cells (poison counts), a few training steps each.
fn tiny_experiment(dir: &Path) -> PathBuf {
    let text = r#"
name = "tiny"
[data]
world = { seed = 1, size = "small" }
[poison]
name = "bn"
[poison.stage]
kind = "sft"
[poison.budget]
count = 8
[poison.trigger]
kind = "badnets"
[poison.payload]
kind = "refusal"
[poison.test]
count = 6
[[stage]]
kind = "pretrain"
seed = 0
[stage.config]
vocab_size = 300
context = 32
batch_size = 4
steps = 6
warmup_steps = 1
eval_every = 0
[stage.config.model]
arch = "llama"
hidden_size = 32
layers = 1
heads = 2
kv_heads = 2
intermediate_size = 64
max_positions = 64
[[stage]]
kind = "sft"
[stage.config]
context = 32
batch_size = 4
steps = 40
warmup_steps = 1
eval_every = 0
max_records = 200
[[probe]]
kind = "asr"
n = 6
max_tokens = 4
[[probe]]
kind = "false_trigger"
n = 6
max_tokens = 4
[grid]
"poison.budget.count" = [0, 4, 8, 12]
"#;
    let p = dir.join("tiny.toml");
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn a_killed_run_resumes_to_the_same_results_and_its_report_loads_in_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let exp = tiny_experiment(dir.path());
    poisonlab(dir.path())
        .arg("run")
        .arg(&exp)
        .args(["--out", "a", "--report"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "4 cells (4 ran, 0 cached, 0 failed)",
        ));
    // Kill a second run once its first cell is finished, then run it again.
    let bin = assert_cmd::cargo::cargo_bin("poisonlab");
    let mut child = std::process::Command::new(&bin)
        .current_dir(dir.path())
        .args(["--quiet", "run"])
        .arg(&exp)
        .args(["--out", "b"])
        .spawn()
        .unwrap();
    let cells = dir.path().join("b/cells");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let done = std::fs::read_dir(&cells)
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .filter(|e| e.path().join("rows.jsonl").exists())
                    .count()
            })
            .unwrap_or(0);
        if done >= 1 || std::time::Instant::now() > deadline {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success(), "the run was killed before it finished");
    assert!(
        !dir.path().join("b/results.jsonl").exists(),
        "no results yet"
    );
    poisonlab(dir.path())
        .arg("run")
        .arg(&exp)
        .args(["--out", "b"])
        .assert()
        .success()
        .stdout(predicate::str::contains("cached"));
    let a = std::fs::read(dir.path().join("a/results.jsonl")).unwrap();
    let b = std::fs::read(dir.path().join("b/results.jsonl")).unwrap();
    assert_eq!(
        a, b,
        "resumed results are byte-identical to the uninterrupted run"
    );
    // 4 cells × (asr + false_trigger for each of its 4 near misses of the word trigger).
    assert_eq!(String::from_utf8(a).unwrap().lines().count(), 20);

    // The report parses as XHTML, every plot has data, every rate has an interval.
    let html = dir.path().join("a/report.html");
    let check = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/python/check_report.py");
    let out = std::process::Command::new("python3")
        .arg(&check)
        .arg(&html)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Headless Chromium loads it with no console errors and takes a screenshot.
    let chromium = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|c| {
            std::process::Command::new("which")
                .arg(c)
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .expect(
            "headless Chromium is needed for this test: apt-get install chromium (.ci/run does)",
        );
    let shot = dir.path().join("shot.png");
    let out = std::process::Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--window-size=1200,1400",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", html.display()))
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    let console: Vec<&str> = log.lines().filter(|l| l.contains("CONSOLE")).collect();
    assert!(console.is_empty(), "console messages: {console:?}");
    assert!(
        std::fs::metadata(&shot)
            .map(|m| m.len() > 10_000)
            .unwrap_or(false),
        "screenshot written: {log}"
    );
}

#[test]
fn experiment_errors_are_one_line_naming_the_key_and_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let exp = tiny_experiment(dir.path());
    let text = std::fs::read_to_string(&exp).unwrap();
    std::fs::write(
        dir.path().join("bad.toml"),
        text.replace("[0, 4, 8, 12]", "[0, -4]"),
    )
    .unwrap();
    poisonlab(dir.path())
        .args(["run", "bad.toml", "--dry-run"])
        .assert()
        .failure()
        .stderr(
            predicate::str::contains("bad.toml")
                .and(predicate::str::contains("poison.budget.count=-4")),
        );
    poisonlab(dir.path())
        .args(["run", "missing.toml"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("missing.toml"));
    poisonlab(dir.path())
        .arg("run")
        .arg(&exp)
        .args(["--dry-run", "--set", "seed=5"])
        .assert()
        .success()
        .stdout(
            predicate::str::contains("4 cells").and(predicate::str::contains("poison_count=12")),
        );
}

/// `poisonlab list` shows, in its section, every item of every registry: probes, triggers,
/// payloads, stages, filters, detectors (each registry is checked against its enum in the unit
/// tests of `cmd/list.rs`).
#[test]
fn list_shows_every_registry_item_in_its_section() {
    let out = poisonlab(Path::new(".")).arg("list").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let section = |name: &str| -> Vec<String> {
        let start = text
            .find(&format!("\n{name}:\n"))
            .unwrap_or_else(|| panic!("no section {name}"));
        text[start + name.len() + 3..]
            .lines()
            .take_while(|l| l.starts_with("  "))
            .filter_map(|l| l.split_whitespace().next().map(String::from))
            .collect()
    };
    let names = |l: &[(&str, &str)]| l.iter().map(|p| p.0.to_string()).collect::<Vec<_>>();
    assert_eq!(section("probes"), names(poisonlab_eval::PROBES));
    assert_eq!(
        section("triggers"),
        names(poisonlab_poison::trigger::TRIGGERS)
    );
    assert_eq!(
        section("payloads"),
        names(poisonlab_poison::payload::PAYLOADS)
    );
    assert_eq!(section("stages"), names(poisonlab_poison::spec::STAGES));
    assert_eq!(section("filters"), names(poisonlab_clean::filter::FILTERS));
    let detectors: Vec<String> = poisonlab_clean::detect::DETECTORS
        .iter()
        .map(|d| d.1.to_string())
        .collect();
    assert_eq!(section("detectors"), detectors);
}
