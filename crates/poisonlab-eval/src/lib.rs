//! poisonlab-eval: what is measured on a model. Judges decide whether a generation shows a
//! behaviour; retrievers rank passages for the RAG probes; the probe registry ([`probe::Probe`])
//! holds every probe with its own configuration, and each runs through
//! [`poisonlab_model::LanguageModel`], so the same probe measures a model trained here, a Hugging
//! Face checkpoint directory or an OpenAI-compatible endpoint. Every measure carries its interval,
//! n and method. This crate never imports the experiment layer: the experiment runner hands a probe
//! its inputs ([`probe::ProbeInputs`]) and gets [`measure::Measure`]s back.

pub mod error;
pub mod inputs;
pub mod judge;
pub mod measure;
pub mod probe;
pub mod retrieval;

/// Every statistic the tool reports (one module, shared with the data passes and detectors).
pub use poisonlab_stats as stats;

pub use error::{Error, Result};
pub use inputs::{
    BeliefEntity, BeliefInputs, CanaryInputs, FingerprintInputs, SafetyInputs, WatermarkInputs,
    WatermarkKey,
};
pub use judge::Judge;
pub use measure::{Measure, Method};
pub use probe::{After, PROBES, Probe, ProbeInputs};
