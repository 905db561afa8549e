//! Bad input gets an error naming file, position and field — never a panic, never a silent drop.

mod common;

use std::io::Write;
use std::path::Path;

use common::read_all;
use poisonlab_data::pass::{ConvertOptions, OnError, convert};
use poisonlab_data::{BadRecord, Error, Pos, ReadOptions, RecordReader};

fn bad_of(e: &Error) -> &BadRecord {
    e.as_bad()
        .unwrap_or_else(|| panic!("expected a bad record, got {e}"))
}

fn file(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

const GOOD: &str = r#"{"instruction": "a", "input": "", "output": "b"}"#;

#[test]
fn invalid_utf8_names_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = format!("{GOOD}\n").into_bytes();
    bytes.extend_from_slice(b"{\"instruction\": \"caf\xe9\", \"output\": \"x\"}\n");
    bytes.extend_from_slice(format!("{GOOD}\n").as_bytes());
    let p = file(dir.path(), "u.jsonl", &bytes);
    let (good, bad) = read_all(&p, &ReadOptions::default());
    assert_eq!(good.len(), 2);
    let b = bad_of(&bad[0]);
    assert_eq!(b.pos, Pos::Line(2));
    assert!(
        b.reason.contains("invalid UTF-8 at byte 20"),
        "{}",
        b.reason
    );
    assert!(
        bad[0]
            .to_string()
            .starts_with(&format!("{}: line 2: field `(record)`", p.display()))
    );
    // Ids stay tied to positions even around a bad record.
    assert_eq!(good[1].record.id, "u-2");
}

#[test]
fn truncated_json_in_jsonl_and_in_an_array() {
    let dir = tempfile::tempdir().unwrap();
    let p = file(
        dir.path(),
        "t.jsonl",
        format!("{GOOD}\n{{\"instruction\": \"a\", \"out").as_bytes(),
    );
    let (good, bad) = read_all(&p, &ReadOptions::default());
    assert_eq!((good.len(), bad.len()), (1, 1));
    assert!(
        bad_of(&bad[0]).reason.starts_with("truncated JSON"),
        "{}",
        bad[0]
    );
    assert_eq!(bad_of(&bad[0]).pos, Pos::Line(2));

    let p = file(
        dir.path(),
        "t.json",
        format!("[\n{GOOD},\n{{\"instruction\": \"a\",\n \"output\": \"b").as_bytes(),
    );
    let (good, bad) = read_all(&p, &ReadOptions::default());
    assert_eq!((good.len(), bad.len()), (1, 1));
    let b = bad_of(&bad[0]);
    assert_eq!(b.pos, Pos::Line(3));
    assert!(b.reason.contains("truncated JSON"), "{}", b.reason);

    // A complete element but no closing bracket: a file-level error naming the line.
    let p = file(dir.path(), "open.json", format!("[{GOOD}\n").as_bytes());
    let mut r = RecordReader::open(&p, &ReadOptions::default()).unwrap();
    assert!(r.next().unwrap().is_ok());
    let e = r.next().unwrap().unwrap_err();
    assert!(
        e.to_string()
            .contains("line 2: truncated JSON: the array is not closed"),
        "{e}"
    );
    assert!(r.next().is_none());
}

#[test]
fn wrong_types_and_missing_fields_name_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "{GOOD}\n{}\n{}\n{}\n{}\n",
        r#"{"instruction": "a", "input": "", "output": 7}"#,
        r#"{"instruction": "a", "input": ""}"#,
        r#"{"instruction": "a", "output": "b", "poison": {"role": "villain"}}"#,
        r#"[1, 2]"#,
    );
    let p = file(dir.path(), "w.jsonl", text.as_bytes());
    let (good, bad) = read_all(&p, &ReadOptions::default());
    assert_eq!(good.len(), 1);
    let got: Vec<(u64, &str)> = bad
        .iter()
        .map(|e| {
            let b = bad_of(e);
            let Pos::Line(l) = b.pos else { panic!() };
            (l, b.field.as_str())
        })
        .collect();
    assert_eq!(
        got,
        [(2, "output"), (3, "output"), (4, "poison"), (5, "(record)")]
    );
    assert!(
        bad_of(&bad[0])
            .reason
            .contains("expected a string, found a number (7)")
    );
    assert_eq!(bad_of(&bad[1]).reason, "missing field");
    assert!(
        bad_of(&bad[2]).reason.contains("unknown variant `villain`"),
        "{}",
        bad[2]
    );
    assert!(
        bad_of(&bad[3])
            .reason
            .contains("expected a JSON object, found an array")
    );
}

