//! The grid: an experiment file expanded into its cells (cartesian product of the axes, the last
//! varying fastest; a table of keys under `[grid]` is one zipped axis), each resolved and hashed.

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
    // `stage.0.config.model.preset` → `preset`, `stage.0.config.max_records` → `max_records`.
    let parts: Vec<&str> = key.split('.').collect();
    if let ["stage", i, "config", rest @ ..] = parts.as_slice()
        && i.parse::<usize>().is_ok()
        && !rest.is_empty()
    {
        let rest = rest
            .strip_prefix(&["model"])
            .filter(|r| !r.is_empty())
            .unwrap_or(rest);
        return rest.join("_");
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
        // Axes, each a list of (column, key) set together: a plain key is one axis; a table
        // (`[grid.scale]`) zips its keys — the i-th values of all of them form one point.
        let mut axes = Vec::new();
        let mut groups: Vec<(Vec<usize>, usize)> = Vec::new();
        let list = |k: &str, v: &toml::Value| match v {
            toml::Value::Array(a) if !a.is_empty() => Ok(a.clone()),
            _ => Err(err(format!(
                "grid.\"{k}\": expected a non-empty list of values"
            ))),
        };
        for (k, v) in &grid {
            match v {
                toml::Value::Table(zipped) => {
                    let mut members = Vec::new();
                    let mut len = None;
                    for (zk, zv) in zipped {
                        let values = list(&format!("{k}.{zk}"), zv)?;
                        if *len.get_or_insert(values.len()) != values.len() {
                            return Err(err(format!(
                                "grid.{k}: zipped keys need lists of one length; \"{zk}\" has {}, the first {}",
                                values.len(),
                                len.unwrap_or(0)
                            )));
                        }
                        members.push(axes.len());
                        axes.push((column_name(zk), zk.clone(), values));
                    }
                    let Some(len) = len else {
                        return Err(err(format!("grid.{k}: an empty table zips nothing")));
                    };
                    groups.push((members, len));
                }
                _ => {
                    groups.push((vec![axes.len()], list(k, v)?.len()));
                    axes.push((column_name(k), k.clone(), list(k, v)?));
                }
            }
        }
        // Two keys with one short column name (`steps` of two stages) keep their full names.
        let short: Vec<String> = axes.iter().map(|a| a.0.clone()).collect();
        for a in &mut axes {
            if short.iter().filter(|c| **c == a.0).count() > 1 {
                a.0 = a.1.replace('.', "_");
            }
        }
        let base = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        let resolved_text = toml::to_string(&{
            let mut t = table.clone();
            t.insert("grid".into(), toml::Value::Table(grid.clone()));
            t
        })
        .unwrap_or_default();
        // Cartesian product of the groups in order (the last varying fastest).
        let total: usize = groups.iter().map(|g| g.1).product();
        let mut cells = Vec::with_capacity(total);
        for index in 0..total.max(1) {
            let mut t = table.clone();
            let mut params = Vec::new();
            let mut rest = index;
            let mut picks = vec![0; axes.len()];
            for (members, len) in groups.iter().rev() {
                for &m in members {
                    picks[m] = rest % len;
                }
                rest /= len;
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
            super::lift_export_stage(&mut t).map_err(&at)?;
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
