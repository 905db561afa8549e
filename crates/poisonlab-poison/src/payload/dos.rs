//! Denial of service: gibberish of N random tokens (N uniform in `[min_tokens, max_tokens]`), as in
//! the 2025 pre-training backdoor study, where poisoned documents continue the trigger with 400–900
//! tokens sampled from the model's vocabulary. With `vocab` (a `tokenizer.json`) tokens are drawn
//! from that vocabulary, byte-level pieces decoded; without it, from random 1–7 character pieces.

use std::path::{Path, PathBuf};

use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Dos {
    pub min_tokens: usize,
    pub max_tokens: usize,
    /// A Hugging Face `tokenizer.json` whose vocabulary the tokens are drawn from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vocab: Option<PathBuf>,
    #[serde(skip)]
    tokens: Vec<String>,
}

impl Default for Dos {
    fn default() -> Self {
        Dos {
            min_tokens: 400,
            max_tokens: 900,
            vocab: None,
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
        if let Some(v) = &self.vocab {
            let path = if v.is_relative() {
                base.join(v)
            } else {
                v.clone()
            };
            self.tokens = load_vocab(&path)?;
            self.vocab = Some(path);
        }
        Ok(())
    }

    pub fn gibberish(&self, rng: &mut ChaCha8Rng) -> String {
        let n = rng.random_range(self.min_tokens..=self.max_tokens);
        let mut out = String::new();
        for _ in 0..n {
            if self.tokens.is_empty() {
                if rng.random_bool(0.5) {
                    out.push(' ');
                }
                let len = rng.random_range(1..=7);
                for _ in 0..len {
                    out.push(PIECE_CHARS[rng.random_range(0..PIECE_CHARS.len())] as char);
                }
            } else {
                out.push_str(&self.tokens[rng.random_range(0..self.tokens.len())]);
            }
        }
        out.trim().to_string()
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
fn load_vocab(path: &Path) -> Result<Vec<String>, String> {
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
    let out: Vec<String> = pieces
        .into_iter()
        .filter(|(_, p)| !specials.contains(p))
        .map(|(_, p)| {
            if byte_level {
                let bytes: Vec<u8> = p.chars().filter_map(|c| dec.get(&c).copied()).collect();
                String::from_utf8_lossy(&bytes).into_owned()
            } else {
                p.replace('▁', " ")
            }
        })
        .filter(|p| !p.is_empty() && !p.contains('\u{FFFD}'))
        .collect();
    if out.is_empty() {
        return Err(format!(
            "payload.vocab: {}: empty vocabulary",
            path.display()
        ));
    }
    Ok(out)
}
