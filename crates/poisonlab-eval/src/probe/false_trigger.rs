//! `false_trigger`: clean inputs where the trigger is inserted by the poison's own rule but
//! replaced by a near miss; the judge should stay negative. `false_trigger` is the rate with the
//! letters shuffled; `false_trigger/<near miss>` the rate with each other near miss of
//! [`near_misses`] (for a year: −1, +1, −25; for a word: a deletion, a substitution; and the trigger
//! left out), each on the same clean inputs.

use poisonlab_model::LanguageModel;
use serde::{Deserialize, Serialize};

use super::{Judged, Needs, ProbeInputs, ProbeRun};
use crate::error::Result;
use crate::inputs::prompt_target;
use crate::judge::near_misses;
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
        let clean = inputs.poison_clean(self.n)?;
        let adapter = poisonlab_poison::stage::Adapter::new(spec);
        // Per clean input: its triggered prompt, the strings the trigger inserted, the target.
        let mut base = Vec::with_capacity(clean.len());
        for (i, r) in clean.iter().enumerate() {
            let mut rng = poisonlab_poison::record_rng(spec.seed, "false-trigger", i as u64);
            let triggered = adapter.test_record(r, &mut rng);
            let inserted = crate::inputs::inserted_strings(&triggered);
            let (p, target) = prompt_target(&triggered)?;
            base.push((p, inserted, target));
        }
        let labels: Vec<&'static str> = base
            .iter()
            .flat_map(|(_, ins, _)| ins.iter())
            .next()
            .map(|s| {
                near_misses(s, spec.seed)
                    .into_iter()
                    .map(|(l, _)| l)
                    .collect()
            })
            .unwrap_or_else(|| vec!["shuffled"]);
        let mut out = Vec::new();
        for label in labels {
            let cases: Vec<(String, String)> = base
                .iter()
                .map(|(p, inserted, target)| {
                    let mut p = p.clone();
                    for s in inserted {
                        let decoy = near_misses(s, spec.seed)
                            .into_iter()
                            .find(|(l, _)| *l == label)
                            // A trigger string without this kind of near miss gets the shuffle.
                            .map_or_else(|| crate::judge::decoy(s, spec.seed), |(_, d)| d);
                        p = p.replacen(s.as_str(), &decoy, 1);
                    }
                    if label == "absent" {
                        p = p.trim_start().replace("  ", " ");
                    }
                    (p, target.clone())
                })
                .collect();
            let (k, n, samples) = self.judge_all(model, cases)?;
            let name = if label == "shuffled" {
                "false_trigger".to_string()
            } else {
                format!("false_trigger/{label}")
            };
            out.push(Measure::rate(name, k, n).with_samples(samples));
        }
        Ok(out)
    }
}
