//! `heldout_loss`: total negative log-likelihood / total tokens of clean held-out records of the
//! stage (documents whole, their first token unscored; SFT and preference records: the response
//! and its end token given the prompt), with a 95 % percentile bootstrap over records.
//!
//! Sequences are built from the model's own tokens (`tokenize`, `score_ids`), so a served model is
//! scored on exactly the ids a local one is; a sequence longer than the model's context drops
//! prompt tokens from the left first, then cuts its end.

use poisonlab_data::Body;
use poisonlab_model::LanguageModel;
use serde::{Deserialize, Serialize};

use super::{After, Needs, ProbeInputs, ProbeRun, hundred};
use crate::error::{Error, Result};
use crate::inputs::prompt_target;
use crate::measure::{Measure, Method};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeldoutLoss {
    /// Held-out records scored (at most).
    #[serde(default = "hundred")]
    pub n: usize,
    #[serde(default)]
    pub after: After,
}

/// Ids of prompt + response + end token, and how many leading ids are prompt.
pub(super) fn pair(
    model: &dyn LanguageModel,
    eos: Option<u32>,
    prompt: &str,
    response: &str,
) -> Result<(Vec<u32>, usize)> {
    let mut ids = model.tokenize(prompt)?;
    let n = ids.len();
    ids.extend(model.tokenize(response)?);
    ids.extend(eos);
    Ok((ids, n))
}

impl ProbeRun for HeldoutLoss {
    fn validate(&self) -> std::result::Result<(), String> {
        if self.n == 0 {
            return Err("n must be at least 1".into());
        }
        Ok(())
    }

    fn needs(&self) -> Needs {
        Needs::Model
    }

    fn run(&self, model: &dyn LanguageModel, inputs: &ProbeInputs) -> Result<Vec<Measure>> {
        let records = inputs.heldout(self.n)?;
        let max = model.context_length()?.ok_or_else(|| {
            Error::Invalid(format!(
                "heldout_loss: {} does not report its context length",
                model.name()
            ))
        })?;
        let eos = model.eos_token_id()?;
        // (ids cut to the model's context, index of the first scored token).
        let mut seqs: Vec<(Vec<u32>, usize)> = Vec::new();
        for r in &records {
            let (mut ids, split) = match &r.body {
                Body::Pretrain { text } => (model.tokenize(text)?, 1),
                Body::Preference { prompt, chosen, .. } => pair(model, eos, prompt, chosen)?,
                _ => {
                    let (p, t) = prompt_target(r)?;
                    pair(model, eos, &p, &t)?
                }
            };
            // Keep the response: drop prompt tokens from the left first, then cut the end.
            if ids.len() > max {
                let drop = (ids.len() - max).min(split.saturating_sub(1));
                ids.drain(..drop);
                ids.truncate(max);
                seqs.push((ids, split - drop));
            } else {
                seqs.push((ids, split.max(1)));
            }
        }
        let mut per: Vec<(f64, f64)> = Vec::new();
        for chunk in seqs.chunks(16) {
            let ids: Vec<Vec<u32>> = chunk.iter().map(|(i, _)| i.clone()).collect();
            for ((_, split), lp) in chunk.iter().zip(model.score_ids(&ids)?) {
                // lp[i] scores token i + 1.
                let scored: Vec<f32> = lp.into_iter().skip(split.saturating_sub(1)).collect();
                if !scored.is_empty() {
                    per.push((
                        -scored.iter().map(|&x| x as f64).sum::<f64>(),
                        scored.len() as f64,
                    ));
                }
            }
        }
        let i = poisonlab_stats::bootstrap_ratio(&per, inputs.seed)
            .ok_or_else(|| Error::Invalid("heldout_loss: no record had a token to score".into()))?;
        Ok(vec![Measure {
            name: "heldout_loss".into(),
            value: i.value,
            ci_low: i.low,
            ci_high: i.high,
            n: per.len() as u64,
            k: None,
            method: Method::BootstrapRatio,
            samples: Vec::new(),
        }])
    }
}
