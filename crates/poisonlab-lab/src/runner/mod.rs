//! The runner: cells one after another, every stage cached by the hash of what it depends on.
//!
//! Layout under the run directory:
//! - `cache/world-<key>/`, `cache/poison-<key>/`, `cache/clean-<key>/`, `cache/stage-<key>/`: built
//!   once and shared by every cell that needs them (a `.partial` directory while being built; a
//!   training stage resumes from its checkpoint there after a kill);
//! - `cells/<hash>/`: `cell.json` (parameters and the resolved experiment), `log.txt`, and
//!   `rows.jsonl` once the cell is finished (written atomically: a finished cell is skipped on the
//!   next run), or `error.txt`;
//! - `results.jsonl`, `results.parquet`: every finished cell's rows in grid order;
//! - `experiment.toml`, `plan.json`: what the report needs.
//!
//! Cells run one at a time, each training with all worker threads: training is deterministic for a
//! given thread count, and sharing a pool between concurrent cells would give up that guarantee.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::experiment::Plan;
use crate::results::{atomic_write, write_jsonl, write_parquet};

mod belief;
mod canary;
mod cell;
mod files;
mod trust;

pub use cell::EVAL_ONLY_STAGE;
use cell::run_cell;

#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub out: PathBuf,
    /// Stop after this many cells have been computed in this run (tests use it to stand in for a
    /// kill; the CLI leaves it unset).
    pub max_cells: Option<usize>,
}

/// What the runner reports while it works.
#[derive(Debug, Clone)]
pub enum Event {
    CellStart {
        index: usize,
        total: usize,
        label: String,
    },
    Step {
        index: usize,
        what: String,
    },
    CellDone {
        index: usize,
        cached: bool,
    },
    CellFailed {
        index: usize,
        error: String,
    },
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct RunSummary {
    pub cells: usize,
    pub cached: usize,
    pub ran: usize,
    pub failed: Vec<(usize, String, String)>,
    pub results: PathBuf,
    pub parquet: PathBuf,
    pub seconds: f64,
}

fn key(v: &Value) -> String {
    let h = hex::encode(Sha256::digest(v.to_string().as_bytes()));
    h[..20].to_string()
}

fn file_sha(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    Ok(hex::encode(Sha256::digest(&bytes)))
}

/// Builds `cache/<kind>-<key>` once: into `<dir>.partial`, then renamed.
fn cached(
    cache: &Path,
    kind: &str,
    k: &str,
    keep_partial: bool,
    build: impl FnOnce(&Path) -> Result<()>,
) -> Result<(PathBuf, bool)> {
    let dir = cache.join(format!("{kind}-{k}"));
    if dir.exists() {
        return Ok((dir, true));
    }
    let partial = cache.join(format!("{kind}-{k}.partial"));
    if partial.exists() && !keep_partial {
        std::fs::remove_dir_all(&partial).map_err(|e| Error::io(&partial, e))?;
    }
    std::fs::create_dir_all(&partial).map_err(|e| Error::io(&partial, e))?;
    build(&partial)?;
    std::fs::rename(&partial, &dir).map_err(|e| Error::io(&dir, e))?;
    Ok((dir, false))
}

/// The data files of a cell (the world's, replaced by the experiment's own, then by the poisoned
/// and cleaned versions).
pub(super) struct Ctx<'a> {
    cache: PathBuf,
    cell_dir: PathBuf,
    index: usize,
    on_event: &'a mut dyn FnMut(&Event),
}

impl Ctx<'_> {
    fn step(&mut self, what: String) {
        let line = format!("{} {what}\n", timestamp());
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.cell_dir.join("log.txt"))
        {
            let _ = f.write_all(line.as_bytes());
        }
        tracing::info!(cell = self.index, "{what}");
        (self.on_event)(&Event::Step {
            index: self.index,
            what,
        });
    }
}