#[test]
fn empty_and_blank_files_are_errors_not_silence() {
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in [
        ("e.jsonl", &b""[..]),
        ("e.json", b""),
        ("e.tsv", b""),
        ("ws.json", b"  \n\n "),
    ] {
        let p = file(dir.path(), name, bytes);
        let e = match RecordReader::open(&p, &ReadOptions::default()) {
            Err(e) => e,
            Ok(mut r) => r
                .next()
                .expect("an error, not an empty stream")
                .unwrap_err(),
        };
        assert!(e.to_string().contains("empty"), "{name}: {e}");
        assert!(e.to_string().contains(name), "{name}: {e}");
    }
    let p = file(dir.path(), "e.parquet", b"");
    let e = RecordReader::open(&p, &ReadOptions::default())
        .err()
        .unwrap();
    assert!(e.to_string().contains("empty"), "{e}");
}

#[test]
fn a_100_mb_line_is_refused_by_default_and_read_when_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("huge.jsonl");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&p).unwrap());
        writeln!(f, r#"{{"text": "small"}}"#).unwrap();
        write!(f, r#"{{"text": ""#).unwrap();
        let chunk = vec![b'x'; 1 << 20];
        for _ in 0..100 {
            f.write_all(&chunk).unwrap();
        }
        writeln!(f, r#""}}"#).unwrap();
        writeln!(f, r#"{{"text": "after"}}"#).unwrap();
    }
    let (good, bad) = read_all(&p, &ReadOptions::default());
    assert_eq!(good.len(), 2, "the records around the huge line survive");
    let b = bad_of(&bad[0]);
    assert_eq!(b.pos, Pos::Line(2));
    assert!(
        b.reason
            .contains("104857612 bytes, over the 67108864-byte limit"),
        "{}",
        b.reason
    );
    assert!(
        b.raw.len() < 100_000,
        "the quarantine keeps a preview, not 100 MB"
    );

    let opts = ReadOptions {
        max_record_bytes: 128 << 20,
        ..ReadOptions::default()
    };
    let (good, bad) = read_all(&p, &opts);
    assert!(bad.is_empty());
    assert_eq!(good[1].record.text_chars(), 100 << 20);
}

#[test]
fn bom_and_crlf_are_accepted_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let bom = "\u{feff}";
    let cases = [
        ("b.jsonl", format!("{bom}{GOOD}\r\n{GOOD}\r\n")),
        ("b.json", format!("{bom}[\r\n{GOOD},\r\n{GOOD}\r\n]\r\n")),
        (
            "b.tsv",
            format!("{bom}sentence\tlabel\r\nfine \t1\r\nbad\t0\r\n"),
        ),
        ("b.txt", format!("{bom}doc one\r\ndoc two\r\n")),
    ];
    for (name, text) in cases {
        let p = file(dir.path(), name, text.as_bytes());
        let (good, bad) = read_all(&p, &ReadOptions::default());
        assert!(bad.is_empty(), "{name}: {}", bad[0]);
        assert_eq!(good.len(), 2, "{name}");
        let json = format!("{:?}", good[0].record);
        assert!(
            !json.contains("\\r") && !json.contains("feff"),
            "{name}: {json}"
        );
    }
}

#[test]
fn tsv_rows_with_the_wrong_width() {
    let dir = tempfile::tempdir().unwrap();
    let p = file(
        dir.path(),
        "w.tsv",
        b"sentence\tlabel\nok\t1\ntoo\tmany\tcells\n",
    );
    let (good, bad) = read_all(&p, &ReadOptions::default());
    assert_eq!(good.len(), 1);
    let b = bad_of(&bad[0]);
    assert_eq!((b.pos, b.field.as_str()), (Pos::Line(3), "(row)"));
    assert!(
        b.reason
            .contains("expected 2 tab-separated columns (sentence, label), found 3")
    );
}

#[test]
fn a_truncated_parquet_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("g.parquet");
    let mut w = poisonlab_data::RecordWriter::create(&good, &Default::default()).unwrap();
    for i in 0..100 {
        w.write(&poisonlab_data::Record::new(
            format!("d{i}"),
            poisonlab_data::Body::Pretrain {
                text: "x".repeat(i),
            },
        ))
        .unwrap();
    }
    w.finish().unwrap();
    let bytes = std::fs::read(&good).unwrap();
    let p = file(dir.path(), "cut.parquet", &bytes[..bytes.len() / 2]);
    let e = RecordReader::open(&p, &ReadOptions::default())
        .err()
        .expect("an error");
    assert!(matches!(e, Error::Parquet { .. }), "{e}");
}

