//! Membership inference: was this text in the model's training data? Five scores, each higher for
//! a likelier member, and how well each separates known members from known non-members (AUROC
//! with its Hanley–McNeil interval; the true-positive rate at 1 % and 0.1 % false positives).
//!
//! - `loss`: −(mean token loss) (Yeom et al. 2018);
//! - `zlib`: −(mean token loss) / (zlib-compressed bytes of the text) (Carlini et al. 2021);
//! - `min_k`: the mean log-prob of the k % least likely tokens (Min-K % Prob, Shi et al. 2024);
//! - `min_k_plus_plus`: the same over (log p − μ) / σ, μ and σ being the mean and standard
//!   deviation of the log-prob under the whole next-token distribution (Min-K %++, Zhang et al.
//!   2024) — it needs those distributions, so a local model;
//! - `reference`: the reference model's mean loss minus the target's (Carlini et al. 2021).
//!
//! Texts longer than the window are scored in pieces after the end-of-text token, as the
//! watermark verifier does.

use std::io::Write;

use poisonlab_model::LanguageModel;
use poisonlab_stats::{Auroc, Rate, auroc, wilson};
use rayon::prelude::*;
use serde::Serialize;

use crate::error::{Error, Result};

pub const SCORES: &[(&str, &str)] = &[
    ("loss", "−mean token loss (Yeom et al. 2018)"),
    (
        "zlib",
        "−mean token loss / zlib bytes (Carlini et al. 2021)",
    ),
    (
        "min_k",
        "mean log-prob of the k % least likely tokens (Shi et al. 2024)",
    ),
    (
        "min_k_plus_plus",
        "Min-K % over log-probs standardised by the next-token distribution (Zhang et al. 2024); local models",
    ),
    (
        "reference",
        "reference model's mean loss − the target's (Carlini et al. 2021); needs --reference",
    ),
];

#[derive(Debug, Clone)]
pub struct MembershipOptions {
    /// Longest scored piece in tokens.
    pub window: usize,
    /// The k of Min-K % (a fraction).
    pub k: f64,
    pub batch: usize,
}

impl Default for MembershipOptions {
    fn default() -> Self {
        MembershipOptions {
            window: 128,
            k: 0.2,
            batch: 32,
        }
    }
}

/// Every score of one text (`None`: the score needs what the backend lacks).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TextScores {
    pub tokens: usize,
    pub loss: f64,
    pub zlib: f64,
    pub min_k: f64,
    pub min_k_plus_plus: Option<f64>,
    pub reference: Option<f64>,
}

impl TextScores {
    pub fn get(&self, name: &str) -> Option<f64> {
        match name {
            "loss" => Some(self.loss),
            "zlib" => Some(self.zlib),
            "min_k" => Some(self.min_k),
            "min_k_plus_plus" => self.min_k_plus_plus,
            "reference" => self.reference,
            _ => None,
        }
    }
}

/// Per text: token log-probs, and with `calibrated` each token's (log p, μ, σ).
fn token_scores(
    model: &dyn LanguageModel,
    texts: &[String],
    opts: &MembershipOptions,
    calibrated: bool,
) -> Result<Vec<Vec<[f32; 3]>>> {
    let eos = model.eos_token_id()?.ok_or_else(|| {
        Error::Invalid(format!(
            "{}: the model has no end-of-text token",
            model.name()
        ))
    })?;
    let ctx = model.context_length()?.unwrap_or(opts.window + 1);
    let window = opts.window.min(ctx.saturating_sub(1)).max(1);
    let ids: Vec<Vec<u32>> = texts
        .par_iter()
        .map(|t| model.tokenize(t))
        .collect::<std::result::Result<_, _>>()?;
    let mut seqs = Vec::new();
    let mut owner = Vec::new();
    for (i, t) in ids.iter().enumerate() {
        if t.is_empty() {
            return Err(Error::Invalid(format!("text {i} is empty")));
        }
        for piece in t.chunks(window) {
            let mut s = vec![eos];
            s.extend_from_slice(piece);
            seqs.push(s);
            owner.push(i);
        }
    }
    let scored: Vec<Vec<Vec<[f32; 3]>>> = seqs
        .par_chunks(opts.batch.max(1))
        .map(|c| {
            if calibrated {
                model.score_ids_calibrated(c)
            } else {
                model.score_ids(c).map(|v| {
                    v.into_iter()
                        .map(|r| r.into_iter().map(|l| [l, 0.0, 0.0]).collect())
                        .collect()
                })
            }
        })
        .collect::<std::result::Result<_, _>>()?;
    let mut out = vec![Vec::new(); texts.len()];
    for (row, &o) in scored.into_iter().flatten().zip(&owner) {
        out[o].extend(row);
    }
    Ok(out)
}

fn zlib_bytes(text: &str) -> usize {
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    // Writing to a Vec cannot fail.
    let _ = e.write_all(text.as_bytes());
    e.finish().map(|v| v.len()).unwrap_or(text.len()).max(1)
}

/// Mean of the `k` fraction lowest values (at least one).
fn lowest_mean(mut v: Vec<f64>, k: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = ((v.len() as f64 * k).ceil() as usize).clamp(1, v.len());
    v[..n].iter().sum::<f64>() / n as f64
}

