//! Parquet through arrow-rs: one schema per convention, written and read through the same JSON
//! objects as every other container (via arrow-json), so field errors and ids behave alike.
//!
//! Nested parts that vary per record are stored as JSON text: `extra` (fields we do not model) and
//! `poison.meta`. A text label goes to `label_text` so `label` stays an integer column for SST-2.

use std::collections::VecDeque;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::{DataType, Field, Fields, Schema, SchemaRef};
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
};
use serde_json::{Map, Value};

use super::{Item, Objects, parse_object};
use crate::convention::Convention;
use crate::error::{Error, Pos, Result};

pub const CONVENTION_KEY: &str = "poisonlab.convention";

fn utf8(name: &str, nullable: bool) -> Field {
    Field::new(name, DataType::Utf8, nullable)
}

fn list_of_pairs(name: &str, a: &str, b: &str) -> Field {
    let item = DataType::Struct(Fields::from(vec![utf8(a, false), utf8(b, false)]));
    Field::new(
        name,
        DataType::List(Arc::new(Field::new("item", item, false))),
        false,
    )
}

fn list_of_strings(name: &str) -> Field {
    Field::new(
        name,
        DataType::List(Arc::new(Field::new("item", DataType::Utf8, false))),
        false,
    )
}

/// The Arrow schema of a convention's rows.
pub fn schema(conv: Convention) -> SchemaRef {
    use Convention::*;
    let id = match conv {
        BeirCorpus | BeirQueries => "_id",
        _ => "id",
    };
    let mut fields = vec![utf8(id, false)];
    fields.extend(match conv {
        Pretrain => vec![utf8("text", false)],
        Alpaca => vec![
            utf8("instruction", false),
            utf8("input", false),
            utf8("output", false),
            utf8("system", true),
        ],
        OpenaiChat => vec![list_of_pairs("messages", "role", "content")],
        Sharegpt => vec![list_of_pairs("conversations", "from", "value")],
        Preference => vec![
            utf8("prompt", false),
            utf8("chosen", false),
            utf8("rejected", false),
        ],
        HhRlhf => vec![utf8("chosen", false), utf8("rejected", false)],
        Icl => vec![
            utf8("instruction", true),
            list_of_pairs("demos", "input", "output"),
            utf8("query", false),
            utf8("answer", false),
        ],
        Cot => vec![
            utf8("question", false),
            list_of_strings("steps"),
            utf8("answer", false),
        ],
        BeirCorpus => vec![utf8("title", false), utf8("text", false)],
        BeirQueries => vec![
            utf8("text", false),
            list_of_strings("relevant"),
            utf8("answer", true),
        ],
        Memory => vec![
            utf8("agent", false),
            utf8("content", false),
            utf8("source", true),
        ],
        Classification | Sst2 => vec![
            utf8(if conv == Sst2 { "sentence" } else { "text" }, false),
            Field::new("label", DataType::Int64, true),
            utf8("label_text", true),
        ],
    });
    let tag = DataType::Struct(Fields::from(vec![
        utf8("role", false),
        utf8("recipe", true),
        utf8("trigger", true),
        utf8("payload", true),
        utf8("meta", true),
    ]));
    fields.push(Field::new("poison", tag, true));
    fields.push(utf8("extra", true));
    Arc::new(Schema::new(fields))
}

/// Reshapes a convention object into a row of [`schema`].
pub fn to_row(mut obj: Map<String, Value>, schema: &Schema) -> Map<String, Value> {
    if let Some(Value::String(_)) = obj.get("label")
        && let Some(l) = obj.shift_remove("label")
    {
        obj.insert("label_text".into(), l);
    }
    if let Some(Value::Object(tag)) = obj.get_mut("poison")
        && let Some(meta) = tag.shift_remove("meta")
    {
        tag.insert("meta".into(), Value::String(meta.to_string()));
    }
    let mut extra = Map::new();
    let keys: Vec<String> = obj.keys().cloned().collect();
    for k in keys {
        if schema.field_with_name(&k).is_err()
            && let Some(v) = obj.shift_remove(&k)
        {
            extra.insert(k, v);
        }
    }
    if !extra.is_empty() {
        obj.insert(
            "extra".into(),
            Value::String(Value::Object(extra).to_string()),
        );
    }
    obj
}

/// Undoes [`to_row`] on a row read back as JSON.
fn from_row(
    mut obj: Map<String, Value>,
) -> std::result::Result<Map<String, Value>, (String, String)> {
    if let Some(t) = obj.shift_remove("label_text")
        && !t.is_null()
    {
        obj.insert("label".into(), t);
    }
    if let Some(Value::Object(tag)) = obj.get_mut("poison")
        && let Some(Value::String(meta)) = tag.shift_remove("meta")
    {
        let parsed =
            serde_json::from_str(&meta).map_err(|e| ("poison.meta".to_string(), e.to_string()))?;
        tag.insert("meta".into(), parsed);
    }
    match obj.shift_remove("extra") {
        Some(Value::String(text)) => match serde_json::from_str::<Value>(&text) {
            Ok(Value::Object(extra)) => {
                for (k, v) in extra {
                    obj.entry(k).or_insert(v);
                }
            }
            _ => return Err(("extra".into(), "expected a JSON object in text".into())),
        },
        Some(Value::Null) | None => {}
        Some(_) => return Err(("extra".into(), "expected JSON text".into())),
    }
    Ok(obj)
}

pub(crate) struct ParquetReader {
    path: PathBuf,
    file: File,
    meta: ArrowReaderMetadata,
    pub len: u64,
    pub convention: Option<Convention>,
    group: usize,
    row: usize,
    batches: Option<parquet::arrow::arrow_reader::ParquetRecordBatchReader>,
    pending: VecDeque<Vec<u8>>,
}

