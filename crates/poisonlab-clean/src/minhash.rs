//! MinHash signatures and LSH banding for near-duplicate detection (Broder 1997; the banding of
//! Leskovec, Rajaraman & Ullman, ch. 3 — the scheme datasketch's `MinHashLSH` implements).
//!
//! Each shingle is hashed once to 32 bits; permutation `i` is `x ↦ a_i·x + b_i (mod 2³²)` with odd
//! `a_i`, a bijection of the 32-bit hash space, so the signature is the minimum over shingles for
//! each of `perms` permutations. The loop over permutations is branch-free and vectorises.
//! The estimate of Jaccard similarity is the fraction of equal signature entries; its standard
//! error is `sqrt(J(1−J)/perms)` (checked by a statistical test).

use std::collections::HashMap;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::text::{hash64, shingle_hashes};

/// A family of `perms` hash permutations and the shingle size.
#[derive(Debug, Clone)]
pub struct MinHasher {
    a: Vec<u32>,
    b: Vec<u32>,
    pub shingle: usize,
}

impl MinHasher {
    pub fn new(perms: usize, shingle: usize, seed: u64) -> MinHasher {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x6d69_6e68_6173_6821);
        let a = (0..perms).map(|_| rng.random::<u32>() | 1).collect();
        let b = (0..perms).map(|_| rng.random::<u32>()).collect();
        MinHasher { a, b, shingle }
    }

    pub fn perms(&self) -> usize {
        self.a.len()
    }

    /// The signature of a set of shingle hashes; all `u32::MAX` for an empty set.
    pub fn signature_of(&self, hashes: &[u32]) -> Vec<u32> {
        let mut sig = vec![u32::MAX; self.a.len()];
        for &x in hashes {
            for ((s, &a), &b) in sig.iter_mut().zip(&self.a).zip(&self.b) {
                let v = a.wrapping_mul(x).wrapping_add(b);
                *s = (*s).min(v);
            }
        }
        sig
    }

    /// The signature of a text's word shingles.
    pub fn signature(&self, text: &str) -> Vec<u32> {
        self.signature_of(&shingle_hashes(text, self.shingle))
    }
}

/// Estimated Jaccard similarity: the fraction of equal entries of two signatures.
pub fn estimate(a: &[u32], b: &[u32]) -> f64 {
    if a.is_empty() {
        return 0.0;
    }
    a.iter().zip(b).filter(|(x, y)| x == y).count() as f64 / a.len() as f64
}

/// Exact Jaccard similarity of two shingle-hash sets (sorted and deduplicated here).
pub fn jaccard(a: &[u32], b: &[u32]) -> f64 {
    let mut a = a.to_vec();
    let mut b = b.to_vec();
    a.sort_unstable();
    a.dedup();
    b.sort_unstable();
    b.dedup();
    if a.is_empty() && b.is_empty() {
        return 1.0;
    }
    let (mut i, mut j, mut inter) = (0, 0, 0usize);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                inter += 1;
                i += 1;
                j += 1;
            }
        }
    }
    inter as f64 / (a.len() + b.len() - inter) as f64
}

/// Probability that two sets of Jaccard `s` share at least one band.
pub fn collision_probability(s: f64, bands: usize, rows: usize) -> f64 {
    1.0 - (1.0 - s.powi(rows as i32)).powi(bands as i32)
}

/// Bands × rows for a Jaccard threshold, minimising the equally weighted areas of false positives
/// (below the threshold) and false negatives (above it), over `bands · rows ≤ perms` — the same
/// criterion datasketch uses.
pub fn optimal_bands(threshold: f64, perms: usize) -> (usize, usize) {
    let integrate = |f: &dyn Fn(f64) -> f64, lo: f64, hi: f64| {
        let n = 200;
        let h = (hi - lo) / n as f64;
        (0..n).map(|i| f(lo + (i as f64 + 0.5) * h)).sum::<f64>() * h
    };
    let mut best = (1, perms);
    let mut best_err = f64::INFINITY;
    for b in 1..=perms {
        for r in 1..=perms / b {
            let fp = integrate(&|s| collision_probability(s, b, r), 0.0, threshold);
            let fneg = integrate(&|s| 1.0 - collision_probability(s, b, r), threshold, 1.0);
            let err = 0.5 * fp + 0.5 * fneg;
            if err < best_err {
                best_err = err;
                best = (b, r);
            }
        }
    }
    best
}

/// An LSH index over signatures: one hash table per band.
pub struct Lsh {
    pub bands: usize,
    pub rows: usize,
    tables: Vec<HashMap<u64, Vec<u32>>>,
}

impl Lsh {
    pub fn new(bands: usize, rows: usize) -> Lsh {
        Lsh {
            bands,
            rows,
            tables: (0..bands).map(|_| HashMap::new()).collect(),
        }
    }

