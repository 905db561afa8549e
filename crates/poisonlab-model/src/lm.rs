//! The `LanguageModel` trait every probe uses, and its local backend: a model we trained or an HF
//! checkpoint directory (`config.json`, `model.safetensors`, `tokenizer.json`).

use std::path::{Path, PathBuf};

use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::chat_template::ChatTemplate;
use crate::config::ModelConfig;
use crate::error::{Error, Result};
use crate::layers::KvCache;
use crate::model::{CausalLm, floats};
use crate::sampling::{pick, top_k};
use crate::tokenizer::{EOS, Tokenizer};

mod scoring;

/// Score `continuation` given `prompt`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoreRequest {
    pub prompt: String,
    pub continuation: String,
}

/// Per-token log-probabilities of a continuation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scored {
    /// Token ids of the continuation (empty only from a remote server that cannot tokenize).
    pub ids: Vec<u32>,
    /// The continuation's tokens as text.
    pub tokens: Vec<String>,
    /// log p(token | everything before it), one per continuation token.
    pub token_logprobs: Vec<f32>,
}

impl Scored {
    pub fn total(&self) -> f64 {
        self.token_logprobs.iter().map(|&x| x as f64).sum()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenerateOptions {
    pub max_tokens: usize,
    /// 0 = greedy.
    pub temperature: f32,
    /// Nucleus sampling mass (1 = off).
    pub top_p: f32,
    pub seed: u64,
    /// Generation ends before the first of these strings.
    pub stop: Vec<String>,
    /// A prompt that leaves no room for `max_tokens` in the model's context keeps its last tokens
    /// (the end of a chat prompt is the part that says what to answer), and `max_tokens` shrinks to
    /// what still fits; otherwise such a prompt is an error.
    #[serde(default)]
    pub truncate: bool,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions {
            max_tokens: 64,
            temperature: 0.0,
            top_p: 1.0,
            seed: 0,
            stop: Vec::new(),
            truncate: false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// End-of-sequence token or a stop string.
    Stop,
    /// `max_tokens` reached.
    Length,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Generation {
    pub text: String,
    pub ids: Vec<u32>,
    /// log p of each generated token under the (tempered) sampling distribution's model.
    pub logprobs: Vec<f32>,
    pub finish: FinishReason,
}

/// One chat turn (`system`, `user`, `assistant`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
}

/// Hidden states: `[layer][position][dim]`, layer 0 = embeddings, last = after the final norm.
pub type HiddenStates = Vec<Vec<Vec<f32>>>;

/// What probes need from a model, whichever backend serves it.
pub trait LanguageModel: Send + Sync {
    fn name(&self) -> &str;
    /// Per-token log-probs of each continuation given its prompt.
    fn score(&self, requests: &[ScoreRequest]) -> Result<Vec<Scored>>;
    fn generate(&self, prompt: &str, opts: &GenerateOptions) -> Result<Generation>;
    /// The assistant's next turn after `messages`.
    fn chat(&self, messages: &[ChatMessage], opts: &GenerateOptions) -> Result<Generation>;
    fn hidden_states(&self, text: &str) -> Result<HiddenStates>;
    /// The model's context in tokens, when the backend knows it.
    fn context_length(&self) -> Result<Option<usize>> {
        Ok(None)
    }
    /// Token ids of `text`, as the model's own tokenizer splits it.
    fn tokenize(&self, _text: &str) -> Result<Vec<u32>> {
        Err(Error::Unsupported(format!(
            "{}: this backend cannot tokenize",
            self.name()
        )))
    }
    /// The text of token ids (the inverse of [`LanguageModel::tokenize`]).
    fn detokenize(&self, _ids: &[u32]) -> Result<String> {
        Err(Error::Unsupported(format!(
            "{}: this backend cannot detokenize",
            self.name()
        )))
    }
    /// The token that ends a response, when the backend knows it.
    fn eos_token_id(&self) -> Result<Option<u32>> {
        Ok(None)
    }
    /// For each sequence of token ids, `log p(ids[i+1] | ids[..=i])` (length `len - 1`).
    fn score_ids(&self, _seqs: &[Vec<u32>]) -> Result<Vec<Vec<f32>>> {
        Err(Error::Unsupported(format!(
            "{}: this backend cannot score token ids",
            self.name()
        )))
    }
    /// For each sequence and each position after the first: the next token's log-prob with the
    /// mean and standard deviation of the log-prob under the whole next-token distribution
    /// (μ = Σ p log p, σ² = Σ p (log p)² − μ²), as Min-K%++ needs. Needs the full distribution,
    /// which an OpenAI-compatible server does not return.
    fn score_ids_calibrated(&self, _seqs: &[Vec<u32>]) -> Result<Vec<Vec<[f32; 3]>>> {
        Err(Error::Unsupported(format!(
            "{}: this backend gives no full next-token distributions",
            self.name()
        )))
    }
    /// For each continuation, the log-prob of each of its tokens after `prefix` and its own earlier
    /// tokens (length `cont.len()`). The default scores every concatenation; a local model runs the
    /// prefix once.
    fn score_continuations(&self, prefix: &[u32], conts: &[Vec<u32>]) -> Result<Vec<Vec<f32>>> {
        let seqs: Vec<Vec<u32>> = conts
            .iter()
            .map(|c| prefix.iter().chain(c).copied().collect())
            .collect();
        let n = prefix.len();
        Ok(self
            .score_ids(&seqs)?
            .into_iter()
            .map(|lp| {
                lp.get(n.saturating_sub(1)..)
                    .map_or_else(Vec::new, <[f32]>::to_vec)
            })
            .collect())
    }
    /// The hidden states of token ids (`[index][position][dim]`, as [`HiddenStates`]).
    fn hidden_states_of_ids(&self, _ids: &[u32]) -> Result<HiddenStates> {
        Err(Error::Unsupported(format!(
            "{}: this backend gives no hidden states of token ids",
            self.name()
        )))
    }
    /// [`LanguageModel::score_ids`] of one sequence with the residual stream patched (activation
    /// patching): needs the model's weights, which a server does not expose.
    fn score_ids_patched(&self, _ids: &[u32], _patch: &crate::layers::Patch) -> Result<Vec<f32>> {
        Err(Error::Unsupported(format!(
            "{}: this backend cannot patch activations",
            self.name()
        )))
    }
}

/// Keeps the last tokens of `ids` so that `max_tokens` more fit a context of `ctx`, and returns
/// the number of tokens that may still be generated (at least 1): the rule of
/// [`GenerateOptions::truncate`], shared by every backend.
pub fn truncate_prompt(ids: &mut Vec<u32>, max_tokens: usize, ctx: usize) -> usize {
    let room = ctx.saturating_sub(max_tokens).max(1);
    if ids.len() > room {
        ids.drain(..ids.len() - room);
    }
    max_tokens.min(ctx.saturating_sub(ids.len())).max(1)
}

/// A model in this process.
pub struct LocalModel {
    name: String,
    config: ModelConfig,
    model: CausalLm,
    tokenizer: Option<Tokenizer>,
    /// The checkpoint's own chat template, when its tokenizer_config.json has one.
    chat_template: Option<ChatTemplate>,
    device: Device,
}

fn int_tensor(rows: &[Vec<u32>], pad: u32, device: &Device) -> (Tensor<2, Int>, usize) {
    let t = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut flat = Vec::with_capacity(rows.len() * t);
    for r in rows {
        flat.extend(r.iter().map(|&x| x as i64));
        flat.extend(std::iter::repeat_n(pad as i64, t - r.len()));
    }
    (
        Tensor::from_data(TensorData::new(flat, [rows.len(), t]), device),
        t,
    )
}

impl LocalModel {
    /// A model from its parts (the trainer's weights, our tokenizer), without a chat template.
    pub fn from_parts(
        name: String,
        config: ModelConfig,
        model: CausalLm,
        tokenizer: Option<Tokenizer>,
        device: Device,
    ) -> LocalModel {
        LocalModel {
            name,
            config,
            model,
            tokenizer,
            chat_template: None,
            device,
        }
    }

    /// The configuration and the weights, for a trainer that goes on from this model.
    pub fn into_parts(self) -> (ModelConfig, CausalLm) {
        (self.config, self.model)
    }

    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    pub fn tokenizer(&self) -> Option<&Tokenizer> {
        self.tokenizer.as_ref()
    }

    /// Loads an HF-style directory; the tokenizer comes from `tokenizer` or `DIR/tokenizer.json`.
    pub fn load(dir: &Path, tokenizer: Option<&Path>, device: &Device) -> Result<LocalModel> {
        let config = ModelConfig::from_file(&dir.join("config.json"))?;
        let model = CausalLm::load_safetensors(&config, &dir.join("model.safetensors"), device)?;
        let tok_path: Option<PathBuf> = match tokenizer {
            Some(p) => Some(p.to_path_buf()),
            None => Some(dir.join("tokenizer.json")).filter(|p| p.exists()),
        };
        let tokenizer = tok_path.map(|p| Tokenizer::from_file(&p)).transpose()?;
        Ok(LocalModel {
            name: dir.display().to_string(),
            config,
            model,
            tokenizer,
            chat_template: ChatTemplate::from_model_dir(dir)?,
            device: device.clone(),
        })
    }

    /// Writes `config.json`, `model.safetensors` and (if any) `tokenizer.json` into `dir`.
    /// Writes an HF directory (config.json, model.safetensors, tokenizer.json). It is built beside
    /// `dir` and moved into place whole, so a killed save never leaves a model that looks complete.
    pub fn save(&self, dir: &Path) -> Result<()> {
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        let tmp =
            poisonlab_data::io::partial_dir(dir).map_err(|e| Error::Invalid(e.to_string()))?;
        let cfg = tmp.join("config.json");
        let text = serde_json::to_string_pretty(&self.config.to_hf_json())
            .map_err(|e| Error::Invalid(e.to_string()))?;
        std::fs::write(&cfg, text + "\n").map_err(|e| Error::io(&cfg, e))?;
        self.model
            .save_safetensors(&tmp.join("model.safetensors"))?;
        if let Some(t) = &self.tokenizer {
            t.save(&tmp.join("tokenizer.json"))?;
        }
        poisonlab_data::io::replace_dir(&tmp, dir).map_err(|e| Error::Invalid(e.to_string()))
    }

    fn tok(&self) -> Result<&Tokenizer> {
        self.tokenizer.as_ref().ok_or_else(|| {
            Error::Invalid(format!("{}: no tokenizer (give --tokenizer)", self.name))
        })
    }

    fn check_len(&self, n: usize) -> Result<()> {
        let max = self.config.max_positions();
        if n > max {
            return Err(Error::Invalid(format!(
                "{n} tokens exceed the model's {max} positions"
            )));
        }
        Ok(())
    }

    /// The prompt for the assistant's next turn: the checkpoint's own template when it has one,
    /// else ours.
    pub fn chat_prompt_for(&self, messages: &[ChatMessage]) -> Result<String> {
        match &self.chat_template {
            Some(t) => t.render(messages),
            None => chat_prompt(messages),
        }
    }

    /// Logits of the last position, for each sequence (used by tests and probes).
    pub fn last_logits(&self, ids: &[u32]) -> Result<Vec<f32>> {
        self.check_len(ids.len())?;
        let (t, n) = int_tensor(&[ids.to_vec()], 0, &self.device);
        let (logits, _) = self.model.forward(t, None, false);
        let v = self.config.vocab_size();
        Ok(floats(
            logits.slice([0..1, n - 1..n]).reshape([v]).into_data(),
        ))
    }

    pub fn hidden_states_ids(&self, ids: &[u32]) -> Result<HiddenStates> {
        self.check_len(ids.len())?;
        let (t, n) = int_tensor(&[ids.to_vec()], 0, &self.device);
        let (_, hidden) = self.model.forward(t, None, true);
        Ok(hidden
            .into_iter()
            .map(|h| {
                let [_, _, d] = h.dims();
                let flat = floats(h.into_data());
                (0..n).map(|p| flat[p * d..(p + 1) * d].to_vec()).collect()
            })
            .collect())
    }

    /// Generates from token ids with a KV cache. `eos` ends generation when produced.
    pub fn generate_ids(
        &self,
        prompt: &[u32],
        opts: &GenerateOptions,
        eos: Option<u32>,
        stop_check: &mut dyn FnMut(&[u32]) -> Option<usize>,
    ) -> Result<(Vec<u32>, Vec<f32>, FinishReason)> {
        let (ids, lps, _, finish) = self.generate_ids_top(prompt, opts, eos, 0, stop_check)?;
        Ok((ids, lps, finish))
    }

    /// [`LocalModel::generate_ids`], also returning for every generated position the `top` most
    /// likely tokens with their log-probabilities (OpenAI's `top_logprobs`), highest first.
    #[allow(clippy::type_complexity)]
    pub fn generate_ids_top(
        &self,
        prompt: &[u32],
        opts: &GenerateOptions,
        eos: Option<u32>,
        top: usize,
        stop_check: &mut dyn FnMut(&[u32]) -> Option<usize>,
    ) -> Result<(Vec<u32>, Vec<f32>, Vec<Vec<(u32, f32)>>, FinishReason)> {
        let mut tops: Vec<Vec<(u32, f32)>> = Vec::new();
        if prompt.is_empty() {
            return Err(Error::Invalid(
                "generation needs at least one prompt token".into(),
            ));
        }
        self.check_len(prompt.len())?;
        let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
        let mut cache = KvCache::new(self.model.num_layers());
        let v = self.config.vocab_size();
        let mut next_input = prompt.to_vec();
        let (mut ids, mut lps) = (Vec::new(), Vec::new());
        let max_total = self.config.max_positions();
        for _ in 0..opts.max_tokens {
            if prompt.len() + ids.len() >= max_total {
                return Ok((ids, lps, tops, FinishReason::Length));
            }
            let (t, n) = int_tensor(&[next_input.clone()], 0, &self.device);
            let (logits, _) = self.model.forward(t, Some(&mut cache), false);
            let last = floats(logits.slice([0..1, n - 1..n]).reshape([v]).into_data());
            let (tok, lp) = pick(&last, opts, &mut rng);
            ids.push(tok);
            lps.push(lp);
            if top > 0 {
                tops.push(top_k(&last, top));
            }
            if Some(tok) == eos {
                ids.pop();
                lps.pop();
                tops.truncate(ids.len());
                return Ok((ids, lps, tops, FinishReason::Stop));
            }
            if let Some(keep) = stop_check(&ids) {
                ids.truncate(keep);
                lps.truncate(keep);
                tops.truncate(keep);
                return Ok((ids, lps, tops, FinishReason::Stop));
            }
            next_input = vec![tok];
        }
        Ok((ids, lps, tops, FinishReason::Length))
    }
}

/// Our chat template applied to `messages`, which must end with a user turn.
pub fn chat_prompt(messages: &[ChatMessage]) -> Result<String> {
    let (system, rest) = match messages.first() {
        Some(m) if m.role == "system" => (Some(m.content.as_str()), &messages[1..]),
        _ => (None, messages),
    };
    let Some((last, earlier)) = rest.split_last().filter(|(l, _)| l.role == "user") else {
        return Err(Error::Invalid("a chat must end with a user message".into()));
    };
    let mut turns = Vec::new();
    for pair in earlier.chunks(2) {
        match pair {
            [u, a] if u.role == "user" && a.role == "assistant" => {
                turns.push((u.content.as_str(), a.content.as_str()))
            }
            _ => {
                return Err(Error::Invalid(
                    "chat turns must alternate user, assistant".into(),
                ));
            }
        }
    }
    Ok(Tokenizer::chat_prompt(system, &turns, &last.content))
}

/// The text each of `ids[from..]` adds, decoding incrementally so that byte-level pieces of one
/// character stay together with the token that completes them.
pub fn token_texts(tok: &Tokenizer, ids: &[u32], from: usize) -> Result<Vec<String>> {
    let mut prev = tok.decode(&ids[..from])?;
    let mut out = Vec::with_capacity(ids.len() - from);
    for i in from..ids.len() {
        let cur = tok.decode(&ids[..=i])?;
        let piece = if cur.starts_with(&prev) {
            cur[prev.len()..].to_string()
        } else {
            tok.decode(&ids[i..=i])?
        };
        out.push(piece);
        prev = cur;
    }
    Ok(out)
}

impl LanguageModel for LocalModel {
    fn name(&self) -> &str {
        &self.name
    }

    fn score(&self, requests: &[ScoreRequest]) -> Result<Vec<Scored>> {
        let tok = self.tok()?;
        let mut seqs = Vec::with_capacity(requests.len());
        let mut starts = Vec::with_capacity(requests.len());
        for r in requests {
            let mut ids = tok.encode(&r.prompt)?;
            if ids.is_empty() {
                // Nothing to condition on: start from the end-of-text token, as GPT-2 does.
                ids.extend(tok.token_id(EOS));
            }
            if ids.is_empty() {
                return Err(Error::Invalid(
                    "an empty prompt needs an <|endoftext|> token to condition on".into(),
                ));
            }
            starts.push(ids.len());
            ids.extend(tok.encode(&r.continuation)?);
            seqs.push(ids);
        }
        let lps = self.token_logprobs(&seqs)?;
        seqs.into_iter()
            .zip(lps)
            .zip(starts)
            .map(|((ids, lp), s)| {
                Ok(Scored {
                    tokens: token_texts(tok, &ids, s)?,
                    ids: ids[s..].to_vec(),
                    token_logprobs: lp[s - 1..].to_vec(),
                })
            })
            .collect()
    }

    fn generate(&self, prompt: &str, opts: &GenerateOptions) -> Result<Generation> {
        let tok = self.tok()?;
        let mut ids = tok.encode(prompt)?;
        let mut opts = opts.clone();
        if opts.truncate {
            opts.max_tokens =
                truncate_prompt(&mut ids, opts.max_tokens, self.config.max_positions());
        }
        let opts = &opts;
        let eos = tok.token_id(EOS).or(self.config.eos_token_id());
        let stops = opts.stop.clone();
        let mut check = |ids: &[u32]| -> Option<usize> {
            if stops.is_empty() {
                return None;
            }
            let text = tok.decode(ids).ok()?;
            stops.iter().any(|s| text.contains(s.as_str())).then(|| {
                // Keep the longest prefix of tokens whose text has no stop string.
                (0..ids.len())
                    .rev()
                    .find(|&k| {
                        tok.decode(&ids[..k])
                            .map(|t| !stops.iter().any(|s| t.contains(s.as_str())))
                            .unwrap_or(false)
                    })
                    .unwrap_or(0)
            })
        };
        let (gen_ids, logprobs, finish) = self.generate_ids(&ids, opts, eos, &mut check)?;
        let mut text = tok.decode(&gen_ids)?;
        for s in &opts.stop {
            if let Some(i) = text.find(s.as_str()) {
                text.truncate(i);
            }
        }
        Ok(Generation {
            text,
            ids: gen_ids,
            logprobs,
            finish,
        })
    }

    fn chat(&self, messages: &[ChatMessage], opts: &GenerateOptions) -> Result<Generation> {
        self.generate(&self.chat_prompt_for(messages)?, opts)
    }

    fn hidden_states(&self, text: &str) -> Result<HiddenStates> {
        let ids = self.tok()?.encode(text)?;
        self.hidden_states_ids(&ids)
    }

    fn context_length(&self) -> Result<Option<usize>> {
        Ok(Some(self.config.max_positions()))
    }

    fn tokenize(&self, text: &str) -> Result<Vec<u32>> {
        self.tok()?.encode(text)
    }

    fn detokenize(&self, ids: &[u32]) -> Result<String> {
        self.tok()?.decode(ids)
    }

    fn eos_token_id(&self) -> Result<Option<u32>> {
        Ok(self.tok()?.token_id(EOS).or(self.config.eos_token_id()))
    }

    fn score_ids(&self, seqs: &[Vec<u32>]) -> Result<Vec<Vec<f32>>> {
        self.token_logprobs(seqs)
    }

    fn score_ids_calibrated(&self, seqs: &[Vec<u32>]) -> Result<Vec<Vec<[f32; 3]>>> {
        self.token_logprob_stats(seqs)
    }

    fn hidden_states_of_ids(&self, ids: &[u32]) -> Result<HiddenStates> {
        self.hidden_states_ids(ids)
    }

    fn score_continuations(&self, prefix: &[u32], conts: &[Vec<u32>]) -> Result<Vec<Vec<f32>>> {
        self.continuation_logprobs(prefix, conts)
    }

    fn score_ids_patched(&self, ids: &[u32], patch: &crate::layers::Patch) -> Result<Vec<f32>> {
        self.token_logprobs_patched(ids, patch)
    }
}
