//! `membership`: copyright traps in the training data told from never-inserted traps of the same
//! group (same length, same perplexity bucket, same draw), by each membership score.
//!
//! Measures, per group of traps (`words=L/copies=C`) and score (`loss`, `zlib`, `min_k`,
//! `min_k_plus_plus`): `membership_auroc/<score>/words=L/copies=C` (Hanley–McNeil interval) and
//! `membership_tpr1/<score>/words=L/copies=C`, the true-positive rate at a 1 % false-positive
//! rate (Wilson interval; its FPR resolution is one over the non-members).

use std::collections::BTreeMap;

use poisonlab_model::LanguageModel;
use poisonlab_trust::membership::{MembershipOptions, evaluate, score_texts};
use serde::{Deserialize, Serialize};

use super::{After, Needs, ProbeInputs, ProbeRun};
use crate::error::{Error, Result};
use crate::measure::{Measure, Method};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Membership {
    /// Traps scored per group and side (at most).
    #[serde(default = "thousand")]
    pub n: usize,
    #[serde(default)]
    pub after: After,
    /// The k of Min-K %.
    #[serde(default = "fifth")]
    pub k: f64,
}

fn thousand() -> usize {
    1000
}
fn fifth() -> f64 {
    0.2
}

impl ProbeRun for Membership {
    fn validate(&self) -> std::result::Result<(), String> {
        if self.n == 0 {
            return Err("n must be at least 1".into());
        }
        if !(self.k > 0.0 && self.k <= 1.0) {
            return Err(format!("k = {} must be in (0, 1]", self.k));
        }
        Ok(())
    }

    fn needs(&self) -> Needs {
        Needs::Traps
    }

    fn run(&self, model: &dyn LanguageModel, inputs: &ProbeInputs) -> Result<Vec<Measure>> {
        let traps = inputs
            .traps
            .as_ref()
            .ok_or_else(|| Error::Invalid("membership needs a [trap] section".into()))?;
        let opts = MembershipOptions {
            k: self.k,
            ..MembershipOptions::default()
        };
        let mut groups: BTreeMap<(usize, usize), (Vec<String>, Vec<String>)> = BTreeMap::new();
        for t in traps.iter() {
            let g = groups.entry((t.words, t.copies)).or_default();
            let side = if t.member { &mut g.0 } else { &mut g.1 };
            if side.len() < self.n {
                side.push(t.text.clone());
            }
        }
        let mut out = Vec::new();
        for ((words, copies), (m, n)) in groups {
            let score = |texts: &[String]| {
                score_texts(model, None, texts, &opts)
                    .map_err(|e| Error::Invalid(format!("membership: {e}")))
            };
            let results = evaluate(&score(&m)?, &score(&n)?);
            for r in results {
                let label = format!("{}/words={words}/copies={copies}", r.score);
                out.push(Measure {
                    name: format!("membership_auroc/{label}"),
                    value: r.auroc.auroc,
                    ci_low: r.auroc.ci95[0],
                    ci_high: r.auroc.ci95[1],
                    n: r.auroc.n_pos + r.auroc.n_neg,
                    k: None,
                    method: Method::HanleyMcNeil,
                    samples: Vec::new(),
                });
                let t = &r.tpr[0];
                out.push(Measure::rate(
                    format!("membership_tpr1/{label}"),
                    t.tpr.k,
                    t.tpr.n,
                ));
            }
        }
        Ok(out)
    }
}
