//! poisonlab-lab: experiments end to end. One TOML file declares the data, a poison, a cleaning
//! pipeline, training stages and probes, with a grid over what varies; the runner caches every
//! stage by the hash of what it depends on, resumes after a kill, and writes one row per cell ×
//! stage × probe with a confidence interval; the report renders it.

pub mod error;
pub mod experiment;
pub mod report;
pub mod results;
pub mod runner;

pub use error::{Error, Result};
pub use experiment::{Cell, Experiment, ModelSpec, Plan};
pub use runner::{RunOptions, RunSummary, run};

/// The quick start's experiment, embedded so that `poisonlab quickstart` needs no file.
pub const QUICKSTART: &str = include_str!("../../../experiments/quickstart.toml");
