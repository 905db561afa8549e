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
    /// Whose held-out data: `"last"` (the data the model was trained on last, the default) or
    /// `"poison"` (the kind the poison targets — after a downstream fine-tune on other data, the
    /// task the attack was on). Measured as `utility` and `utility/poison`.
    #[serde(default = "last")]
    pub held_out: String,
}

fn last() -> String {
    "last".into()
}

impl ProbeRun for Utility {
    fn validate(&self) -> std::result::Result<(), String> {
        check_common(self.n, self.max_tokens)?;
        if !["last", "poison"].contains(&self.held_out.as_str()) {
            return Err(format!(
                "held_out = {:?}: \"last\" or \"poison\"",
                self.held_out
            ));
        }
        Ok(())
    }

    fn needs(&self) -> Needs {
        Needs::Model
    }

    fn run(&self, model: &dyn LanguageModel, inputs: &ProbeInputs) -> Result<Vec<Measure>> {
        let (clean, name) = match self.held_out.as_str() {
            "poison" => (inputs.poison_clean(self.n)?, "utility/poison"),
            _ => (inputs.clean(self.n)?, "utility"),
        };
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
            Measure::rate(name, k, clean.len() as u64).with_samples(samples),
        ])
    }
}
