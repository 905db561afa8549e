//! `perplexity`: drops records a language model finds too unlikely — above `max`, or above a
//! quantile of the data's own perplexities. The model is a bigram Kneser–Ney model (fitted on the
//! data or a reference file) or a model directory scored through the `LanguageModel` trait.

use std::path::{Path, PathBuf};

use poisonlab_data::{ReadOptions, Record, RecordReader};
use poisonlab_stats::quantile;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::quality::Field;
use super::{CleanOptions, FilterRun};
use crate::error::Result;
use crate::ngram::NgramLm;

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

impl Perplexity {
    /// Checks the values and anchors relative paths at `base`.
    pub(super) fn validate(&mut self, base: &Path) -> std::result::Result<(), String> {
        if let Some(q) = self.quantile
            && !(0.0..=1.0).contains(&q)
        {
            return Err(format!("quantile must be within [0, 1], got {q}"));
        }
        if self.max.is_some() && self.quantile.is_some() {
            return Err("give max or quantile, not both".into());
        }
        for path in [&mut self.reference, &mut self.model, &mut self.tokenizer]
            .into_iter()
            .flatten()
        {
            if path.is_relative() {
                *path = base.join(&*path);
            }
        }
        Ok(())
    }
}

/// A scorer of perplexity: the bigram model or a neural model.
enum PplScorer {
    Ngram(NgramLm),
    Model(Box<dyn poisonlab_model::LanguageModel>),
}

impl PplScorer {
    fn perplexities(&self, texts: &[String]) -> Result<Vec<f64>> {
        match self {
            PplScorer::Ngram(lm) => Ok(texts.par_iter().map(|t| lm.perplexity(t)).collect()),
            PplScorer::Model(m) => {
                use poisonlab_model::ScoreRequest;
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

/// At run time: every record's perplexity and the threshold.
pub(super) struct PerplexityRun<'a> {
    cfg: &'a Perplexity,
    ppl: Vec<f64>,
    threshold: f64,
}

impl<'a> PerplexityRun<'a> {
    pub(super) fn new(cfg: &'a Perplexity) -> Self {
        PerplexityRun {
            cfg,
            ppl: Vec::new(),
            threshold: f64::INFINITY,
        }
    }
}

impl FilterRun for PerplexityRun<'_> {
    fn prepare(
        &mut self,
        records: &[Record],
        opts: &CleanOptions,
    ) -> Result<Option<serde_json::Value>> {
        let p = self.cfg;
        let texts: Vec<String> = records.iter().map(|r| p.field.text(r)).collect();
        let scorer = match (&p.model, &p.reference) {
            (Some(dir), _) => PplScorer::Model(Box::new(poisonlab_model::LocalModel::load(
                dir,
                p.tokenizer.as_deref(),
                &poisonlab_model::default_device(),
            )?)),
            (None, Some(r)) => PplScorer::Ngram(NgramLm::fit(&read_texts(r, p.field, &opts.read)?)),
            (None, None) => PplScorer::Ngram(NgramLm::fit(&texts)),
        };
        self.ppl = scorer.perplexities(&texts)?;
        self.threshold = match (p.max, p.quantile) {
            (Some(m), _) => m,
            (None, q) => quantile(&self.ppl, q.unwrap_or(0.95)),
        };
        Ok(Some(
            serde_json::json!({"threshold": self.threshold, "scorer": if p.model.is_some() {"model"} else {"bigram-kn"}}),
        ))
    }

    fn decide(&mut self, _records: &[Record], i: usize) -> Option<String> {
        let p = self.ppl[i];
        (p > self.threshold).then(|| format!("perplexity {p:.1} > {:.1}", self.threshold))
    }
}
