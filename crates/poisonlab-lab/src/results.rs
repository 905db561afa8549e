//! The results store: one row per cell × stage × probe, in `results.jsonl` and `results.parquet`.
//! Columns: `cell` (the cell's hash), the parameters as flat fields (the grid axes, then
//! `poison_count`, `seed`, … when the file fixes them, and what the model was trained on), then
//! `stage`, `probe`, `value`, `ci_low`, `ci_high`, `n`, `k` (successes, for rates).

use std::path::Path;
use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema};
use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// One measured value: a cell (its parameters) × the stage after which it was measured × a
/// probe's measure, with its interval. Written flat: `cell`, the parameters in column order,
/// then the fixed columns; numbers stay numbers.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The first 12 hex digits of the cell's hash.
    pub cell: String,
    /// Column → value: the grid axes in axis order, then the experiment's fixed parameters and the
    /// facts of what the model was trained on.
    pub params: Vec<(String, Value)>,
    pub stage: String,
    pub probe: String,
    pub value: f64,
    pub ci_low: f64,
    pub ci_high: f64,
    pub n: u64,
    /// Successes, for rates.
    pub k: Option<u64>,
}

/// The columns every row has, besides its parameters.
pub const FIXED_COLUMNS: [&str; 8] = [
    "cell", "stage", "probe", "value", "ci_low", "ci_high", "n", "k",
];

fn float(v: f64) -> Value {
    serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number)
}

impl Row {
    /// The row as one flat JSON object, in column order.
    pub fn to_map(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("cell".into(), Value::String(self.cell.clone()));
        for (c, v) in &self.params {
            m.insert(c.clone(), v.clone());
        }
        m.insert("stage".into(), Value::String(self.stage.clone()));
        m.insert("probe".into(), Value::String(self.probe.clone()));
        m.insert("value".into(), float(self.value));
        m.insert("ci_low".into(), float(self.ci_low));
        m.insert("ci_high".into(), float(self.ci_high));
        m.insert("n".into(), Value::from(self.n));
        m.insert("k".into(), self.k.map_or(Value::Null, Value::from));
        m
    }

    /// A row from a flat object; every key that is not a fixed column is a parameter.
    pub fn from_map(m: Map<String, Value>) -> std::result::Result<Row, String> {
        let text = |k: &str| -> std::result::Result<String, String> {
            m.get(k)
                .and_then(Value::as_str)
                .map(String::from)
                .ok_or_else(|| format!("field `{k}`: expected a string"))
        };
        let num = |k: &str| -> std::result::Result<f64, String> {
            match m.get(k) {
                Some(Value::Null) => Ok(f64::NAN),
                Some(v) => v
                    .as_f64()
                    .ok_or_else(|| format!("field `{k}`: expected a number")),
                None => Err(format!("field `{k}` is missing")),
            }
        };
        let n = m
            .get("n")
            .and_then(Value::as_u64)
            .ok_or_else(|| "field `n`: expected a non-negative integer".to_string())?;
        let k = match m.get("k") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                v.as_u64()
                    .ok_or_else(|| "field `k`: expected a non-negative integer".to_string())?,
            ),
        };
        Ok(Row {
            cell: text("cell")?,
            stage: text("stage")?,
            probe: text("probe")?,
            value: num("value")?,
            ci_low: num("ci_low")?,
            ci_high: num("ci_high")?,
            n,
            k,
            params: m
                .iter()
                .filter(|(c, _)| !FIXED_COLUMNS.contains(&c.as_str()))
                .map(|(c, v)| (c.clone(), v.clone()))
                .collect(),
        })
    }

    /// A parameter's value.
    pub fn param(&self, column: &str) -> Option<&Value> {
        self.params
            .iter()
            .find(|(c, _)| c == column)
            .map(|(_, v)| v)
    }
}

pub fn read_rows(path: &Path) -> Result<Vec<Row>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = |m: String| Error::Invalid(format!("{}: line {}: {m}", path.display(), i + 1));
        let v: Value = serde_json::from_str(line).map_err(|e| bad(e.to_string()))?;
        match v {
            Value::Object(m) => rows.push(Row::from_map(m).map_err(bad)?),
            _ => return Err(bad("expected a JSON object".into())),
        }
    }
    Ok(rows)
}

pub fn write_jsonl(path: &Path, rows: &[Row]) -> Result<()> {
    let mut text = String::new();
    for r in rows {
        text.push_str(
            &serde_json::to_string(&r.to_map()).map_err(|e| Error::Invalid(e.to_string()))?,
        );
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

fn column_type(rows: &[Map<String, Value>], key: &str) -> DataType {
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
    let rows: Vec<Map<String, Value>> = rows.iter().map(Row::to_map).collect();
    let rows = &rows[..];
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
