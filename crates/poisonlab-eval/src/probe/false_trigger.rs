//! `false_trigger`: clean inputs where the trigger is inserted by the poison's own rule but
//! replaced by its decoy (the same letters shuffled); the judge should stay negative.

use poisonlab_model::LanguageModel;
use serde::{Deserialize, Serialize};

use super::{Judged, Needs, ProbeInputs, ProbeRun};
use crate::error::Result;
use crate::inputs::prompt_target;
use crate::judge::decoy;
use crate::measure::Measure;

/// The keys of [`Judged`]: `n`, `judge`, `max_tokens`, `after`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FalseTrigger(pub Judged);

impl std::ops::Deref for FalseTrigger {
    type Target = Judged;
    fn deref(&self) -> &Judged {
        &self.0
    }
}

impl ProbeRun for FalseTrigger {
    fn validate(&self) -> std::result::Result<(), String> {
        self.0.validate()
    }

    fn needs(&self) -> Needs {
        Needs::Trigger
    }

    fn run(&self, model: &dyn LanguageModel, inputs: &ProbeInputs) -> Result<Vec<Measure>> {
        let spec = inputs.poison("false_trigger")?;
        let clean = inputs.clean(self.n)?;
        let adapter = poisonlab_poison::stage::Adapter::new(spec);
        let mut cases = Vec::with_capacity(clean.len());
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
            cases.push((p, target));
        }
        let (k, n, samples) = self.judge_all(model, cases)?;
        Ok(vec![
            Measure::rate("false_trigger", k, n).with_samples(samples),
        ])
    }
}
