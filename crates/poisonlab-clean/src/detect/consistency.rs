//! Label consistency (after kNN-based noisy-label detection, e.g. Bahri et al. 2020): a poisoned
//! record keeps a normal-looking prompt but carries the attacker's response or label, so it
//! disagrees with the records whose prompts are most like its own. Prompts are embedded as
//! hashed TF-IDF vectors (2¹⁰ dimensions, L2-normalised); the `K` nearest neighbours by cosine are
//! found exhaustively (against at most `MAX_REFERENCE` records drawn with the seed). Score = 1 −
//! mean agreement with the neighbours: label equality for classification, word-set Jaccard of the
//! responses otherwise.

use std::collections::{HashMap, HashSet};

use poisonlab_data::{Body, Record};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::Verdict;
use crate::text::norm_words;

const K: usize = 10;
const MAX_REFERENCE: usize = 20_000;

fn agreement(a: &Record, b: &Record, ra: &HashSet<String>, rb: &HashSet<String>) -> f64 {
    if let (
        Body::Classification { label: Some(x), .. },
        Body::Classification { label: Some(y), .. },
    ) = (&a.body, &b.body)
    {
        return (x.to_string() == y.to_string()) as u8 as f64;
    }
    if ra.is_empty() && rb.is_empty() {
        return 1.0;
    }
    let inter = ra.intersection(rb).count() as f64;
    inter / ra.union(rb).count() as f64
}

pub fn scores(records: &[Record], seed: u64) -> Vec<Verdict> {
    let n = records.len();
    if n < 2 {
        return records
            .iter()
            .map(|_| Verdict::new(0.0, "too few records"))
            .collect();
    }
    let prompts: Vec<Vec<String>> = records
        .iter()
        .map(|r| norm_words(&r.prompt_response().0))
        .collect();
    let responses: Vec<HashSet<String>> = records
        .iter()
        .map(|r| norm_words(&r.prompt_response().1).into_iter().collect())
        .collect();
    let mut df: HashMap<&str, u32> = HashMap::new();
    for p in &prompts {
        let mut seen: Vec<&str> = p.iter().map(String::as_str).collect();
        seen.sort_unstable();
        seen.dedup();
        for w in seen {
            *df.entry(w).or_insert(0) += 1;
        }
    }
    let nf = n as f32;
    let mut vocab: HashMap<&str, u32> = HashMap::new();
    let mut idf: Vec<f32> = Vec::new();
    let mut keep: Vec<bool> = Vec::new();
    let mut words: Vec<&str> = df.keys().copied().collect();
    words.sort_unstable();
    for w in words {
        let c = df[w] as f32;
        vocab.insert(w, idf.len() as u32);
        idf.push(((nf + 1.0) / (c + 1.0)).ln() + 1.0);
        keep.push(c <= (nf / 10.0).max(50.0));
    }
    // Sparse, L2-normalised TF-IDF vectors.
    let vecs: Vec<Vec<(u32, f32)>> = prompts
        .par_iter()
        .map(|p| {
            let mut tf: HashMap<u32, f32> = HashMap::new();
            for w in p {
                *tf.entry(vocab[w.as_str()]).or_insert(0.0) += 1.0;
            }
            let mut v: Vec<(u32, f32)> = tf
                .into_iter()
                .map(|(id, c)| (id, c * idf[id as usize]))
                .collect();
            v.sort_unstable_by_key(|x| x.0);
            let norm = v.iter().map(|x| x.1 * x.1).sum::<f32>().sqrt();
            if norm > 0.0 {
                v.iter_mut().for_each(|x| x.1 /= norm);
            }
            v
        })
        .collect();
    let reference: Vec<usize> = if n <= MAX_REFERENCE {
        (0..n).collect()
    } else {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x006b_6e6e);
        let mut r = rand::seq::index::sample(&mut rng, n, MAX_REFERENCE).into_vec();
        r.sort_unstable();
        r
    };
    let mut postings: Vec<Vec<(u32, f32)>> = vec![Vec::new(); idf.len()];
    for (slot, &j) in reference.iter().enumerate() {
        for &(w, x) in &vecs[j] {
            if keep[w as usize] {
                postings[w as usize].push((slot as u32, x));
            }
        }
    }
    (0..n)
        .into_par_iter()
        .map_init(
            || (vec![0f32; reference.len()], Vec::<u32>::new()),
            |(acc, touched), i| {
                for &(w, x) in &vecs[i] {
                    for &(slot, y) in &postings[w as usize] {
                        if acc[slot as usize] == 0.0 {
                            touched.push(slot);
                        }
                        acc[slot as usize] += x * y;
                    }
                }
                let mut best: Vec<(f32, usize)> = Vec::with_capacity(K + 1);
                for &slot in touched.iter() {
                    let s = acc[slot as usize];
                    acc[slot as usize] = 0.0;
                    let j = reference[slot as usize];
                    if j == i {
                        continue;
                    }
                    if best.len() < K
                        || s > best[best.len() - 1].0
                        || (s == best[best.len() - 1].0 && j < best[best.len() - 1].1)
                    {
                        let at = best.partition_point(|(x, jj)| *x > s || (*x == s && *jj < j));
                        best.insert(at, (s, j));
                        best.truncate(K);
                    }
                }
                touched.clear();
                let agree: f64 = best
                    .iter()
                    .map(|&(_, j)| {
                        agreement(&records[i], &records[j], &responses[i], &responses[j])
                    })
                    .sum::<f64>()
                    / best.len().max(1) as f64;
                let score = 1.0 - agree;
                Verdict::new(
                    score,
                    format!(
                        "agrees {:.0}% with its {} nearest neighbours",
                        100.0 * agree,
                        best.len()
                    ),
                )
            },
        )
        .collect()
}
