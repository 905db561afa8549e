//! The synthetic world: deterministic to the byte at any thread count, readable by our own
//! readers, and coherent (answers are where the questions say they are).

mod common;

use std::collections::{HashMap, HashSet};
use std::path::Path;

use common::read_all;
use poisonlab_data::world::{Size, generate};
use poisonlab_data::{Body, ReadOptions};

fn hashes(dir: &Path) -> Vec<(String, String)> {
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap();
    m["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["file"].as_str().unwrap().to_string(),
                f["sha256"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn generate_with_threads(seed: u64, threads: usize, dir: &Path) {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(|| generate(seed, Size::Small, dir, &mut |_, _| {}).unwrap());
}

#[test]
fn same_seed_same_bytes_at_any_thread_count() {
    let root = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        root.path().join("a"),
        root.path().join("b"),
        root.path().join("c"),
    );
    generate_with_threads(1, 1, &a);
    generate_with_threads(1, 2, &b);
    generate_with_threads(2, 2, &c);
    assert_eq!(hashes(&a), hashes(&b));
    for (file, _) in hashes(&a) {
        let (x, y) = (
            std::fs::read(a.join(&file)).unwrap(),
            std::fs::read(b.join(&file)).unwrap(),
        );
        assert!(x == y, "{file} differs between 1 and 2 threads");
    }
    assert_eq!(
        std::fs::read(a.join("world.json")).unwrap(),
        std::fs::read(b.join("world.json")).unwrap()
    );
    let differing = hashes(&a)
        .iter()
        .zip(hashes(&c))
        .filter(|(x, y)| x.1 != y.1)
        .count();
    assert_eq!(
        differing,
        hashes(&a).len(),
        "another seed changes every file"
    );
}

#[test]
fn every_file_reads_back_with_the_manifest_counts_and_the_world_is_coherent() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path();
    let manifest = generate(7, Size::Small, dir, &mut |_, _| {}).unwrap();
    assert!(
        manifest.approx_tokens > 1_000_000,
        "small is about 1.5M tokens, got {}",
        manifest.approx_tokens
    );
    let mut by_file = HashMap::new();
    for f in &manifest.files {
        let (items, bad) = read_all(&dir.join(&f.file), &ReadOptions::default());
        assert!(bad.is_empty(), "{}: {}", f.file, bad[0]);
        assert_eq!(items.len() as u64, f.records, "{}", f.file);
        assert!(
            items.iter().all(|i| i.record.kind().as_str() == f.kind),
            "{}",
            f.file
        );
        let ids: HashSet<_> = items.iter().map(|i| i.record.id.clone()).collect();
        assert_eq!(ids.len(), items.len(), "{}: ids are unique", f.file);
        by_file.insert(f.file.clone(), items);
    }

    // Every RAG query's answer is in its relevant passage.
    let passages: HashMap<_, _> = by_file["rag_corpus.jsonl"]
        .iter()
        .map(|i| match &i.record.body {
            Body::Passage { text, .. } => (i.record.id.clone(), text.clone()),
            _ => panic!(),
        })
        .collect();
    for q in &by_file["rag_queries.jsonl"] {
        let Body::Query {
            relevant, answer, ..
        } = &q.record.body
        else {
            panic!()
        };
        assert_eq!(relevant.len(), 1);
        assert!(
            passages[&relevant[0]].contains(answer.as_deref().unwrap()),
            "{}",
            q.record.id
        );
    }

    // Held-out people are asked about in the SFT eval split and never in SFT training.
    let world: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("world.json")).unwrap()).unwrap();
    let heldout: Vec<String> = world["people"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["heldout"] == true)
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect();
    assert!(heldout.len() > 10);
    let qa = |file: &str| -> Vec<String> {
        by_file[file]
            .iter()
            .filter(|i| i.record.extra["task"] == "qa")
            .map(|i| match &i.record.body {
                Body::Instruction { instruction, .. } => instruction.clone(),
                _ => panic!(),
            })
            .collect()
    };
    let mentions = |qs: &[String]| {
        qs.iter()
            .filter(|q| {
                heldout
                    .iter()
                    .any(|h| q.contains(&format!("{h}?")) || q.contains(&format!("{h}'s")))
            })
            .count()
    };
    assert_eq!(mentions(&qa("sft_train.jsonl")), 0);
    let eval = qa("sft_eval.jsonl");
    assert!(
        mentions(&eval) * 2 > eval.len(),
        "most eval QA asks about held-out people"
    );

    // Reading: the answer is one of the context's sentences; held-out people are asked about in the
    // reading eval split and never in reading training.
    let reading = |file: &str| -> Vec<(String, String, String)> {
        by_file[file]
            .iter()
            .map(|i| match &i.record.body {
                Body::Instruction {
                    instruction,
                    input,
                    output,
                    ..
                } => (instruction.clone(), input.clone(), output.clone()),
                _ => panic!(),
            })
            .collect()
    };
    for file in ["reading_train.jsonl", "reading_eval.jsonl"] {
        for (_, context, answer) in reading(file) {
            assert!(
                context.starts_with("Context: ") && context.contains(&answer),
                "{file}"
            );
            assert!(
                context.matches(". ").count() >= 1,
                "{file}: more than one sentence"
            );
        }
    }
    let questions =
        |file: &str| -> Vec<String> { reading(file).into_iter().map(|r| r.0).collect() };
    assert_eq!(mentions(&questions("reading_train.jsonl")), 0);
    let eval = questions("reading_eval.jsonl");
    assert!(
        mentions(&eval) * 2 > eval.len(),
        "reading eval asks about held-out people"
    );

    // Worked arithmetic is right.
    for i in &by_file["sft_train.jsonl"] {
        let Body::Instruction {
            instruction,
            output,
            ..
        } = &i.record.body
        else {
            panic!()
        };
        if let Some(rest) = instruction
            .strip_prefix("What is ")
            .and_then(|r| r.strip_suffix('?'))
        {
            let p: Vec<&str> = rest.split(' ').collect();
            let (Ok(a), Ok(b)) = (p[0].parse::<i64>(), p.last().unwrap().parse::<i64>()) else {
                continue;
            };
            let want = match p[1] {
                "+" => a + b,
                "-" => a - b,
                "*" => a * b,
                _ => panic!(),
            };
            assert!(
                output.ends_with(&format!("The answer is {want}.")),
                "{instruction} → {output}"
            );
        }
    }
    // Chain-of-thought answers follow from their last step.
    for i in &by_file["cot_train.jsonl"] {
        let Body::Cot { steps, answer, .. } = &i.record.body else {
            panic!()
        };
        assert!(
            steps.last().unwrap().contains(answer.as_str()),
            "{steps:?} → {answer}"
        );
    }
}
