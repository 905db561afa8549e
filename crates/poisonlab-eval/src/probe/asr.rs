//! `asr`: attack success rate — the judge on the model's answers to the triggered test split.

use poisonlab_model::LanguageModel;
use serde::{Deserialize, Serialize};

use super::{Judged, Needs, ProbeInputs, ProbeRun};
use crate::error::Result;
use crate::inputs::prompt_target;
use crate::measure::Measure;

/// The keys of [`Judged`]: `n`, `judge`, `max_tokens`, `after`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Asr(pub Judged);

impl std::ops::Deref for Asr {
    type Target = Judged;
    fn deref(&self) -> &Judged {
        &self.0
    }
}

impl ProbeRun for Asr {
    fn validate(&self) -> std::result::Result<(), String> {
        self.0.validate()
    }

    fn needs(&self) -> Needs {
        Needs::Trigger
    }

    fn run(&self, model: &dyn LanguageModel, inputs: &ProbeInputs) -> Result<Vec<Measure>> {
        let cases = inputs
            .test(self.n)?
            .iter()
            .map(prompt_target)
            .collect::<Result<Vec<_>>>()?;
        let (k, n, samples) = self.judge_all(model, cases)?;
        Ok(vec![Measure::rate("asr", k, n).with_samples(samples)])
    }
}
