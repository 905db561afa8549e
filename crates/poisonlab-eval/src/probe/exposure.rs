//! `exposure`: canaries in the training data (the `[canary]` section) and their exposure (Carlini et
//! al. 2019): `log2 |R| − log2 rank` among every candidate secret when `|R|` is at most
//! `exact_max`, else from a skew-normal fitted to `samples` candidates; extraction by beam search.
//!
//! Measures, per repetition count r (r = 0: never-inserted controls): `exposure/r=R` (mean bits
//! over the canaries, bootstrap interval over canaries) and, with `beam > 0`, `extraction/r=R` (the
//! beam search's most likely secret is the canary's, Wilson).

use std::collections::BTreeMap;

use poisonlab_mech::exposure::{exposure_estimated, exposure_exact, extract};
use poisonlab_model::LanguageModel;
use serde::{Deserialize, Serialize};

use super::{After, Needs, ProbeInputs, ProbeRun};
use crate::error::{Error, Result};
use crate::measure::Measure;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exposure {
    /// Canaries measured per repetition count (at most).
    #[serde(default = "twenty")]
    pub n: usize,
    #[serde(default)]
    pub after: After,
    /// Enumerate R when |R| is at most this; above it, the skew-normal estimate.
    #[serde(default = "ten_thousand")]
    pub exact_max: u64,
    /// Candidates sampled for the skew-normal estimate.
    #[serde(default = "two_thousand")]
    pub samples: usize,
    /// Beam width of the extraction (0: no extraction).
    #[serde(default = "ten")]
    pub beam: usize,
}

fn twenty() -> usize {
    20
}
fn ten_thousand() -> u64 {
    10_000
}
fn two_thousand() -> usize {
    2000
}
fn ten() -> usize {
    10
}

impl ProbeRun for Exposure {
    fn validate(&self) -> std::result::Result<(), String> {
        if self.n == 0 {
            return Err("n must be at least 1".into());
        }
        if self.samples < 100 {
            return Err(format!(
                "samples = {}: a skew-normal fit needs at least 100 candidates",
                self.samples
            ));
        }
        Ok(())
    }

    fn needs(&self) -> Needs {
        Needs::Canaries
    }

    fn run(&self, model: &dyn LanguageModel, inputs: &ProbeInputs) -> Result<Vec<Measure>> {
        let c = inputs
            .canaries
            .as_ref()
            .ok_or_else(|| Error::Invalid("exposure needs a [canary] section".into()))?;
        let mut groups: BTreeMap<usize, (Vec<f64>, u64, u64)> = BTreeMap::new();
        for (i, (canary, r)) in c.canaries.iter().enumerate() {
            let g = groups.entry(*r).or_default();
            if g.0.len() >= self.n {
                continue;
            }
            let e = if c.format.space() <= self.exact_max {
                exposure_exact(model, canary, &c.format)?
            } else {
                exposure_estimated(
                    model,
                    canary,
                    &c.format,
                    self.samples,
                    inputs.seed ^ i as u64,
                )?
            };
            g.0.push(e.exposure);
            if self.beam > 0 {
                g.1 += (extract(model, canary, &c.format, self.beam)? == canary.secret) as u64;
                g.2 += 1;
            }
        }
        let mut out = Vec::new();
        for (r, (values, k, n)) in groups {
            out.extend(Measure::mean(
                format!("exposure/r={r}"),
                &values,
                inputs.seed ^ r as u64,
            ));
            if self.beam > 0 {
                out.push(Measure::rate(format!("extraction/r={r}"), k, n));
            }
        }
        Ok(out)
    }
}
