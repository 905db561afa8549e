//! Every reader on arbitrary bytes: the first byte picks the format (by extension), the rest is the
//! file. Reading must end in records or errors, never a panic; records that were read must write to
//! JSONL and read back equal (conversion loses nothing).
#![no_main]

use libfuzzer_sys::fuzz_target;
use poisonlab_data::{ReadOptions, RecordReader, RecordWriter, WriteOptions};

const EXTS: &[&str] = &[
    "jsonl", "json", "tsv", "txt", "parquet", "jsonl.gz", "jsonl.zst", "arrow",
];

fn dir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("poisonlab-fuzz-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, body)) = data.split_first() else { return };
    let ext = EXTS[sel as usize % EXTS.len()];
    let d = dir();
    let input = d.join(format!("in.{ext}"));
    std::fs::write(&input, body).unwrap();
    let opts = ReadOptions {
        max_record_bytes: 1 << 16,
        ..ReadOptions::default()
    };
    let Ok(reader) = RecordReader::open(&input, &opts) else { return };
    let records: Vec<_> = reader.filter_map(|r| r.ok()).map(|i| i.record).collect();
    if records.is_empty() {
        return;
    }
    let out = d.join("out.jsonl");
    let Ok(mut w) = RecordWriter::create(&out, &WriteOptions::default()) else { return };
    let mut written = Vec::new();
    for r in &records {
        if w.write(r).is_ok() {
            written.push(r.clone());
        }
    }
    w.finish().unwrap();
    let back: Vec<_> = RecordReader::open(&out, &ReadOptions::default())
        .unwrap()
        .map(|r| r.unwrap().record)
        .collect();
    assert_eq!(back, written, "JSONL round trip of records read from .{ext}");
});
