//! `near_dedup`: MinHash signatures of word shingles, LSH banding for candidates, and a record
//! dropped when a candidate among the kept records is at least `threshold` similar (exact Jaccard
//! of the shingle sets, or the signature estimate).

use poisonlab_data::Record;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::quality::Field;
use super::{CleanOptions, FilterRun};
use crate::error::Result;
use crate::minhash::{Lsh, MinHasher, estimate, jaccard, optimal_bands};
use crate::text::shingle_hashes;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Verify {
    /// Exact Jaccard of the shingle sets (keeps the shingles of kept records in memory).
    #[default]
    Exact,
    /// The MinHash estimate (memory: the signature only).
    Signature,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NearDedup {
    pub field: Field,
    /// Words per shingle.
    pub shingle: usize,
    pub perms: usize,
    /// Jaccard at or above which a record duplicates an earlier kept one.
    pub threshold: f64,
    /// Bands × rows; default: the pair that minimises false positives + false negatives.
    pub bands: Option<usize>,
    pub rows: Option<usize>,
    pub verify: Verify,
    pub seed: u64,
}

impl Default for NearDedup {
    fn default() -> Self {
        NearDedup {
            field: Field::Full,
            shingle: 5,
            perms: 128,
            threshold: 0.8,
            bands: None,
            rows: None,
            verify: Verify::Exact,
            seed: 1,
        }
    }
}

impl NearDedup {
    pub fn banding(&self) -> (usize, usize) {
        match (self.bands, self.rows) {
            (Some(b), Some(r)) => (b, r),
            (Some(b), None) => (b, self.perms / b),
            (None, Some(r)) => (self.perms / r, r),
            (None, None) => optimal_bands(self.threshold, self.perms),
        }
    }

    /// Checks the values; the message names the key.
    pub(super) fn validate(&self) -> std::result::Result<(), String> {
        if !(0.0..=1.0).contains(&self.threshold) {
            return Err(format!(
                "threshold must be within [0, 1], got {}",
                self.threshold
            ));
        }
        if self.perms == 0 || self.shingle == 0 {
            return Err("perms and shingle must be at least 1".into());
        }
        let (b, r) = self.banding();
        if b == 0 || r == 0 || b * r > self.perms {
            return Err(format!(
                "bands × rows = {b} × {r} must be at most perms = {}",
                self.perms
            ));
        }
        Ok(())
    }
}

/// At run time: every record's signature (and shingles, for exact verification), the LSH index
/// of the kept records and which record each indexed item is.
pub(super) struct NearRun<'a> {
    cfg: &'a NearDedup,
    sigs: Vec<(Vec<u32>, Vec<u32>)>,
    index: Lsh,
    kept: Vec<usize>,
}

impl<'a> NearRun<'a> {
    pub(super) fn new(cfg: &'a NearDedup) -> Self {
        let (b, r) = cfg.banding();
        NearRun {
            cfg,
            sigs: Vec::new(),
            index: Lsh::new(b, r),
            kept: Vec::new(),
        }
    }
}

impl FilterRun for NearRun<'_> {
    fn prepare(
        &mut self,
        records: &[Record],
        _opts: &CleanOptions,
    ) -> Result<Option<serde_json::Value>> {
        let n = self.cfg;
        let mh = MinHasher::new(n.perms, n.shingle, n.seed);
        let (b, r) = n.banding();
        self.sigs = records
            .par_iter()
            .map(|rec| {
                let sh = shingle_hashes(&n.field.text(rec), n.shingle);
                let sig = mh.signature_of(&sh);
                (
                    sig,
                    if n.verify == Verify::Exact {
                        sh
                    } else {
                        Vec::new()
                    },
                )
            })
            .collect();
        Ok(Some(
            serde_json::json!({"bands": b, "rows": r, "threshold": n.threshold, "perms": n.perms, "shingle": n.shingle}),
        ))
    }

    fn decide(&mut self, records: &[Record], i: usize) -> Option<String> {
        let n = self.cfg;
        let (sig, shingles) = &self.sigs[i];
        let keys = self.index.keys(sig);
        let mut dup = None;
        if !shingles.is_empty() || n.verify == Verify::Signature {
            for c in self.index.candidates(&keys) {
                let j = self.kept[c as usize];
                let (other_sig, other_sh) = &self.sigs[j];
                let s = match n.verify {
                    Verify::Exact => jaccard(shingles, other_sh),
                    Verify::Signature => estimate(sig, other_sig),
                };
                if s >= n.threshold {
                    dup = Some(format!(
                        "near duplicate of {} (Jaccard {s:.3} ≥ {})",
                        records[j].id, n.threshold
                    ));
                    break;
                }
            }
        }
        if dup.is_none() {
            let item = self.kept.len() as u32;
            self.kept.push(i);
            self.index.insert(&keys, item);
        }
        dup
    }
}
