//! Canaries and their exposure (Carlini et al. 2019, "The Secret Sharer").
//!
//! A canary is a sentence with a secret drawn uniformly from a randomness space R — here `digits`
//! decimal digits, `|R| = 10^digits` — put `r` times into the training data. Its exposure is
//! `log2 |R| − log2 rank`, where `rank` is the canary's place among all candidates of R ordered by
//! the model's log-perplexity of the whole sentence (`−log2 Pr`; rank 1 is the most likely). A
//! never-inserted canary has a rank uniform over R and an expected exposure of about
//! `1/ln 2 ≈ 1.44` bits; a memorised one approaches `log2 |R|`.
//!
//! [`exposure_exact`] enumerates R; [`exposure_estimated`] samples candidates, fits a skew-normal to
//! their log-perplexities and takes `−log2 F(canary)` (Carlini et al.'s extrapolation, §4.3), for
//! spaces too large to enumerate. [`extract`] is a beam search for the secret given the prefix.

use poisonlab_model::LanguageModel;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::skewnorm::SkewNormal;

/// The secret's format: `digits` decimal digits joined by `separator` (a space by default, so
/// that each digit is its own word for the tokenizer).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SecretFormat {
    pub digits: usize,
    pub separator: String,
}

impl SecretFormat {
    pub fn new(digits: usize, separator: &str) -> Result<SecretFormat> {
        if !(1..=18).contains(&digits) {
            return Err(Error::Invalid(format!(
                "digits = {digits}: a secret has 1 to 18 digits"
            )));
        }
        Ok(SecretFormat {
            digits,
            separator: separator.to_string(),
        })
    }

    /// `|R|`.
    pub fn space(&self) -> u64 {
        10u64.pow(self.digits as u32)
    }

    /// `log2 |R|`, the largest exposure there is.
    pub fn bits(&self) -> f64 {
        self.digits as f64 * 10f64.log2()
    }

    /// The secret of index `i` (zero-padded), its digits joined by the separator.
    pub fn render(&self, i: u64) -> String {
        self.render_partial(&format!("{i:0w$}", w = self.digits))
    }

    fn render_partial(&self, digits: &str) -> String {
        let parts: Vec<String> = digits.chars().map(String::from).collect();
        parts.join(&self.separator)
    }
}

/// One canary: the text before and after its secret, and the secret's index in R.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Canary {
    pub prefix: String,
    pub secret: u64,
    pub suffix: String,
}

impl Canary {
    pub fn text(&self, format: &SecretFormat) -> String {
        self.with_secret(format, &format.render(self.secret))
    }

    fn with_secret(&self, _format: &SecretFormat, secret: &str) -> String {
        format!("{}{}{}", self.prefix, secret, self.suffix)
    }
}

/// How an exposure was computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Every candidate of R scored.
    Exact,
    /// A skew-normal fitted to sampled candidates.
    SkewNormal,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Exposure {
    /// Bits, in `[0, log2 |R|]`.
    pub exposure: f64,
    /// The canary's log-perplexity after the candidates' common prefix, bits.
    pub log_perplexity: f64,
    /// The canary's rank among the candidates (exact only; ties count half).
    pub rank: Option<f64>,
    pub method: Method,
    /// Candidates scored.
    pub scored: u64,
}

