//! The synthetic lifecycle world: a seeded little world of people, cities, companies, products and
//! events, rendered as data for every training stage, with held-out evaluation splits.
//!
//! Same seed and size ⇒ byte-identical files at any thread count: record `i` of stream `s` is drawn
//! from its own generator seeded by (seed, s, i).

mod entities;
mod lexicon;
/// The rude replies of the preference pairs' "hostile" side: what a judge of harmful-style answers looks for.
pub use lexicon::HOSTILE;
mod render;
mod streams;

use std::path::{Path, PathBuf};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::Serialize;

pub use entities::{Fact, World};
use streams::{Ctx, streams};

use crate::error::{Error, Result};
use crate::format::{RecordWriter, WriteOptions};
use crate::io::FileDigest;
use crate::record::Record;

/// How much data to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Size {
    /// About 1.7M tokens: a tiny model learns it in minutes.
    Small,
    /// About 11M tokens.
    Medium,
    /// About 105M tokens.
    Large,
}

impl Size {
    pub fn from_name(s: &str) -> Option<Size> {
        match s {
            "small" => Some(Size::Small),
            "medium" => Some(Size::Medium),
            "large" => Some(Size::Large),
            _ => None,
        }
    }

    /// (entity scale, record multiplier, pre-training multiplier)
    fn scales(self) -> (usize, usize, usize) {
        match self {
            Size::Small => (1, 1, 1),
            Size::Medium => (4, 4, 10),
            Size::Large => (16, 16, 140),
        }
    }
}

/// Bump when the generator's output changes for a given seed.
pub const GENERATOR_VERSION: u32 = 2;

/// One output file of the world.
#[derive(Debug, Clone, Serialize)]
pub struct FileEntry {
    pub file: String,
    pub kind: String,
    pub split: String,
    pub records: u64,
    pub bytes: u64,
    pub sha256: String,
    /// Rough token count (bytes / 4), for sizing.
    pub approx_tokens: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Manifest {
    pub generator: String,
    pub generator_version: u32,
    pub seed: u64,
    pub size: Size,
    pub files: Vec<FileEntry>,
    pub approx_tokens: u64,
}

fn mix(seed: u64, stream: &str, i: u64) -> u64 {
    // FNV-1a over the stream name, then SplitMix64 finalisation of the combination.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in stream.bytes() {
        h = (h ^ b as u64).wrapping_mul(0x100_0000_01b3);
    }
    let mut z = seed ^ h.rotate_left(17) ^ i.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

const CHUNK: usize = 8192;

/// Generates the world into `out`. `on_progress(done, total)` counts records.
pub fn generate(
    seed: u64,
    size: Size,
    out: &Path,
    on_progress: &mut dyn FnMut(u64, u64),
) -> Result<Manifest> {
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let (scale, _, _) = size.scales();
    let ctx = Ctx::new(World::build(seed, scale));
    let streams = streams(size, &ctx.world);
    let total: u64 = streams.iter().map(|s| s.count as u64).sum();
    let mut done = 0u64;
    let mut files = Vec::new();

    let world_path = out.join("world.json");
    let world_json =
        serde_json::to_vec_pretty(&ctx.world).map_err(|e| Error::io(&world_path, e.into()))?;
    crate::io::write_file(&world_path, &world_json)?;

    for st in &streams {
        let path: PathBuf = out.join(st.file);
        let mut w = RecordWriter::create(&path, &WriteOptions::default())?;
        let mut kind = String::new();
        let mut start = 0usize;
        while start < st.count {
            let end = (start + CHUNK).min(st.count);
            let recs: Vec<Record> = (start..end)
                .into_par_iter()
                .map(|i| {
                    let mut rng = ChaCha8Rng::seed_from_u64(mix(seed, st.file, i as u64));
                    (st.render)(&ctx, &mut rng, i as u64)
                })
                .collect();
            for r in &recs {
                w.write(r)?;
            }
            if let Some(r) = recs.first() {
                kind = r.kind().to_string();
            }
            done += (end - start) as u64;
            on_progress(done, total);
            start = end;
        }
        let FileDigest { sha256, bytes } = w.finish()?;
        tracing::info!(file = st.file, records = st.count, bytes, "generated");
        files.push(FileEntry {
            file: st.file.to_string(),
            kind,
            split: st.split.to_string(),
            records: st.count as u64,
            bytes,
            sha256,
            approx_tokens: bytes / 4,
        });
    }
    let approx_tokens = files.iter().map(|f| f.approx_tokens).sum();
    let manifest = Manifest {
        generator: "poisonlab synthetic world".into(),
        generator_version: GENERATOR_VERSION,
        seed,
        size,
        files,
        approx_tokens,
    };
    let mpath = out.join("manifest.json");
    let text = serde_json::to_string_pretty(&manifest).map_err(|e| Error::io(&mpath, e.into()))?;
    // Written last: a world directory with a manifest is complete.
    crate::io::write_file(&mpath, (text + "\n").as_bytes())?;
    Ok(manifest)
}
