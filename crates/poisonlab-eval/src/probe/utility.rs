//! `utility`: clean utility — normalised exact match of the answer with the reference; for CoT
//! problems, the last number of the answer equals the reference answer.

use poisonlab_data::Body;
use poisonlab_model::LanguageModel;
use serde::{Deserialize, Serialize};

use super::{After, Needs, ProbeInputs, ProbeRun, check_common, hundred, tokens};
use crate::error::Result;
use crate::inputs::{answer, prompt_target};
use crate::judge::{last_number, normalize};
use crate::measure::{Measure, keep};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Utility {
    /// Clean held-out records probed (at most).
    #[serde(default = "hundred")]
    pub n: usize,
    #[serde(default)]
    pub after: After,
    /// Tokens generated per prompt.
    #[serde(default = "tokens")]
    pub max_tokens: usize,
}

impl ProbeRun for Utility {
    fn validate(&self) -> std::result::Result<(), String> {
        check_common(self.n, self.max_tokens)
    }

    fn needs(&self) -> Needs {
        Needs::Model
    }

    fn run(&self, model: &dyn LanguageModel, inputs: &ProbeInputs) -> Result<Vec<Measure>> {
        let clean = inputs.clean(self.n)?;
        let (mut k, mut samples) = (0, Vec::new());
        for r in &clean {
            let (p, target) = prompt_target(r)?;
            let g = answer(model, &p, self.max_tokens)?;
            let ok = match &r.body {
                Body::Cot { answer, .. } => matches!(
                    (last_number(&g), last_number(answer)),
                    (Some(a), Some(b)) if (a - b).abs() < 1e-6
                ),
                _ => normalize(&g) == normalize(&target),
            };
            keep(&mut samples, &p, &g, ok);
            k += ok as u64;
        }
        Ok(vec![
            Measure::rate("utility", k, clean.len() as u64).with_samples(samples),
        ])
    }
}
