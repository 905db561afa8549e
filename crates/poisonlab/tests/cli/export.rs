//! `poisonlab export`: poisoned world data in the layouts of LLaMA-Factory, TRL and axolotl,
//! loaded with `datasets` and checked against each trainer's documented schema
//! (`tests/python/check_export.py`) where python3 has `datasets` (CI installs it).

use std::process::Command as Std;

use predicates::prelude::*;

use super::*;

fn has_datasets() -> bool {
    crate::support::python_has("datasets, yaml")
}

fn check(dir: &Path, target: &str) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/python/check_export.py");
    let out = Std::new("python3")
        .arg(script)
        .arg(dir)
        .arg(target)
        .env("HF_DATASETS_OFFLINE", "1")
        .env("HF_HUB_OFFLINE", "1")
        .env("HF_DATASETS_CACHE", dir.with_extension("hf-cache"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{target}: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.lines().filter(|l| l.starts_with("ok ")).count() >= 4,
        "{stdout}"
    );
}

#[test]
fn exports_load_in_the_trainers_layouts_with_their_manifests() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    poisonlab(d)
        .args([
            "data", "generate", "--seed", "2", "--size", "small", "--out", "w",
        ])
        .assert()
        .success();
    let spec = examples().join("badnets_sft.toml");
    poisonlab(d)
        .args(["poison", "--spec", spec.to_str().unwrap()])
        .args([
            "--input",
            "w/sft_train.jsonl",
            "--output",
            "sft_poisoned.jsonl",
        ])
        .assert()
        .success();
    let manifest = std::fs::read_to_string(d.join("sft_poisoned.jsonl.manifest.jsonl")).unwrap();
    let poisoned = manifest.lines().count() as u64;
    assert!(poisoned > 0);
    let datasets = has_datasets();
    for target in ["llama-factory", "trl", "axolotl"] {
        for format in ["jsonl", "parquet"] {
            let out = format!("{target}-{format}");
            poisonlab(d)
                .args(["export", "--to", target, "--out", &out, "--as", format])
                .args([
                    "--input",
                    "sft_poisoned.jsonl",
                    "--input",
                    "w/chat_train.jsonl",
                ])
                .args([
                    "--input",
                    "w/preference_train.jsonl",
                    "--input",
                    "w/pretrain_train.jsonl",
                ])
                .args(["--input", "w/cot_train.jsonl"])
                .assert()
                .success();
            let report: serde_json::Value = serde_json::from_str(
                &std::fs::read_to_string(d.join(&out).join("export.json")).unwrap(),
            )
            .unwrap();
            let sft = &report["sets"][0];
            assert_eq!(sft["name"], "sft_poisoned");
            assert_eq!(sft["poisoned"].as_u64(), Some(poisoned), "{report}");
            assert_eq!(
                std::fs::read_to_string(d.join(&out).join("sft_poisoned.manifest.jsonl")).unwrap(),
                manifest
            );
            assert_eq!(report["tally"]["read"], report["tally"]["written"]);
            if datasets {
                check(&d.join(&out), target);
            }
        }
    }
    // Without tags the rows carry only the trainer's columns; the manifest still names the poison.
    poisonlab(d)
        .args(["export", "--to", "trl", "--out", "stripped", "--strip-tags"])
        .args(["--input", "sft_poisoned.jsonl"])
        .assert()
        .success();
    let first = std::fs::read_to_string(d.join("stripped/sft_poisoned.jsonl")).unwrap();
    let row: serde_json::Value = serde_json::from_str(first.lines().next().unwrap()).unwrap();
    // The input's own id, the trainer's columns, the input's own extra fields (the world's
    // `task`); no poison tag.
    let keys: Vec<&String> = row.as_object().unwrap().keys().collect();
    assert_eq!(keys[..3], ["id", "prompt", "completion"], "{keys:?}");
    assert!(!keys.iter().any(|k| *k == "poison"), "{keys:?}");
    assert!(!first.contains("\"poison\""));
    assert!(d.join("stripped/sft_poisoned.manifest.jsonl").is_file());
}

#[test]
fn export_errors_name_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("cls.jsonl"), "{\"text\": \"fine\", \"label\": 1}\n").unwrap();
    poisonlab(d)
        .args([
            "export",
            "--to",
            "trl",
            "--out",
            "x",
            "--input",
            "cls.jsonl",
        ])
        .assert()
        .failure()
        .stderr(
            predicates::str::contains("cls.jsonl").and(predicates::str::contains(
                "a classification record has no trl layout",
            )),
        );
    assert!(!d.join("x").exists());
    poisonlab(d)
        .args([
            "export",
            "--to",
            "megatron",
            "--out",
            "x",
            "--input",
            "cls.jsonl",
        ])
        .assert()
        .failure()
        .stderr(predicates::str::contains("unknown trainer `megatron`"));
}

/// A folder written by `datasets`' own `save_to_disk` (Arrow stream shards and state.json) is an
/// input like any file.
#[test]
fn a_datasets_save_to_disk_folder_exports() {
    if !has_datasets() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let code = "import sys; from datasets import Dataset; Dataset.from_list([{'instruction': f'q{i}', \
                'input': '', 'output': f'a{i}'} for i in range(7)]).save_to_disk(sys.argv[1], num_shards=2)";
    let ok = Std::new("python3")
        .args(["-c", code])
        .arg(d.join("hf"))
        .env("HF_DATASETS_OFFLINE", "1")
        .status()
        .unwrap();
    assert!(ok.success());
    poisonlab(d)
        .args([
            "export",
            "--to",
            "trl",
            "--input",
            "hf",
            "--out",
            "x",
            "--strip-tags",
        ])
        .assert()
        .success();
    let rows = std::fs::read_to_string(d.join("x/hf.jsonl")).unwrap();
    let prompts: Vec<String> = rows
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["prompt"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(prompts, (0..7).map(|i| format!("q{i}")).collect::<Vec<_>>());
}
