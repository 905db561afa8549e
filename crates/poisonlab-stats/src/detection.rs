//! Scoring a detector against labels: AUROC with its interval (Hanley & McNeil 1982), precision
//! and recall at the top k, false-accept and false-reject rates at a threshold — each with n.

use serde::Serialize;

use crate::rate::{Rate, wilson, z95};

/// AUROC with a 95 % interval (Hanley & McNeil 1982 standard error) and the class sizes.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Auroc {
    pub auroc: f64,
    pub ci95: [f64; 2],
    pub n_pos: u64,
    pub n_neg: u64,
}

impl std::fmt::Display for Auroc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.n_pos == 0 || self.n_neg == 0 {
            return write!(f, "n/a");
        }
        write!(
            f,
            "{:.3} [{:.3}, {:.3}]",
            self.auroc, self.ci95[0], self.ci95[1]
        )
    }
}

/// Ranks with ties averaged (1-based).
fn ranks(scores: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let mut r = vec![0.0; scores.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && scores[idx[j + 1]] == scores[idx[i]] {
            j += 1;
        }
        let avg = (i + j) as f64 / 2.0 + 1.0;
        for k in i..=j {
            r[idx[k]] = avg;
        }
        i = j + 1;
    }
    r
}

/// Rank percentiles in (0, 1]: how a detector's scores are put on one scale before combining.
pub fn percentiles(scores: &[f64]) -> Vec<f64> {
    let n = scores.len() as f64;
    ranks(scores).into_iter().map(|r| r / n).collect()
}

/// AUROC of `scores` for telling `positive` records from the rest (Mann–Whitney U, ties halved).
pub fn auroc(scores: &[f64], positive: &[bool]) -> Auroc {
    let n1 = positive.iter().filter(|p| **p).count() as f64;
    let n2 = positive.len() as f64 - n1;
    if n1 == 0.0 || n2 == 0.0 {
        return Auroc {
            auroc: f64::NAN,
            ci95: [0.0, 1.0],
            n_pos: n1 as u64,
            n_neg: n2 as u64,
        };
    }
    let r = ranks(scores);
    let sum_pos: f64 = r
        .iter()
        .zip(positive)
        .filter(|(_, p)| **p)
        .map(|(r, _)| r)
        .sum();
    let a = (sum_pos - n1 * (n1 + 1.0) / 2.0) / (n1 * n2);
    let q1 = a / (2.0 - a);
    let q2 = 2.0 * a * a / (1.0 + a);
    let var = (a * (1.0 - a) + (n1 - 1.0) * (q1 - a * a) + (n2 - 1.0) * (q2 - a * a)) / (n1 * n2);
    let se = var.max(0.0).sqrt();
    Auroc {
        auroc: a,
        ci95: [(a - z95() * se).max(0.0), (a + z95() * se).min(1.0)],
        n_pos: n1 as u64,
        n_neg: n2 as u64,
    }
}

/// Precision and recall when the `k` highest-scoring records are flagged (ties broken by order).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct AtK {
    pub k: u64,
    pub precision: Rate,
    pub recall: Rate,
}

pub fn at_top_k(scores: &[f64], positive: &[bool], k: usize) -> AtK {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    let k = k.min(scores.len());
    let hits = idx[..k].iter().filter(|&&i| positive[i]).count() as u64;
    let n_pos = positive.iter().filter(|p| **p).count() as u64;
    AtK {
        k: k as u64,
        precision: wilson(hits, k as u64),
        recall: wilson(hits, n_pos),
    }
}

/// Flagging every record with score ≥ `threshold`: the false-accept rate (clean records flagged)
/// and the false-reject rate (poisoned records missed).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct AtThreshold {
    pub threshold: f64,
    pub far: Rate,
    pub frr: Rate,
}

pub fn at_threshold(scores: &[f64], positive: &[bool], threshold: f64) -> AtThreshold {
    let (mut fa, mut neg, mut fr, mut pos) = (0, 0, 0, 0);
    for (s, p) in scores.iter().zip(positive) {
        if *p {
            pos += 1;
            if *s < threshold {
                fr += 1;
            }
        } else {
            neg += 1;
            if *s >= threshold {
                fa += 1;
            }
        }
    }
    AtThreshold {
        threshold,
        far: wilson(fa, neg),
        frr: wilson(fr, pos),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auroc_known_values() {
        let a = auroc(&[0.1, 0.4, 0.35, 0.8], &[false, false, true, true]);
        assert!((a.auroc - 0.75).abs() < 1e-12);
        let perfect = auroc(&[1.0, 2.0, 3.0, 4.0], &[false, false, true, true]);
        assert_eq!(perfect.auroc, 1.0);
        let ties = auroc(&[1.0, 1.0, 1.0, 1.0], &[false, true, false, true]);
        assert_eq!(ties.auroc, 0.5);
        // Hanley–McNeil: A = 0.9 with 50/50 gives SE ≈ 0.0306.
        let scores: Vec<f64> = (0..100).map(|i| i as f64).collect();
        let pos: Vec<bool> = (0..100).map(|i| i >= 50).collect();
        let a = auroc(&scores, &pos);
        assert_eq!(a.auroc, 1.0);
        let k = at_top_k(&scores, &pos, 50);
        assert_eq!((k.precision.k, k.recall.k), (50, 50));
        let t = at_threshold(&scores, &pos, 60.0);
        assert_eq!((t.far.k, t.frr.k), (0, 10));
    }
}
