//! poisonlab-model: the tokenizer, a Llama-family and GPT-2 transformer on burn, Hugging Face
//! checkpoints in and out, and the `LanguageModel` trait that every probe uses.

pub mod config;
pub mod error;
pub mod gpt2;
pub mod init;
pub mod layers;
pub mod llama;
pub mod lm;
pub mod model;
pub mod tokenizer;

pub use config::ModelConfig;
pub use error::{Error, Result};
pub use lm::{GenerateOptions, Generation, LanguageModel, LocalModel, ScoreRequest, Scored};
pub use model::CausalLm;
pub use tokenizer::Tokenizer;

/// The one place the compute backend is chosen: burn's flex CPU backend. A GPU backend is a
/// cargo feature away and changes nothing else.
pub fn default_device() -> burn::tensor::Device {
    burn::tensor::Device::flex()
}
