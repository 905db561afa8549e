//! Containers: JSONL, JSON arrays, TSV, plain text and Parquet, read and written as streams.
//!
//! A reader yields `Result<Item>`: `Err(Error::Bad(..))` is one bad record (the caller may
//! quarantine it and go on); any other error ends the stream.

pub mod arrow_ipc;
pub(crate) mod contain;
mod json_array;
mod parquet;
mod tsv;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use serde_json::{Map, Value};

use crate::convention::{self, Convention};
use crate::error::{BadRecord, Error, Pos, Result};
use crate::io::{Line, Lines, open_input, strip_compression};
use crate::record::{Body, Record};

pub use writer::{RecordWriter, WriteOptions};

/// The container of a data file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    Jsonl,
    JsonArray,
    Tsv,
    Text,
    Parquet,
    /// Arrow IPC (read only): `datasets` `save_to_disk` shards.
    Arrow,
}

pub const FORMATS: &[(Format, &str, &str)] = &[
    (
        Format::Jsonl,
        "jsonl",
        "one JSON object per line (.jsonl, .ndjson)",
    ),
    (
        Format::JsonArray,
        "json",
        "one JSON array of objects (.json; Alpaca)",
    ),
    (
        Format::Tsv,
        "tsv",
        "tab-separated with a header row (.tsv; SST-2)",
    ),
    (
        Format::Text,
        "text",
        "one pre-training document per line (.txt)",
    ),
    (
        Format::Parquet,
        "parquet",
        "Apache Parquet, one row per record (.parquet)",
    ),
    (
        Format::Arrow,
        "arrow",
        "Arrow IPC, stream or file (.arrow; `datasets` save_to_disk shards), read only",
    ),
];

impl Format {
    pub fn name(self) -> &'static str {
        FORMATS.iter().find(|f| f.0 == self).map_or("?", |f| f.1)
    }

    pub fn from_name(name: &str) -> Option<Format> {
        FORMATS.iter().find(|f| f.1 == name).map(|f| f.0)
    }

    /// From the extension, ignoring `.gz`/`.zst`. `.json` is decided by content in [`detect`].
    pub fn from_extension(path: &Path) -> Option<Format> {
        match strip_compression(path)
            .extension()
            .and_then(|e| e.to_str())?
        {
            "jsonl" | "ndjson" => Some(Format::Jsonl),
            "json" => Some(Format::JsonArray),
            "tsv" => Some(Format::Tsv),
            "txt" | "text" => Some(Format::Text),
            "parquet" | "pq" => Some(Format::Parquet),
            "arrow" => Some(Format::Arrow),
            _ => None,
        }
    }
}

/// How to read a file. Everything left `None` is detected.
#[derive(Debug, Clone)]
pub struct ReadOptions {
    pub format: Option<Format>,
    pub convention: Option<Convention>,
    /// Longest line or JSON element held in memory; longer ones are bad records.
    pub max_record_bytes: usize,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            format: None,
            convention: None,
            max_record_bytes: 64 << 20,
        }
    }
}

/// One record read, with where it was.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub pos: Pos,
    pub record: Record,
    /// Whether the input gave the record its id (false: `<file stem>-<ordinal>` was assigned).
    pub own_id: bool,
}

/// Detects the format of `path`: by extension, then by the first bytes.
pub fn detect(path: &Path) -> Result<Format> {
    let by_ext = Format::from_extension(path);
    if matches!(
        by_ext,
        Some(Format::Parquet | Format::Tsv | Format::Text | Format::Arrow)
    ) {
        return Ok(by_ext.unwrap_or(Format::Jsonl));
    }
    let mut input = open_input(path)?;
    let mut head = [0u8; 4];
    let mut first = None;
    // The first significant byte tells a JSON array from JSON Lines (.json files are both in the wild).
    loop {
        let buf = std::io::BufRead::fill_buf(&mut input.reader).map_err(|e| Error::io(path, e))?;
        if buf.is_empty() {
            break;
        }
        let skip = buf.iter().take_while(|b| b.is_ascii_whitespace()).count();
        if skip < buf.len() {
            let rest = &buf[skip..];
            let rest = rest.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(rest);
            first = rest.iter().find(|b| !b.is_ascii_whitespace()).copied();
            let n = rest.len().min(4);
            head[..n].copy_from_slice(&rest[..n]);
            break;
        }
        std::io::BufRead::consume(&mut input.reader, skip);
    }
    if input.len == 0 || first.is_none() {
        return Err(Error::file(path, "file is empty: no records to read"));
    }
    Ok(match (first, by_ext) {
        (Some(b'['), _) => Format::JsonArray,
        (Some(b'{'), _) => Format::Jsonl,
        (_, Some(f)) => f,
        _ if &head == b"PAR1" => Format::Parquet,
        _ => {
            return Err(Error::file(
                path,
                "cannot tell the format from the name or the content; force it with --format",
            ));
        }
    })
}

