//! Where a backdoor lives: a linear probe per layer for "trigger present", and activation patching
//! of the trigger's positions layer by layer.
//!
//! Both take [`Case`]s: one clean prompt with the trigger inserted by the poison's own rule, the same
//! prompt without it (and optionally with a near miss of it), and the payload the trigger should
//! produce. Hidden index `j` follows [`poisonlab_model::lm::HiddenStates`]: 0 = after the
//! embeddings, `j` = after layer `j`, the last = after the final norm.

use poisonlab_model::{LanguageModel, Patch};
use rand::SeedableRng;
use rand::seq::SliceRandom;

use crate::error::{Error, Result};
use crate::logistic::Logistic;

#[derive(Debug, Clone, PartialEq)]
pub struct Case {
    /// The prompt with the trigger.
    pub triggered: String,
    /// The same prompt without it.
    pub clean: String,
    /// The same prompt with a near miss of the trigger in its place, if any.
    pub decoy: Option<String>,
    /// The payload the trigger should produce.
    pub target: String,
}

/// Held-out accuracy of the probe at one hidden index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeAccuracy {
    pub index: usize,
    pub correct: u64,
    pub n: u64,
}

/// The state at the last prompt position, at every hidden index.
fn last_states(model: &dyn LanguageModel, prompt: &str) -> Result<Vec<Vec<f32>>> {
    let ids = model.tokenize(prompt)?;
    if ids.is_empty() {
        return Err(Error::Invalid("an empty prompt has no hidden state".into()));
    }
    let h = model.hidden_states_of_ids(&ids)?;
    Ok(h.into_iter()
        .map(|layer| layer.last().cloned().unwrap_or_default())
        .collect())
}

/// For each hidden index, a logistic probe trained to tell the triggered prompt from its negative
/// (`decoy = false`: the prompt without the trigger; `true`: with its near miss), on the state at
/// the last prompt position. The cases are split in halves by `seed` (both prompts of a case on the
/// same side, so that no prompt is seen in training and test); accuracy is on the held-out half.
pub fn linear_probes(
    model: &dyn LanguageModel,
    cases: &[Case],
    decoy: bool,
    seed: u64,
) -> Result<Vec<ProbeAccuracy>> {
    let mut pairs = Vec::with_capacity(cases.len());
    for c in cases {
        let neg = if decoy {
            match &c.decoy {
                Some(d) => d,
                None => continue,
            }
        } else {
            &c.clean
        };
        pairs.push((last_states(model, &c.triggered)?, last_states(model, neg)?));
    }
    if pairs.len() < 4 {
        return Err(Error::Invalid(format!(
            "a linear probe needs at least 4 cases, got {}",
            pairs.len()
        )));
    }
    let mut order: Vec<usize> = (0..pairs.len()).collect();
    order.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(seed));
    let (train, test) = order.split_at(pairs.len() / 2);
    let indices = pairs[0].0.len();
    let mut out = Vec::with_capacity(indices);
    for j in 0..indices {
        let mut x = Vec::new();
        let mut y = Vec::new();
        for &i in train {
            x.push(pairs[i].0[j].clone());
            y.push(true);
            x.push(pairs[i].1[j].clone());
            y.push(false);
        }
        let probe = Logistic::fit(&x, &y, 1e-2, 300)
            .ok_or_else(|| Error::Invalid("linear probe: inconsistent hidden states".into()))?;
        let mut correct = 0;
        for &i in test {
            correct += (probe.predict(&pairs[i].0[j]) > 0.5) as u64;
            correct += (probe.predict(&pairs[i].1[j]) <= 0.5) as u64;
        }
        out.push(ProbeAccuracy {
            index: j,
            correct,
            n: 2 * test.len() as u64,
        });
    }
    Ok(out)
}

/// Where the states are copied from the triggered run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Site {
    /// The trigger's token positions.
    Trigger,
    /// The last prompt position.
    Last,
}

impl Site {
    pub fn as_str(&self) -> &'static str {
        match self {
            Site::Trigger => "trigger",
            Site::Last => "last",
        }
    }
}

