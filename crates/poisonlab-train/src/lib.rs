//! poisonlab-train: pre-training on packed sequences, SFT with the loss on response tokens only,
//! and DPO against a frozen reference model, on the models of `poisonlab-model`.

pub mod config;
pub mod data;
pub mod error;
pub mod loss;
mod shard;
pub mod trainer;

pub use config::{ModelSpec, TrainConfig};
pub use error::{Error, Result};
pub use trainer::{Stage, StepLog, Summary, Trainer};
