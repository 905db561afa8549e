//! Clean, scan, experiments and `list`.

use std::path::{Path, PathBuf};

use predicates::prelude::*;

use super::*;

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