/// The log-perplexity in bits (`−Σ log2 p`) of each text under `model`, on its own token ids,
/// over the tokens after the texts' longest common token prefix (which every text shares, so it
/// adds the same to each and changes no rank or fit): the prefix runs once
/// ([`LanguageModel::score_continuations`]).
pub fn log_perplexities(model: &dyn LanguageModel, texts: &[String]) -> Result<Vec<f64>> {
    let ids = texts
        .iter()
        .map(|t| model.tokenize(t))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let Some(first) = ids.first() else {
        return Ok(Vec::new());
    };
    // Common to all, leaving at least one token of each to score.
    let mut common = ids
        .iter()
        .map(Vec::len)
        .min()
        .unwrap_or(0)
        .saturating_sub(1);
    for s in &ids[1..] {
        common = common.min(first.iter().zip(s).take_while(|(a, b)| a == b).count());
    }
    if common == 0 {
        return Err(Error::Invalid(
            "the candidates share no leading token to condition on".into(),
        ));
    }
    let conts: Vec<Vec<u32>> = ids.iter().map(|s| s[common..].to_vec()).collect();
    Ok(model
        .score_continuations(&first[..common], &conts)?
        .into_iter()
        .map(|lps| -lps.iter().map(|&x| x as f64).sum::<f64>() / std::f64::consts::LN_2)
        .collect())
}

/// The rank of `canary` among `candidates` (which include it): one plus the candidates that are
/// strictly more likely, plus half of the others that tie with it.
pub fn rank(canary: f64, candidates: &[f64]) -> f64 {
    let below = candidates.iter().filter(|&&c| c < canary).count() as f64;
    let ties = candidates.iter().filter(|&&c| c == canary).count() as f64;
    1.0 + below + (ties - 1.0).max(0.0) / 2.0
}

/// `log2 |R| − log2 rank`.
pub fn exposure_of_rank(space: f64, rank: f64) -> f64 {
    space.log2() - rank.log2()
}

/// The skew-normal estimate: `−log2 F(canary)` for `F` fitted to the other candidates'
/// log-perplexities, at most `log2 |R|` (F is floored at `1/|R|`).
pub fn exposure_of_fit(space: f64, canary: f64, sampled: &[f64]) -> Option<f64> {
    let fit = SkewNormal::fit(sampled)?;
    let f = fit.cdf(canary).max(1.0 / space);
    Some(-f.log2())
}

/// Exposure by enumerating every candidate of R (`|R|` sentences scored).
pub fn exposure_exact(
    model: &dyn LanguageModel,
    canary: &Canary,
    format: &SecretFormat,
) -> Result<Exposure> {
    let texts: Vec<String> = (0..format.space())
        .map(|i| canary.with_secret(format, &format.render(i)))
        .collect();
    let lp = log_perplexities(model, &texts)?;
    let own = lp[canary.secret as usize];
    let r = rank(own, &lp);
    Ok(Exposure {
        exposure: exposure_of_rank(format.space() as f64, r),
        log_perplexity: own,
        rank: Some(r),
        method: Method::Exact,
        scored: lp.len() as u64,
    })
}

/// Exposure from `samples` candidates other than the secret, drawn uniformly with `seed`.
pub fn exposure_estimated(
    model: &dyn LanguageModel,
    canary: &Canary,
    format: &SecretFormat,
    samples: usize,
    seed: u64,
) -> Result<Exposure> {
    use rand::RngExt;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut texts = vec![canary.text(format)];
    while texts.len() < samples + 1 {
        let i = rng.random_range(0..format.space());
        if i != canary.secret {
            texts.push(canary.with_secret(format, &format.render(i)));
        }
    }
    let lp = log_perplexities(model, &texts)?;
    let exposure = exposure_of_fit(format.space() as f64, lp[0], &lp[1..]).ok_or_else(|| {
        Error::Invalid("the sampled candidates' log-perplexities have no spread".into())
    })?;
    Ok(Exposure {
        exposure,
        log_perplexity: lp[0],
        rank: None,
        method: Method::SkewNormal,
        scored: lp.len() as u64,
    })
}

