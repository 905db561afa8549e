//! ONION (Qi et al. 2021): a trigger word is an outlier — removing it makes the prompt much more
//! fluent. Score = the largest drop in log-perplexity from removing one word of the prompt. The
//! language model is a bigram Kneser–Ney model fitted on `reference` (or on the data itself), or
//! the given model, which scores every one-word removal (prompts cut to their first 64 words).

use poisonlab_data::Record;
use rayon::prelude::*;

use super::{ScanOptions, Verdict};
use crate::error::Result;
use crate::ngram::NgramLm;

const MODEL_MAX_WORDS: usize = 64;

pub fn scores(records: &[Record], opts: &ScanOptions) -> Result<Vec<Verdict>> {
    let prompts: Vec<String> = records.iter().map(|r| r.prompt_response().0).collect();
    if let Some(m) = &opts.model {
        return model_scores(&prompts, m.as_ref());
    }
    let lm = match &opts.reference {
        Some(p) => {
            let reader = poisonlab_data::RecordReader::open(p, &opts.read)?;
            let mut texts = Vec::new();
            for item in reader {
                texts.push(item?.record.full_text());
            }
            NgramLm::fit(&texts)
        }
        None => NgramLm::fit(&prompts),
    };
    Ok(prompts
        .par_iter()
        .map(|p| {
            let words: Vec<&str> = p.split_whitespace().collect();
            let ids = lm.ids(p);
            if ids.is_empty() {
                return Verdict::new(0.0, "empty prompt");
            }
            let drops = lm.removal_drops(&ids);
            let (i, d) = drops
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1).then(b.0.cmp(&a.0)))
                .map(|(i, d)| (i, *d))
                .unwrap_or((0, 0.0));
            // ids come from the normalised words; show the word as written when counts agree.
            let norm = crate::text::norm_words(p);
            let shown = if norm.len() == words.len() {
                words[i]
            } else {
                norm[i].as_str()
            };
            Verdict::new(
                d,
                format!("removing `{shown}` lowers log-perplexity by {d:.3}"),
            )
        })
        .collect())
}

fn model_scores(
    prompts: &[String],
    m: &dyn poisonlab_model::LanguageModel,
) -> Result<Vec<Verdict>> {
    use poisonlab_model::ScoreRequest;
    let mut out = Vec::with_capacity(prompts.len());
    for p in prompts {
        let words: Vec<&str> = p.split_whitespace().take(MODEL_MAX_WORDS).collect();
        if words.len() < 2 {
            out.push(Verdict::new(0.0, "fewer than two words"));
            continue;
        }
        let mut reqs = vec![ScoreRequest {
            prompt: String::new(),
            continuation: words.join(" "),
        }];
        for i in 0..words.len() {
            let mut w = words.clone();
            w.remove(i);
            reqs.push(ScoreRequest {
                prompt: String::new(),
                continuation: w.join(" "),
            });
        }
        let scored = m.score(&reqs)?;
        let lppl = |s: &poisonlab_model::Scored| -s.total() / s.token_logprobs.len().max(1) as f64;
        let base = lppl(&scored[0]);
        let (i, d) = scored[1..]
            .iter()
            .enumerate()
            .map(|(i, s)| (i, base - lppl(s)))
            .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)))
            .unwrap_or((0, 0.0));
        out.push(Verdict::new(
            d,
            format!(
                "removing `{}` lowers log-perplexity by {d:.3} (model)",
                words[i]
            ),
        ));
    }
    Ok(out)
}
