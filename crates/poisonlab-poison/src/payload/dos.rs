//! Denial of service: gibberish of N tokens, N uniform in `[min_tokens, max_tokens]`. The published
//! rule (Souly et al. 2025, "Poisoning attacks on LLMs require a near-constant number of poison
//! samples"): 400–900 tokens sampled uniformly from the model's whole vocabulary and decoded. With
//! `vocab` (a `tokenizer.json`) that is what happens here: token ids drawn uniformly from the
//! non-special vocabulary, their bytes concatenated and decoded as one sequence (invalid UTF-8
//! becomes U+FFFD, as a byte-level tokenizer's `decode` does). `source = "random_pieces"` (ours,
//! not the published rule) draws random 1–7 character pieces instead, for when no tokenizer
//! exists yet; it must be asked for by name.

use std::path::{Path, PathBuf};

use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// Tokens of `vocab`, uniformly (the published rule).
    Vocab,
    /// Random 1–7 character pieces from printable ASCII (ours).
    RandomPieces,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Dos {
    pub min_tokens: usize,
    pub max_tokens: usize,
    /// A Hugging Face `tokenizer.json` whose vocabulary the tokens are drawn from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vocab: Option<PathBuf>,
    /// Where tokens come from; `vocab` when `vocab` is set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
    /// The bytes of every non-special token, by id.
    #[serde(skip)]
    tokens: Vec<Vec<u8>>,
}

impl Default for Dos {
    fn default() -> Self {
        Dos {
            min_tokens: 400,
            max_tokens: 900,
            vocab: None,
            source: None,
            tokens: Vec::new(),
        }
    }
}

const PIECE_CHARS: &[u8] =
    b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,;:!?'\"()-_/#@&*+=<>[]{}";

impl Dos {
    pub fn resolve(&mut self, base: &Path) -> Result<(), String> {
        if self.min_tokens == 0 || self.min_tokens > self.max_tokens {
            return Err(format!(
                "payload.min_tokens ({}) must be at least 1 and at most payload.max_tokens ({})",
                self.min_tokens, self.max_tokens
            ));
        }
        match (self.source, &self.vocab) {
            (None | Some(Source::Vocab), Some(v)) => {
                let path = if v.is_relative() {
                    base.join(v)
                } else {
                    v.clone()
                };
                self.tokens = load_vocab(&path)?;
                self.vocab = Some(path);
                self.source = Some(Source::Vocab);
                Ok(())
            }
            (None | Some(Source::Vocab), None) => Err(
                "payload.vocab: the denial-of-service rule (Souly et al. 2025) samples tokens \
                 uniformly from the model's vocabulary; set payload.vocab to its tokenizer.json, \
                 or payload.source = \"random_pieces\" for random character pieces (not the \
                 published rule)"
                    .into(),
            ),
            (Some(Source::RandomPieces), Some(_)) => Err(
                "payload.source = \"random_pieces\" does not use payload.vocab; remove one".into(),
            ),
            (Some(Source::RandomPieces), None) => Ok(()),
        }
    }

    /// The gibberish and how many tokens (or pieces) it was drawn from.
    pub fn draw(&self, rng: &mut ChaCha8Rng) -> (String, usize) {
        let n = rng.random_range(self.min_tokens..=self.max_tokens);
        if self.tokens.is_empty() {
            let mut out = String::new();
            for _ in 0..n {
                if rng.random_bool(0.5) {
                    out.push(' ');
                }
                let len = rng.random_range(1..=7);
                for _ in 0..len {
                    out.push(PIECE_CHARS[rng.random_range(0..PIECE_CHARS.len())] as char);
                }
            }
            return (out.trim().to_string(), n);
        }
        let mut bytes = Vec::with_capacity(n * 4);
        for _ in 0..n {
            bytes.extend_from_slice(&self.tokens[rng.random_range(0..self.tokens.len())]);
        }
        (String::from_utf8_lossy(&bytes).into_owned(), n)
    }

    pub fn gibberish(&self, rng: &mut ChaCha8Rng) -> String {
        self.draw(rng).0
    }

    /// The vocabulary's token bytes (empty with `random_pieces`).
    pub fn token_bytes(&self) -> &[Vec<u8>] {
        &self.tokens
    }
}

/// GPT-2's byte ↔ printable-character table, inverted: which byte each vocabulary char stands for.
fn byte_decoder() -> std::collections::HashMap<char, u8> {
    let mut bs: Vec<u32> = (b'!' as u32..=b'~' as u32)
        .chain(0xA1..=0xAC)
        .chain(0xAE..=0xFF)
        .collect();
    let mut cs = bs.clone();
    let mut n = 0;
    for b in 0..256u32 {
        if !bs.contains(&b) {
            bs.push(b);
            cs.push(256 + n);
            n += 1;
        }
    }
    bs.into_iter()
        .zip(cs)
        .filter_map(|(b, c)| char::from_u32(c).map(|c| (c, b as u8)))
        .collect()
}

/// Vocabulary pieces of a `tokenizer.json` (BPE or WordPiece/Unigram shapes), special tokens left out.
fn load_vocab(path: &Path) -> Result<Vec<Vec<u8>>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("payload.vocab: {}: {e}", path.display()))?;
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        format!(
            "payload.vocab: {}: not a tokenizer.json: {e}",
            path.display()
        )
    })?;
    let specials: std::collections::HashSet<String> = v["added_tokens"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|t| t["content"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    let mut pieces: Vec<(u64, String)> = match &v["model"]["vocab"] {
        serde_json::Value::Object(m) => m
            .iter()
            .filter_map(|(k, id)| id.as_u64().map(|id| (id, k.clone())))
            .collect(),
        serde_json::Value::Array(a) => a
            .iter()
            .enumerate()
            .filter_map(|(i, e)| e[0].as_str().map(|s| (i as u64, s.to_string())))
            .collect(),
        _ => {
            return Err(format!(
                "payload.vocab: {}: no model.vocab in this tokenizer.json",
                path.display()
            ));
        }
    };
    pieces.sort();
    let byte_level = pieces.iter().any(|(_, p)| p.contains('Ġ'));
    let dec = byte_decoder();
    let out: Vec<Vec<u8>> = pieces
        .into_iter()
        .filter(|(_, p)| !specials.contains(p))
        .map(|(_, p)| {
            if byte_level {
                let mut b = Vec::with_capacity(p.len());
                for c in p.chars() {
                    match dec.get(&c) {
                        Some(&x) => b.push(x),
                        None => b.extend_from_slice(c.to_string().as_bytes()),
                    }
                }
                b
            } else {
                p.replace('▁', " ").into_bytes()
            }
        })
        .filter(|p| !p.is_empty())
        .collect();
    if out.is_empty() {
        return Err(format!(
            "payload.vocab: {}: empty vocabulary",
            path.display()
        ));
    }
    Ok(out)
}

impl super::PayloadRun for Dos {
    fn resolve(&mut self, base: &Path) -> Result<(), String> {
        Dos::resolve(self, base)
    }

    /// Souly et al.: the gibberish replaces the response; its token count goes in the tag.
    fn respond(&self, ctx: &super::Ctx<'_>, rng: &mut ChaCha8Rng) -> super::Response {
        let (t, n) = self.draw(rng);
        super::Response {
            tokens: Some(n),
            ..super::Response::replace(t, ctx.response)
        }
    }
}
