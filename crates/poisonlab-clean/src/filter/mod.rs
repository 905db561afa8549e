//! The cleaning pipeline: filters applied in the order the config lists them. Every record is
//! kept or removed with a reason; removed records go to `<output>.removed.jsonl` (the filter, the
//! reason, the record), never vanish. The report counts, per filter, what it saw and removed, and
//! for every poison recipe found in the tags, how many of its records survived each filter.
//!
//! ```toml
//! [[filter]]
//! kind = "exact_dedup"
//!
//! [[filter]]
//! kind = "near_dedup"
//! threshold = 0.8
//!
//! [[filter]]
//! kind = "quality"
//! min_words = 5
//!
//! [[filter]]
//! kind = "perplexity"
//! quantile = 0.95
//! ```

pub mod exact_dedup;
pub mod near_dedup;
pub mod perplexity;
pub mod quality;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use poisonlab_data::io::Output;
use poisonlab_data::{
    OnError, Quarantine, ReadOptions, Record, RecordReader, RecordWriter, WriteOptions,
};
use poisonlab_stats::{Rate, wilson};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
pub use exact_dedup::{ExactDedup, Normalize};
pub use near_dedup::{NearDedup, Verify};
pub use perplexity::Perplexity;
pub use quality::{Field, Quality};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pipeline {
    #[serde(rename = "filter", default)]
    pub filters: Vec<Filter>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Filter {
    ExactDedup(ExactDedup),
    NearDedup(NearDedup),
    Quality(Quality),
    Perplexity(Perplexity),
}

/// Name and description of every filter, for `poisonlab list`.
pub const FILTERS: &[(&str, &str)] = &[
    (
        "exact_dedup",
        "drop records whose normalised text (case, punctuation, whitespace) was seen before",
    ),
    (
        "near_dedup",
        "MinHash + LSH banding over word shingles; candidates verified by Jaccard",
    ),
    (
        "quality",
        "Gopher/C4 heuristics: length, word length, symbols, bullets, repetition, stop words",
    ),
    (
        "perplexity",
        "drop records a language model finds too unlikely (bigram KN LM or a model directory)",
    ),
];

impl Pipeline {
    pub fn load(path: &Path) -> Result<Pipeline> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Pipeline::parse(&text, path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<Pipeline> {
        let err = |message: String| Error::Config {
            path: path.to_path_buf(),
            message,
        };
        let mut p: Pipeline = poisonlab_data::config::parse(text, &[]).map_err(err)?;
        let base = path.parent().unwrap_or(Path::new("."));
        p.validate(base).map_err(err)?;
        Ok(p)
    }

    /// Checks every filter's values and anchors relative paths at `base`; the message names the
    /// filter and the key.
    pub fn validate(&mut self, base: &Path) -> std::result::Result<(), String> {
        if self.filters.is_empty() {
            return Err("no [[filter]] tables: nothing to do".into());
        }
        for (i, f) in self.filters.iter_mut().enumerate() {
            let name = f.name();
            let at = |m: String| format!("filter #{} ({name}): {m}", i + 1);
            match f {
                Filter::NearDedup(n) => n.validate().map_err(at)?,
                Filter::Perplexity(p) => p.validate(base).map_err(at)?,
                Filter::ExactDedup(_) | Filter::Quality(_) => {}
            }
        }
        Ok(())
    }
}

impl Filter {
    pub fn name(&self) -> &'static str {
        match self {
            Filter::ExactDedup(_) => "exact_dedup",
            Filter::NearDedup(_) => "near_dedup",
            Filter::Quality(_) => "quality",
            Filter::Perplexity(_) => "perplexity",
        }
    }

    /// The filter at run time, built from its config.
    fn build(&self) -> Box<dyn FilterRun + '_> {
        match self {
            Filter::ExactDedup(c) => Box::new(exact_dedup::ExactRun::new(c)),
            Filter::NearDedup(c) => Box::new(near_dedup::NearRun::new(c)),
            Filter::Quality(c) => Box::new(quality::QualityRun::new(c)),
            Filter::Perplexity(c) => Box::new(perplexity::PerplexityRun::new(c)),
        }
    }
}

/// A filter at run time: what it computes over the whole data first (in parallel), then its
/// decision on each record in order (it may remember kept records, as dedup does).
trait FilterRun {
    /// Computes over every record; returns what the report shows of it (thresholds, banding).
    fn prepare(
        &mut self,
        records: &[Record],
        opts: &CleanOptions,
    ) -> Result<Option<serde_json::Value>>;
    /// The reason record `i` goes, or `None` to keep it.
    fn decide(&mut self, records: &[Record], i: usize) -> Option<String>;
}