    fn key(&self, sig: &[u32], band: usize) -> u64 {
        let part = &sig[band * self.rows..(band + 1) * self.rows];
        let mut bytes = Vec::with_capacity(part.len() * 4);
        for v in part {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        hash64(&bytes)
    }

    /// Band keys of a signature (computed once; used for both query and insert).
    pub fn keys(&self, sig: &[u32]) -> Vec<u64> {
        (0..self.bands).map(|b| self.key(sig, b)).collect()
    }

    /// Items sharing at least one band with `keys`, in insertion order, without repeats.
    pub fn candidates(&self, keys: &[u64]) -> Vec<u32> {
        let mut out: Vec<u32> = Vec::new();
        for (t, k) in self.tables.iter().zip(keys) {
            if let Some(items) = t.get(k) {
                out.extend(items);
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    pub fn insert(&mut self, keys: &[u64], item: u32) {
        for (t, k) in self.tables.iter_mut().zip(keys) {
            t.entry(*k).or_default().push(item);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Estimated Jaccard is within the expected error of the exact Jaccard: over many random pairs
    /// of planted overlap, the standardised errors (estimate − J)/sqrt(J(1−J)/P) have mean ≈ 0 and
    /// variance ≈ 1, and no pair is beyond 4.5 standard errors.
    #[test]
    fn estimate_is_within_the_expected_error() {
        let perms = 256;
        let mh = MinHasher::new(perms, 1, 7);
        let mut rng = ChaCha8Rng::seed_from_u64(99);
        let mut zs = Vec::new();
        for trial in 0..400 {
            let n = 200 + (trial % 5) * 100;
            let shared = rng.random_range(0..=n);
            let base: Vec<u32> = (0..(2 * n - shared)).map(|_| rng.random::<u32>()).collect();
            let a: Vec<u32> = base[..n].to_vec();
            let b: Vec<u32> = base[n - shared..].to_vec();
            let j = jaccard(&a, &b);
            let est = estimate(&mh.signature_of(&a), &mh.signature_of(&b));
            let se = (j * (1.0 - j) / perms as f64).sqrt();
            if se > 0.0 {
                let z = (est - j) / se;
                assert!(
                    z.abs() < 4.5,
                    "trial {trial}: J = {j:.3}, estimate {est:.3}, z = {z:.2}"
                );
                zs.push(z);
            } else {
                assert!((est - j).abs() < 1e-9);
            }
        }
        let m = zs.iter().sum::<f64>() / zs.len() as f64;
        let v = zs.iter().map(|z| (z - m) * (z - m)).sum::<f64>() / (zs.len() - 1) as f64;
        // With ~400 pairs the mean of z has s.e. ≈ 0.05 and the variance ≈ 0.07.
        assert!(m.abs() < 0.2, "mean z = {m}");
        assert!((0.7..1.3).contains(&v), "var z = {v}");
    }

    #[test]
    fn near_duplicate_pair_at_a_known_jaccard() {
        // 40 words; the second text changes the last 4 words: 5-shingles shared 32 of 40 → J = 32/40.
        let words: Vec<String> = (0..40).map(|i| format!("w{i}")).collect();
        let a = words.join(" ");
        let mut w2 = words.clone();
        for w in w2.iter_mut().skip(36) {
            w.push('x');
        }
        let b = w2.join(" ");
        let (sa, sb) = (shingle_hashes(&a, 5), shingle_hashes(&b, 5));
        let j = jaccard(&sa, &sb);
        assert!((j - 32.0 / 40.0).abs() < 1e-9, "{j}");
        let mh = MinHasher::new(128, 5, 1);
        let est = estimate(&mh.signature(&a), &mh.signature(&b));
        assert!(
            (est - j).abs() < 4.0 * (j * (1.0 - j) / 128.0).sqrt(),
            "{est}"
        );
        let (bands, rows) = optimal_bands(0.7, 128);
        assert!(bands * rows <= 128);
        let mut lsh = Lsh::new(bands, rows);
        lsh.insert(&lsh.keys(&mh.signature(&a)), 0);
        assert_eq!(lsh.candidates(&lsh.keys(&mh.signature(&b))), vec![0]);
        let unrelated = (0..40)
            .map(|i| format!("z{i}"))
            .collect::<Vec<_>>()
            .join(" ");
        assert!(
            lsh.candidates(&lsh.keys(&mh.signature(&unrelated)))
                .is_empty()
        );
    }

    #[test]
    fn banding_threshold_is_near_the_target() {
        for t in [0.5, 0.7, 0.8, 0.9] {
            let (b, r) = optimal_bands(t, 128);
            let s_half = (1.0 / b as f64).powf(1.0 / r as f64);
            assert!((s_half - t).abs() < 0.15, "t {t}: b {b} r {r} → {s_half}");
        }
    }
}
