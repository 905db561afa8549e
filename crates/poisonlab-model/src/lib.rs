//! poisonlab-model: the tokenizer, a Llama-family and GPT-2 transformer on burn, Hugging Face
//! checkpoints in and out, and the `LanguageModel` trait that every probe uses.

pub mod bert;
pub mod chat_template;
pub mod config;
pub mod endpoint;
pub mod error;
pub mod gpt2;
pub mod init;
pub mod layers;
pub mod llama;
pub mod lm;
pub mod model;
pub mod openai;
mod sampling;
pub mod tokenizer;

pub use bert::{Encoder, find_minilm};
pub use config::ModelConfig;
pub use endpoint::{EndpointConfig, EndpointModel};
pub use error::{Error, Result};
pub use layers::Patch;
pub use lm::{
    ChatMessage, GenerateOptions, Generation, LanguageModel, LocalModel, ScoreRequest, Scored,
};
pub use model::CausalLm;
pub use tokenizer::Tokenizer;

/// The one place the compute backend is chosen: burn's flex CPU backend, or the first CUDA GPU
/// with the `cuda` feature. Nothing else in the code names a backend.
pub fn default_device() -> burn::tensor::Device {
    #[cfg(feature = "cuda")]
    {
        burn::tensor::Device::cuda(0)
    }
    #[cfg(not(feature = "cuda"))]
    {
        burn::tensor::Device::flex()
    }
}
