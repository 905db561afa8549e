//! Experiments: errors that name the key and the file, resume to byte-identical results, the
//! report renders with data and intervals.

use std::path::Path;

use poisonlab_lab::{Plan, RunOptions};

/// A tiny experiment: two cells, a few training steps each.
pub const TINY: &str = r#"
name = "tiny"
seed = 1
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
steps = 6
warmup_steps = 1
eval_every = 0
max_records = 200
[[probe]]
kind = "asr"
n = 6
max_tokens = 4
[[probe]]
kind = "utility"
n = 6
max_tokens = 4
[[probe]]
kind = "heldout_loss"
n = 6
after = "each"
[grid]
"poison.budget.count" = [0, 8]
"#;

fn err(text: &str) -> String {
    let e = Plan::parse(text, Path::new("exp.toml"), &[])
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("exp.toml: "), "{e}");
    assert!(!e.contains('\n'), "one line: {e}");
    e
}

#[test]
fn errors_name_the_key_and_the_file() {
    let e = err(&TINY.replace("seed = 1\n[data]", "seed = 1\nsede = 2\n[data]"));
    assert!(e.contains("sede"), "{e}");
    let e = err(&TINY.replace(
        "world = { seed = 1, size = \"small\" }",
        "sft = \"nope.jsonl\"",
    ));
    assert!(
        e.contains("nope.jsonl") && e.contains("does not exist"),
        "{e}"
    );
    let e = err(&TINY.replace("[0, 8]", "[0, -3]"));
    assert!(e.contains("poison.budget.count=-3"), "{e}");
    let e = err(&TINY.replace("[0, 8]", "[0, \"many\"]"));
    assert!(e.contains("count"), "{e}");
    // sft before pretrain
    let swapped = TINY
        .replacen("kind = \"pretrain\"", "kind = \"TMP\"", 1)
        .replacen(
            "kind = \"sft\"\n[stage.config]",
            "kind = \"pretrain\"\n[stage.config]",
            1,
        )
        .replacen("kind = \"TMP\"", "kind = \"sft\"", 1);
    let e = err(&swapped);
    assert!(e.contains("stage") && e.contains("order"), "{e}");
    let e = err(&TINY.replace(
        "steps = 6\nwarmup_steps = 1\neval_every = 0\nmax_records",
        "stesp = 6\nwarmup_steps = 1\neval_every = 0\nmax_records",
    ));
    assert!(
        e.contains("stesp") && e.contains("stage.config (sft)"),
        "{e}"
    );
    let e = err(&TINY.replace(
        "kind = \"asr\"",
        "kind = \"asr\"\njudge = { kind = \"keywords\", words = [] }",
    ));
    assert!(
        e.contains("probe asr") && e.contains("judge.keywords"),
        "{e}"
    );
    let e = err(&TINY.replace("[0, 8]", "[]"));
    assert!(e.contains("grid"), "{e}");
}

#[test]
fn dry_plan_expands_the_grid() {
    let p = Plan::parse(TINY, Path::new("exp.toml"), &["seed=3".into()]).unwrap();
    assert_eq!(p.cells.len(), 2);
    assert_eq!(p.cells[1].label(), "poison_count=8");
    assert_eq!(p.cells[0].experiment.seed, 3);
    assert_ne!(p.cells[0].hash, p.cells[1].hash);
    let again = Plan::parse(TINY, Path::new("exp.toml"), &["seed=3".into()]).unwrap();
    assert_eq!(again.cells[1].hash, p.cells[1].hash);
}

/// A table under `[grid]` zips its keys: the i-th values go together, crossed with the other axes.
#[test]
fn a_zipped_axis_pairs_its_keys() {
    let zipped = format!(
        "{TINY}[grid.scale]\n\"stage.0.config.steps\" = [6, 24]\n\"stage.0.config.model.hidden_size\" = [32, 64]\n"
    );
    let p = Plan::parse(&zipped, Path::new("exp.toml"), &[]).unwrap();
    assert_eq!(p.cells.len(), 4);
    let got: Vec<(u64, usize, usize)> = p
        .cells
        .iter()
        .map(|c| {
            let e = &c.experiment;
            let cfg = serde_json::to_value(&e.stages[0].config).unwrap();
            (
                e.poison.as_ref().unwrap().budget.count.unwrap_or(0),
                cfg["steps"].as_u64().unwrap() as usize,
                cfg["model"]["hidden_size"].as_u64().unwrap() as usize,
            )
        })
        .collect();
    assert_eq!(got, vec![(0, 6, 32), (0, 24, 64), (8, 6, 32), (8, 24, 64)]);
    assert_eq!(p.cells[3].label(), "poison_count=8 hidden_size=64 steps=24");
    let e = err(&format!(
        "{TINY}[grid.scale]\n\"stage.0.config.steps\" = [6, 24]\n\"stage.0.config.model.hidden_size\" = [32]\n"
    ));
    assert!(e.contains("grid.scale") && e.contains("one length"), "{e}");
}

