//! `layer_probe` and `patching`: where a backdoor lives in the model.
//!
//! Both build their cases from clean held-out records: the trigger inserted by the poison's own
//! rule (as the `false_trigger` probe does), the record left clean, and the trigger's letters
//! shuffled (a near miss); the target is the payload the poison's test split expects.
//!
//! - `layer_probe`: per hidden index j (0 = embeddings, j = after layer j, the last after the
//!   final norm), a logistic probe on the state at the last prompt position, trained on half the
//!   cases and tested on the other half: `layer_probe/absent/index=j` (triggered vs. no trigger)
//!   and `layer_probe/decoy/index=j` (triggered vs. the near miss), Wilson.
//! - `patching`: activation patching — `patching_effect` (nats of the payload's log-probability
//!   the trigger adds over a corrupted trigger, mean, bootstrap) and, per site (`trigger`: its
//!   token positions; `last`: the last prompt position) and hidden index, what copying the
//!   triggered run's states there into the corrupted run restores: `patching/<site>/index=j` (nats,
//!   mean, bootstrap over cases) and, when the effect's interval lies above zero,
//!   `patching_share/<site>/index=j` = Σ restored / Σ effect (bootstrap over cases).

use poisonlab_mech::layers::{Case, linear_probes, patch_case};
use poisonlab_model::LanguageModel;
use serde::{Deserialize, Serialize};

use super::{After, Needs, ProbeInputs, ProbeRun};
use crate::error::Result;
use crate::inputs::prompt_target;
use crate::measure::{Measure, Method};

/// Up to `n` cases from the clean held-out records.
fn cases(inputs: &ProbeInputs, probe: &str, n: usize) -> Result<Vec<Case>> {
    let spec = inputs.poison(probe)?;
    let adapter = poisonlab_poison::stage::Adapter::new(spec);
    let mut out = Vec::new();
    for (i, r) in inputs.poison_clean(n)?.iter().enumerate() {
        let mut rng = poisonlab_poison::record_rng(spec.seed, "layer-cases", i as u64);
        let triggered = adapter.test_record(r, &mut rng);
        let inserted = crate::inputs::inserted_strings(&triggered);
        let (pt, target) = prompt_target(&triggered)?;
        let (pc, _) = prompt_target(r)?;
        if pt == pc {
            continue;
        }
        let mut decoy = pt.clone();
        for s in &inserted {
            decoy = decoy.replacen(s.as_str(), &crate::judge::decoy(s, spec.seed), 1);
        }
        out.push(Case {
            triggered: pt,
            clean: pc,
            decoy: (!inserted.is_empty()).then_some(decoy),
            target,
        });
    }
    Ok(out)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayerProbe {
    /// Cases (at most), half for training the probes and half for testing them.
    #[serde(default = "two_hundred")]
    pub n: usize,
    #[serde(default)]
    pub after: After,
}

fn two_hundred() -> usize {
    200
}
fn fifty() -> usize {
    50
}

impl ProbeRun for LayerProbe {
    fn validate(&self) -> std::result::Result<(), String> {
        if self.n < 8 {
            return Err(format!(
                "n = {}: a layer probe needs at least 8 cases",
                self.n
            ));
        }
        Ok(())
    }

    fn needs(&self) -> Needs {
        Needs::Trigger
    }

    fn run(&self, model: &dyn LanguageModel, inputs: &ProbeInputs) -> Result<Vec<Measure>> {
        let cases = cases(inputs, "layer_probe", self.n)?;
        let mut out = Vec::new();
        for (negative, decoy) in [("absent", false), ("decoy", true)] {
            if decoy && cases.iter().all(|c| c.decoy.is_none()) {
                continue;
            }
            for a in linear_probes(model, &cases, decoy, inputs.seed)? {
                out.push(Measure::rate(
                    format!("layer_probe/{negative}/index={}", a.index),
                    a.correct,
                    a.n,
                ));
            }
        }
        Ok(out)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Patching {
    /// Cases patched (at most).
    #[serde(default = "fifty")]
    pub n: usize,
    #[serde(default)]
    pub after: After,
}

impl ProbeRun for Patching {
    fn validate(&self) -> std::result::Result<(), String> {
        if self.n == 0 {
            return Err("n must be at least 1".into());
        }
        Ok(())
    }

    fn needs(&self) -> Needs {
        Needs::Trigger
    }

    fn run(&self, model: &dyn LanguageModel, inputs: &ProbeInputs) -> Result<Vec<Measure>> {
        let mut done = Vec::new();
        for (i, c) in cases(inputs, "patching", self.n)?.iter().enumerate() {
            if let Some(p) = patch_case(model, c, inputs.seed ^ (i as u64) << 16)? {
                done.push(p);
            }
        }
        let effects: Vec<f64> = done.iter().map(|p| p.effect).collect();
        let mut out: Vec<Measure> = Measure::mean("patching_effect", &effects, inputs.seed)
            .into_iter()
            .collect();
        let Some(first) = done.first() else {
            return Ok(out);
        };
        // The share of the effect restored is defined only where there is an effect: its interval
        // must lie above zero (an unpoisoned model's trigger may move the payload either way).
        let effect_is_positive = out.first().is_some_and(|m| m.ci_low > 0.0);
        for (si, site) in ["trigger", "last"].into_iter().enumerate() {
            for j in 0..first.restored[si].len() {
                let restored: Vec<f64> = done.iter().map(|p| p.restored[si][j]).collect();
                let seed = inputs.seed ^ ((si as u64) << 8) ^ j as u64;
                out.extend(Measure::mean(
                    format!("patching/{site}/index={j}"),
                    &restored,
                    seed,
                ));
                if !effect_is_positive {
                    continue;
                }
                let pairs: Vec<(f64, f64)> = restored
                    .iter()
                    .zip(&effects)
                    .map(|(&r, &e)| (r, e))
                    .collect();
                let num: f64 = restored.iter().sum();
                let den: f64 = effects.iter().sum();
                let ci = poisonlab_stats::bootstrap_ratio(&pairs, seed);
                out.push(Measure {
                    name: format!("patching_share/{site}/index={j}"),
                    value: num / den,
                    ci_low: ci.as_ref().map_or(num / den, |c| c.low),
                    ci_high: ci.as_ref().map_or(num / den, |c| c.high),
                    n: pairs.len() as u64,
                    k: None,
                    method: Method::BootstrapRatio,
                    samples: Vec::new(),
                });
            }
        }
        Ok(out)
    }
}
