//! Records → token sequences for each stage, and the deterministic batch order.

use std::path::Path;

use poisonlab_data::{Body, ReadOptions, Record, RecordReader};
use poisonlab_model::Tokenizer;
use poisonlab_model::tokenizer::EOS;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::error::{Error, Result};

/// A token sequence with the loss on targets at positions `>= loss_from`.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    pub ids: Vec<u32>,
    pub loss_from: usize,
}

/// A preference pair as token ids: `prompt` is shared by both completions.
#[derive(Debug, Clone, PartialEq)]
pub struct PairExample {
    pub prompt: Vec<u32>,
    pub chosen: Vec<u32>,
    pub rejected: Vec<u32>,
}

/// Reads every record of `path`; a bad record is an error (training does not quarantine).
pub fn read_records(path: &Path, max: usize) -> Result<Vec<Record>> {
    let mut out = Vec::new();
    for item in RecordReader::open(path, &ReadOptions::default())? {
        out.push(item?.record);
        if max > 0 && out.len() >= max {
            break;
        }
    }
    if out.is_empty() {
        return Err(Error::Invalid(format!("{}: no records", path.display())));
    }
    Ok(out)
}

/// The text a record contributes to pre-training.
pub fn pretrain_text(r: &Record) -> String {
    match &r.body {
        Body::Pretrain { text }
        | Body::Passage { text, .. }
        | Body::Classification { text, .. } => text.clone(),
        Body::Instruction {
            instruction,
            input,
            output,
            ..
        } => format!("{instruction}\n{input}\n{output}"),
        Body::Chat { messages } => messages
            .iter()
            .map(|m| m.content.as_str())
            .collect::<Vec<_>>()
            .join("\n"),
        Body::Preference { prompt, chosen, .. } => format!("{prompt}{chosen}"),
        Body::Cot {
            question,
            steps,
            answer,
        } => format!("{question}\n{}\n{answer}", steps.join("\n")),
        Body::Icl {
            demos,
            query,
            answer,
            ..
        } => {
            let d: Vec<String> = demos
                .iter()
                .map(|d| format!("{}\n{}", d.input, d.output))
                .collect();
            format!("{}\n{query}\n{answer}", d.join("\n"))
        }
        Body::Query { text, .. } => text.clone(),
        Body::Memory { content, .. } => content.clone(),
    }
}

/// Documents, each followed by the end-of-text token, as one stream.
pub fn token_stream(records: &[Record], tok: &Tokenizer) -> Result<Vec<u32>> {
    let eos = tok.token_id(EOS);
    let mut out = Vec::new();
    for r in records {
        out.extend(tok.encode(&pretrain_text(r))?);
        out.extend(eos);
    }
    Ok(out)
}

/// The (prompt, response) an SFT record trains on: the last assistant turn given everything before.
pub fn sft_pair(r: &Record) -> Result<(String, String)> {
    match &r.body {
        Body::Instruction {
            instruction,
            input,
            output,
            system,
        } => {
            let user = if input.is_empty() {
                instruction.clone()
            } else {
                format!("{instruction}\n\n{input}")
            };
            Ok((
                Tokenizer::chat_prompt(system.as_deref(), &[], &user),
                output.clone(),
            ))
        }
        Body::Chat { messages } => {
            let (system, rest) = match messages.first() {
                Some(m) if m.role == "system" => (Some(m.content.as_str()), &messages[1..]),
                _ => (None, &messages[..]),
            };
            let last = rest
                .len()
                .checked_sub(1)
                .filter(|&i| rest[i].role == "assistant" && i >= 1 && rest[i - 1].role == "user");
            let Some(last) = last else {
                return Err(Error::Invalid(format!(
                    "record `{}`: a chat must end with a user turn answered by the assistant",
                    r.id
                )));
            };
            let turns: Vec<(&str, &str)> = rest[..last - 1]
                .chunks(2)
                .filter(|c| c.len() == 2)
                .map(|c| (c[0].content.as_str(), c[1].content.as_str()))
                .collect();
            Ok((
                Tokenizer::chat_prompt(system, &turns, &rest[last - 1].content),
                rest[last].content.clone(),
            ))
        }
        Body::Cot {
            question,
            steps,
            answer,
        } => Ok((
            Tokenizer::chat_prompt(None, &[], question),
            poisonlab_data::record::cot_rationale(steps, answer),
        )),
        _ => Err(Error::Invalid(format!(
            "record `{}`: a {} record is not SFT data",
            r.id,
            r.kind()
        ))),
    }
}