/// Beam search for the secret: digit by digit, each of the `beam` most likely partial secrets
/// (the prefix and the digits so far, scored as one text) extended by every digit; the most likely
/// full sentence (suffix included) is the extraction. Returns the extracted secret's index.
pub fn extract(
    model: &dyn LanguageModel,
    canary: &Canary,
    format: &SecretFormat,
    beam: usize,
) -> Result<u64> {
    let beam = beam.max(1);
    let mut beams: Vec<String> = vec![String::new()];
    for pos in 0..format.digits {
        let mut cands: Vec<String> = Vec::with_capacity(beams.len() * 10);
        for b in &beams {
            for d in 0..10 {
                cands.push(format!("{b}{d}"));
            }
        }
        let last = pos + 1 == format.digits;
        let texts: Vec<String> = cands
            .iter()
            .map(|c| {
                let s = format.render_partial(c);
                if last {
                    canary.with_secret(format, &s)
                } else {
                    format!("{}{}", canary.prefix, s)
                }
            })
            .collect();
        let lp = log_perplexities(model, &texts)?;
        let mut order: Vec<usize> = (0..cands.len()).collect();
        order.sort_by(|&a, &b| lp[a].total_cmp(&lp[b]).then(a.cmp(&b)));
        beams = order
            .into_iter()
            .take(if last { 1 } else { beam })
            .map(|i| cands[i].clone())
            .collect();
    }
    beams[0]
        .parse::<u64>()
        .map_err(|e| Error::Invalid(format!("extracted secret: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposure_golden_values() {
        // |R| = 8: the most likely of eight candidates has exposure log2 8 − log2 1 = 3 bits; the
        // second 2 bits; the last 0.
        let lp = [5.0, 1.0, 7.0, 3.0, 9.0, 2.0, 8.0, 4.0];
        assert_eq!(rank(1.0, &lp), 1.0);
        assert_eq!(exposure_of_rank(8.0, rank(1.0, &lp)), 3.0);
        assert_eq!(exposure_of_rank(8.0, rank(2.0, &lp)), 2.0);
        assert_eq!(exposure_of_rank(8.0, rank(9.0, &lp)), 0.0);
        // Rank 3 of 8: log2(8/3) = 1.415 bits.
        assert!((exposure_of_rank(8.0, rank(3.0, &lp)) - 1.415_037_499).abs() < 1e-9);
        // A tie with one other candidate counts half: rank 1.5 of 4, log2(4/1.5) = 1.415.
        let tied = [1.0, 1.0, 2.0, 3.0];
        assert_eq!(rank(1.0, &tied), 1.5);
        assert!((exposure_of_rank(4.0, 1.5) - 1.415_037_499).abs() < 1e-9);
        // |R| = 10^4, rank 1: 13.29 bits, the most there is.
        let f = SecretFormat::new(4, " ").unwrap();
        assert!((f.bits() - 13.287_712_379).abs() < 1e-8);
        assert!((exposure_of_rank(f.space() as f64, 1.0) - f.bits()).abs() < 1e-9);
        assert_eq!(f.render(42), "0 0 4 2");
        assert!(SecretFormat::new(0, " ").is_err() && SecretFormat::new(19, " ").is_err());
    }

    #[test]
    fn the_fitted_estimate_matches_the_rank_for_a_normal_sample() {
        // Candidates at the quantiles of N(0, 1): the canary at z = −2 has F = Φ(−2) = 0.02275,
        // exposure −log2 0.02275 = 5.458 bits, floored at 1/|R|.
        let n = 20_001;
        let sampled: Vec<f64> = (1..n)
            .map(|i| {
                let p = i as f64 / n as f64;
                // inverse Φ by bisection
                let (mut lo, mut hi) = (-10.0, 10.0);
                for _ in 0..100 {
                    let mid = (lo + hi) / 2.0;
                    if crate::skewnorm::normal_cdf(mid) < p {
                        lo = mid
                    } else {
                        hi = mid
                    }
                }
                lo
            })
            .collect();
        let e = exposure_of_fit(1e6, -2.0, &sampled).unwrap();
        assert!((e - 5.458).abs() < 0.02, "{e}");
        assert!((exposure_of_fit(1e3, -40.0, &sampled).unwrap() - 1e3f64.log2()).abs() < 1e-9);
    }
}
