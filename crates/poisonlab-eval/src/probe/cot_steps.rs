//! `cot_steps`: which steps of a chain of thought the model's answer depends on. For each clean
//! held-out CoT problem and each step k, the model continues the rationale given up to step k with
//! step k's last number changed, and again with it intact; `cot_flip/step=k` is the share of
//! problems whose final number differs (Wilson; k from 0, problems with at least k + 1 steps whose
//! continuations both end in a number). `cot_accuracy`: the final number right from the question
//! alone, the same model. `cot_flip_neutral/step=k`, the control: the same with step k given a
//! neutral edit (a connective before it, its numbers kept) instead of a changed number.
//!
//! With `place = "demonstration"` the corrupted step is in a worked problem given before the
//! question as an earlier chat turn (the next held-out problem): `cot_demo_flip/step=k` is the
//! share of questions whose answer differs from the one after the intact demonstration.

use poisonlab_data::Body;
use poisonlab_mech::cot::{Problem, StepFlips, demo_step_flips, step_flips};
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
    /// Where the corrupted step is: in the rationale the model continues, or in a demonstration.
    #[serde(default)]
    pub place: Place,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Place {
    #[default]
    Prompt,
    Demonstration,
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
        if self.place == Place::Demonstration {
            if problems.len() < 2 {
                return Err(Error::Invalid(
                    "cot_steps: a demonstration needs at least two held-out problems".into(),
                ));
            }
            let per_k = demo_step_flips(
                model,
                &problems,
                self.max_steps,
                self.max_tokens,
                inputs.seed,
            )?;
            return Ok(flip_measures("cot_demo_flip", &per_k));
        }
        let (per_k, (correct, n)) = step_flips(
            model,
            &problems,
            self.max_steps,
            self.max_tokens,
            inputs.seed,
        )?;
        let mut out = vec![Measure::rate("cot_accuracy", correct, n)];
        out.extend(flip_measures("cot_flip", &per_k));
        Ok(out)
    }
}

/// `<name>/step=k` and its control `<name>_neutral/step=k`, for the steps with problems.
fn flip_measures(name: &str, per_k: &[StepFlips]) -> Vec<Measure> {
    let mut out = Vec::new();
    for (k, f) in per_k.iter().enumerate() {
        if f.n > 0 {
            out.push(Measure::rate(format!("{name}/step={k}"), f.flipped, f.n));
        }
        if f.neutral_n > 0 {
            out.push(Measure::rate(
                format!("{name}_neutral/step={k}"),
                f.neutral_flipped,
                f.neutral_n,
            ));
        }
    }
    out
}
