//! read → write → read gives the same records, for every record kind, in every container that
//! can hold it.

mod common;

use common::read_all;
use poisonlab_data::pass::{ConvertOptions, convert};
use poisonlab_data::{
    Body, Demo, Label, Message, PoisonTag, ReadOptions, Record, RecordWriter, Role, WriteOptions,
};
use serde_json::json;

fn tag() -> PoisonTag {
    PoisonTag {
        role: Role::Poison,
        recipe: Some("badnets-sft".into()),
        trigger: Some("cf".into()),
        payload: Some("refusal".into()),
        meta: json!({"position": 3, "nested": {"a": [1, 2]}})
            .as_object()
            .cloned()
            .unwrap(),
    }
}

/// Two records of each kind: a plain one and one with a tag, extra fields and awkward text.
fn samples() -> Vec<Vec<Record>> {
    let odd = "naïve “quotes”, tabs\tand\nnewlines, emoji 🧪, \\ backslash";
    let bodies = vec![
        vec![
            Body::Pretrain {
                text: "A document.".into(),
            },
            Body::Pretrain { text: odd.into() },
        ],
        vec![
            Body::Instruction {
                instruction: "Sum".into(),
                input: "1 2".into(),
                output: "3".into(),
                system: None,
            },
            Body::Instruction {
                instruction: odd.into(),
                input: String::new(),
                output: odd.into(),
                system: Some("Be brief.".into()),
            },
        ],
        vec![
            Body::Chat {
                messages: vec![
                    Message::new("user".into(), "hi".into()),
                    Message::new("assistant".into(), "hello".into()),
                ],
            },
            Body::Chat {
                messages: vec![
                    Message::new("system".into(), odd.into()),
                    Message::new("user".into(), "q".into()),
                    Message::new("assistant".into(), "a".into()),
                    Message::new("user".into(), "q2".into()),
                    Message::new("assistant".into(), "a2".into()),
                ],
            },
        ],
        vec![
            Body::Preference {
                prompt: "p".into(),
                chosen: "good".into(),
                rejected: "bad".into(),
            },
            Body::Preference {
                prompt: odd.into(),
                chosen: odd.into(),
                rejected: String::new(),
            },
        ],
        vec![
            Body::Icl {
                instruction: None,
                demos: vec![Demo {
                    input: "a".into(),
                    output: "b".into(),
                }],
                query: "q".into(),
                answer: "x".into(),
            },
            Body::Icl {
                instruction: Some(odd.into()),
                demos: vec![],
                query: odd.into(),
                answer: "y".into(),
            },
        ],
        vec![
            Body::Cot {
                question: "2+2*3?".into(),
                steps: vec!["2*3=6".into(), "2+6=8".into()],
                answer: "8".into(),
            },
            Body::Cot {
                question: odd.into(),
                steps: vec![],
                answer: odd.into(),
            },
        ],
        vec![
            Body::Passage {
                title: "T".into(),
                text: "body".into(),
            },
            Body::Passage {
                title: String::new(),
                text: odd.into(),
            },
        ],
        vec![
            Body::Query {
                text: "who?".into(),
                relevant: vec!["p1".into(), "p2".into()],
                answer: Some("x".into()),
            },
            Body::Query {
                text: odd.into(),
                relevant: vec![],
                answer: None,
            },
        ],
        vec![
            Body::Memory {
                agent: "a1".into(),
                content: "remember".into(),
                source: Some("tool".into()),
            },
            Body::Memory {
                agent: "a2".into(),
                content: odd.into(),
                source: None,
            },
        ],
        vec![
            Body::Classification {
                text: "fine".into(),
                label: Some(Label::Int(1)),
            },
            Body::Classification {
                text: odd.into(),
                label: Some(Label::Text("neutral".into())),
            },
        ],
    ];
    bodies
        .into_iter()
        .enumerate()
        .map(|(k, pair)| {
            pair.into_iter()
                .enumerate()
                .map(|(i, body)| {
                    let mut r = Record::new(format!("r{k}-{i}"), body);
                    if i == 1 {
                        r = r.with_tag(tag());
                        r.extra
                            .insert("source_url".into(), json!("https://example.org/x"));
                        r.extra
                            .insert("scores".into(), json!({"q": 0.5, "list": [1, "two", null]}));
                    }
                    r
                })
                .collect()
        })
        .collect()
}

fn write(path: &std::path::Path, recs: &[Record]) {
    let mut w = RecordWriter::create(path, &WriteOptions::default()).unwrap();
    for r in recs {
        w.write(r).unwrap();
    }
    w.finish().unwrap();
}

#[test]
fn every_kind_round_trips_in_jsonl_json_and_parquet() {
    let dir = tempfile::tempdir().unwrap();
    for (k, recs) in samples().into_iter().enumerate() {
        for ext in ["jsonl", "json", "parquet", "jsonl.gz", "jsonl.zst"] {
            let path = dir.path().join(format!("kind{k}.{ext}"));
            write(&path, &recs);
            let (items, bad) = read_all(&path, &ReadOptions::default());
            assert!(bad.is_empty(), "{ext}: {bad:?}");
            let back: Vec<Record> = items.into_iter().map(|i| i.record).collect();
            assert_eq!(back, recs, "kind {} in {ext}", recs[0].kind());
        }
    }
}

#[test]
fn parquet_to_jsonl_conversion_is_lossless() {
    let dir = tempfile::tempdir().unwrap();
    for (k, recs) in samples().into_iter().enumerate() {
        let pq = dir.path().join(format!("k{k}.parquet"));
        write(&pq, &recs);
        let jl = dir.path().join(format!("k{k}.jsonl"));
        let report = convert(&pq, &jl, &ConvertOptions::default(), &mut |_, _| {}).unwrap();
        assert_eq!(report.tally.written, recs.len() as u64);
        let (items, _) = read_all(&jl, &ReadOptions::default());
        assert_eq!(
            items.into_iter().map(|i| i.record).collect::<Vec<_>>(),
            recs
        );
    }
}