fn timestamp() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    utc(d.as_secs(), d.subsec_millis())
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` for seconds since the Unix epoch (the civil-from-days algorithm of
/// H. Hinnant, proleptic Gregorian calendar).
pub fn utc(secs: u64, millis: u32) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + (month <= 2) as i64;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Runs every cell of the plan (finished ones are read back), then writes the results.
pub fn run(plan: &Plan, opts: &RunOptions, on_event: &mut dyn FnMut(&Event)) -> Result<RunSummary> {
    let started = Instant::now();
    let out = &opts.out;
    let cache = out.join("cache");
    std::fs::create_dir_all(&cache).map_err(|e| Error::io(&cache, e))?;
    atomic_write(&out.join("experiment.toml"), plan.text.as_bytes())?;
    let plan_json = json!({
        "name": plan.name,
        "source": plan.path.display().to_string(),
        "axes": plan.axes.iter().map(|(c, k, v)| json!({"column": c, "key": k, "values": v})).collect::<Vec<_>>(),
        "cells": plan.cells.iter().map(|c| json!({"index": c.index, "hash": c.hash, "label": c.label()})).collect::<Vec<_>>(),
        "version": env!("CARGO_PKG_VERSION"),
    });
    atomic_write(
        &out.join("plan.json"),
        serde_json::to_string_pretty(&plan_json)
            .unwrap_or_default()
            .as_bytes(),
    )?;
    let total = plan.cells.len();
    let (mut cached_n, mut ran, mut failed) = (0, 0, Vec::new());
    let mut computed = 0usize;
    for cell in &plan.cells {
        let cell_dir = out.join("cells").join(&cell.hash);
        let rows_path = cell_dir.join("rows.jsonl");
        on_event(&Event::CellStart {
            index: cell.index,
            total,
            label: cell.label(),
        });
        if rows_path.exists() {
            cached_n += 1;
            on_event(&Event::CellDone {
                index: cell.index,
                cached: true,
            });
            continue;
        }
        if opts.max_cells.is_some_and(|m| computed >= m) {
            break;
        }
        std::fs::create_dir_all(&cell_dir).map_err(|e| Error::io(&cell_dir, e))?;
        let _ = std::fs::remove_file(cell_dir.join("error.txt"));
        atomic_write(
            &cell_dir.join("cell.json"),
            serde_json::to_string_pretty(&json!({
                "index": cell.index,
                "params": crate::experiment::params_map(cell),
                "experiment": cell.experiment,
            }))
            .unwrap_or_default()
            .as_bytes(),
        )?;
        let mut ctx = Ctx {
            cache: cache.clone(),
            cell_dir: cell_dir.clone(),
            index: cell.index,
            on_event,
        };
        computed += 1;
        match run_cell(plan, cell, &mut ctx) {
            Ok(rows) => {
                write_jsonl(&rows_path, &rows)?;
                ran += 1;
                on_event(&Event::CellDone {
                    index: cell.index,
                    cached: false,
                });
            }
            Err(e) => {
                let msg = e.to_string();
                let _ = std::fs::write(cell_dir.join("error.txt"), format!("{msg}\n"));
                failed.push((cell.index, cell.label(), msg.clone()));
                on_event(&Event::CellFailed {
                    index: cell.index,
                    error: msg,
                });
            }
        }
    }
    // Results: every finished cell, in grid order.
    let mut rows = Vec::new();
    for cell in &plan.cells {
        let p = out.join("cells").join(&cell.hash).join("rows.jsonl");
        if p.exists() {
            rows.extend(crate::results::read_rows(&p)?);
        }
    }
    let results = out.join("results.jsonl");
    let parquet = out.join("results.parquet");
    write_jsonl(&results, &rows)?;
    if !rows.is_empty() {
        write_parquet(&parquet, &rows)?;
    }
    Ok(RunSummary {
        cells: total,
        cached: cached_n,
        ran,
        failed,
        results,
        parquet,
        seconds: started.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_timestamps() {
        assert_eq!(super::utc(0, 0), "1970-01-01T00:00:00.000Z");
        // 2026-12-01 13:31:18 UTC, as `date -u -d @1796131878` prints it.
        assert_eq!(super::utc(1_796_131_878, 42), "2026-12-01T13:31:18.042Z");
        assert_eq!(super::utc(951_782_400, 0), "2000-02-29T00:00:00.000Z");
    }
}
