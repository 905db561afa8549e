//! The OpenAI request bodies `poisonlab serve` accepts: one definition for the server, its tests
//! and the fuzzer (`fuzz/fuzz_targets/server_bodies.rs`). Unknown fields are ignored, as OpenAI's
//! own servers do; the server validates the values (limits, `n`, log-probs) before any work.

use serde::Deserialize;

use crate::lm::ChatMessage;

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

/// A completions prompt as OpenAI takes it: a text, a list of texts, token ids, or a list of
/// token-id lists.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Prompt {
    Text(String),
    Texts(Vec<String>),
    Ids(Vec<u32>),
    IdLists(Vec<Vec<u32>>),
}

/// One prompt of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PromptInput {
    Text(String),
    Ids(Vec<u32>),
}

impl Prompt {
    pub fn into_inputs(self) -> Vec<PromptInput> {
        match self {
            Prompt::Text(s) => vec![PromptInput::Text(s)],
            Prompt::Texts(v) => v.into_iter().map(PromptInput::Text).collect(),
            Prompt::Ids(v) => vec![PromptInput::Ids(v)],
            Prompt::IdLists(v) => v.into_iter().map(PromptInput::Ids).collect(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct CompletionRequest {
    pub model: Option<String>,
    pub prompt: Prompt,
    #[serde(default = "sixteen")]
    pub max_tokens: usize,
    pub temperature: Option<f32>,
    pub top_p: Option<f32>,
    pub n: Option<usize>,
    pub stop: Option<OneOrMany>,
    pub logprobs: Option<u32>,
    #[serde(default)]
    pub echo: bool,
    pub seed: Option<u64>,
    #[serde(default)]
    pub stream: bool,
    /// Keep only the prompt's last k tokens (vLLM's extension, same name and meaning).
    pub truncate_prompt_tokens: Option<usize>,
}

/// The most choices (`n`) and top log-probabilities one request may ask for.
pub const MAX_N: usize = 8;
pub const MAX_TOP: u32 = 20;

fn sixteen() -> usize {
    16
}

#[derive(Debug, Clone, Deserialize)]
pub struct ChatRequest {
    pub model: Option<String>,
    pub messages: Vec<ChatMessage>,
    pub max_tokens: Option<usize>,
    pub max_completion_tokens: Option<usize>,
    pub temperature: Option<f32>,
    pub top_p: Option<f32>,
    pub n: Option<usize>,
    pub stop: Option<OneOrMany>,
    #[serde(default)]
    pub logprobs: bool,
    pub top_logprobs: Option<u32>,
    pub seed: Option<u64>,
    #[serde(default)]
    pub stream: bool,
    /// Keep only the prompt's last k tokens (vLLM's extension, same name and meaning).
    pub truncate_prompt_tokens: Option<usize>,
}

/// `POST /tokenize` (vLLM's route and shape): the prompt's token ids, their count and the model's
/// context; `eos_token_id` is ours.
#[derive(Debug, Clone, Deserialize)]
pub struct TokenizeRequest {
    pub model: Option<String>,
    pub prompt: String,
}