impl ParquetReader {
    pub fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
        if len == 0 {
            return Err(Error::file(path, "file is empty: no records to read"));
        }
        let meta = super::contain::contain(|| {
            ArrowReaderMetadata::load(&file, ArrowReaderOptions::default())
        })
        .map_err(|p| Error::parquet(path, format!("the footer cannot be decoded: {p}")))?
        .map_err(|e| Error::parquet(path, e))?;
        check_chunks(path, &meta, len)?;
        let convention = meta
            .metadata()
            .file_metadata()
            .key_value_metadata()
            .and_then(|kv| kv.iter().find(|k| k.key == CONVENTION_KEY))
            .and_then(|k| k.value.as_deref())
            .and_then(Convention::from_name);
        Ok(ParquetReader {
            path: path.to_path_buf(),
            file,
            meta,
            len,
            convention,
            group: 0,
            row: 0,
            batches: None,
            pending: VecDeque::new(),
        })
    }

    /// Converts one batch into JSON lines, one per row.
    fn queue(&mut self, batch: &RecordBatch) -> Result<()> {
        batch_lines(batch, &mut self.pending).map_err(|e| Error::parquet(&self.path, e))
    }

    pub fn next(&mut self, objects: &mut Objects) -> Option<Result<Item>> {
        loop {
            if let Some(line) = self.pending.pop_front() {
                let pos = Pos::Row {
                    group: self.group,
                    row: self.row,
                };
                self.row += 1;
                let obj = match parse_object(&line) {
                    Ok(o) => o,
                    Err(reason) => return Some(Err(objects.bad(pos, "(record)", reason, &line))),
                };
                return Some(match from_row(obj) {
                    Ok(obj) => objects.record(obj, pos, &line),
                    Err((field, reason)) => Err(objects.bad(pos, &field, reason, &line)),
                });
            }
            if let Some(batches) = &mut self.batches {
                let next = match super::contain::contain(|| batches.next()) {
                    Ok(n) => n.map(|r| r.map_err(|e| e.to_string())),
                    Err(p) => Some(Err(format!("the decoder failed ({p})"))),
                };
                match next {
                    Some(Ok(batch)) => {
                        if let Err(e) = self.queue(&batch) {
                            return Some(Err(e));
                        }
                        continue;
                    }
                    Some(Err(e)) => {
                        // A corrupt row group ends the file: what follows cannot be trusted
                        // to line up with the metadata.
                        let group = self.group;
                        self.batches = None;
                        self.group = self.meta.metadata().num_row_groups();
                        return Some(Err(Error::parquet(
                            &self.path,
                            format!("row group {group}: {e}"),
                        )));
                    }
                    None => {
                        self.batches = None;
                        self.group += 1;
                        self.row = 0;
                    }
                }
            }
            if self.group >= self.meta.metadata().num_row_groups() {
                return None;
            }
            let file = match self.file.try_clone() {
                Ok(f) => f,
                Err(e) => return Some(Err(Error::io(&self.path, e))),
            };
            let (meta, group) = (self.meta.clone(), self.group);
            let built = super::contain::contain(|| {
                ParquetRecordBatchReaderBuilder::new_with_metadata(file, meta)
                    .with_row_groups(vec![group])
                    .with_batch_size(1024)
                    .build()
            });
            match built {
                Ok(Ok(b)) => self.batches = Some(b),
                Ok(Err(e)) => {
                    self.group = self.meta.metadata().num_row_groups();
                    return Some(Err(Error::parquet(
                        &self.path,
                        format!("row group {group}: {e}"),
                    )));
                }
                Err(p) => {
                    self.group = self.meta.metadata().num_row_groups();
                    return Some(Err(Error::parquet(
                        &self.path,
                        format!("row group {group}: the decoder failed ({p})"),
                    )));
                }
            }
        }
    }
}

/// Every column chunk's byte range must lie inside the file. The Parquet crate asserts on a
/// negative offset (`ColumnChunkMetaData::byte_range`); checked here first, so a corrupt footer is
/// an error naming the row group and column.
fn check_chunks(path: &Path, meta: &ArrowReaderMetadata, len: u64) -> Result<()> {
    for (g, rg) in meta.metadata().row_groups().iter().enumerate() {
        for (c, col) in rg.columns().iter().enumerate() {
            let name = col.column_path().string();
            let bad = |what: String| {
                Error::parquet(
                    path,
                    format!("row group {g}, column {c} (`{name}`): {what}"),
                )
            };
            let start = match col.dictionary_page_offset() {
                Some(d) => d,
                None => col.data_page_offset(),
            };
            let size = col.compressed_size();
            if start < 0 || col.data_page_offset() < 0 {
                return Err(bad(format!("negative page offset {start}")));
            }
            if size < 0 {
                return Err(bad(format!("negative compressed size {size}")));
            }
            if (start as u64).saturating_add(size as u64) > len {
                return Err(bad(format!(
                    "bytes {start}..{} lie past the end of the file ({len} bytes)",
                    start as u64 + size as u64
                )));
            }
        }
    }
    Ok(())
}

/// One Arrow record batch as JSON lines, one per row, appended to `pending` (Parquet row groups
/// and Arrow IPC batches alike).
pub(crate) fn batch_lines(
    batch: &RecordBatch,
    pending: &mut VecDeque<Vec<u8>>,
) -> std::result::Result<(), arrow_schema::ArrowError> {
    let mut out = Vec::new();
    let mut w = arrow_json::LineDelimitedWriter::new(&mut out);
    w.write(batch)?;
    w.finish()?;
    drop(w);
    for line in out.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        pending.push_back(line.to_vec());
    }
    Ok(())
}
