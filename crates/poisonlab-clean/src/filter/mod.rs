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

pub mod quality;

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};

use poisonlab_stats::{Rate, quantile, wilson};
use poisonlab_data::io::Output;
use poisonlab_data::{
    OnError, Quarantine, ReadOptions, Record, RecordReader, RecordWriter, WriteOptions,
};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::minhash::{Lsh, MinHasher, estimate, jaccard, optimal_bands};
use crate::ngram::NgramLm;
use crate::text::{normalize_for_dedup, shingle_hashes};
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

/// How text is normalised before exact dedup hashes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Normalize {
    /// Lower case, ASCII punctuation removed, whitespace collapsed (as web-scale dedup does).
    #[default]
    Standard,
    /// Lower case and whitespace collapsed; punctuation kept (`3 * 4` and `3 + 4` differ).
    Whitespace,
    /// The text as it is.
    None,
}

impl Normalize {
    pub fn apply(self, text: &str) -> String {
        match self {
            Normalize::Standard => normalize_for_dedup(text),
            Normalize::Whitespace => text
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .to_lowercase(),
            Normalize::None => text.to_string(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct ExactDedup {
    pub field: Field,
    pub normalize: Normalize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Verify {
    /// Exact Jaccard of the shingle sets (keeps the shingles of kept records in memory).
    #[default]
    Exact,
    /// The MinHash estimate (memory: the signature only).
    Signature,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NearDedup {
    pub field: Field,
    /// Words per shingle.
    pub shingle: usize,
    pub perms: usize,
    /// Jaccard at or above which a record duplicates an earlier kept one.
    pub threshold: f64,
    /// Bands × rows; default: the pair that minimises false positives + false negatives.
    pub bands: Option<usize>,
    pub rows: Option<usize>,
    pub verify: Verify,
    pub seed: u64,
}

impl Default for NearDedup {
    fn default() -> Self {
        NearDedup {
            field: Field::Full,
            shingle: 5,
            perms: 128,
            threshold: 0.8,
            bands: None,
            rows: None,
            verify: Verify::Exact,
            seed: 1,
        }
    }
}

impl NearDedup {
    pub fn banding(&self) -> (usize, usize) {
        match (self.bands, self.rows) {
            (Some(b), Some(r)) => (b, r),
            (Some(b), None) => (b, self.perms / b),
            (None, Some(r)) => (self.perms / r, r),
            (None, None) => optimal_bands(self.threshold, self.perms),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Perplexity {
    pub field: Field,
    /// Drop records above this perplexity…
    pub max: Option<f64>,
    /// …or above this quantile of the data's perplexities (default 0.95 when `max` is not set).
    pub quantile: Option<f64>,
    /// Fit the bigram model on this file (any data format) instead of the data being cleaned.
    pub reference: Option<PathBuf>,
    /// Score with a model directory (ours or Hugging Face's) instead of the bigram model.
    pub model: Option<PathBuf>,
    /// The model's tokenizer, when its directory has none.
    pub tokenizer: Option<PathBuf>,
}

impl Default for Perplexity {
    fn default() -> Self {
        Perplexity {
            field: Field::Full,
            max: None,
            quantile: None,
            reference: None,
            model: None,
            tokenizer: None,
        }
    }
}

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
            let name = f_name(f);
            let at = |m: String| format!("filter #{} ({name}): {m}", i + 1);
            match f {
                Filter::NearDedup(n) => {
                    if !(0.0..=1.0).contains(&n.threshold) {
                        return Err(at(format!(
                            "threshold must be within [0, 1], got {}",
                            n.threshold
                        )));
                    }
                    if n.perms == 0 || n.shingle == 0 {
                        return Err(at("perms and shingle must be at least 1".into()));
                    }
                    let (b, r) = n.banding();
                    if b == 0 || r == 0 || b * r > n.perms {
                        return Err(at(format!(
                            "bands × rows = {b} × {r} must be at most perms = {}",
                            n.perms
                        )));
                    }
                }
                Filter::Perplexity(p) => {
                    if let Some(q) = p.quantile
                        && !(0.0..=1.0).contains(&q)
                    {
                        return Err(at(format!("quantile must be within [0, 1], got {q}")));
                    }
                    if p.max.is_some() && p.quantile.is_some() {
                        return Err(at("give max or quantile, not both".into()));
                    }
                    for path in [&mut p.reference, &mut p.model, &mut p.tokenizer]
                        .into_iter()
                        .flatten()
                    {
                        if path.is_relative() {
                            *path = base.join(&*path);
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }
}

fn f_name(f: &Filter) -> &'static str {
    match f {
        Filter::ExactDedup(_) => "exact_dedup",
        Filter::NearDedup(_) => "near_dedup",
        Filter::Quality(_) => "quality",
        Filter::Perplexity(_) => "perplexity",
    }
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

/// What a filter needs of each record, computed in parallel before the sequential decisions.
enum Feature {
    Exact(u128),
    Near { sig: Vec<u32>, shingles: Vec<u32> },
    Quality(Option<String>),
    Perplexity(f64),
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

/// A scorer of perplexity: the bigram model or a neural model.
enum PplScorer {
    Ngram(NgramLm),
    Model(Box<poisonlab_model::LocalModel>),
}

impl PplScorer {
    fn perplexities(&self, texts: &[String]) -> Result<Vec<f64>> {
        match self {
            PplScorer::Ngram(lm) => Ok(texts.par_iter().map(|t| lm.perplexity(t)).collect()),
            PplScorer::Model(m) => {
                use poisonlab_model::{LanguageModel, ScoreRequest};
                let reqs: Vec<ScoreRequest> = texts
                    .iter()
                    .map(|t| ScoreRequest {
                        prompt: String::new(),
                        continuation: t.clone(),
                    })
                    .collect();
                let mut out = Vec::with_capacity(texts.len());
                for chunk in reqs.chunks(16) {
                    for s in m.score(chunk)? {
                        let n = s.token_logprobs.len().max(1) as f64;
                        out.push((-s.total() / n).exp());
                    }
                }
                Ok(out)
            }
        }
    }
}

fn read_texts(path: &Path, field: Field, opts: &ReadOptions) -> Result<Vec<String>> {
    let reader = RecordReader::open(path, opts)?;
    let mut out = Vec::new();
    for item in reader {
        out.push(field.text(&item?.record));
    }
    Ok(out)
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

    // Features per filter, in parallel.
    let mut features: Vec<Vec<Feature>> = Vec::with_capacity(pipeline.filters.len());
    let mut details: Vec<Option<serde_json::Value>> = Vec::new();
    let mut thresholds: Vec<f64> = Vec::new();
    for f in &pipeline.filters {
        let (feat, detail, threshold) = match f {
            Filter::ExactDedup(e) => (
                records
                    .par_iter()
                    .map(|r| {
                        let t = e.normalize.apply(&e.field.text(r));
                        let h = xxhash_rust::xxh3::xxh3_128(t.as_bytes());
                        Feature::Exact(h)
                    })
                    .collect(),
                None,
                0.0,
            ),
            Filter::NearDedup(n) => {
                let mh = MinHasher::new(n.perms, n.shingle, n.seed);
                let (b, r) = n.banding();
                (
                    records
                        .par_iter()
                        .map(|rec| {
                            let sh = shingle_hashes(&n.field.text(rec), n.shingle);
                            let sig = mh.signature_of(&sh);
                            Feature::Near {
                                sig,
                                shingles: if n.verify == Verify::Exact {
                                    sh
                                } else {
                                    Vec::new()
                                },
                            }
                        })
                        .collect(),
                    Some(
                        serde_json::json!({"bands": b, "rows": r, "threshold": n.threshold, "perms": n.perms, "shingle": n.shingle}),
                    ),
                    0.0,
                )
            }
            Filter::Quality(q) => (
                records
                    .par_iter()
                    .map(|r| Feature::Quality(q.check(&q.field.text(r))))
                    .collect(),
                None,
                0.0,
            ),
            Filter::Perplexity(p) => {
                let texts: Vec<String> = records.iter().map(|r| p.field.text(r)).collect();
                let scorer = match (&p.model, &p.reference) {
                    (Some(dir), _) => {
                        PplScorer::Model(Box::new(poisonlab_model::LocalModel::load(
                            dir,
                            None,
                            &poisonlab_model::default_device(),
                        )?))
                    }
                    (None, Some(r)) => {
                        PplScorer::Ngram(NgramLm::fit(&read_texts(r, p.field, &opts.read)?))
                    }
                    (None, None) => PplScorer::Ngram(NgramLm::fit(&texts)),
                };
                let ppl = scorer.perplexities(&texts)?;
                let threshold = match (p.max, p.quantile) {
                    (Some(m), _) => m,
                    (None, q) => quantile(&ppl, q.unwrap_or(0.95)),
                };
                (
                    ppl.into_iter().map(Feature::Perplexity).collect(),
                    Some(
                        serde_json::json!({"threshold": threshold, "scorer": if p.model.is_some() {"model"} else {"bigram-kn"}}),
                    ),
                    threshold,
                )
            }
        };
        features.push(feat);
        details.push(detail);
        thresholds.push(threshold);
    }

    // Decisions, in order: the first filter that removes a record says why.
    let mut reports: Vec<FilterReport> = pipeline
        .filters
        .iter()
        .zip(&details)
        .map(|(f, d)| FilterReport {
            filter: f_name(f).to_string(),
            seen: 0,
            removed: 0,
            survival: BTreeMap::new(),
            detail: d.clone(),
        })
        .collect();
    let mut surv_counts: Vec<BTreeMap<String, (u64, u64)>> =
        vec![BTreeMap::new(); pipeline.filters.len()];
    let mut exact_seen: Vec<HashMap<u128, usize>> = vec![HashMap::new(); pipeline.filters.len()];
    let mut lsh: Vec<Option<(Lsh, Vec<usize>)>> = pipeline
        .filters
        .iter()
        .map(|f| match f {
            Filter::NearDedup(n) => {
                let (b, r) = n.banding();
                Some((Lsh::new(b, r), Vec::new()))
            }
            _ => None,
        })
        .collect();
    let mut removed: Vec<Option<(usize, String)>> = vec![None; records.len()];
    for i in 0..records.len() {
        let rcp = recipe(&records[i]);
        for (fi, f) in pipeline.filters.iter().enumerate() {
            reports[fi].seen += 1;
            let reason: Option<String> = match (&features[fi][i], f) {
                (Feature::Exact(h), _) => match exact_seen[fi].get(h) {
                    Some(&first) => Some(format!("exact duplicate of {}", records[first].id)),
                    None => {
                        exact_seen[fi].insert(*h, i);
                        None
                    }
                },
                (Feature::Near { sig, shingles }, Filter::NearDedup(n)) => {
                    let (index, kept) = lsh[fi].as_mut().expect("near-dedup index");
                    let keys = index.keys(sig);
                    let mut dup = None;
                    if !shingles.is_empty() || n.verify == Verify::Signature {
                        for c in index.candidates(&keys) {
                            let j = kept[c as usize];
                            let s = match (&features[fi][j], n.verify) {
                                (
                                    Feature::Near {
                                        shingles: other, ..
                                    },
                                    Verify::Exact,
                                ) => jaccard(shingles, other),
                                (Feature::Near { sig: other, .. }, Verify::Signature) => {
                                    estimate(sig, other)
                                }
                                _ => 0.0,
                            };
                            if s >= n.threshold {
                                dup = Some(format!(
                                    "near duplicate of {} (Jaccard {s:.3} ≥ {})",
                                    records[j].id, n.threshold
                                ));
                                break;
                            }
                        }
                    }
                    if dup.is_none() {
                        let item = kept.len() as u32;
                        kept.push(i);
                        index.insert(&keys, item);
                    }
                    dup
                }
                (Feature::Quality(r), _) => r.clone().map(|r| format!("quality {r}")),
                (Feature::Perplexity(p), _) => (*p > thresholds[fi])
                    .then(|| format!("perplexity {p:.1} > {:.1}", thresholds[fi])),
                _ => None,
            };
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
                    "filter": f_name(&pipeline.filters[*fi]),
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
