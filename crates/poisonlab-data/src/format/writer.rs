//! Streaming writers for every container. A record that the target cannot hold without loss is
//! refused with [`Error::Write`] (the caller may quarantine it), never silently trimmed.

use std::io::Write;
use std::path::{Path, PathBuf};

use arrow_schema::SchemaRef;
use parquet::arrow::ArrowWriter;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use serde_json::{Map, Value};

use super::Format;
use super::parquet::{CONVENTION_KEY, schema, to_row};
use crate::convention::{Convention, to_object};
use crate::error::{Error, Result};
use crate::io::{Compression, FileDigest, Output};
use crate::record::{Body, Record};

/// How to write a file. `convention: None` writes each kind in its native convention.
#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    pub format: Option<Format>,
    pub convention: Option<Convention>,
}

const PARQUET_BATCH: usize = 4096;

enum Sink {
    Jsonl(Output),
    JsonArray {
        out: Output,
        first: bool,
    },
    Tsv {
        out: Output,
        header: Option<Vec<String>>,
    },
    Text(Output),
    Parquet(Box<ParquetSink>),
    /// Parquet whose schema waits for the first record's convention.
    ParquetPending,
}

struct ParquetSink {
    writer: ArrowWriter<Output>,
    schema: SchemaRef,
    rows: Vec<Value>,
}

/// A writer of records to one file.
pub struct RecordWriter {
    path: PathBuf,
    sink: Sink,
    format: Format,
    /// Fixed on the first record when not given.
    convention: Option<Convention>,
    pub written: u64,
}

impl RecordWriter {
    pub fn create(path: &Path, opts: &WriteOptions) -> Result<RecordWriter> {
        let format = match opts.format.or_else(|| Format::from_extension(path)) {
            Some(f) => f,
            None => {
                return Err(Error::file(
                    path,
                    "cannot tell the output format from the extension; use .jsonl, .json, .tsv, .txt or .parquet, or --to-format",
                ));
            }
        };
        if format == Format::Arrow {
            return Err(Error::file(
                path,
                "Arrow IPC is read, not written; write .parquet (which `datasets` and Arrow read alike)",
            ));
        }
        if format == Format::Parquet && Compression::from_extension(path) != Compression::None {
            return Err(Error::file(
                path,
                "Parquet compresses its own pages; drop the .gz/.zst extension",
            ));
        }
        let out = Output::create(path)?;
        let sink = match format {
            Format::Jsonl => Sink::Jsonl(out),
            Format::JsonArray => Sink::JsonArray { out, first: true },
            Format::Tsv => Sink::Tsv { out, header: None },
            Format::Text => Sink::Text(out),
            Format::Arrow => unreachable!("refused above"),
            Format::Parquet => {
                drop(out);
                match opts.convention {
                    Some(c) => Sink::Parquet(Box::new(parquet_sink(path, c)?)),
                    None => Sink::ParquetPending,
                }
            }
        };
        Ok(RecordWriter {
            path: path.to_path_buf(),
            sink,
            format,
            convention: opts.convention,
            written: 0,
        })
    }

    pub fn format(&self) -> Format {
        self.format
    }

    fn refuse(&self, rec: &Record, message: impl Into<String>) -> Error {
        Error::Write {
            path: self.path.clone(),
            id: rec.id.clone(),
            message: message.into(),
        }
    }

    pub fn write(&mut self, rec: &Record) -> Result<()> {
        self.write_with(rec, false)
    }

    /// Writes `rec`; with `omit_id` the JSON and TSV shapes leave its id out (for a record whose id
    /// the reader assigned, so that the output has no field the input did not have). Parquet's
    /// schema has an id column, so Parquet keeps it.
    pub fn write_with(&mut self, rec: &Record, omit_id: bool) -> Result<()> {
        let conv = *self
            .convention
            .get_or_insert(Convention::native(rec.kind()));
        if matches!(self.sink, Sink::ParquetPending) {
            self.sink = Sink::Parquet(Box::new(parquet_sink(&self.path, conv)?));
        }
        if self.format == Format::Text {
            return self.write_text(rec);
        }
        let mut obj = to_object(rec, conv).map_err(|m| self.refuse(rec, m))?;
        if omit_id && !matches!(self.sink, Sink::Parquet(_)) {
            obj.shift_remove(conv.id_key());
        }
        let path = self.path.clone();
        let io = |e: std::io::Error| Error::io(&path, e);
        match &mut self.sink {
            Sink::Jsonl(out) => {
                serde_json::to_writer(&mut *out, &obj).map_err(|e| io(e.into()))?;
                out.write_all(b"\n").map_err(io)?;
            }
            Sink::JsonArray { out, first } => {
                out.write_all(if *first { b"[\n" } else { b",\n" })
                    .map_err(io)?;
                *first = false;
                serde_json::to_writer(&mut *out, &obj).map_err(|e| io(e.into()))?;
            }
            Sink::Tsv { out, header } => {
                // TSV has no null: an absent value is an absent column, as before.
                obj.retain(|_, v| !v.is_null());
                let cells = tsv_cells(&obj).map_err(|m| Error::Write {
                    path: path.clone(),
                    id: rec.id.clone(),
                    message: m,
                })?;
                let keys: Vec<String> = obj.keys().cloned().collect();
                match header {
                    None => {
                        writeln!(out, "{}", keys.join("\t")).map_err(io)?;
                        *header = Some(keys);
                    }
                    Some(h) if *h != keys => {
                        return Err(Error::Write {
                            path: path.clone(),
                            id: rec.id.clone(),
                            message: format!(
                                "fields [{}] differ from the TSV header [{}]",
                                keys.join(", "),
                                h.join(", ")
                            ),
                        });
                    }
                    Some(_) => {}
                }
                writeln!(out, "{}", cells.join("\t")).map_err(io)?;
            }
            Sink::Parquet(pq) => {
                pq.rows.push(Value::Object(to_row(obj, &pq.schema)));
                if pq.rows.len() >= PARQUET_BATCH {
                    flush_parquet(&path, pq)?;
                }
            }
            Sink::Text(_) | Sink::ParquetPending => unreachable!("handled above"),
        }
        self.written += 1;
        Ok(())
    }

