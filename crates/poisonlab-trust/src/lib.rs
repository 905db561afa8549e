//! poisonlab-trust: poisoning used for good. Keyed dataset watermarks — a random sequence, Unicode
//! look-alikes, an invisible cue and reply, paired rewrites — embedded into a file and verified
//! against any model (a local directory or a served endpoint) with an exact p-value, and the
//! false-positive calibration that checks the bound on models that never saw the key.
//!
//! The statistics are written out in `docs/trust.md`.

pub mod corpus;
pub mod embed;
pub mod error;
pub mod fingerprint;
pub mod key;
pub mod membership;
pub mod rewrite;
pub mod scheme;
pub mod trap;
pub mod verify;

pub use corpus::Documents;
pub use embed::{
    EmbedOptions, EmbedReport, Manifest, Marked, MultiReport, embed, embed_keys, manifest_path,
};
pub use error::{Error, Result};
pub use key::Key;
pub use scheme::{Params, SCHEMES, Scheme};
pub use verify::{Calibration, Verdict, VerifyOptions, calibrate, verify};
