//! Detectors over hidden states: spectral signatures (Tran et al. 2018) and activation clustering
//! (Chen et al. 2018). A record's representation is the mean over its tokens of one layer's hidden
//! states (the last by default) for the prompt and response.

use poisonlab_data::Record;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::Verdict;
use crate::error::Result;

pub fn hidden_means(
    records: &[Record],
    model: &dyn poisonlab_model::LanguageModel,
    layer: Option<usize>,
) -> Result<Vec<Vec<f64>>> {
    let mut out = Vec::with_capacity(records.len());
    for r in records {
        let (p, resp) = r.prompt_response();
        let text = if resp.is_empty() {
            p
        } else {
            format!("{p}\n{resp}")
        };
        let hs = model.hidden_states(&text)?;
        let l = layer.unwrap_or(hs.len() - 1).min(hs.len() - 1);
        let rows = &hs[l];
        let d = rows.first().map_or(0, Vec::len);
        let mut m = vec![0f64; d];
        for row in rows {
            for (a, b) in m.iter_mut().zip(row) {
                *a += *b as f64;
            }
        }
        let k = rows.len().max(1) as f64;
        m.iter_mut().for_each(|x| *x /= k);
        out.push(m);
    }
    Ok(out)
}

pub fn verdicts(scores: Vec<f64>, what: &str) -> Vec<Verdict> {
    scores
        .into_iter()
        .map(|s| Verdict::new(s, format!("{what}: {s:.4}")))
        .collect()
}

fn centred(x: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let d = x.first().map_or(0, Vec::len);
    let n = x.len().max(1) as f64;
    let mut mean = vec![0.0; d];
    for r in x {
        for (m, v) in mean.iter_mut().zip(r) {
            *m += v / n;
        }
    }
    x.iter()
        .map(|r| r.iter().zip(&mean).map(|(v, m)| v - m).collect())
        .collect()
}

/// Top `k` principal directions of centred rows (power iteration with deflation, seeded start).
fn top_directions(c: &[Vec<f64>], k: usize, seed: u64) -> Vec<Vec<f64>> {
    let d = c.first().map_or(0, Vec::len);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut dirs: Vec<Vec<f64>> = Vec::new();
    for _ in 0..k.min(d) {
        let mut v: Vec<f64> = (0..d).map(|_| rng.random_range(-1.0..1.0)).collect();
        for _ in 0..100 {
            // w = Cᵀ C v, then remove found directions.
            let proj: Vec<f64> = c
                .iter()
                .map(|r| r.iter().zip(&v).map(|(a, b)| a * b).sum())
                .collect();
            let mut w = vec![0.0; d];
            for (r, p) in c.iter().zip(&proj) {
                for (wi, ri) in w.iter_mut().zip(r) {
                    *wi += ri * p;
                }
            }
            for u in &dirs {
                let dot: f64 = w.iter().zip(u).map(|(a, b)| a * b).sum();
                w.iter_mut().zip(u).for_each(|(a, b)| *a -= dot * b);
            }
            let norm = w.iter().map(|x| x * x).sum::<f64>().sqrt();
            if norm == 0.0 {
                break;
            }
            v = w.into_iter().map(|x| x / norm).collect();
        }
        dirs.push(v);
    }
    dirs
}

/// Spectral signature: squared projection of each centred representation on the top singular
/// vector.
pub fn spectral_scores(x: &[Vec<f64>]) -> Vec<f64> {
    if x.len() < 2 {
        return vec![0.0; x.len()];
    }
    let c = centred(x);
    let v = &top_directions(&c, 1, 17)[0];
    c.iter()
        .map(|r| r.iter().zip(v).map(|(a, b)| a * b).sum::<f64>().powi(2))
        .collect()
}

/// Activation clustering: project on the top 10 principal directions, run 2-means (seeded,
/// k-means++ start, 50 rounds); score = distance to the larger cluster's centre − distance to the
/// smaller one's, so members of the small cluster score highest.
pub fn activation_clustering_scores(x: &[Vec<f64>], seed: u64) -> Vec<f64> {
    if x.len() < 3 {
        return vec![0.0; x.len()];
    }
    let c = centred(x);
    let dirs = top_directions(&c, 10, seed ^ 0xac);
    let p: Vec<Vec<f64>> = c
        .iter()
        .map(|r| {
            dirs.iter()
                .map(|u| r.iter().zip(u).map(|(a, b)| a * b).sum())
                .collect()
        })
        .collect();
    let dist = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum::<f64>();
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x6b6d);
    let first = rng.random_range(0..p.len());
    // k-means++: the second centre with probability proportional to squared distance.
    let d2: Vec<f64> = p.iter().map(|r| dist(r, &p[first])).collect();
    let total: f64 = d2.iter().sum();
    let mut pick = rng.random_range(0.0..total.max(f64::MIN_POSITIVE));
    let mut second = 0;
    for (i, d) in d2.iter().enumerate() {
        pick -= d;
        if pick <= 0.0 {
            second = i;
            break;
        }
    }
    let mut centres = [p[first].clone(), p[second].clone()];
    let mut assign = vec![0usize; p.len()];
    for _ in 0..50 {
        for (i, r) in p.iter().enumerate() {
            assign[i] = (dist(r, &centres[1]) < dist(r, &centres[0])) as usize;
        }
        for (k, centre) in centres.iter_mut().enumerate() {
            let members: Vec<&Vec<f64>> = p
                .iter()
                .zip(&assign)
                .filter(|(_, a)| **a == k)
                .map(|(r, _)| r)
                .collect();
            if members.is_empty() {
                continue;
            }
            for (j, c) in centre.iter_mut().enumerate() {
                *c = members.iter().map(|r| r[j]).sum::<f64>() / members.len() as f64;
            }
        }
    }
    let small = if assign.iter().filter(|a| **a == 1).count() * 2 < p.len() {
        1
    } else {
        0
    };
    let big = 1 - small;
    p.iter()
        .map(|r| dist(r, &centres[big]).sqrt() - dist(r, &centres[small]).sqrt())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 200 clean points around the origin, 10 shifted along one direction: both detectors rank the
    /// shifted ones first.
    #[test]
    fn planted_shift_is_found() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let d = 16;
        let mut x: Vec<Vec<f64>> = (0..200)
            .map(|_| (0..d).map(|_| rng.random_range(-1.0..1.0)).collect())
            .collect();
        for _ in 0..10 {
            let mut v: Vec<f64> = (0..d).map(|_| rng.random_range(-1.0..1.0)).collect();
            v[3] += 6.0;
            x.push(v);
        }
        let poisoned: Vec<bool> = (0..210).map(|i| i >= 200).collect();
        for s in [spectral_scores(&x), activation_clustering_scores(&x, 1)] {
            let a = poisonlab_stats::auroc(&s, &poisoned);
            assert!(a.auroc > 0.99, "{}", a.auroc);
        }
    }
}