#[test]
fn interrupted_run_resumes_to_identical_results_and_the_report_renders() {
    let plan = Plan::parse(TINY, Path::new("exp.toml"), &[]).unwrap();
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let full = poisonlab_lab::run(
        &plan,
        &RunOptions {
            out: a.path().into(),
            max_cells: None,
        },
        &mut |_| {},
    )
    .unwrap();
    assert_eq!((full.ran, full.failed.len()), (2, 0));
    // Stop after the first cell, as a kill would, then run again.
    let part = poisonlab_lab::run(
        &plan,
        &RunOptions {
            out: b.path().into(),
            max_cells: Some(1),
        },
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(part.ran, 1);
    let rest = poisonlab_lab::run(
        &plan,
        &RunOptions {
            out: b.path().into(),
            max_cells: None,
        },
        &mut |_| {},
    )
    .unwrap();
    assert_eq!((rest.cached, rest.ran), (1, 1));
    let ra = std::fs::read(a.path().join("results.jsonl")).unwrap();
    let rb = std::fs::read(b.path().join("results.jsonl")).unwrap();
    assert_eq!(ra, rb, "resumed results are byte-identical");
    // 2 cells × (asr, utility, loss after sft + loss after pretrain) = 8 rows.
    let rows = poisonlab_lab::results::read_rows(&a.path().join("results.jsonl")).unwrap();
    assert_eq!(rows.len(), 8);
    for r in &rows {
        let r = &r.to_map();
        for k in [
            "cell",
            "poison_count",
            "stage",
            "probe",
            "value",
            "ci_low",
            "ci_high",
            "n",
        ] {
            assert!(r.contains_key(k), "{k} in {r:?}");
        }
        let (v, lo, hi) = (
            r["value"].as_f64().unwrap(),
            r["ci_low"].as_f64().unwrap(),
            r["ci_high"].as_f64().unwrap(),
        );
        assert!(lo <= v + 1e-12 && v <= hi + 1e-12, "{r:?}");
    }
    // The budget counts what the SFT stage trains on: it reads 200 records, 8 of them poisoned.
    for r in rows.iter().filter(|r| r.stage == "sft") {
        let count = r.param("poison_count").and_then(|v| v.as_u64()).unwrap();
        assert_eq!(
            r.param("records_trained").and_then(|v| v.as_u64()),
            Some(200)
        );
        assert_eq!(
            r.param("poison_trained").and_then(|v| v.as_u64()),
            Some(count),
            "{r:?}"
        );
    }
    assert!(a.path().join("results.parquet").exists());
    // Shared stages are built once: one pretrain, two SFTs.
    let stages = std::fs::read_dir(a.path().join("cache"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("stage-"))
        .count();
    assert_eq!(stages, 3);
    // The report.
    let (html, md) = poisonlab_lab::report::write_report(a.path()).unwrap();
    let text = std::fs::read_to_string(&html).unwrap();
    assert!(
        text.contains("<svg") && text.contains("data-points=\"2\""),
        "every plot has its points"
    );
    assert!(!text.contains("data-points=\"0\""));
    assert!(
        std::fs::read_to_string(&md)
            .unwrap()
            .contains("| asr | sft |")
    );
}

/// An evaluation-only experiment over a model directory: its cell (and so its cached rows) follows
/// the weights — rewriting `model.safetensors` gives a new cell; an unknown key in `[model]`, or a
/// user-set fingerprint, is refused.
#[test]
fn an_evaluation_only_cell_follows_the_weights_of_its_model_directory() {
    let shared = std::env::var_os("POISONLAB_SHARED")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"));
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m");
    std::fs::create_dir_all(&model).unwrap();
    let src = shared.join("fixtures/hf-tiny/llama");
    for f in ["config.json", "model.safetensors"] {
        std::fs::copy(src.join(f), model.join(f)).unwrap();
    }
    let text = format!(
        "name = \"audit\"\n[model]\ndir = {:?}\n[[probe]]\nkind = \"heldout_loss\"\n",
        model
    );
    let path = dir.path().join("exp.toml");
    let before = Plan::parse(&text, &path, &[]).unwrap().cells[0]
        .hash
        .clone();
    assert_eq!(
        Plan::parse(&text, &path, &[]).unwrap().cells[0].hash,
        before,
        "same weights, same cell"
    );
    // New weights: one more byte is enough to be another file.
    let mut bytes = std::fs::read(model.join("model.safetensors")).unwrap();
    bytes.push(b' ');
    std::fs::write(model.join("model.safetensors"), bytes).unwrap();
    assert_ne!(
        Plan::parse(&text, &path, &[]).unwrap().cells[0].hash,
        before
    );
    let e = Plan::parse(&format!("{text}[model]\n"), &path, &[]).unwrap_err();
    assert!(e.to_string().contains("exp.toml"), "{e}");
    let forged = text.replace("[[probe]]", "files = \"x\"\n[[probe]]");
    let e = Plan::parse(&forged, &path, &[]).unwrap_err().to_string();
    assert!(e.contains("files"), "{e}");
}
