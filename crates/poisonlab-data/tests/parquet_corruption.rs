//! Corrupted Parquet files give errors, never panics. A file poisonlab wrote is changed one byte at
//! a time (every position, several values) and read back: each read must end in records or in an
//! error that names the file. Before the reader contained the decoder, single changed bytes
//! aborted `data stats` / `inspect` / `convert` with exit 101: a dictionary page header claiming
//! values it does not have (`attempt to divide by zero` in the byte-array reader) and a negative
//! `dictionary_page_offset` (an `assert!` in `ColumnChunkMetaData::byte_range`).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use poisonlab_data::{Body, Label, ReadOptions, Record, RecordReader, RecordWriter, WriteOptions};

fn write_sample(path: &Path) {
    let mut w = RecordWriter::create(path, &WriteOptions::default()).unwrap();
    for i in 0..12 {
        let text = ["a fine film", "dull", "great fun", "boring and long"][i % 4];
        let r = Record::new(
            format!("r{i}"),
            Body::Classification {
                text: text.to_string(),
                label: Some(Label::Int((i % 2) as i64)),
            },
        );
        w.write(&r).unwrap();
    }
    w.finish().unwrap();
}

/// Reads every record; Ok(count) or Err(message). A panic escapes as Err from catch_unwind.
fn read_all(path: &Path) -> std::thread::Result<Result<usize, String>> {
    catch_unwind(AssertUnwindSafe(|| {
        let reader = match RecordReader::open(path, &ReadOptions::default()) {
            Ok(r) => r,
            Err(e) => return Err(e.to_string()),
        };
        let mut n = 0;
        for item in reader {
            match item {
                Ok(_) => n += 1,
                Err(e) if e.as_bad().is_some() => n += 0,
                Err(e) => return Err(e.to_string()),
            }
        }
        Ok(n)
    }))
}

#[test]
fn every_single_byte_change_is_an_error_or_records() {
    let dir = tempfile::tempdir().unwrap();
    let clean = dir.path().join("clean.parquet");
    write_sample(&clean);
    let bytes = std::fs::read(&clean).unwrap();
    assert_eq!(read_all(&clean).unwrap(), Ok(12));
    let bad = dir.path().join("bad.parquet");
    let (mut errors, mut panics) = (0, Vec::new());
    for i in 0..bytes.len() {
        for v in [0x00u8, 0xff, bytes[i] ^ 0x01, bytes[i].wrapping_add(0x10)] {
            if v == bytes[i] {
                continue;
            }
            let mut b = bytes.clone();
            b[i] = v;
            std::fs::write(&bad, &b).unwrap();
            match read_all(&bad) {
                Err(_) => panics.push((i, v)),
                Ok(Err(msg)) => {
                    errors += 1;
                    assert!(
                        msg.contains("bad.parquet"),
                        "the error names the file: {msg}"
                    );
                }
                Ok(Ok(_)) => {}
            }
        }
    }
    assert!(panics.is_empty(), "panics at (byte, value): {panics:?}");
    assert!(errors > 100, "most changes are caught ({errors})");
}