/// One case's patching effects, in nats of the payload's log-probability.
#[derive(Debug, Clone, PartialEq)]
pub struct Patched {
    /// `log p(payload | triggered) − log p(payload | corrupted)`: the trigger's total effect.
    pub effect: f64,
    /// Per site (trigger, last) and hidden index: `log p(payload | corrupted, patched) −
    /// log p(payload | corrupted)`.
    pub restored: [Vec<f64>; 2],
    /// Tokens of the trigger span.
    pub span: usize,
}

/// The trigger's token span in `t` against the prompt without it, `c`: what lies between their
/// common prefix and common suffix.
pub fn trigger_span(t: &[u32], c: &[u32]) -> std::ops::Range<usize> {
    let a = t.iter().zip(c).take_while(|(x, y)| x == y).count();
    let max_s = t.len().min(c.len()) - a;
    let s = t
        .iter()
        .rev()
        .zip(c.iter().rev())
        .take(max_s)
        .take_while(|(x, y)| x == y)
        .count();
    a..t.len() - s
}

/// Activation patching (causal tracing) of one case. The corrupted prompt is the triggered one
/// with the trigger's tokens replaced by tokens drawn (with `seed`) from the prompt without the
/// trigger, so the two runs align position by position; for each hidden index and site the
/// triggered run's states are copied into the corrupted run, and the payload's log-probability is
/// compared. Patching every trigger position at index 0 restores the whole effect, by
/// construction. `None` when the trigger leaves the tokens unchanged.
pub fn patch_case(model: &dyn LanguageModel, case: &Case, seed: u64) -> Result<Option<Patched>> {
    use rand::RngExt;
    let t = model.tokenize(&case.triggered)?;
    let c = model.tokenize(&case.clean)?;
    let target = model.tokenize(&case.target)?;
    let span = trigger_span(&t, &c);
    if span.is_empty() || target.is_empty() || c.is_empty() {
        return Ok(None);
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut x = t.clone();
    for p in span.clone() {
        x[p] = c[rng.random_range(0..c.len())];
    }
    let full = |p: &[u32]| -> Vec<u32> { p.iter().chain(&target).copied().collect() };
    let (tf, xf) = (full(&t), full(&x));
    let from = t.len() - 1;
    let payload = |lps: &[f32]| -> f64 { lps[from..].iter().map(|&v| v as f64).sum() };
    let scored = model.score_ids(&[tf.clone(), xf.clone()])?;
    let (lp_t, lp_x) = (payload(&scored[0]), payload(&scored[1]));
    let states = model.hidden_states_of_ids(&tf)?;
    let mut restored = [Vec::new(), Vec::new()];
    for (si, site) in [Site::Trigger, Site::Last].into_iter().enumerate() {
        let positions: Vec<usize> = match site {
            Site::Trigger => span.clone().collect(),
            Site::Last => vec![t.len() - 1],
        };
        for (j, layer) in states.iter().enumerate() {
            let patch = Patch {
                index: j,
                positions: positions.clone(),
                values: positions.iter().map(|&p| layer[p].clone()).collect(),
            };
            let lps = model.score_ids_patched(&xf, &patch)?;
            restored[si].push(payload(&lps) - lp_x);
        }
    }
    Ok(Some(Patched {
        effect: lp_t - lp_x,
        restored,
        span: span.len(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_trigger_span_is_what_lies_between_the_common_ends() {
        assert_eq!(trigger_span(&[1, 2, 9, 9, 3, 4], &[1, 2, 3, 4]), 2..4);
        assert_eq!(trigger_span(&[9, 1, 2], &[1, 2]), 0..1);
        assert_eq!(trigger_span(&[1, 2, 9], &[1, 2]), 2..3);
        // A repeated token at the boundary is not counted twice.
        assert_eq!(trigger_span(&[1, 2, 2, 3], &[1, 2, 3]), 2..3);
        assert_eq!(trigger_span(&[1, 2], &[1, 2]), 2..2);
    }
}
