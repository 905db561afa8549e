//! The grid: an experiment file expanded into its cells (cartesian product of the axes, the last
//! varying fastest), each resolved and hashed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::Experiment;
use crate::error::{Error, Result};

/// One cell of the grid: its parameters and its resolved experiment.
#[derive(Debug, Clone)]
pub struct Cell {
    pub index: usize,
    /// (column name, dotted key, value) for each grid axis, in axis order.
    pub params: Vec<(String, String, serde_json::Value)>,
    pub experiment: Experiment,
    /// SHA-256 of the resolved experiment (the cell's cache key).
    pub hash: String,
}

impl Cell {
    pub fn label(&self) -> String {
        if self.params.is_empty() {
            return "(single cell)".into();
        }
        self.params
            .iter()
            .map(|(c, _, v)| format!("{c}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// An experiment file expanded into its cells.
#[derive(Debug, Clone)]
pub struct Plan {
    pub path: PathBuf,
    /// The file's directory: relative paths in it are relative to this.
    pub base: PathBuf,
    pub name: String,
    /// The resolved file (after `--set`), as TOML text, for the report.
    pub text: String,
    pub axes: Vec<(String, String, Vec<toml::Value>)>,
    pub cells: Vec<Cell>,
}

fn column_name(key: &str) -> String {
    if key.ends_with("budget.count") {
        return "poison_count".into();
    }
    if key.ends_with("budget.rate") {
        return "poison_rate".into();
    }
    if key == "clean.enabled" {
        return "clean".into();
    }
    key.replace('.', "_")
}

/// Sets a dotted key in a TOML table (creating tables on the way).
pub use poisonlab_data::config::set_key;

/// Parses `value` as a TOML value (numbers stay numbers); a bare word is a string.
pub fn parse_value(value: &str) -> toml::Value {
    poisonlab_data::config::parse_override(&format!("v={value}"))
        .map(|o| o.value)
        .unwrap_or_else(|_| toml::Value::String(value.to_string()))
}

fn to_json(v: &toml::Value) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
}

impl Plan {
    pub fn load(path: &Path, overrides: &[String]) -> Result<Plan> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Plan::parse(&text, path, overrides)
    }

    pub fn parse(text: &str, path: &Path, overrides: &[String]) -> Result<Plan> {
        let err = |message: String| Error::Experiment {
            path: path.to_path_buf(),
            message,
        };
        let mut table: toml::Table = toml::from_str(text)
            .map_err(|e| err(poisonlab_data::config::describe(text, &e).replace('\n', " ")))?;
        poisonlab_data::config::apply(&mut table, overrides).map_err(err)?;
        let grid = match table.remove("grid") {
            None => toml::Table::new(),
            Some(toml::Value::Table(t)) => t,
            Some(_) => {
                return Err(err(
                    "`grid` must be a table of dotted keys → lists of values".into(),
                ));
            }
        };
        let mut axes = Vec::new();
        for (k, v) in &grid {
            let values = match v {
                toml::Value::Array(a) if !a.is_empty() => a.clone(),
                _ => {
                    return Err(err(format!(
                        "grid.\"{k}\": expected a non-empty list of values"
                    )));
                }
            };
            axes.push((column_name(k), k.clone(), values));
        }
        let base = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        let resolved_text = toml::to_string(&{
            let mut t = table.clone();
            t.insert("grid".into(), toml::Value::Table(grid.clone()));
            t
        })
        .unwrap_or_default();
        // Cartesian product in axis order (the last axis varies fastest).
        let total: usize = axes.iter().map(|a| a.2.len()).product();
        let mut cells = Vec::with_capacity(total);
        for index in 0..total.max(1) {
            let mut t = table.clone();
            let mut params = Vec::new();
            let mut rest = index;
            let mut picks = vec![0; axes.len()];
            for (i, a) in axes.iter().enumerate().rev() {
                picks[i] = rest % a.2.len();
                rest /= a.2.len();
            }
            for (i, (col, key, values)) in axes.iter().enumerate() {
                let v = values[picks[i]].clone();
                set_key(&mut t, key, v.clone()).map_err(|m| err(format!("grid {m}")))?;
                params.push((col.clone(), key.clone(), to_json(&v)));
            }
            let label = params
                .iter()
                .map(|(_, k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(", ");
            let at = |m: String| {
                if label.is_empty() {
                    err(m)
                } else {
                    err(format!("grid cell {label}: {m}"))
                }
            };
            let mut exp: Experiment = toml::Table::try_into(t)
                .map_err(|e: toml::de::Error| at(e.to_string().trim_end().replace('\n', " ")))?;
            exp.resolve(&base).map_err(at)?;
            let json = serde_json::to_string(&exp).map_err(|e| at(e.to_string()))?;
            let hash = hex::encode(Sha256::digest(json.as_bytes()));
            cells.push(Cell {
                index,
                params,
                experiment: exp,
                hash,
            });
        }
        Ok(Plan {
            path: path.to_path_buf(),
            base,
            name: cells
                .first()
                .map(|c| c.experiment.name.clone())
                .unwrap_or_default(),
            text: resolved_text,
            axes,
            cells,
        })
    }
}

/// Parameters of the grid as a map, for reports.
pub fn params_map(cell: &Cell) -> BTreeMap<String, serde_json::Value> {
    cell.params
        .iter()
        .map(|(c, _, v)| (c.clone(), v.clone()))
        .collect()
}
