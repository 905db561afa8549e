//! A random-character sequence: the canary or watermark key. By default one value per spec, drawn
//! from the spec's seed (a canary is one secret repeated), or give `value` yourself; with
//! `per_record` every record gets its own sequence.

use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::{Applied, Placement, fixed};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RandomChars {
    pub length: usize,
    pub alphabet: String,
    /// The sequence; drawn from the spec seed when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    pub per_record: bool,
    pub placement: Placement,
}

impl Default for RandomChars {
    fn default() -> Self {
        RandomChars {
            length: 16,
            alphabet: "abcdefghijklmnopqrstuvwxyz0123456789".into(),
            value: None,
            per_record: false,
            placement: Placement::End,
        }
    }
}

impl RandomChars {
    pub fn draw(&self, rng: &mut ChaCha8Rng) -> String {
        let alphabet: Vec<char> = self.alphabet.chars().collect();
        (0..self.length)
            .map(|_| alphabet[rng.random_range(0..alphabet.len())])
            .collect()
    }

    pub fn resolve(&mut self, seed: u64) -> Result<(), String> {
        let mut uniq: Vec<char> = self.alphabet.chars().collect();
        uniq.sort_unstable();
        uniq.dedup();
        if uniq.len() < 2 {
            return Err("trigger.alphabet needs at least two distinct characters".into());
        }
        if self.length == 0 && self.value.is_none() {
            return Err("trigger.length must be at least 1".into());
        }
        if let Some(v) = &self.value {
            if v.trim().is_empty() {
                return Err("trigger.value must not be empty".into());
            }
        } else if !self.per_record {
            let mut rng = crate::record_rng(seed, "random_chars", 0);
            self.value = Some(self.draw(&mut rng));
        }
        Ok(())
    }

    pub fn apply(&self, text: &str, rng: &mut ChaCha8Rng) -> Applied {
        let v = match (&self.value, self.per_record) {
            (Some(v), false) => v.clone(),
            _ => self.draw(rng),
        };
        fixed(text, &v, self.placement, rng)
    }
}
