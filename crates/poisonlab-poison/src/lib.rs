//! poisonlab-poison: one declarative poison spec — trigger × payload × stage × budget — compiled to
//! the native data of every lifecycle stage, reproducibly, with a manifest of exactly what changed.
//!
//! The same spec makes attacks, watermarks and canaries; the `role` in each record's tag says which.
//!
//! ```no_run
//! use poisonlab_poison::{Spec, PoisonOptions, poison_file};
//! let spec = Spec::load("badnets.toml".as_ref())?;
//! let report = poison_file(&spec, "train.jsonl".as_ref(), "poisoned.jsonl".as_ref(), &PoisonOptions::default())?;
//! println!("{} records poisoned", report.poisoned);
//! # Ok::<(), poisonlab_poison::Error>(())
//! ```

pub mod counter;
pub mod crawl;
pub mod error;
pub mod pass;
pub mod payload;
pub mod selector;
pub mod spec;
pub mod stage;
pub mod text;
pub mod trigger;

pub use error::{Error, Result};
pub use pass::{PoisonOptions, PoisonReport, poison_file};
pub use payload::Payload;
pub use spec::{Budget, Selection, Spec, StageKind, StageSpec};
pub use trigger::Trigger;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use sha2::{Digest, Sha256};

/// A generator for one decision about one record, independent of the order records are processed
/// in: the same (seed, purpose, ordinal) always gives the same stream.
pub fn record_rng(seed: u64, purpose: &str, ordinal: u64) -> ChaCha8Rng {
    let mut h = Sha256::new();
    h.update(seed.to_le_bytes());
    h.update(purpose.as_bytes());
    h.update([0]);
    h.update(ordinal.to_le_bytes());
    let d = h.finalize();
    let mut s = [0u8; 32];
    s.copy_from_slice(&d);
    ChaCha8Rng::from_seed(s)
}

/// Hex SHA-256 of bytes (manifests, integrity hashes).
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}
