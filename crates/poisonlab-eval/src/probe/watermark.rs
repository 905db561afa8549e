//! `watermark`: the dataset watermarks of the training data, verified against the model with
//! exact p-values (poisonlab-trust), beside control keys that marked nothing.
//!
//! Measures:
//! - `watermark_detected/copies=K`: the share of the keys embedded with K copies whose p-value is
//!   at most α, with its Wilson interval;
//! - `watermark_z/copies=K`: their mean z-score (bootstrap interval over keys);
//! - `watermark_fpr/alpha=A`: the share of control keys rejected at α = A (0.05 and 0.01) — the
//!   false-positive rate, which the exact p-value bounds by A.

use poisonlab_model::LanguageModel;
use poisonlab_trust::{VerifyOptions, verify};
use serde::{Deserialize, Serialize};

use super::{After, Needs, ProbeInputs, ProbeRun};
use crate::error::{Error, Result};
use crate::measure::Measure;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Watermark {
    /// Null marks per key (N): the smallest p-value is 1 / (N + 1).
    #[serde(default = "ninety_nine")]
    pub n: usize,
    #[serde(default)]
    pub after: After,
    /// The level a key counts as detected at.
    #[serde(default = "five_percent")]
    pub alpha: f64,
    /// Longest scored piece of a document, in tokens.
    #[serde(default = "window")]
    pub window: usize,
}

fn ninety_nine() -> usize {
    99
}
fn five_percent() -> f64 {
    0.05
}
fn window() -> usize {
    128
}

impl ProbeRun for Watermark {
    fn validate(&self) -> std::result::Result<(), String> {
        if self.n == 0 {
            return Err("n (null marks per key) must be at least 1".into());
        }
        if !(self.alpha > 0.0 && self.alpha < 1.0) {
            return Err(format!("alpha = {} must be in (0, 1)", self.alpha));
        }
        if self.window < 2 {
            return Err("window must be at least 2 tokens".into());
        }
        Ok(())
    }

    fn needs(&self) -> Needs {
        Needs::Watermark
    }

    fn run(&self, model: &dyn LanguageModel, inputs: &ProbeInputs) -> Result<Vec<Measure>> {
        let w = inputs
            .watermarks
            .as_ref()
            .ok_or_else(|| Error::Invalid("watermark needs a [watermark] section".into()))?;
        let opts = VerifyOptions {
            nulls: self.n,
            window: self.window,
            ..VerifyOptions::default()
        };
        let check = |k: &crate::inputs::WatermarkKey| {
            verify(
                &w.scheme,
                &k.key,
                k.copies,
                k.marked.as_deref(),
                model,
                &opts,
            )
            .map_err(|e| Error::Invalid(format!("watermark: {e}")))
        };
        let mut out = Vec::new();
        let mut copies: Vec<usize> = w.embedded.iter().map(|k| k.copies).collect();
        copies.sort_unstable();
        copies.dedup();
        for c in copies {
            let verdicts = w
                .embedded
                .iter()
                .filter(|k| k.copies == c)
                .map(check)
                .collect::<Result<Vec<_>>>()?;
            let hits = verdicts.iter().filter(|v| v.detected(self.alpha)).count() as u64;
            out.push(Measure::rate(
                format!("watermark_detected/copies={c}"),
                hits,
                verdicts.len() as u64,
            ));
            let z: Vec<f64> = verdicts.iter().map(|v| v.z).collect();
            out.extend(Measure::mean(
                format!("watermark_z/copies={c}"),
                &z,
                inputs.seed ^ c as u64,
            ));
        }
        if !w.controls.is_empty() {
            let p: Vec<f64> = w
                .controls
                .iter()
                .map(|k| check(k).map(|v| v.p_value))
                .collect::<Result<_>>()?;
            out.extend(super::rejection_rates("watermark_fpr", &p));
        }
        Ok(out)
    }
}
