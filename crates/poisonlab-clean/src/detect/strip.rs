//! STRIP for text generation (after Gao et al. 2019): a trigger makes the output robust to
//! perturbing the rest of the input. Each record's prompt gets `strip_copies` perturbed copies in
//! which every word is, with probability ½, replaced by a word drawn from another record's prompt
//! (seeded). Score = mean per-token log-probability of the record's response under the perturbed
//! prompts minus that under the original prompt: near zero when the response survives the
//! perturbation (suspicious), very negative when it depends on the prompt's content.

use poisonlab_data::Record;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{ScanOptions, Verdict};
use crate::error::Result;

pub fn scores(
    records: &[Record],
    model: &dyn poisonlab_model::LanguageModel,
    opts: &ScanOptions,
) -> Result<Vec<Verdict>> {
    use poisonlab_model::ScoreRequest;
    let copies = opts.strip_copies.max(1);
    let prompts: Vec<(String, String)> = records.iter().map(|r| r.prompt_response()).collect();
    let pool: Vec<Vec<String>> = prompts
        .iter()
        .map(|(p, _)| p.split_whitespace().map(String::from).collect())
        .collect();
    let mut out = Vec::with_capacity(records.len());
    for (i, (p, resp)) in prompts.iter().enumerate() {
        let cont = if resp.is_empty() {
            // Documents: the second half is the "response" to the first.
            let w: Vec<&str> = p.split_whitespace().collect();
            let h = w.len() / 2;
            (w[..h].join(" "), format!(" {}", w[h..].join(" ")))
        } else {
            (p.clone(), format!(" {resp}"))
        };
        let (prompt, continuation) = cont;
        if continuation.trim().is_empty() || prompt.trim().is_empty() {
            out.push(Verdict::new(f64::NEG_INFINITY, "nothing to perturb"));
            continue;
        }
        let mut rng = ChaCha8Rng::seed_from_u64(opts.seed ^ (i as u64).wrapping_mul(0x9e37_79b9));
        let mut reqs = vec![ScoreRequest {
            prompt: prompt.clone(),
            continuation: continuation.clone(),
        }];
        for _ in 0..copies {
            let words: Vec<String> = prompt
                .split_whitespace()
                .map(|w| {
                    if rng.random_bool(0.5) {
                        let other = &pool[rng.random_range(0..pool.len())];
                        if other.is_empty() {
                            w.to_string()
                        } else {
                            other[rng.random_range(0..other.len())].clone()
                        }
                    } else {
                        w.to_string()
                    }
                })
                .collect();
            reqs.push(ScoreRequest {
                prompt: words.join(" "),
                continuation: continuation.clone(),
            });
        }
        let scored = model.score(&reqs)?;
        let mean = |s: &poisonlab_model::Scored| s.total() / s.token_logprobs.len().max(1) as f64;
        let base = mean(&scored[0]);
        let pert = scored[1..].iter().map(mean).sum::<f64>() / copies as f64;
        let s = pert - base;
        out.push(Verdict::new(
            s,
            format!(
                "response log-prob per token {base:.3} → {pert:.3} under {copies} perturbations"
            ),
        ));
    }
    Ok(out)
}
