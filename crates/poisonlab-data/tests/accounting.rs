//! Every pass accounts for every record, whatever the input: a property test over random files of
//! good records mixed with bad lines of every kind (truncated JSON, invalid UTF-8, wrong field
//! types, missing fields, non-objects, blank lines, CRLF). `read = written + quarantined`, the
//! quarantine holds exactly the bad lines with their line numbers, and the good records come out
//! whole and in order.

use poisonlab_data::pass::{ConvertOptions, convert};
use poisonlab_data::{Body, OnError, ReadOptions, RecordReader};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Line {
    Good(String),
    Bad(Vec<u8>),
    Blank,
}

fn line() -> impl Strategy<Value = Line> {
    prop_oneof![
        4 => "[a-zA-Z0-9 ,.!?é🙂\\\\\"\t]{0,40}".prop_map(Line::Good),
        1 => prop_oneof![
            Just(b"{\"text\": \"trunc".to_vec()),
            Just(b"{\"text\": 3}".to_vec()),
            Just(b"{\"txet\": \"a\"}".to_vec()),
            Just(b"[1, 2]".to_vec()),
            Just(b"\"just a string\"".to_vec()),
            Just(vec![b'{', b'"', b't', b'e', b'x', b't', b'"', b':', b'"', 0xff, 0xfe, b'"', b'}']),
            Just(b"{\"text\": \"a\", \"poison\": 7}".to_vec()),
        ]
        .prop_map(Line::Bad),
        1 => Just(Line::Blank),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn convert_accounts_for_every_record(lines in proptest::collection::vec(line(), 1..60), crlf in any::<bool>()) {
        // The first line is good, so the convention is known (a file of only bad lines is its
        // own, tested, error).
        let mut lines = lines;
        lines.insert(0, Line::Good("first".into()));
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("in.jsonl");
        let mut bytes = Vec::new();
        let eol: &[u8] = if crlf { b"\r\n" } else { b"\n" };
        for l in &lines {
            match l {
                Line::Good(t) => bytes.extend_from_slice(serde_json::json!({"text": t}).to_string().as_bytes()),
                Line::Bad(b) => bytes.extend_from_slice(b),
                Line::Blank => {}
            }
            bytes.extend_from_slice(eol);
        }
        std::fs::write(&src, &bytes).unwrap();
        let out = dir.path().join("out.jsonl");
        let q = dir.path().join("q.jsonl");
        let opts = ConvertOptions {
            on_error: OnError::Quarantine,
            quarantine: Some(q.clone()),
            ..Default::default()
        };
        let r = convert(&src, &out, &opts, &mut |_, _| {}).unwrap();
        let good: Vec<&String> = lines.iter().filter_map(|l| match l { Line::Good(t) => Some(t), _ => None }).collect();
        let bad: Vec<usize> = lines.iter().enumerate().filter_map(|(i, l)| matches!(l, Line::Bad(_)).then_some(i + 1)).collect();
        let blank = lines.iter().filter(|l| matches!(l, Line::Blank)).count() as u64;
        prop_assert!(r.tally.balanced(), "{:?}", r.tally);
        prop_assert_eq!(r.tally.read, (good.len() + bad.len()) as u64);
        prop_assert_eq!(r.tally.written, good.len() as u64);
        prop_assert_eq!(r.tally.quarantined, bad.len() as u64);
        prop_assert_eq!(r.tally.blank_lines, blank);
        let back: Vec<String> = RecordReader::open(&out, &ReadOptions::default())
            .unwrap()
            .map(|i| match i.unwrap().record.body {
                Body::Pretrain { text } => text,
                other => panic!("{other:?}"),
            })
            .collect();
        prop_assert_eq!(back.iter().collect::<Vec<_>>(), good);
        let qlines: Vec<serde_json::Value> = if bad.is_empty() {
            Vec::new()
        } else {
            std::fs::read_to_string(&q).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
        };
        prop_assert_eq!(qlines.len(), bad.len());
        for (ql, want) in qlines.iter().zip(&bad) {
            prop_assert_eq!(ql["line"].as_u64(), Some(*want as u64), "{}", ql);
        }
    }
}
