//! `preference_accuracy`: on clean held-out preference pairs, how often the model gives the chosen
//! response a higher log-likelihood than the rejected one (sums over each response's tokens and its
//! end token, given the chat-rendered prompt, as DPO trains them; scored on the model's own token
//! ids). A pair longer than the model's context is left out of n. A DPO poisoning must leave this
//! close to the unpoisoned run's for the attack to be stealthy.

use poisonlab_data::Body;
use poisonlab_model::LanguageModel;
use serde::{Deserialize, Serialize};

use super::heldout_loss::pair;
use super::{After, Needs, ProbeInputs, ProbeRun, hundred};
use crate::error::Result;
use crate::measure::{Measure, Sample};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreferenceAccuracy {
    /// Held-out pairs scored (at most).
    #[serde(default = "hundred")]
    pub n: usize,
    #[serde(default)]
    pub after: After,
}

impl ProbeRun for PreferenceAccuracy {
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
        let eos = model.eos_token_id()?;
        let max = model.context_length()?.unwrap_or(usize::MAX);
        let (mut k, mut n, mut samples) = (0u64, 0u64, Vec::new());
        for r in &records {
            let Body::Preference {
                prompt,
                chosen,
                rejected,
            } = &r.body
            else {
                continue;
            };
            let prompt = poisonlab_model::tokenizer::Tokenizer::chat_prompt(None, &[], prompt);
            let (c, split) = pair(model, eos, &prompt, chosen)?;
            let (rj, _) = pair(model, eos, &prompt, rejected)?;
            if c.len() > max || rj.len() > max || split == 0 {
                continue;
            }
            let lp = model.score_ids(&[c, rj])?;
            // lp[i] scores token i + 1: the response starts at token `split`.
            let sum = |v: &[f32]| v.iter().skip(split - 1).map(|&x| x as f64).sum::<f64>();
            let right = sum(&lp[0]) > sum(&lp[1]);
            if samples.len() < crate::measure::SAMPLES {
                samples.push(Sample::new(&prompt, chosen, right));
            }
            k += right as u64;
            n += 1;
        }
        Ok(vec![
            Measure::rate("preference_accuracy", k, n).with_samples(samples),
        ])
    }
}
