//! `exact_dedup`: drops a record whose normalised text was seen in an earlier kept record.

use std::collections::HashMap;

use poisonlab_data::Record;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::quality::Field;
use super::{CleanOptions, FilterRun};
use crate::error::Result;
use crate::text::normalize_for_dedup;

/// How text is normalised before exact dedup hashes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Normalize {
    /// Lower case, ASCII punctuation removed, whitespace collapsed (as web-scale dedup does).
    #[default]
    Standard,
    /// Lower case and whitespace collapsed; punctuation kept (`3 * 4` and `3 + 4` differ).
    Whitespace,
    /// The text as it is.
    None,
}

impl Normalize {
    pub fn apply(self, text: &str) -> String {
        match self {
            Normalize::Standard => normalize_for_dedup(text),
            Normalize::Whitespace => text
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .to_lowercase(),
            Normalize::None => text.to_string(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct ExactDedup {
    pub field: Field,
    pub normalize: Normalize,
}

/// At run time: the hash of each record's normalised text, and the first record of each hash.
pub(super) struct ExactRun<'a> {
    cfg: &'a ExactDedup,
    hashes: Vec<u128>,
    seen: HashMap<u128, usize>,
}

impl<'a> ExactRun<'a> {
    pub(super) fn new(cfg: &'a ExactDedup) -> Self {
        ExactRun {
            cfg,
            hashes: Vec::new(),
            seen: HashMap::new(),
        }
    }
}

impl FilterRun for ExactRun<'_> {
    fn prepare(
        &mut self,
        records: &[Record],
        _opts: &CleanOptions,
    ) -> Result<Option<serde_json::Value>> {
        let e = self.cfg;
        self.hashes = records
            .par_iter()
            .map(|r| {
                let t = e.normalize.apply(&e.field.text(r));
                xxhash_rust::xxh3::xxh3_128(t.as_bytes())
            })
            .collect();
        Ok(None)
    }

    fn decide(&mut self, records: &[Record], i: usize) -> Option<String> {
        let h = self.hashes[i];
        match self.seen.get(&h) {
            Some(&first) => Some(format!("exact duplicate of {}", records[first].id)),
            None => {
                self.seen.insert(h, i);
                None
            }
        }
    }
}
