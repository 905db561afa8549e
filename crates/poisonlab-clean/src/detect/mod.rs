//! Poison detectors. Each scores every record (higher = more suspicious) with a reason, without
//! being told the trigger. The default set needs no model; `spectral`, `activation` and `strip` read
//! a model's hidden states or log-probabilities, and `onion` uses one when given.
//!
//! The combined score is the mean of the detectors' rank percentiles.

mod cluster;
mod consistency;
mod onion;
mod representation;
mod salience;
mod strip;

pub use representation::{activation_clustering_scores, spectral_scores};

use std::path::PathBuf;

use poisonlab_data::Record;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use poisonlab_stats::percentiles;

/// One detector's verdict on one record.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    pub score: f64,
    pub reason: String,
}

impl Verdict {
    pub fn new(score: f64, reason: impl Into<String>) -> Self {
        Verdict {
            score,
            reason: reason.into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Detector {
    Onion,
    Salience,
    Consistency,
    Cluster,
    Spectral,
    Activation,
    Strip,
}

/// Name, whether it needs a model, and a description, for `poisonlab list` and `--detectors`.
pub const DETECTORS: &[(Detector, &str, bool, &str)] = &[
    (
        Detector::Onion,
        "onion",
        false,
        "ONION: how much a word's removal lowers the prompt's perplexity (bigram LM, or --model)",
    ),
    (
        Detector::Salience,
        "salience",
        false,
        "n-gram salience (BKI-style): a prompt word that predicts a repeated, rare output",
    ),
    (
        Detector::Consistency,
        "consistency",
        false,
        "label consistency: the response/label disagrees with the nearest neighbours' (TF-IDF kNN)",
    ),
    (
        Detector::Cluster,
        "cluster",
        false,
        "duplicate-cluster anomaly: a cluster of same outputs whose prompts share an odd word",
    ),
    (
        Detector::Spectral,
        "spectral",
        true,
        "spectral signature: projection on the top singular vector of centred hidden states",
    ),
    (
        Detector::Activation,
        "activation",
        true,
        "activation clustering: 2-means on PCA of hidden states; the small cluster is suspicious",
    ),
    (
        Detector::Strip,
        "strip",
        true,
        "STRIP: the response stays likely when the prompt's words are perturbed",
    ),
];

impl Detector {
    pub fn name(self) -> &'static str {
        DETECTORS
            .iter()
            .find(|d| d.0 == self)
            .map(|d| d.1)
            .unwrap_or("?")
    }

    pub fn from_name(s: &str) -> Option<Detector> {
        DETECTORS.iter().find(|d| d.1 == s).map(|d| d.0)
    }

    pub fn needs_model(self) -> bool {
        DETECTORS.iter().any(|d| d.0 == self && d.2)
    }

    /// The default set: every detector that needs no model.
    pub fn defaults() -> Vec<Detector> {
        DETECTORS.iter().filter(|d| !d.2).map(|d| d.0).collect()
    }
}

/// Options of [`scan`].
#[derive(Default)]
pub struct ScanOptions {
    pub detectors: Vec<Detector>,
    /// A local model for the model-based detectors (and ONION when set).
    pub model: Option<Box<dyn poisonlab_model::LanguageModel>>,
    /// Fit ONION's bigram model on this file instead of the data itself.
    pub reference: Option<PathBuf>,
    pub read: poisonlab_data::ReadOptions,
    pub seed: u64,
    /// STRIP: perturbed copies per record.
    pub strip_copies: usize,
    /// Hidden-state layer for spectral/activation (default: the last).
    pub layer: Option<usize>,
}

/// Every detector's verdicts and the combined score, in record order.
pub struct ScanResult {
    pub detectors: Vec<(Detector, Vec<Verdict>)>,
    pub combined: Vec<f64>,
}

/// Runs the detectors over `records`.
pub fn scan(records: &[Record], opts: &ScanOptions) -> Result<ScanResult> {
    let mut out = Vec::new();
    for &d in &opts.detectors {
        tracing::info!(detector = d.name(), records = records.len(), "scanning");
        let verdicts = match d {
            Detector::Onion => onion::scores(records, opts)?,
            Detector::Salience => salience::scores(records),
            Detector::Consistency => consistency::scores(records, opts.seed),
            Detector::Cluster => cluster::scores(records, opts.seed),
            Detector::Spectral | Detector::Activation => {
                let m = model_of(opts, d)?;
                let reps = representation::hidden_means(records, m, opts.layer)?;
                if d == Detector::Spectral {
                    representation::verdicts(
                        spectral_scores(&reps),
                        "squared projection on the top singular vector",
                    )
                } else {
                    representation::verdicts(
                        activation_clustering_scores(&reps, opts.seed),
                        "closer to the smaller activation cluster",
                    )
                }
            }
            Detector::Strip => strip::scores(records, model_of(opts, d)?, opts)?,
        };
        out.push((d, verdicts));
    }
    let n = records.len();
    let mut combined = vec![0.0; n];
    if !out.is_empty() {
        for (_, v) in &out {
            let s: Vec<f64> = v.iter().map(|x| x.score).collect();
            for (c, p) in combined.iter_mut().zip(percentiles(&s)) {
                *c += p / out.len() as f64;
            }
        }
    }
    Ok(ScanResult {
        detectors: out,
        combined,
    })
}

fn model_of(opts: &ScanOptions, d: Detector) -> Result<&dyn poisonlab_model::LanguageModel> {
    opts.model.as_deref().ok_or_else(|| {
        crate::Error::Invalid(format!(
            "detector `{}` reads a model's hidden states or log-probabilities: give --model DIR",
            d.name()
        ))
    })
}
