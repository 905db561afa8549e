//! Quantiles, percentile-bootstrap intervals and exact empirical p-values.
//!
//! Every resampling function takes the caller's seed and mixes in a constant of its own, so that
//! two statistics computed from one seed never share a random stream.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The `q`-quantile of `values` by the nearest-rank rule (the ⌈q·n⌉-th smallest; `q = 0` gives
/// the smallest). Empty input gives +∞, so that "above the threshold" is never true of nothing.
pub fn quantile(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return f64::INFINITY;
    }
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let idx = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1;
    v[idx]
}

/// A point estimate with its 95 % percentile-bootstrap interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    pub value: f64,
    pub low: f64,
    pub high: f64,
}

/// Ratio of sums Σa / Σb over `pairs` (e.g. total loss / total tokens) with a 95 % bootstrap
/// interval over the pairs (1,000 replicates; the interval always contains the estimate).
/// `None` when there is no pair.
pub fn bootstrap_ratio(pairs: &[(f64, f64)], seed: u64) -> Option<Interval> {
    if pairs.is_empty() {
        return None;
    }
    let ratio = |xs: &mut dyn Iterator<Item = (f64, f64)>| {
        let (a, b) = xs.fold((0.0, 0.0), |acc, (x, y)| (acc.0 + x, acc.1 + y));
        if b > 0.0 { a / b } else { f64::NAN }
    };
    let value = ratio(&mut pairs.iter().copied());
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x626f_6f74);
    let mut boots: Vec<f64> = (0..1000)
        .map(|_| ratio(&mut (0..pairs.len()).map(|_| pairs[rng.random_range(0..pairs.len())])))
        .collect();
    boots.sort_by(|a, b| a.total_cmp(b));
    Some(Interval {
        value,
        low: boots[25].min(value),
        high: boots[974].max(value),
    })
}

/// Mean of `values` with a 95 % bootstrap interval (the ratio of sums with unit weights).
pub fn bootstrap_mean(values: &[f64], seed: u64) -> Option<Interval> {
    let pairs: Vec<(f64, f64)> = values.iter().map(|&v| (v, 1.0)).collect();
    bootstrap_ratio(&pairs, seed)
}

/// Difference of two proportions k1/n1 − k2/n2 with a 95 % bootstrap interval: each of the 2,000
/// replicates resamples both groups' 0/1 outcomes.
pub fn bootstrap_difference(k1: u64, n1: u64, k2: u64, n2: u64, seed: u64) -> Interval {
    let p1 = if n1 == 0 { 0.0 } else { k1 as f64 / n1 as f64 };
    let p2 = if n2 == 0 { 0.0 } else { k2 as f64 / n2 as f64 };
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x6469_6666);
    let mut draws: Vec<f64> = (0..2000)
        .map(|_| {
            let a = (0..n1).filter(|_| rng.random_bool(p1)).count() as f64 / n1.max(1) as f64;
            let b = (0..n2).filter(|_| rng.random_bool(p2)).count() as f64 / n2.max(1) as f64;
            a - b
        })
        .collect();
    draws.sort_by(|a, b| a.total_cmp(b));
    Interval {
        value: p1 - p2,
        low: draws[50],
        high: draws[1949],
    }
}

/// A rate pooled over groups (e.g. seeds, each with its own k of n) with a 95 % interval that
/// includes the variance between groups: each of 2,000 replicates draws the groups with
/// replacement, then each drawn group's n outcomes from its own rate, and pools Σk / Σn. With one
/// group it is the plain bootstrap of that group's outcomes. `None` when there are no trials.
pub fn bootstrap_clustered_rate(groups: &[(u64, u64)], seed: u64) -> Option<Interval> {
    let total: u64 = groups.iter().map(|g| g.1).sum();
    if total == 0 {
        return None;
    }
    let value = groups.iter().map(|g| g.0).sum::<u64>() as f64 / total as f64;
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x636c_7573);
    let mut draws: Vec<f64> = (0..2000)
        .map(|_| {
            let (mut k, mut n) = (0u64, 0u64);
            for _ in 0..groups.len() {
                let (gk, gn) = groups[rng.random_range(0..groups.len())];
                let p = if gn == 0 { 0.0 } else { gk as f64 / gn as f64 };
                k += (0..gn).filter(|_| rng.random_bool(p)).count() as u64;
                n += gn;
            }
            if n == 0 { value } else { k as f64 / n as f64 }
        })
        .collect();
    draws.sort_by(|a, b| a.total_cmp(b));
    Some(Interval {
        value,
        low: draws[50].min(value),
        high: draws[1949].max(value),
    })
}