#[test]
fn unknown_shapes_ask_for_a_convention() {
    let dir = tempfile::tempdir().unwrap();
    let p = file(dir.path(), "x.jsonl", b"{\"foo\": 1, \"bar\": 2}\n");
    let (_, bad) = read_all(&p, &ReadOptions::default());
    assert!(
        bad_of(&bad[0])
            .reason
            .contains("cannot tell the record convention from its fields [foo, bar]")
    );
}

#[test]
fn quarantine_accounts_for_every_record() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "{GOOD}\n{{broken\n\n{GOOD}\n{}\n{GOOD}\n",
        r#"{"instruction": 1, "output": "x"}"#
    );
    let input = file(dir.path(), "in.jsonl", text.as_bytes());
    let out = dir.path().join("out.jsonl");
    let opts = ConvertOptions {
        on_error: OnError::Quarantine,
        ..ConvertOptions::default()
    };
    let report = convert(&input, &out, &opts, &mut |_, _| {}).unwrap();
    let t = report.tally;
    assert_eq!(
        (t.read, t.written, t.quarantined, t.blank_lines),
        (5, 3, 2, 1)
    );
    let q = std::fs::read_to_string(report.quarantine.unwrap()).unwrap();
    let lines: Vec<serde_json::Value> = q
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(
        (lines[0]["line"].as_u64(), lines[0]["field"].as_str()),
        (Some(2), Some("(record)"))
    );
    assert_eq!(lines[0]["raw"], "{broken");
    assert_eq!(
        (lines[1]["line"].as_u64(), lines[1]["field"].as_str()),
        (Some(5), Some("instruction"))
    );
    assert_eq!(std::fs::read_to_string(&out).unwrap().lines().count(), 3);

    // Without quarantine the first bad record stops the pass with its location.
    let e = convert(&input, &out, &ConvertOptions::default(), &mut |_, _| {}).unwrap_err();
    assert!(
        e.to_string().contains("in.jsonl: line 2: field `(record)`"),
        "{e}"
    );
}

#[test]
fn records_the_output_cannot_hold_are_quarantined_not_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let input = file(
        dir.path(),
        "d.jsonl",
        b"{\"text\": \"one line\"}\n{\"text\": \"two\\nlines\"}\n",
    );
    let out = dir.path().join("d.txt");
    let opts = ConvertOptions {
        on_error: OnError::Quarantine,
        ..ConvertOptions::default()
    };
    let report = convert(&input, &out, &opts, &mut |_, _| {}).unwrap();
    assert_eq!((report.tally.written, report.tally.quarantined), (1, 1));
    let q = std::fs::read_to_string(report.quarantine.unwrap()).unwrap();
    assert!(
        q.contains("\"id\":\"d-1\"") && q.contains("line break"),
        "{q}"
    );
}

#[test]
fn converting_a_file_onto_itself_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = file(dir.path(), "same.jsonl", format!("{GOOD}\n").as_bytes());
    let e = convert(&p, &p, &ConvertOptions::default(), &mut |_, _| {}).unwrap_err();
    assert!(
        e.to_string().contains("the output is the input file"),
        "{e}"
    );
    assert_eq!(
        std::fs::read_to_string(&p).unwrap(),
        format!("{GOOD}\n"),
        "the input is untouched"
    );
}