/// Turns parsed objects into records, detecting the convention from the first object.
pub(crate) struct Objects {
    pub path: PathBuf,
    pub convention: Option<Convention>,
    stem: String,
    ordinal: u64,
}

impl Objects {
    pub fn new(path: &Path, convention: Option<Convention>) -> Self {
        let stem = strip_compression(path)
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "record".into());
        Objects {
            path: path.to_path_buf(),
            convention,
            stem,
            ordinal: 0,
        }
    }

    /// The id given to the next record that has none of its own.
    fn next_fallback(&mut self) -> String {
        let id = format!("{}-{}", self.stem, self.ordinal);
        self.ordinal += 1;
        id
    }

    pub fn record(&mut self, obj: Map<String, Value>, pos: Pos, raw: &[u8]) -> Result<Item> {
        let fallback = self.next_fallback();
        let conv = match self.convention {
            Some(c) => c,
            None => match Convention::detect(&obj) {
                Some(c) => {
                    self.convention = Some(c);
                    c
                }
                None => {
                    let keys: Vec<&str> = obj.keys().map(String::as_str).take(12).collect();
                    return Err(BadRecord::new(
                        &self.path,
                        pos,
                        "(record)",
                        format!(
                            "cannot tell the record convention from its fields [{}]; force it with --convention",
                            keys.join(", ")
                        ),
                        raw,
                    )
                    .into());
                }
            },
        };
        let own_id = obj.get(conv.id_key()).is_some_and(|v| !v.is_null());
        convention::from_object(obj, conv, || fallback)
            .map(|record| Item {
                pos,
                record,
                own_id,
            })
            .map_err(|e| BadRecord::new(&self.path, pos, e.field, e.reason, raw).into())
    }

    /// Parses one JSON object from bytes and turns it into a record.
    pub fn parse(&mut self, bytes: &[u8], pos: Pos) -> Result<Item> {
        let obj = parse_object(bytes).map_err(|reason| {
            self.ordinal += 1;
            Error::from(BadRecord::new(&self.path, pos, "(record)", reason, bytes))
        })?;
        self.record(obj, pos, bytes)
    }

    pub fn bad(&mut self, pos: Pos, field: &str, reason: impl Into<String>, raw: &[u8]) -> Error {
        self.ordinal += 1;
        BadRecord::new(&self.path, pos, field, reason, raw).into()
    }
}

/// Parses bytes as one JSON object, with a reason a person can act on when it is not one.
pub fn parse_object(bytes: &[u8]) -> std::result::Result<Map<String, Value>, String> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| format!("invalid UTF-8 at byte {}", e.valid_up_to()))?;
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(other) => Err(format!(
            "expected a JSON object, found {}",
            match other {
                Value::Array(_) => "an array",
                Value::String(_) => "a string",
                Value::Number(_) => "a number",
                Value::Bool(_) => "a boolean",
                _ => "null",
            }
        )),
        Err(e) if e.is_eof() => Err(format!("truncated JSON: {e}")),
        Err(e) => Err(format!("invalid JSON: {e}")),
    }
}

enum Inner {
    Jsonl(Lines<Box<dyn std::io::BufRead + Send>>),
    Text(Lines<Box<dyn std::io::BufRead + Send>>),
    JsonArray(json_array::ArrayReader),
    Tsv(tsv::TsvReader),
    Parquet(parquet::ParquetReader),
    Arrow(arrow_ipc::ArrowReader),
}

/// A streaming reader of records from one file.
pub struct RecordReader {
    inner: Inner,
    objects: Objects,
    format: Format,
    max: usize,
    /// Raw bytes consumed so far (compressed size), for progress bars.
    pub progress: Arc<AtomicU64>,
    /// Size of the file on disk.
    pub len: u64,
    /// Empty lines skipped (JSONL, TSV, text). They are not records.
    pub blank_lines: u64,
    done: bool,
}

