//! poisonlab-clean: the cleaning pipeline LLM data teams run (exact and MinHash-LSH near-dedup,
//! C4/Gopher-style quality heuristics, a perplexity filter) and poison detectors from the
//! literature (ONION, n-gram salience, label consistency, duplicate clusters, spectral signatures,
//! activation clustering, STRIP). Every decision carries a reason; detectors are scored from the
//! records' poison tags alone.

pub mod detect;
pub mod error;
pub mod filter;
pub mod minhash;
pub mod ngram;
pub mod report;
pub mod text;

pub use error::{Error, Result};
