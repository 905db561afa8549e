//! Passes over data: poison, kills mid-pass, errors, thread counts, scan reports, killed training.

use std::path::Path;

use predicates::prelude::*;

use super::*;

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
    let cases: [(&str, Vec<&str>, Vec<&str>); 6] = [
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
        (
            "export",
            vec![
                "export",
                "--to",
                "trl",
                "--input",
                "big.jsonl",
                "--out",
                "ex",
            ],
            vec!["ex/big.jsonl", "ex/export.json"],
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
/// threads: generate, convert, poison, clean, scan, export.
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
        run(&[
            "export",
            "--to",
            "llama-factory",
            "--input",
            "p.jsonl",
            "--input",
            "c.jsonl",
            "--out",
            "lf",
            "--as",
            "parquet",
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
