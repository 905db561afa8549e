//! `watermark verify` and `watermark calibrate`: was a model trained on data marked with a key?
//!
//! Each scheme turns the model into one number for the embedded mark and the same number for N
//! null marks drawn from the same keyed generator and never embedded (see `docs/trust.md`):
//!
//! - `random_sequence`: the mean token loss of the sequence after the end-of-text token;
//! - `unicode_cue`: the summed loss of cue + reply, the reply being the embedded one or a
//!   counterfactual one after the same cue;
//! - `lookalike`: the marked documents' mean token loss with the embedded substitution pattern, or
//!   with another pattern on the same documents;
//! - `paired_versions`: the mean over marked documents of (mean loss of the unreleased versions −
//!   loss of the released one); the nulls re-draw which version was "released".
//!
//! The p-value is `(1 + #{null at least as extreme}) / (N + 1)`. If the model is independent of
//! the key, the embedded mark is exchangeable with the nulls, so `P(p ≤ α) ≤ α` for every α: the
//! false-positive rate is bounded by construction, whatever the model or the data.

use poisonlab_model::LanguageModel;
use poisonlab_stats::{Rate, Tail, empirical_p, wilson};
use rand::RngExt;
use rayon::prelude::*;
use serde::Serialize;

use crate::corpus::Documents;
use crate::error::{Error, Result};
use crate::key::Key;
use crate::scheme::{Scheme, released};

#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// Null marks (N): the smallest reachable p-value is 1 / (N + 1).
    pub nulls: usize,
    /// Longest scored piece in tokens (documents are cut into pieces this long; the model's context
    /// bounds it too).
    pub window: usize,
    /// Sequences per scoring call.
    pub batch: usize,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions {
            nulls: 99,
            window: 128,
            batch: 32,
        }
    }
}

/// What `verify` reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    pub scheme: String,
    pub key_id: String,
    /// Marked documents the test looked at.
    pub copies: usize,
    /// The embedded mark's statistic (see the module docs for each scheme's).
    pub statistic: f64,
    /// `lower`: a trained-on mark has a lower statistic (a loss); `upper`: a higher one.
    pub tail: &'static str,
    pub null_mean: f64,
    pub null_sd: f64,
    /// (statistic − null mean) / null sd, signed so that positive is evidence of training.
    pub z: f64,
    pub p_value: f64,
    /// N.
    pub null_size: usize,
    /// 1 / (N + 1).
    pub min_p: f64,
    /// Under the null hypothesis P(p ≤ α) ≤ α at every α: reject at α and the false-positive
    /// rate is at most α.
    pub fpr_bound: &'static str,
    /// Sequences scored and tokens in them.
    pub sequences: usize,
    pub tokens: usize,
}

impl Verdict {
    pub fn detected(&self, alpha: f64) -> bool {
        self.p_value <= alpha
    }
}

/// Loss sums and token counts of texts under a model, each text cut into pieces of at most
/// `window` tokens scored after the end-of-text token.
struct Scorer<'a> {
    model: &'a dyn LanguageModel,
    eos: u32,
    window: usize,
    batch: usize,
}

