//! `cot_steps`: which steps of a chain of thought the model's answer depends on. For each clean
//! held-out CoT problem and each step k, the model continues the rationale given up to step k with
//! step k's last number changed, and again with it intact; `cot_flip/step=k` is the share of
//! problems whose final number differs (Wilson; k from 0, problems with at least k + 1 steps whose
//! continuations both end in a number). `cot_accuracy`: the final number right from the question
//! alone, the same model.

use poisonlab_data::Body;
use poisonlab_mech::cot::{Problem, step_flips};
use poisonlab_model::LanguageModel;
use serde::{Deserialize, Serialize};

use super::{After, Needs, ProbeInputs, ProbeRun};
use crate::error::{Error, Result};
use crate::measure::Measure;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CotSteps {
    /// Problems probed (at most).
    #[serde(default = "super::hundred")]
    pub n: usize,
    #[serde(default)]
    pub after: After,
    /// Tokens generated per continuation.
    #[serde(default = "sixty_four")]
    pub max_tokens: usize,
    /// Steps corrupted, from the first.
    #[serde(default = "super::five")]
    pub max_steps: usize,
}

fn sixty_four() -> usize {
    64
}

impl ProbeRun for CotSteps {
    fn validate(&self) -> std::result::Result<(), String> {
        super::check_common(self.n, self.max_tokens)?;
        if self.max_steps == 0 {
            return Err("max_steps must be at least 1".into());
        }
        Ok(())
    }

    fn needs(&self) -> Needs {
        Needs::Model
    }

    fn run(&self, model: &dyn LanguageModel, inputs: &ProbeInputs) -> Result<Vec<Measure>> {
        let problems: Vec<Problem> = inputs
            .clean(self.n)?
            .into_iter()
            .filter_map(|r| match r.body {
                Body::Cot {
                    question,
                    steps,
                    answer,
                } => Some(Problem {
                    question,
                    steps,
                    answer,
                }),
                _ => None,
            })
            .collect();
        if problems.is_empty() {
            return Err(Error::Invalid(
                "cot_steps: the clean held-out data has no chain-of-thought records".into(),
            ));
        }
        let (per_k, (correct, n)) = step_flips(
            model,
            &problems,
            self.max_steps,
            self.max_tokens,
            inputs.seed,
        )?;
        let mut out = vec![Measure::rate("cot_accuracy", correct, n)];
        for (k, f) in per_k.iter().enumerate() {
            if f.n > 0 {
                out.push(Measure::rate(format!("cot_flip/step={k}"), f.flipped, f.n));
            }
        }
        Ok(out)
    }
}