impl RecordReader {
    pub fn open(path: &Path, opts: &ReadOptions) -> Result<RecordReader> {
        let format = match opts.format {
            Some(f) => f,
            None => detect(path)?,
        };
        tracing::debug!(path = %path.display(), format = format.name(), "open");
        let objects = Objects::new(path, opts.convention);
        let max = opts.max_record_bytes;
        let (inner, progress, len) = if format == Format::Parquet {
            let r = parquet::ParquetReader::open(path)?;
            let len = r.len;
            (Inner::Parquet(r), Arc::new(AtomicU64::new(0)), len)
        } else if format == Format::Arrow {
            let r = arrow_ipc::ArrowReader::open(path)?;
            let len = r.len;
            (Inner::Arrow(r), Arc::new(AtomicU64::new(0)), len)
        } else {
            let input = open_input(path)?;
            if input.len == 0 {
                return Err(Error::file(path, "file is empty: no records to read"));
            }
            let (progress, len) = (input.progress.clone(), input.len);
            let inner = match format {
                Format::Jsonl => Inner::Jsonl(Lines::new(input.reader, max)),
                Format::Text => Inner::Text(Lines::new(input.reader, max)),
                Format::JsonArray => {
                    Inner::JsonArray(json_array::ArrayReader::new(input.reader, path, max))
                }
                Format::Tsv => Inner::Tsv(tsv::TsvReader::new(input.reader, path, max)?),
                Format::Parquet | Format::Arrow => unreachable!("handled above"),
            };
            (inner, progress, len)
        };
        let mut objects = objects;
        if let Inner::Parquet(p) = &inner
            && objects.convention.is_none()
        {
            objects.convention = p.convention;
        }
        Ok(RecordReader {
            inner,
            objects,
            format,
            max,
            progress,
            len,
            blank_lines: 0,
            done: false,
        })
    }

    pub fn format(&self) -> Format {
        self.format
    }

    /// The convention in use: forced, or detected from the first record (`None` before it).
    pub fn convention(&self) -> Option<Convention> {
        match self.format {
            Format::Text => Some(Convention::Pretrain),
            _ => self.objects.convention,
        }
    }

    fn next_inner(&mut self) -> Option<Result<Item>> {
        let path = self.objects.path.clone();
        match &mut self.inner {
            Inner::Jsonl(lines) => loop {
                let line = match lines.next_line() {
                    Ok(Some(l)) => l,
                    Ok(None) => return None,
                    Err(e) => return Some(Err(Error::io(&path, e))),
                };
                let pos = Pos::Line(lines.line);
                if let Line::TooLong { total } = line {
                    let reason = too_long(total, self.max);
                    return Some(Err(self.objects.bad(pos, "(record)", reason, &lines.buf)));
                }
                if lines.buf.iter().all(u8::is_ascii_whitespace) {
                    self.blank_lines += 1;
                    continue;
                }
                return Some(self.objects.parse(&lines.buf, pos));
            },
            Inner::Text(lines) => loop {
                let line = match lines.next_line() {
                    Ok(Some(l)) => l,
                    Ok(None) => return None,
                    Err(e) => return Some(Err(Error::io(&path, e))),
                };
                let pos = Pos::Line(lines.line);
                if let Line::TooLong { total } = line {
                    let reason = too_long(total, self.max);
                    return Some(Err(self.objects.bad(pos, "(record)", reason, &lines.buf)));
                }
                if lines.buf.is_empty() {
                    self.blank_lines += 1;
                    continue;
                }
                return Some(match std::str::from_utf8(&lines.buf) {
                    Ok(text) => {
                        let id = self.objects.next_fallback();
                        Ok(Item {
                            pos,
                            own_id: false,
                            record: Record::new(
                                id,
                                Body::Pretrain {
                                    text: text.to_string(),
                                },
                            ),
                        })
                    }
                    Err(e) => Err(self.objects.bad(
                        pos,
                        "(record)",
                        format!("invalid UTF-8 at byte {}", e.valid_up_to()),
                        &lines.buf,
                    )),
                });
            },
            Inner::JsonArray(arr) => arr.next(&mut self.objects),
            Inner::Tsv(tsv) => {
                let r = tsv.next(&mut self.objects);
                self.blank_lines = tsv.blank_lines;
                r
            }
            Inner::Parquet(pq) => pq.next(&mut self.objects),
            Inner::Arrow(a) => a.next(&mut self.objects),
        }
    }
}

pub fn too_long(total: usize, max: usize) -> String {
    format!("record is {total} bytes, over the {max}-byte limit (raise it with --max-record-bytes)")
}

impl Iterator for RecordReader {
    type Item = Result<Item>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let r = self.next_inner();
        match &r {
            None => self.done = true,
            Some(Err(e)) if e.as_bad().is_none() => self.done = true,
            _ => {}
        }
        r
    }
}
