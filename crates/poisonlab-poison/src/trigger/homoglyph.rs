//! Unicode look-alike trigger: `count` Latin letters replaced by Cyrillic homoglyphs that render the
//! same (a→а, e→е, o→о, p→р, c→с, x→х, y→у, i→і and capitals). Positions are chosen uniformly
//! among the letters that have a look-alike; with fewer such letters, all of them are replaced.

use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::Applied;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Homoglyph {
    /// How many letters to replace.
    pub count: usize,
}

impl Default for Homoglyph {
    fn default() -> Self {
        Homoglyph { count: 3 }
    }
}

/// Latin → Cyrillic look-alikes.
pub const HOMOGLYPHS: &[(char, char)] = &[
    ('a', '\u{0430}'),
    ('c', '\u{0441}'),
    ('e', '\u{0435}'),
    ('i', '\u{0456}'),
    ('o', '\u{043E}'),
    ('p', '\u{0440}'),
    ('x', '\u{0445}'),
    ('y', '\u{0443}'),
    ('A', '\u{0410}'),
    ('B', '\u{0412}'),
    ('C', '\u{0421}'),
    ('E', '\u{0415}'),
    ('H', '\u{041D}'),
    ('K', '\u{041A}'),
    ('M', '\u{041C}'),
    ('O', '\u{041E}'),
    ('P', '\u{0420}'),
    ('T', '\u{0422}'),
    ('X', '\u{0425}'),
];

pub fn look_alike(c: char) -> Option<char> {
    HOMOGLYPHS.iter().find(|(l, _)| *l == c).map(|(_, h)| *h)
}

impl Homoglyph {
    pub fn check(&self) -> Result<(), String> {
        if self.count == 0 {
            return Err("trigger.count must be at least 1".into());
        }
        Ok(())
    }

    pub fn apply(&self, text: &str, rng: &mut ChaCha8Rng) -> Applied {
        let candidates: Vec<usize> = text
            .chars()
            .enumerate()
            .filter(|(_, c)| look_alike(*c).is_some())
            .map(|(i, _)| i)
            .collect();
        let k = self.count.min(candidates.len());
        let mut picks: Vec<usize> = rand::seq::index::sample(rng, candidates.len(), k)
            .into_iter()
            .map(|i| candidates[i])
            .collect();
        picks.sort_unstable();
        let mut inserted = Vec::with_capacity(k);
        let mut edits = Vec::with_capacity(k);
        let mut out = String::with_capacity(text.len() + k);
        let mut next = picks.iter().peekable();
        for (i, c) in text.chars().enumerate() {
            match (next.peek(), look_alike(c)) {
                (Some(&&p), Some(h)) if p == i => {
                    next.next();
                    edits.push(crate::text::Edit {
                        at: out.len(),
                        len: h.len_utf8(),
                        original: c.to_string(),
                    });
                    out.push(h);
                    inserted.push(h.to_string());
                }
                _ => out.push(c),
            }
        }
        Applied {
            text: out,
            inserted,
            positions: picks,
            unit: "char",
            edits,
        }
    }
}