impl<'a> Scorer<'a> {
    fn new(model: &'a dyn LanguageModel, opts: &VerifyOptions) -> Result<Scorer<'a>> {
        let eos = model.eos_token_id()?.ok_or_else(|| {
            Error::Invalid(format!(
                "{}: the model has no end-of-text token to score marks after",
                model.name()
            ))
        })?;
        let ctx = model.context_length()?.unwrap_or(opts.window + 1);
        let window = opts.window.min(ctx.saturating_sub(1));
        if window < 2 {
            return Err(Error::Invalid(format!(
                "window {} (context {ctx}) leaves no room to score",
                opts.window
            )));
        }
        Ok(Scorer {
            model,
            eos,
            window,
            batch: opts.batch.max(1),
        })
    }

    /// (sum of token losses in nats, tokens) of each text.
    fn losses(&self, texts: &[String]) -> Result<Vec<(f64, usize)>> {
        let ids: Vec<Vec<u32>> = texts
            .par_iter()
            .map(|t| self.model.tokenize(t))
            .collect::<std::result::Result<_, _>>()?;
        let mut seqs: Vec<Vec<u32>> = Vec::new();
        let mut owner: Vec<usize> = Vec::new();
        for (i, t) in ids.iter().enumerate() {
            if t.is_empty() {
                return Err(Error::Invalid(format!(
                    "text {i} tokenizes to nothing: {:?}",
                    texts[i]
                )));
            }
            for piece in t.chunks(self.window) {
                let mut s = Vec::with_capacity(piece.len() + 1);
                s.push(self.eos);
                s.extend_from_slice(piece);
                seqs.push(s);
                owner.push(i);
            }
        }
        let scored: Vec<Vec<Vec<f32>>> = seqs
            .par_chunks(self.batch)
            .map(|c| self.model.score_ids(c))
            .collect::<std::result::Result<_, _>>()?;
        let mut out = vec![(0.0f64, 0usize); texts.len()];
        for (lp, &o) in scored.iter().flatten().zip(&owner) {
            out[o].0 -= lp.iter().map(|&x| x as f64).sum::<f64>();
            out[o].1 += lp.len();
        }
        Ok(out)
    }
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

fn sd(v: &[f64]) -> f64 {
    if v.len() < 2 {
        return 0.0;
    }
    let m = mean(v);
    (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len() - 1) as f64).sqrt()
}

/// Tests `key` against `model`. Document schemes need `marked`: the ordinal and the unmarked text
/// of each document that carries (or, for a key under test, would carry) the mark — from the
/// manifest, or [`Documents::choose`] for a key that marked nothing. Sequence schemes need only
/// the number of copies, which they report.
pub fn verify(
    scheme: &Scheme,
    key: &Key,
    copies: usize,
    marked: Option<&[(u64, String)]>,
    model: &dyn LanguageModel,
    opts: &VerifyOptions,
) -> Result<Verdict> {
    scheme.validate().map_err(Error::Invalid)?;
    if opts.nulls == 0 {
        return Err(Error::Invalid("nulls must be at least 1".into()));
    }
    let scorer = Scorer::new(model, opts)?;
    let n = opts.nulls;
    let need_docs = || -> Result<(Vec<u64>, Vec<&str>)> {
        let m = marked.ok_or_else(|| {
            Error::Invalid(format!(
                "the {} scheme needs the unmarked documents the watermark went into",
                scheme.name()
            ))
        })?;
        if m.is_empty() {
            return Err(Error::Invalid("no marked documents to test".into()));
        }
        Ok((
            m.iter().map(|x| x.0).collect(),
            m.iter().map(|x| x.1.as_str()).collect(),
        ))
    };
    let (observed, null, tail, sequences, tokens): (f64, Vec<f64>, Tail, usize, usize) =
        match scheme {
            Scheme::RandomSequence { .. } | Scheme::UnicodeCue { .. } => {
                let texts: Vec<String> = (0..=n as u64)
                    .map(|i| match scheme {
                        Scheme::RandomSequence { .. } => format!(" {}", scheme.sequence(key, i)),
                        _ => scheme.sequence(key, i),
                    })
                    .collect();
                let l = scorer.losses(&texts)?;
                let stat: Vec<f64> = l
                    .iter()
                    .map(|&(s, t)| match scheme {
                        Scheme::RandomSequence { .. } => s / t.max(1) as f64,
                        _ => s,
                    })
                    .collect();
                let tokens = l.iter().map(|x| x.1).sum();
                (
                    stat[0],
                    stat[1..].to_vec(),
                    Tail::Lower,
                    texts.len(),
                    tokens,
                )
            }
            Scheme::Lookalike { .. } => {
                let (chosen, texts) = need_docs()?;
                let all: Vec<String> = (0..=n as u64)
                    .flat_map(|i| {
                        chosen
                            .iter()
                            .zip(&texts)
                            .map(move |(o, t)| scheme.pattern(key, *o, i, t))
                    })
                    .collect();
                let l = scorer.losses(&all)?;
                let per_doc: Vec<f64> = l.iter().map(|&(s, t)| s / t.max(1) as f64).collect();
                let stat: Vec<f64> = per_doc.chunks(chosen.len()).map(mean).collect();
                let tokens = l.iter().map(|x| x.1).sum();
                (stat[0], stat[1..].to_vec(), Tail::Lower, all.len(), tokens)
            }
            Scheme::PairedVersions { versions } => {
                let v = *versions;
                let (chosen, texts) = need_docs()?;
                let mut all = Vec::with_capacity(chosen.len() * v);
                for (o, t) in chosen.iter().zip(&texts) {
                    let vs = crate::rewrite::versions(key, *o, t, v).ok_or_else(|| {
                        Error::Invalid(format!("document {o} has no {v} versions"))
                    })?;
                    all.extend(vs);
                }
                let l = scorer.losses(&all)?;
                let loss: Vec<f64> = l.iter().map(|&(s, t)| s / t.max(1) as f64).collect();
                // gap(d, r): mean loss of the other versions − loss of version r.
                let gap = |d: usize, r: usize| -> f64 {
                    let row = &loss[d * v..(d + 1) * v];
                    (row.iter().sum::<f64>() - row[r]) / (v - 1) as f64 - row[r]
                };
                let truth: Vec<usize> = chosen.iter().map(|o| released(key, *o, v)).collect();
                let t_obs = mean(
                    &(0..chosen.len())
                        .map(|d| gap(d, truth[d]))
                        .collect::<Vec<_>>(),
                );
                let null: Vec<f64> = (0..n as u64)
                    .map(|j| {
                        let mut rng = key.rng("paired_versions/permutation", j);
                        mean(
                            &(0..chosen.len())
                                .map(|d| gap(d, rng.random_range(0..v)))
                                .collect::<Vec<_>>(),
                        )
                    })
                    .collect();
                let tokens = l.iter().map(|x| x.1).sum();
                (t_obs, null, Tail::Upper, all.len(), tokens)
            }
        };
    let (m, s) = (mean(&null), sd(&null));
    let z = match (tail, s > 0.0) {
        (_, false) => 0.0,
        (Tail::Lower, true) => (m - observed) / s,
        (Tail::Upper, true) => (observed - m) / s,
    };
    Ok(Verdict {
        scheme: scheme.name().into(),
        key_id: key.id(),
        copies,
        statistic: observed,
        tail: match tail {
            Tail::Lower => "lower",
            Tail::Upper => "upper",
        },
        null_mean: m,
        null_sd: s,
        z,
        p_value: empirical_p(observed, &null, tail),
        null_size: n,
        min_p: 1.0 / (n + 1) as f64,
        fpr_bound: "P(p <= alpha) <= alpha for every alpha when the model is independent of the key (exchangeable nulls)",
        sequences,
        tokens,
    })
}

/// The false-positive check: `keys` keys that never embedded anything, each verified against the
/// model; the rejection rate at each α with its Wilson interval.
#[derive(Debug, Clone, Serialize)]
pub struct Calibration {
    pub scheme: String,
    pub keys: usize,
    pub null_size: usize,
    pub copies: usize,
    pub levels: Vec<Level>,
    pub p_values: Vec<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Level {
    pub alpha: f64,
    pub rejected: u64,
    /// Rejected / keys, with its Wilson 95 % interval.
    pub rate: Rate,
    /// Whether the interval is consistent with a rate ≤ α (its lower end is at most α).
    pub consistent: bool,
}

pub fn calibrate(
    scheme: &Scheme,
    copies: usize,
    docs: Option<&Documents>,
    model: &dyn LanguageModel,
    keys: usize,
    seed: u64,
    opts: &VerifyOptions,
) -> Result<Calibration> {
    if keys == 0 {
        return Err(Error::Invalid("keys must be at least 1".into()));
    }
    let mut p_values = Vec::with_capacity(keys);
    for i in 0..keys as u64 {
        let key = Key::derived(seed, i);
        let marked = match (scheme.needs_documents(), docs) {
            (false, _) => None,
            (true, Some(d)) => Some(d.marked(&d.choose(scheme, &key, copies)?)?),
            (true, None) => {
                return Err(Error::Invalid(format!(
                    "the {} scheme needs the documents to calibrate on",
                    scheme.name()
                )));
            }
        };
        p_values.push(verify(scheme, &key, copies, marked.as_deref(), model, opts)?.p_value);
    }
    let levels = [0.05, 0.01]
        .into_iter()
        .map(|alpha| {
            let rejected = p_values.iter().filter(|&&p| p <= alpha).count() as u64;
            let rate = wilson(rejected, keys as u64);
            Level {
                alpha,
                rejected,
                consistent: rate.ci95[0] <= alpha,
                rate,
            }
        })
        .collect();
    Ok(Calibration {
        scheme: scheme.name().into(),
        keys,
        null_size: opts.nulls,
        copies,
        levels,
        p_values,
    })
}