    fn write_text(&mut self, rec: &Record) -> Result<()> {
        let Body::Pretrain { text } = &rec.body else {
            return Err(self.refuse(
                rec,
                format!("a {} record cannot be written as plain text", rec.kind()),
            ));
        };
        if text.contains('\n') || text.contains('\r') {
            return Err(self.refuse(
                rec,
                "the text has a line break; plain text holds one document per line",
            ));
        }
        if text.is_empty() {
            return Err(self.refuse(rec, "the text is empty; plain text skips empty lines"));
        }
        if rec.tag.is_some() || !rec.extra.is_empty() {
            return Err(self.refuse(
                rec,
                "plain text cannot hold the poison tag or extra fields; use JSONL",
            ));
        }
        let Sink::Text(out) = &mut self.sink else {
            unreachable!("text format has a text sink")
        };
        writeln!(out, "{text}").map_err(|e| Error::io(&self.path, e))?;
        self.written += 1;
        Ok(())
    }

    /// Flushes and closes the file; returns its content hash.
    pub fn finish(self) -> Result<FileDigest> {
        let path = self.path;
        let io = |e: std::io::Error| Error::io(&path, e);
        match self.sink {
            Sink::Jsonl(out) | Sink::Text(out) => out.finish().map_err(io),
            Sink::JsonArray { mut out, first } => {
                out.write_all(if first { b"[]\n" } else { b"\n]\n" })
                    .map_err(io)?;
                out.finish().map_err(io)
            }
            Sink::Tsv { out, .. } => out.finish().map_err(io),
            // No record came: an empty file with the pre-training schema is still valid Parquet.
            Sink::ParquetPending => {
                finish_parquet(&path, parquet_sink(&path, Convention::Pretrain)?)
            }
            Sink::Parquet(pq) => finish_parquet(&path, *pq),
        }
    }
}

fn finish_parquet(path: &Path, mut pq: ParquetSink) -> Result<FileDigest> {
    flush_parquet(path, &mut pq)?;
    let out = pq
        .writer
        .into_inner()
        .map_err(|e| Error::parquet(path, e))?;
    out.finish().map_err(|e| Error::io(path, e))
}

fn parquet_sink(path: &Path, conv: Convention) -> Result<ParquetSink> {
    let schema = schema(conv);
    let props = WriterProperties::builder()
        .set_compression(parquet::basic::Compression::SNAPPY)
        .set_key_value_metadata(Some(vec![KeyValue::new(
            CONVENTION_KEY.to_string(),
            conv.name().to_string(),
        )]))
        .build();
    let out = Output::create(path)?;
    let writer = ArrowWriter::try_new(out, schema.clone(), Some(props))
        .map_err(|e| Error::parquet(path, e))?;
    Ok(ParquetSink {
        writer,
        schema,
        rows: Vec::with_capacity(PARQUET_BATCH),
    })
}

fn flush_parquet(path: &Path, pq: &mut ParquetSink) -> Result<()> {
    if pq.rows.is_empty() {
        return Ok(());
    }
    let mut decoder = arrow_json::ReaderBuilder::new(pq.schema.clone())
        .with_batch_size(pq.rows.len())
        .build_decoder()
        .map_err(|e| Error::parquet(path, e))?;
    // Through JSON text, not `Decoder::serialize`: numbers keep their exact digits
    // (serde_json's arbitrary precision), which arrow's serializer does not understand.
    let mut text = Vec::new();
    for row in &pq.rows {
        serde_json::to_writer(&mut text, row).map_err(|e| Error::parquet(path, e))?;
        text.push(b'\n');
    }
    let mut at = 0;
    while at < text.len() {
        let used = decoder
            .decode(&text[at..])
            .map_err(|e| Error::parquet(path, e))?;
        if used == 0 {
            break;
        }
        at += used;
    }
    if let Some(batch) = decoder.flush().map_err(|e| Error::parquet(path, e))? {
        pq.writer
            .write(&batch)
            .map_err(|e| Error::parquet(path, e))?;
    }
    pq.rows.clear();
    Ok(())
}

/// Flat cells for a TSV row: strings and integers only, and nothing that would break the row.
fn tsv_cells(obj: &Map<String, Value>) -> std::result::Result<Vec<String>, String> {
    obj.iter()
        .map(|(k, v)| match v {
            Value::String(s) if s.contains(['\t', '\n', '\r']) => Err(format!(
                "field `{k}` has a tab or line break, which TSV cannot hold; use JSONL"
            )),
            Value::String(s) => Ok(s.clone()),
            Value::Number(n) => Ok(n.to_string()),
            _ => Err(format!(
                "field `{k}` is not flat text, which TSV cannot hold; use JSONL or Parquet"
            )),
        })
        .collect()
}
