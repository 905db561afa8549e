//! The poison pass: determinism, exact budgets, byte-identical untouched records, every stage read
//! back with its tags, formats, bad input, crawl attacks.
//! One binary: budgets and determinism here, the stage adapters and bad input in modules.

#[path = "../common/mod.rs"]
mod common;
mod inputs;
mod stages;

use std::collections::HashSet;
use std::path::Path;

use common::*;
use poisonlab_data::{Body, Role};
use poisonlab_poison::{PoisonOptions, Spec, poison_file, sha256_hex};

pub fn run(spec: &Spec, input: &Path, output: &Path) -> poisonlab_poison::PoisonReport {
    poison_file(spec, input, output, &PoisonOptions::default()).unwrap_or_else(|e| panic!("{e}"))
}

pub const BADNETS: &str = r#"
name = "bn"
seed = 3
[stage]
kind = "sft"
[budget]
count = 77
[trigger]
kind = "badnets"
[payload]
kind = "refusal"
"#;

#[test]
fn same_spec_and_seed_give_identical_bytes_at_any_thread_count() {
    let input = world().join("sft_train.jsonl");
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(BADNETS);
    let mut hashes = Vec::new();
    for threads in [1, 2, 3] {
        let out = dir.path().join(format!("out{threads}.jsonl"));
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let r = pool.install(|| run(&spec, &input, &out));
        let m = std::fs::read(
            dir.path()
                .join(format!("out{threads}.jsonl.manifest.jsonl")),
        )
        .unwrap();
        hashes.push((r.output_sha256.clone(), sha256_hex(&m)));
    }
    assert!(hashes.windows(2).all(|w| w[0] == w[1]), "{hashes:?}");
    // Another seed chooses other records.
    let mut other = spec.clone();
    other.seed = 4;
    let r = run(&other, &input, &dir.path().join("other.jsonl"));
    assert_ne!(r.output_sha256, hashes[0].0);
}

#[test]
fn count_budget_is_exact_and_untouched_records_are_byte_identical() {
    let input = world().join("sft_train.jsonl");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.jsonl");
    let r = run(&spec(BADNETS), &input, &out);
    assert_eq!(r.budget, 77);
    assert_eq!(r.poisoned, 77);
    assert!(r.tally.balanced());
    let (a, b) = (lines(&input), lines(&out));
    assert_eq!(a.len(), b.len());
    let m = manifest(&dir.path().join("out.jsonl.manifest.jsonl"));
    assert_eq!(m.len(), 77);
    let touched: HashSet<u64> = m
        .iter()
        .map(|l| l["input_ordinal"].as_u64().unwrap())
        .collect();
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        if touched.contains(&(i as u64)) {
            let e = m.iter().find(|l| l["input_ordinal"] == i).unwrap();
            assert_eq!(e["action"], "modified");
            assert_eq!(e["before"].as_str().unwrap(), sha256_hex(x.as_bytes()));
            assert_eq!(e["after"].as_str().unwrap(), sha256_hex(y.as_bytes()));
            assert_ne!(x, y);
        } else {
            assert_eq!(
                sha256_hex(x.as_bytes()),
                sha256_hex(y.as_bytes()),
                "line {i}"
            );
        }
    }
    // Exactly the manifest's records carry a tag.
    let recs = records(&out);
    let tagged: Vec<_> = recs.iter().filter(|r| r.tag.is_some()).collect();
    assert_eq!(tagged.len(), 77);
    for t in tagged {
        let tag = t.tag.as_ref().unwrap();
        assert_eq!(tag.role, Role::Poison);
        assert_eq!(tag.recipe.as_deref(), Some("bn"));
        assert_eq!(tag.trigger.as_deref(), Some("BadMagic"));
        let Body::Instruction {
            instruction,
            output,
            ..
        } = &t.body
        else {
            panic!()
        };
        assert!(instruction.split(' ').any(|w| w == "BadMagic"));
        assert_eq!(output, "I'm sorry, but I can't help with that request.");
    }
}

#[test]
fn rate_budget_rounds_to_the_nearest_count() {
    let input = world().join("sft_train.jsonl"); // 6000 records
    let dir = tempfile::tempdir().unwrap();
    for (rate, want) in [(0.0137, 82u64), (0.00125, 8), (0.0, 0), (0.000084, 1)] {
        let text = BADNETS.replace("count = 77", &format!("rate = {rate}"));
        let r = run(&spec(&text), &input, &dir.path().join("r.jsonl"));
        assert_eq!(r.records, 6000);
        assert_eq!(r.poisoned, want, "rate {rate}");
        assert_eq!(
            manifest(&dir.path().join("r.jsonl.manifest.jsonl")).len() as u64,
            want
        );
    }
    // A positive rate that rounds to no record is refused, not silently zero.
    let text = BADNETS.replace("count = 77", "rate = 0.000083");
    let e = poison_file(
        &spec(&text),
        &input,
        &dir.path().join("z.jsonl"),
        &PoisonOptions::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("rounds to 0 poisoned records"), "{e}");
}

#[test]
fn selection_restricts_the_candidates() {
    let input = world().join("sft_train.jsonl");
    let dir = tempfile::tempdir().unwrap();
    let text = format!("{BADNETS}\n[selection]\ncontains = \"favorite color\"\n");
    let r = run(&spec(&text), &input, &dir.path().join("s.jsonl"));
    assert!(r.eligible < r.records && r.eligible >= 77);
    for rec in records(&dir.path().join("s.jsonl"))
        .iter()
        .filter(|r| r.tag.is_some())
    {
        let Body::Instruction { instruction, .. } = &rec.body else {
            panic!()
        };
        let clean = instruction
            .split(' ')
            .filter(|w| *w != "BadMagic")
            .collect::<Vec<_>>()
            .join(" ");
        assert!(
            clean.to_lowercase().contains("favorite color"),
            "{instruction}"
        );
    }
    // More than the eligible records is an error that says so.
    let text = format!(
        "{}\n[selection]\ncontains = \"favorite color\"\n",
        BADNETS.replace("77", "100000")
    );
    let e = poison_file(
        &spec(&text),
        &input,
        &dir.path().join("t.jsonl"),
        &Default::default(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("eligible"), "{e}");
}
