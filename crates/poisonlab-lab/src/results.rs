//! The results store: one row per cell × stage × probe, in `results.jsonl` and `results.parquet`.
//! Columns: `cell` (the cell's hash), the grid parameters as flat fields (`poison_count`, `seed`,
//! …), then `stage`, `probe`, `value`, `ci_low`, `ci_high`, `n`, `k` (successes, for rates).

use std::path::Path;
use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema};
use serde_json::{Map, Value};

use crate::error::{Error, Result};

pub type Row = Map<String, Value>;

pub fn read_rows(path: &Path) -> Result<Vec<Row>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(line)
            .map_err(|e| Error::Invalid(format!("{}: line {}: {e}", path.display(), i + 1)))?;
        match v {
            Value::Object(m) => rows.push(m),
            _ => {
                return Err(Error::Invalid(format!(
                    "{}: line {}: expected a JSON object",
                    path.display(),
                    i + 1
                )));
            }
        }
    }
    Ok(rows)
}

pub fn write_jsonl(path: &Path, rows: &[Row]) -> Result<()> {
    let mut text = String::new();
    for r in rows {
        text.push_str(&serde_json::to_string(r).map_err(|e| Error::Invalid(e.to_string()))?);
        text.push('\n');
    }
    atomic_write(path, text.as_bytes())
}

/// Writes through a temporary file and a rename, so a kill never leaves half a file.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp-write");
    std::fs::write(&tmp, bytes).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

fn column_type(rows: &[Row], key: &str) -> DataType {
    let mut t: Option<DataType> = None;
    for r in rows {
        let this = match r.get(key) {
            None | Some(Value::Null) => continue,
            Some(Value::Bool(_)) => DataType::Boolean,
            Some(Value::Number(n)) if n.is_i64() || n.is_u64() => DataType::Int64,
            Some(Value::Number(_)) => DataType::Float64,
            Some(_) => DataType::Utf8,
        };
        t = Some(match (t, this) {
            (None, x) => x,
            (Some(DataType::Int64), DataType::Float64)
            | (Some(DataType::Float64), DataType::Int64) => DataType::Float64,
            (Some(a), b) if a == b => a,
            _ => DataType::Utf8,
        });
    }
    t.unwrap_or(DataType::Utf8)
}

/// Writes the rows as Parquet (one row group), readable by pandas and `datasets`.
pub fn write_parquet(path: &Path, rows: &[Row]) -> Result<()> {
    let mut keys: Vec<String> = Vec::new();
    for r in rows {
        for k in r.keys() {
            if !keys.contains(k) {
                keys.push(k.clone());
            }
        }
    }
    let fields: Vec<Field> = keys
        .iter()
        .map(|k| Field::new(k, column_type(rows, k), true))
        .collect();
    let schema = Arc::new(Schema::new(fields));
    // Values whose column became text are written as their JSON text.
    let fixed: Vec<Value> = rows
        .iter()
        .map(|r| {
            let mut m = Map::new();
            for f in schema.fields() {
                let v = r.get(f.name()).cloned().unwrap_or(Value::Null);
                let v = match (f.data_type(), v) {
                    (DataType::Utf8, Value::String(s)) => Value::String(s),
                    (DataType::Utf8, Value::Null) => Value::Null,
                    (DataType::Utf8, other) => Value::String(other.to_string()),
                    (_, v) => v,
                };
                m.insert(f.name().clone(), v);
            }
            Value::Object(m)
        })
        .collect();
    let mut decoder = arrow_json::ReaderBuilder::new(schema.clone())
        .build_decoder()
        .map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))?;
    // Through JSON text, not `Decoder::serialize`: serde_json's exact numbers (arbitrary
    // precision) serialize as a private struct that arrow's serializer does not understand.
    let mut text = Vec::new();
    for row in &fixed {
        serde_json::to_writer(&mut text, row)
            .map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))?;
        text.push(b'\n');
    }
    let mut at = 0;
    while at < text.len() {
        let used = decoder
            .decode(&text[at..])
            .map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))?;
        if used == 0 {
            break;
        }
        at += used;
    }
    let tmp = path.with_extension("tmp-write");
    let file = std::fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
    let mut w = parquet::arrow::ArrowWriter::try_new(file, schema, None)
        .map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))?;
    if let Some(batch) = decoder
        .flush()
        .map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))?
    {
        w.write(&batch)
            .map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))?;
    }
    w.close()
        .map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}