/// SFT examples, cut to `context + 1` tokens (the response is what gets cut).
pub fn sft_examples(records: &[Record], tok: &Tokenizer, context: usize) -> Result<Vec<Example>> {
    let mut out = Vec::with_capacity(records.len());
    for r in records {
        let (prompt, response) = sft_pair(r)?;
        let (mut ids, n) = tok.encode_pair(&prompt, &response)?;
        if n >= context {
            continue; // a prompt that fills the context leaves nothing to learn
        }
        ids.truncate(context + 1);
        out.push(Example { ids, loss_from: n });
    }
    if out.is_empty() {
        return Err(Error::Invalid("no SFT example fits the context".into()));
    }
    Ok(out)
}

pub fn pair_examples(
    records: &[Record],
    tok: &Tokenizer,
    context: usize,
) -> Result<Vec<PairExample>> {
    let eos = tok.token_id(EOS);
    let mut out = Vec::with_capacity(records.len());
    for r in records {
        let Body::Preference {
            prompt,
            chosen,
            rejected,
        } = &r.body
        else {
            return Err(Error::Invalid(format!(
                "record `{}`: a {} record is not a preference pair",
                r.id,
                r.kind()
            )));
        };
        let p = tok.encode(&Tokenizer::chat_prompt(None, &[], prompt))?;
        if p.len() >= context {
            continue;
        }
        let room = context + 1 - p.len();
        let completion = |s: &str| -> Result<Vec<u32>> {
            let mut ids = tok.encode(s)?;
            ids.extend(eos);
            ids.truncate(room);
            Ok(ids)
        };
        out.push(PairExample {
            prompt: p,
            chosen: completion(chosen)?,
            rejected: completion(rejected)?,
        });
    }
    if out.is_empty() {
        return Err(Error::Invalid("no preference pair fits the context".into()));
    }
    Ok(out)
}

/// Which example sits at each global position: a fresh permutation per epoch, from the seed alone,
/// so a resumed run sees exactly the batches an uninterrupted one would.
pub struct Order {
    n: usize,
    seed: u64,
    epoch: Option<(usize, Vec<usize>)>,
}

impl Order {
    pub fn new(n: usize, seed: u64) -> Order {
        Order {
            n,
            seed,
            epoch: None,
        }
    }

    pub fn at(&mut self, global: usize) -> usize {
        let (epoch, pos) = (global / self.n, global % self.n);
        if self.epoch.as_ref().is_none_or(|(e, _)| *e != epoch) {
            let mut perm: Vec<usize> = (0..self.n).collect();
            let mut rng = ChaCha8Rng::seed_from_u64(
                self.seed ^ (epoch as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15),
            );
            perm.shuffle(&mut rng);
            self.epoch = Some((epoch, perm));
        }
        self.epoch.as_ref().map_or(pos, |(_, p)| p[pos])
    }
}

/// Cross-entropy (nats/token) of `eval` under the add-one-smoothed unigram distribution of
/// `train`: the loss a model that ignores context would reach. Pre-training must beat it.
pub fn unigram_baseline(train: &[u32], eval: &[u32], vocab: usize) -> f64 {
    let mut counts = vec![1.0f64; vocab];
    for &t in train {
        if let Some(c) = counts.get_mut(t as usize) {
            *c += 1.0;
        }
    }
    let total: f64 = counts.iter().sum();
    let n = eval.len().max(1) as f64;
    eval.iter()
        .map(|&t| -(counts.get(t as usize).copied().unwrap_or(1.0) / total).ln())
        .sum::<f64>()
        / n
}