/// Per-filter counts and per-recipe survival.
#[derive(Debug, Clone, Serialize)]
pub struct FilterReport {
    pub filter: String,
    pub seen: u64,
    pub removed: u64,
    /// For each poison recipe (from the tags): its records that reached this filter and were kept.
    pub survival: BTreeMap<String, Rate>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CleanReport {
    pub input: PathBuf,
    pub output: PathBuf,
    pub removed_file: PathBuf,
    pub read: u64,
    pub kept: u64,
    pub removed: u64,
    pub quarantined: u64,
    pub filters: Vec<FilterReport>,
    /// Per poison recipe: records in the input, and the share that survived the whole pipeline.
    pub survival: BTreeMap<String, Rate>,
    pub output_sha256: String,
    pub seconds: f64,
}

#[derive(Debug, Clone, Default)]
pub struct CleanOptions {
    pub read: ReadOptions,
    pub on_error: OnError,
    pub quarantine: Option<PathBuf>,
}

fn recipe(rec: &Record) -> Option<String> {
    rec.tag
        .as_ref()
        .filter(|t| t.role != poisonlab_data::Role::Clean)
        .map(|t| {
            t.recipe
                .clone()
                .unwrap_or_else(|| t.role.as_str().to_string())
        })
}

/// Runs the pipeline over `input`, writing kept records to `output`.
pub fn clean_file(
    pipeline: &Pipeline,
    input: &Path,
    output: &Path,
    opts: &CleanOptions,
) -> Result<CleanReport> {
    let started = std::time::Instant::now();
    if let (Ok(a), Ok(b)) = (input.canonicalize(), output.canonicalize())
        && a == b
    {
        return Err(poisonlab_data::Error::file(
            output,
            "the output is the input file; write to another path",
        )
        .into());
    }
    // Read everything once (bad records to the quarantine): the perplexity quantile and the
    // self-fitted language model need the whole data.
    let qpath = opts
        .quarantine
        .clone()
        .unwrap_or_else(|| poisonlab_data::pass::quarantine_path(output));
    let mut quarantine = Quarantine::new(&qpath);
    let mut reader = RecordReader::open(input, &opts.read)?;
    let mut records: Vec<Record> = Vec::new();
    let mut read = 0u64;
    for item in reader.by_ref() {
        read += 1;
        match item {
            Ok(i) => records.push(i.record),
            Err(poisonlab_data::Error::Bad(b)) if opts.on_error == OnError::Quarantine => {
                quarantine.bad(&b)?
            }
            Err(e) => return Err(e.into()),
        }
    }
    let convention = reader.convention();
    let quarantined = quarantine.count;
    quarantine.finish()?;

    // Each filter prepares over the whole data, then decides record by record, in order: the
    // first filter that removes a record says why.
    let mut runs: Vec<Box<dyn FilterRun + '_>> =
        pipeline.filters.iter().map(Filter::build).collect();
    let mut details = Vec::with_capacity(runs.len());
    for r in runs.iter_mut() {
        details.push(r.prepare(&records, opts)?);
    }
    let mut reports: Vec<FilterReport> = pipeline
        .filters
        .iter()
        .zip(details)
        .map(|(f, d)| FilterReport {
            filter: f.name().to_string(),
            seen: 0,
            removed: 0,
            survival: BTreeMap::new(),
            detail: d,
        })
        .collect();
    let mut surv_counts: Vec<BTreeMap<String, (u64, u64)>> =
        vec![BTreeMap::new(); pipeline.filters.len()];
    let mut removed: Vec<Option<(usize, String)>> = vec![None; records.len()];
    for i in 0..records.len() {
        let rcp = recipe(&records[i]);
        for (fi, run) in runs.iter_mut().enumerate() {
            reports[fi].seen += 1;
            let reason = run.decide(&records, i);
            if let Some(r) = &rcp {
                let e = surv_counts[fi].entry(r.clone()).or_insert((0, 0));
                e.0 += 1;
                if reason.is_none() {
                    e.1 += 1;
                }
            }
            if let Some(reason) = reason {
                reports[fi].removed += 1;
                removed[i] = Some((fi, reason));
                break;
            }
        }
    }
    for (fi, rep) in reports.iter_mut().enumerate() {
        rep.survival = surv_counts[fi]
            .iter()
            .map(|(k, (n, kept))| (k.clone(), wilson(*kept, *n)))
            .collect();
    }

    // Write kept records and the removed file.
    let removed_path = {
        let mut name = output
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_default();
        name.push(".removed.jsonl");
        output.with_file_name(name)
    };
    let mut writer = RecordWriter::create(
        output,
        &WriteOptions {
            format: None,
            convention,
        },
    )?;
    let mut rem = Output::create(&removed_path)?;
    let mut totals: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let (mut kept_n, mut removed_n) = (0u64, 0u64);
    for (i, rec) in records.iter().enumerate() {
        if let Some(r) = recipe(rec) {
            let e = totals.entry(r).or_insert((0, 0));
            e.0 += 1;
            if removed[i].is_none() {
                e.1 += 1;
            }
        }
        match &removed[i] {
            None => {
                writer.write(rec)?;
                kept_n += 1;
            }
            Some((fi, reason)) => {
                let conv = poisonlab_data::Convention::native(rec.kind());
                let obj =
                    poisonlab_data::convention::to_object(rec, conv).map_err(Error::Invalid)?;
                let line = serde_json::json!({
                    "id": rec.id,
                    "filter": pipeline.filters[*fi].name(),
                    "filter_index": fi,
                    "reason": reason,
                    "record": obj,
                });
                serde_json::to_writer(&mut rem, &line)
                    .map_err(|e| Error::io(&removed_path, e.into()))?;
                rem.write_all(b"\n")
                    .map_err(|e| Error::io(&removed_path, e))?;
                removed_n += 1;
            }
        }
    }
    let digest = writer.finish()?;
    rem.finish().map_err(|e| Error::io(&removed_path, e))?;
    if read != kept_n + removed_n + quarantined {
        return Err(Error::Invalid(format!(
            "record accounting does not add up: {read} read ≠ {kept_n} kept + {removed_n} removed + {quarantined} quarantined"
        )));
    }
    Ok(CleanReport {
        input: input.to_path_buf(),
        output: output.to_path_buf(),
        removed_file: removed_path,
        read,
        kept: kept_n,
        removed: removed_n,
        quarantined,
        filters: reports,
        survival: totals
            .iter()
            .map(|(k, (n, s))| (k.clone(), wilson(*s, *n)))
            .collect(),
        output_sha256: digest.sha256,
        seconds: started.elapsed().as_secs_f64(),
    })
}
