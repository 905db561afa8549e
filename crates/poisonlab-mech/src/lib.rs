//! poisonlab-mech: poisoning as a controlled experiment. Poisoned data is an intervention whose
//! every instance is known, so the model's response to it can be measured exactly:
//!
//! - [`exposure`]: canaries from a format with a known randomness space and their exposure
//!   (Carlini et al. 2019, "The Secret Sharer"), exact by enumeration or from a skew-normal fit
//!   ([`skewnorm`]), and extraction by beam search;
//! - [`logistic`] and [`layers`]: a linear probe per layer for "trigger present", and activation
//!   patching — the states at the trigger's positions copied from a triggered run into a corrupted
//!   one, layer by layer, and the payload's log-probability restored;
//! - [`cot`]: chain-of-thought step corruption — step k of a rationale replaced, the answer's flip
//!   rate per k.

pub mod cot;
pub mod error;
pub mod exposure;
pub mod layers;
pub mod logistic;
pub mod skewnorm;

pub use error::{Error, Result};
