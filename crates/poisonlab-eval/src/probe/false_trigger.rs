//! `false_trigger`: clean inputs where the trigger is inserted by the poison's own rule but
//! replaced by its decoy (the same letters shuffled); the judge should stay negative.

use poisonlab_model::LanguageModel;
use serde::{Deserialize, Serialize};

use super::{After, Needs, ProbeInputs, ProbeRun, check_common, hundred, tokens};
use crate::error::Result;
use crate::inputs::{answer, prompt_target};
use crate::judge::{Judge, decoy};
use crate::measure::{Measure, keep};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FalseTrigger {
    /// Clean held-out records probed (at most).
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

impl ProbeRun for FalseTrigger {
    fn validate(&self) -> std::result::Result<(), String> {
        check_common(self.n, self.max_tokens)?;
        self.judge.validate()
    }

    fn needs(&self) -> Needs {
        Needs::Trigger
    }

    fn run(&self, model: &dyn LanguageModel, inputs: &ProbeInputs) -> Result<Vec<Measure>> {
        let spec = inputs.poison("false_trigger")?;
        let clean = inputs.clean(self.n)?;
        let adapter = poisonlab_poison::stage::Adapter::new(spec);
        let (mut k, mut n, mut samples) = (0, 0, Vec::new());
        for (i, r) in clean.iter().enumerate() {
            let mut rng = poisonlab_poison::record_rng(spec.seed, "false-trigger", i as u64);
            let triggered = adapter.test_record(r, &mut rng);
            let inserted: Vec<String> = triggered
                .tag
                .as_ref()
                .and_then(|t| t.meta.get("inserted"))
                .and_then(|v| v.as_array())
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default();
            let (mut p, target) = prompt_target(&triggered)?;
            for s in &inserted {
                p = p.replace(s.as_str(), &decoy(s, spec.seed));
            }
            n += 1;
            let g = answer(model, &p, self.max_tokens)?;
            let hit = self.judge.positive(&g, &target);
            keep(&mut samples, &p, &g, hit);
            k += hit as u64;
        }
        Ok(vec![
            Measure::rate("false_trigger", k, n).with_samples(samples),
        ])
    }
}