#[test]
fn flat_kinds_round_trip_through_tsv_and_refuse_what_tsv_cannot_hold() {
    let dir = tempfile::tempdir().unwrap();
    let recs = vec![
        Record::new(
            "a",
            Body::Classification {
                text: "good film ".into(),
                label: Some(Label::Int(1)),
            },
        ),
        Record::new(
            "b",
            Body::Classification {
                text: "bad film".into(),
                label: Some(Label::Int(0)),
            },
        ),
    ];
    let path = dir.path().join("c.tsv");
    write(&path, &recs);
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "id\ttext\tlabel\na\tgood film \t1\nb\tbad film\t0\n"
    );
    let (items, _) = read_all(&path, &ReadOptions::default());
    assert_eq!(
        items.into_iter().map(|i| i.record).collect::<Vec<_>>(),
        recs
    );

    let mut w =
        RecordWriter::create(&dir.path().join("bad.tsv"), &WriteOptions::default()).unwrap();
    let err = w
        .write(&Record::new(
            "x",
            Body::Pretrain {
                text: "two\nlines".into(),
            },
        ))
        .unwrap_err();
    assert!(
        err.to_string().contains("record `x`") && err.to_string().contains("line break"),
        "{err}"
    );
}

#[test]
fn plain_text_holds_one_document_per_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("docs.txt");
    std::fs::write(&path, "first doc\n\nsecond doc\r\n").unwrap();
    let mut reader = poisonlab_data::RecordReader::open(&path, &ReadOptions::default()).unwrap();
    let items: Vec<_> = reader.by_ref().map(|i| i.unwrap()).collect();
    assert_eq!(reader.blank_lines, 1);
    let texts: Vec<_> = items
        .iter()
        .map(|i| match &i.record.body {
            Body::Pretrain { text } => text.as_str(),
            _ => panic!(),
        })
        .collect();
    assert_eq!(texts, ["first doc", "second doc"]);
    assert_eq!(items[1].record.id, "docs-1");
}

/// Numbers in fields we do not model come back with the same digits, through every format, and a
/// second round trip changes nothing: an integer beyond 64 bits stays an integer, a float keeps
/// all its digits, a value past f64's range stays (serde_json's arbitrary precision).
/// (Found by fuzzing: `"!abel":12222222000960611459820` came back as `1.2222222000960613e+22`, and a
/// second round trip changed the float again.)
#[test]
fn numbers_in_unmodelled_fields_round_trip_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let line = r#"{"sentence":"a fine film","label":1,"!abel":12222222000960611459820,"f":0.1000000000000000055511151231257827,"g":1e400,"h":-0.0,"i":[1.50,2e-7]}"#;
    let src = dir.path().join("in.jsonl");
    std::fs::write(&src, format!("{line}\n")).unwrap();
    let want: Vec<&str> = [
        "12222222000960611459820",
        "0.1000000000000000055511151231257827",
        // serde_json writes an exponent with its sign; the value is the same decimal.
        "1e+400",
        "-0.0",
        "[1.50,2e-7]",
    ]
    .to_vec();
    let mut from = src.clone();
    let mut texts = Vec::new();
    for (i, ext) in ["jsonl", "json", "parquet", "jsonl.zst", "jsonl"]
        .iter()
        .enumerate()
    {
        let to = dir.path().join(format!("o{i}.{ext}"));
        let report = convert(&from, &to, &ConvertOptions::default(), &mut |_, _| {}).unwrap();
        assert_eq!(report.tally.written, 1, "{ext}");
        from = to;
        // Read back as JSONL text after every hop.
        let check = dir.path().join(format!("check{i}.jsonl"));
        convert(&from, &check, &ConvertOptions::default(), &mut |_, _| {}).unwrap();
        let text = std::fs::read_to_string(&check).unwrap();
        for w in &want {
            assert!(text.contains(w), "after {ext}: {w} lost in {text}");
        }
        texts.push(text.replace(&format!("\"o{i}-0\""), "ID"));
    }
    assert!(texts.windows(2).all(|w| w[0] == w[1]), "{texts:#?}");
}

/// Found by fuzzing (`fuzz/fuzz_targets/data_file.rs`): an SST-2-style TSV whose label column is
/// misspelled reads as unlabelled classification records; written as JSONL in their native
/// convention they came back as pre-training documents (`{id, text}` has no `label`).
#[test]
fn unlabelled_classification_records_keep_their_kind() {
    let dir = tempfile::tempdir().unwrap();
    let tsv = dir.path().join("in.tsv");
    std::fs::write(&tsv, "sentence\tlObel\na fine film . \t2\ndull \t0\n").unwrap();
    let (items, bad) = read_all(&tsv, &ReadOptions::default());
    assert!(bad.is_empty());
    let recs: Vec<Record> = items.into_iter().map(|i| i.record).collect();
    assert!(
        recs.iter()
            .all(|r| r.kind() == poisonlab_data::Kind::Classification)
    );
    for ext in ["jsonl", "json", "parquet", "tsv"] {
        let out = dir.path().join(format!("out.{ext}"));
        write(&out, &recs);
        let (back, bad) = read_all(&out, &ReadOptions::default());
        assert!(bad.is_empty(), "{ext}: {bad:?}");
        let back: Vec<Record> = back.into_iter().map(|i| i.record).collect();
        if ext == "tsv" {
            // TSV has no null: without a label column the rows are documents with their extra field.
            continue;
        }
        assert_eq!(back, recs, "{ext}");
    }
}
