//! Choosing the next token from logits: greedy, tempered and nucleus sampling, top-k lists.

use rand::RngExt;
use rand_chacha::ChaCha8Rng;

use crate::lm::GenerateOptions;

/// The `k` most likely tokens and their log-probabilities (ties by lower id), highest first.
pub(crate) fn top_k(logits: &[f32], k: usize) -> Vec<(u32, f32)> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let lse = max + logits.iter().map(|&x| (x - max).exp()).sum::<f32>().ln();
    let mut idx: Vec<usize> = (0..logits.len()).collect();
    idx.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]).then(a.cmp(&b)));
    idx.into_iter()
        .take(k)
        .map(|i| (i as u32, logits[i] - lse))
        .collect()
}

/// Picks the next token: argmax at temperature 0, else a (nucleus) sample. Returns its log-prob
/// under the model's untempered distribution.
pub(crate) fn pick(logits: &[f32], opts: &GenerateOptions, rng: &mut ChaCha8Rng) -> (u32, f32) {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let lse = max + logits.iter().map(|&x| (x - max).exp()).sum::<f32>().ln();
    let logp = |i: usize| logits[i] - lse;
    if opts.temperature <= 0.0 {
        // First maximum, as torch.argmax does.
        let mut best = 0;
        for (i, &x) in logits.iter().enumerate() {
            if x > logits[best] {
                best = i;
            }
        }
        return (best as u32, logp(best));
    }
    let t = opts.temperature;
    let mut probs: Vec<(usize, f32)> = logits
        .iter()
        .enumerate()
        .map(|(i, &x)| (i, ((x - max) / t).exp()))
        .collect();
    let z: f32 = probs.iter().map(|p| p.1).sum();
    probs.iter_mut().for_each(|p| p.1 /= z);
    if opts.top_p < 1.0 {
        probs.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let mut acc = 0.0;
        let mut keep = 0;
        for p in &probs {
            acc += p.1;
            keep += 1;
            if acc >= opts.top_p {
                break;
            }
        }
        probs.truncate(keep);
    }
    let total: f32 = probs.iter().map(|p| p.1).sum();
    let mut u: f32 = rng.random::<f32>() * total;
    for &(i, p) in &probs {
        if u < p {
            return (i as u32, logp(i));
        }
        u -= p;
    }
    let last = probs.last().map_or(0, |p| p.0);
    (last as u32, logp(last))
}
