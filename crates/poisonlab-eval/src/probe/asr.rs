//! `asr`: attack success rate — the judge on the model's answers to the triggered test split.

use poisonlab_model::LanguageModel;
use serde::{Deserialize, Serialize};

use super::{After, Needs, ProbeInputs, ProbeRun, check_common, hundred, tokens};
use crate::error::Result;
use crate::inputs::{answer, prompt_target};
use crate::judge::Judge;
use crate::measure::{Measure, keep};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Asr {
    /// Triggered test records probed (at most).
    #[serde(default = "hundred")]
    pub n: usize,
    #[serde(default)]
    pub judge: Judge,
    #[serde(default)]
    pub after: After,
    /// Tokens generated per prompt.
    #[serde(default = "tokens")]
    pub max_tokens: usize,
}

impl ProbeRun for Asr {
    fn validate(&self) -> std::result::Result<(), String> {
        check_common(self.n, self.max_tokens)?;
        self.judge.validate()
    }

    fn needs(&self) -> Needs {
        Needs::Trigger
    }

    fn run(&self, model: &dyn LanguageModel, inputs: &ProbeInputs) -> Result<Vec<Measure>> {
        let test = inputs.test(self.n)?;
        let (mut k, mut samples) = (0, Vec::new());
        for r in &test {
            let (p, target) = prompt_target(r)?;
            let g = answer(model, &p, self.max_tokens)?;
            let hit = self.judge.positive(&g, &target);
            keep(&mut samples, &p, &g, hit);
            k += hit as u64;
        }
        Ok(vec![
            Measure::rate("asr", k, test.len() as u64).with_samples(samples),
        ])
    }
}
