//! The real files in ../shared/data, read with exact counts.

mod common;

use common::{read_all, shared};
use poisonlab_data::convention::HH_REJECTED_PROMPT;
use poisonlab_data::format::FORMATS;
use poisonlab_data::pass::{ConvertOptions, convert};
use poisonlab_data::{Body, Convention, Format, Label, ReadOptions, RecordReader};

fn instruction_inputs(items: &[poisonlab_data::Item]) -> usize {
    items
        .iter()
        .filter(|i| matches!(&i.record.body, Body::Instruction { input, .. } if !input.is_empty()))
        .count()
}

#[test]
fn alpaca_json_arrays() {
    let dir = shared().join("data/alpaca");
    let (items, bad) = read_all(&dir.join("alpaca_data_1k.json"), &ReadOptions::default());
    assert!(bad.is_empty());
    assert_eq!(items.len(), 1000);
    assert_eq!(instruction_inputs(&items), 392);
    assert_eq!(items[0].record.id, "alpaca_data_1k-0");
    assert_eq!(items[999].record.id, "alpaca_data_1k-999");

    let r = RecordReader::open(&dir.join("alpaca_first200.json"), &ReadOptions::default()).unwrap();
    assert_eq!(r.format(), Format::JsonArray);
    let items: Vec<_> = r.map(|i| i.unwrap()).collect();
    assert_eq!(items.len(), 200);
    assert_eq!(instruction_inputs(&items), 118);
    // Indented JSON: each element is located by the line it starts on.
    assert_eq!(items[0].pos, poisonlab_data::Pos::Line(2));
    let Body::Instruction { instruction, .. } = &items[0].record.body else {
        panic!()
    };
    assert_eq!(instruction, "Give three tips for staying healthy.");
}

#[test]
fn sst2_tsv_with_labels() {
    let dir = shared().join("data/sst2");
    for (file, n, pos, neg) in [
        ("train.tsv", 67_349, 37_569, 29_780),
        ("dev.tsv", 872, 444, 428),
        ("test-labeled.tsv", 1821, 904, 917),
    ] {
        let (items, bad) = read_all(&dir.join(file), &ReadOptions::default());
        assert!(
            bad.is_empty(),
            "{file}: {:?}",
            bad.first().map(|e| e.to_string())
        );
        assert_eq!(items.len(), n, "{file}");
        let count = |l| {
            items.iter().filter(|i| matches!(&i.record.body, Body::Classification { label: Some(Label::Int(x)), .. } if *x == l)).count()
        };
        assert_eq!((count(1), count(0)), (pos, neg), "{file}");
    }
    // The unlabeled test split: `index` stays as an extra field, nothing is lost.
    let (items, _) = read_all(&dir.join("test.tsv"), &ReadOptions::default());
    assert_eq!(items.len(), 1821);
    assert!(matches!(
        &items[0].record.body,
        Body::Classification { label: None, .. }
    ));
    assert_eq!(items[0].record.extra["index"], "0");
    // Sentences keep their trailing space exactly as in the GLUE file.
    let (items, _) = read_all(&dir.join("train.tsv"), &ReadOptions::default());
    let Body::Classification { text, .. } = &items[0].record.body else {
        panic!()
    };
    assert_eq!(text, "hide new secretions from the parental units ");
}

#[test]
fn hh_rlhf_pairs_and_prompts() {
    let path = shared().join("data/hh-rlhf/harmless-base_test.jsonl");
    let (items, bad) = read_all(&path, &ReadOptions::default());
    assert!(bad.is_empty());
    assert_eq!(items.len(), 2312);
    let differing = items
        .iter()
        .filter(|i| i.record.extra.contains_key(HH_REJECTED_PROMPT))
        .count();
    assert_eq!(differing, 5, "SOURCE.md: the prompts differ in 5 pairs");
    for i in &items {
        let Body::Preference {
            prompt,
            chosen,
            rejected,
        } = &i.record.body
        else {
            panic!()
        };
        assert!(prompt.ends_with("\n\nAssistant:"), "{}", i.record.id);
        assert!(!chosen.contains("\n\nAssistant:") && !rejected.contains("\n\nAssistant:"));
    }
    let shortest = items
        .iter()
        .find(|i| matches!(&i.record.body, Body::Preference { prompt, .. } if prompt == "\n\nHuman: list of profane bad words\n\nAssistant:"))
        .expect("the shortest record of SOURCE.md");
    let Body::Preference {
        chosen, rejected, ..
    } = &shortest.record.body
    else {
        panic!()
    };
    assert_eq!((chosen.as_str(), rejected.as_str()), (" ", " Ok"));
}

#[test]
fn hh_rlhf_round_trips_to_the_same_transcripts() {
    let src = shared().join("data/hh-rlhf/harmless-base_test.jsonl");
    let dir = tempfile::tempdir().unwrap();
    for out in ["hh.jsonl", "hh.parquet", "hh.json.zst"] {
        let out = dir.path().join(out);
        let opts = ConvertOptions::default();
        let report = convert(&src, &out, &opts, &mut |_, _| {}).unwrap();
        assert_eq!((report.tally.read, report.tally.written), (2312, 2312));
        let original: Vec<serde_json::Value> = std::fs::read_to_string(&src)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let opts = ReadOptions {
            convention: None,
            ..ReadOptions::default()
        };
        let (items, _) = read_all(&out, &opts);
        assert_eq!(items.len(), 2312);
        for (item, orig) in items.iter().zip(&original) {
            let obj =
                poisonlab_data::convention::to_object(&item.record, Convention::HhRlhf).unwrap();
            assert_eq!(obj["chosen"], orig["chosen"]);
            assert_eq!(obj["rejected"], orig["rejected"]);
        }
    }
}

#[test]
fn every_format_is_listed_once() {
    let names: std::collections::HashSet<_> = FORMATS.iter().map(|f| f.1).collect();
    assert_eq!(names.len(), FORMATS.len());
}