/// Which side of the null an observation must fall on to count as evidence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tail {
    /// Small observations are extreme (e.g. the loss on a watermark the model was trained on).
    Lower,
    /// Large observations are extreme.
    Upper,
}

/// The exact empirical p-value of `observed` against `null` draws from the same generator:
/// `(1 + #{null at least as extreme}) / (N + 1)`. Under the null hypothesis (the observation is
/// exchangeable with the draws) `P(p ≤ α) ≤ α` for every α, with no assumption on the
/// distribution; the smallest reachable value is `1 / (N + 1)`. Ties count against the observation.
pub fn empirical_p(observed: f64, null: &[f64], tail: Tail) -> f64 {
    let extreme = null
        .iter()
        .filter(|&&x| match tail {
            Tail::Lower => x <= observed,
            Tail::Upper => x >= observed,
        })
        .count();
    (1 + extreme) as f64 / (null.len() + 1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantile_nearest_rank() {
        let v = [5.0, 1.0, 4.0, 2.0, 3.0];
        assert_eq!(quantile(&v, 0.0), 1.0);
        assert_eq!(quantile(&v, 0.5), 3.0);
        assert_eq!(quantile(&v, 0.95), 5.0);
        assert_eq!(quantile(&[], 0.5), f64::INFINITY);
    }

    #[test]
    fn bootstrap_intervals_contain_the_estimate() {
        let i = bootstrap_difference(40, 50, 10, 50, 1);
        assert!((i.value - 0.6).abs() < 1e-12 && i.low < i.value && i.value < i.high);
        assert!(i.low > 0.4 && i.high < 0.8);
        let m = bootstrap_mean(&[1.0, 2.0, 3.0, 4.0], 7).unwrap();
        assert_eq!(m.value, 2.5);
        assert!(m.low <= 2.5 && m.high >= 2.5 && m.low >= 1.0 && m.high <= 4.0);
        assert!(bootstrap_ratio(&[], 1).is_none());
        // Same seed, same interval.
        assert_eq!(
            bootstrap_mean(&[1.0, 5.0, 2.0], 3),
            bootstrap_mean(&[1.0, 5.0, 2.0], 3)
        );
    }

    #[test]
    fn a_clustered_rate_widens_with_the_variance_between_groups() {
        // Same pooled rate (50/100) from agreeing seeds and from seeds at 0 % and 100 %.
        let agree = bootstrap_clustered_rate(&[(25, 50), (25, 50)], 1).unwrap();
        let split = bootstrap_clustered_rate(&[(0, 50), (50, 50)], 1).unwrap();
        assert_eq!((agree.value, split.value), (0.5, 0.5));
        assert!(agree.high - agree.low < 0.3, "{agree:?}");
        // Drawing both seeds the same way happens half the time: the interval spans 0 to 1.
        assert_eq!((split.low, split.high), (0.0, 1.0), "{split:?}");
        // One group: about the binomial interval (Wilson: 0.37–0.63 for 25/50).
        let one = bootstrap_clustered_rate(&[(25, 50)], 1).unwrap();
        assert!(
            (one.low - 0.36).abs() < 0.05 && (one.high - 0.64).abs() < 0.05,
            "{one:?}"
        );
        assert!(bootstrap_clustered_rate(&[(0, 0)], 1).is_none());
    }

    #[test]
    fn empirical_p_values() {
        // Hand-computed: 2 of 4 null draws are ≤ 1.0 → (1 + 2) / 5.
        assert_eq!(empirical_p(1.0, &[0.5, 1.0, 2.0, 3.0], Tail::Lower), 0.6);
        assert_eq!(empirical_p(4.0, &[0.5, 1.0, 2.0, 3.0], Tail::Upper), 0.2);
        assert_eq!(empirical_p(0.0, &[], Tail::Lower), 1.0);
        // Validity: with the observation drawn from the null, P(p ≤ α) ≤ α.
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let (trials, alpha) = (2000, 0.1);
        let rejected = (0..trials)
            .filter(|_| {
                let obs: f64 = rng.random();
                let null: Vec<f64> = (0..19).map(|_| rng.random()).collect();
                empirical_p(obs, &null, Tail::Lower) <= alpha
            })
            .count();
        // The exact rate is 2/20 = 0.1; 2,000 trials keep it under 0.125 with room to spare.
        assert!((rejected as f64 / trials as f64) < 0.125, "{rejected}");
    }
}