/// Scores `texts` under `model` (and `reference`, when given).
pub fn score_texts(
    model: &dyn LanguageModel,
    reference: Option<&dyn LanguageModel>,
    texts: &[String],
    opts: &MembershipOptions,
) -> Result<Vec<TextScores>> {
    if !(opts.k > 0.0 && opts.k <= 1.0) {
        return Err(Error::Invalid(format!("k = {} must be in (0, 1]", opts.k)));
    }
    // Min-K %++ where the backend gives full distributions.
    let (tokens, calibrated) = match token_scores(model, texts, opts, true) {
        Ok(t) => (t, true),
        Err(Error::Model(poisonlab_model::Error::Unsupported(_))) => {
            (token_scores(model, texts, opts, false)?, false)
        }
        Err(e) => return Err(e),
    };
    let refs = reference
        .map(|r| token_scores(r, texts, opts, false))
        .transpose()?;
    Ok(texts
        .iter()
        .enumerate()
        .map(|(i, text)| {
            let t = &tokens[i];
            let lp: Vec<f64> = t.iter().map(|x| x[0] as f64).collect();
            let mean_nll = -lp.iter().sum::<f64>() / lp.len().max(1) as f64;
            let z: Vec<f64> = t
                .iter()
                .map(|x| {
                    if x[2] > 0.0 {
                        (x[0] as f64 - x[1] as f64) / x[2] as f64
                    } else {
                        0.0
                    }
                })
                .collect();
            TextScores {
                tokens: lp.len(),
                loss: -mean_nll,
                zlib: -mean_nll / zlib_bytes(text) as f64,
                min_k: lowest_mean(lp.clone(), opts.k),
                min_k_plus_plus: calibrated.then(|| lowest_mean(z, opts.k)),
                reference: refs.as_ref().map(|r| {
                    let rl = &r[i];
                    let ref_nll =
                        -rl.iter().map(|x| x[0] as f64).sum::<f64>() / rl.len().max(1) as f64;
                    ref_nll - mean_nll
                }),
            }
        })
        .collect())
}

/// How one score separates members from non-members.
#[derive(Debug, Clone, Serialize)]
pub struct ScoreResult {
    pub score: String,
    pub auroc: Auroc,
    pub tpr: Vec<AtFpr>,
}

/// Flagging the texts scored above the threshold that lets at most `target` of the non-members
/// through: the true-positive rate, and the false-positive rate reached (its resolution is
/// 1 / non-members).
#[derive(Debug, Clone, Serialize)]
pub struct AtFpr {
    pub target: f64,
    pub threshold: f64,
    pub tpr: Rate,
    pub fpr: Rate,
}

fn at_fpr(members: &[f64], nonmembers: &[f64], target: f64) -> AtFpr {
    let mut neg: Vec<f64> = nonmembers.to_vec();
    neg.sort_by(|a, b| b.total_cmp(a));
    let allowed = (target * neg.len() as f64).floor() as usize;
    // Flag strictly above the (allowed + 1)-th highest non-member score.
    let threshold = neg.get(allowed).copied().unwrap_or(f64::NEG_INFINITY);
    let tp = members.iter().filter(|&&s| s > threshold).count() as u64;
    let fp = nonmembers.iter().filter(|&&s| s > threshold).count() as u64;
    AtFpr {
        target,
        threshold,
        tpr: wilson(tp, members.len() as u64),
        fpr: wilson(fp, nonmembers.len() as u64),
    }
}

/// AUROC and TPR at 1 % and 0.1 % FPR of every score both sets have.
pub fn evaluate(members: &[TextScores], nonmembers: &[TextScores]) -> Vec<ScoreResult> {
    SCORES
        .iter()
        .filter_map(|(name, _)| {
            let m: Option<Vec<f64>> = members.iter().map(|s| s.get(name)).collect();
            let n: Option<Vec<f64>> = nonmembers.iter().map(|s| s.get(name)).collect();
            let (m, n) = (m?, n?);
            if m.is_empty() || n.is_empty() {
                return None;
            }
            let scores: Vec<f64> = m.iter().chain(&n).copied().collect();
            let positive: Vec<bool> = (0..scores.len()).map(|i| i < m.len()).collect();
            Some(ScoreResult {
                score: name.to_string(),
                auroc: auroc(&scores, &positive),
                tpr: [0.01, 0.001].iter().map(|&t| at_fpr(&m, &n, t)).collect(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_hold_the_false_positive_rate() {
        let members = [5.0, 4.0, 3.0, 0.5];
        let nonmembers: Vec<f64> = (0..100).map(|i| i as f64 / 100.0).collect();
        // 1 % of 100: one non-member may pass; threshold is the 2nd highest (0.98).
        let a = at_fpr(&members, &nonmembers, 0.01);
        assert_eq!((a.threshold, a.fpr.k, a.tpr.k), (0.98, 1, 3));
        // 0.1 % of 100 rounds down to none: above the highest non-member.
        let b = at_fpr(&members, &nonmembers, 0.001);
        assert_eq!((b.threshold, b.fpr.k, b.tpr.k), (0.99, 0, 3));
        assert_eq!(lowest_mean(vec![3.0, 1.0, 2.0, 4.0], 0.5), 1.5);
        assert_eq!(lowest_mean(vec![3.0], 0.2), 3.0);
        assert!(zlib_bytes(&"ab".repeat(500)) < 40);
    }
}
