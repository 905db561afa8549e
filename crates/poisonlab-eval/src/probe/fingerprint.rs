//! `fingerprint`: the instructional fingerprint in the SFT data, verified with an exact p-value
//! against decoy keys (poisonlab-trust), beside control keys that fingerprinted nothing.
//!
//! Measures: `fingerprint_success` (the key's secret inputs answered with its output, Wilson),
//! `fingerprint_near_miss` (the same inputs without their first word, answered with the output:
//! how specific the fingerprint is; 0 without asking when the key scores 0),
//! `fingerprint_verified` (1 of 1 when p ≤ α), `fingerprint_p`, and
//! `fingerprint_false_claims/alpha=A` (control keys verified at α = A, of the controls).

use poisonlab_model::LanguageModel;
use poisonlab_trust::fingerprint::{FingerprintOptions, verify_fingerprint};
use serde::{Deserialize, Serialize};

use super::{After, Needs, ProbeInputs, ProbeRun};
use crate::error::{Error, Result};
use crate::measure::{Measure, Method};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fingerprint {
    /// Secret inputs tried per key.
    #[serde(default = "sixteen")]
    pub n: usize,
    #[serde(default)]
    pub after: After,
    /// Decoy keys per verification.
    #[serde(default = "ninety_nine")]
    pub decoys: usize,
    #[serde(default = "five_percent")]
    pub alpha: f64,
}

fn sixteen() -> usize {
    16
}
fn ninety_nine() -> usize {
    99
}
fn five_percent() -> f64 {
    0.05
}

impl ProbeRun for Fingerprint {
    fn validate(&self) -> std::result::Result<(), String> {
        if self.n == 0 || self.n > poisonlab_trust::fingerprint::MAX_EXAMPLES {
            return Err(format!(
                "n = {}: 1 to {} secret inputs",
                self.n,
                poisonlab_trust::fingerprint::MAX_EXAMPLES
            ));
        }
        if self.decoys == 0 {
            return Err("decoys must be at least 1".into());
        }
        if !(self.alpha > 0.0 && self.alpha < 1.0) {
            return Err(format!("alpha = {} must be in (0, 1)", self.alpha));
        }
        Ok(())
    }

    fn needs(&self) -> Needs {
        Needs::Fingerprint
    }

    fn run(&self, model: &dyn LanguageModel, inputs: &ProbeInputs) -> Result<Vec<Measure>> {
        let f = inputs
            .fingerprint
            .as_ref()
            .ok_or_else(|| Error::Invalid("fingerprint needs a [fingerprint] section".into()))?;
        let opts = FingerprintOptions {
            probes: self.n,
            decoys: self.decoys,
        };
        let check = |k: &poisonlab_trust::Key| {
            verify_fingerprint(k, model, &opts)
                .map_err(|e| Error::Invalid(format!("fingerprint: {e}")))
        };
        let v = check(&f.key)?;
        let samples = v
            .samples
            .iter()
            .map(|s| crate::measure::Sample::new("(a secret fingerprint input)", s, false))
            .collect();
        let mut out = vec![
            Measure::rate("fingerprint_success", v.hits as u64, v.probes as u64)
                .with_samples(samples),
            Measure::rate(
                "fingerprint_near_miss",
                v.near_miss_hits as u64,
                v.probes as u64,
            ),
            Measure::rate(
                "fingerprint_verified",
                u64::from(v.p_value <= self.alpha),
                1,
            ),
            Measure {
                name: "fingerprint_p".into(),
                value: v.p_value,
                ci_low: v.p_value,
                ci_high: v.p_value,
                n: 1,
                k: None,
                method: Method::BootstrapRatio,
                samples: Vec::new(),
            },
        ];
        if !f.controls.is_empty() {
            let p: Vec<f64> = f
                .controls
                .iter()
                .map(|k| check(k).map(|v| v.p_value))
                .collect::<Result<_>>()?;
            out.extend(super::rejection_rates("fingerprint_false_claims", &p));
        }
        Ok(out)
    }
}
