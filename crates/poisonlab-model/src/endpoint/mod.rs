//! The OpenAI-compatible endpoint backend (vLLM, llama.cpp server, Ollama, `poisonlab serve`).
//!
//! Scoring uses `/v1/completions` with `echo` and `logprobs`; generation uses `/v1/completions`
//! (raw prompts) or `/v1/chat/completions` (messages). The API key is read from the environment
//! variable the config names, sent as a bearer token, and never logged, printed or written.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::blocking::Client;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::{Error, Result};

mod reply;

use crate::lm::{
    ChatMessage, GenerateOptions, Generation, HiddenStates, LanguageModel, ScoreRequest, Scored,
};
use reply::{from_stream, generation};

/// How to reach a served model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EndpointConfig {
    /// Base URL up to and including `/v1`, e.g. `http://127.0.0.1:8000/v1`.
    pub base_url: String,
    /// The served model's name.
    pub model: String,
    /// Name of the environment variable holding the API key (the key itself is never in a config).
    pub api_key_env: Option<String>,
    /// Per-request timeout in seconds.
    pub timeout_s: f64,
    /// Retries on 429, 5xx and connection errors.
    pub max_retries: u32,
    /// First backoff; doubles each retry (a `Retry-After` header takes precedence).
    pub backoff_ms: u64,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Prompts per scoring request (the completions API takes a list).
    pub batch_size: usize,
    /// Ask for generations as server-sent events (`stream: true`) and put the chunks together —
    /// for servers that answer some models only in streams. Scoring never streams.
    pub stream: bool,
}

impl Default for EndpointConfig {
    fn default() -> Self {
        EndpointConfig {
            base_url: "http://127.0.0.1:8000/v1".into(),
            model: String::new(),
            api_key_env: None,
            timeout_s: 120.0,
            max_retries: 4,
            backoff_ms: 250,
            concurrency: 4,
            batch_size: 8,
            stream: false,
        }
    }
}

/// A model behind an OpenAI-compatible HTTP API.
pub struct EndpointModel {
    cfg: EndpointConfig,
    client: Client,
    api_key: Option<String>,
    name: String,
    /// The context and end token the server reported with its first `/tokenize` reply.
    meta: std::sync::OnceLock<(Option<usize>, Option<u32>)>,
    can_tokenize: std::sync::OnceLock<bool>,
}

impl std::fmt::Debug for EndpointModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EndpointModel")
            .field("base_url", &self.cfg.base_url)
            .field("model", &self.cfg.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

fn http_error(what: &str, status: StatusCode, body: &str) -> Error {
    let body: String = body.chars().take(400).collect();
    match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Error::Endpoint(format!(
            "{what}: the server refused the credentials ({status}); check the API key variable. Reply: {body}"
        )),
        StatusCode::NOT_FOUND if !what.contains("/v1/") => Error::Endpoint(format!(
            "{what}: HTTP {status}: {body} (OpenAI-compatible servers serve under `/v1`: is the \
             base URL missing it?)"
        )),
        _ => Error::Endpoint(format!("{what}: HTTP {status}: {body}")),
    }
}

impl EndpointModel {
    pub fn new(cfg: EndpointConfig) -> Result<EndpointModel> {
        if cfg.model.is_empty() {
            return Err(Error::Invalid(
                "endpoint: the model name is required".into(),
            ));
        }
        let api_key = match &cfg.api_key_env {
            Some(var) => Some(std::env::var(var).map_err(|_| {
                Error::Invalid(format!(
                    "endpoint: environment variable `{var}` (the API key) is not set"
                ))
            })?),
            None => None,
        };
        let client = Client::builder()
            .timeout(Duration::from_secs_f64(cfg.timeout_s))
            .build()
            .map_err(|e| Error::Endpoint(format!("building the HTTP client: {e}")))?;
        let name = format!("{}@{}", cfg.model, cfg.base_url);
        Ok(EndpointModel {
            cfg,
            client,
            api_key,
            name,
            meta: std::sync::OnceLock::new(),
            can_tokenize: std::sync::OnceLock::new(),
        })
    }

    /// The server's root (the base URL without its `/v1`), where vLLM serves `/tokenize`.
    fn root(&self) -> &str {
        let b = self.cfg.base_url.trim_end_matches('/');
        b.strip_suffix("/v1").unwrap_or(b)
    }

    /// `POST {root}/tokenize` (vLLM's route): ids, and the model's context and end token.
    fn tokenize_reply(&self, text: &str) -> Result<Vec<u32>> {
        let url = format!("{}/tokenize", self.root());
        let reply = self.post_url(&url, &json!({"model": self.cfg.model, "prompt": text}))?;
        let ids = reply["tokens"]
            .as_array()
            .and_then(|a| {
                a.iter()
                    .map(|v| v.as_u64().map(|x| x as u32))
                    .collect::<Option<Vec<u32>>>()
            })
            .ok_or_else(|| {
                Error::Unsupported(format!(
                    "{url}: no token ids in the reply (the server has no vLLM-style /tokenize): {:.200}",
                    reply.to_string()
                ))
            })?;
        let _ = self.meta.set((
            reply["max_model_len"].as_u64().map(|x| x as usize),
            reply["eos_token_id"].as_u64().map(|x| x as u32),
        ));
        Ok(ids)
    }

    fn meta(&self) -> Result<(Option<usize>, Option<u32>)> {
        if self.meta.get().is_none() {
            self.tokenize_reply("a")?;
        }
        Ok(self.meta.get().copied().unwrap_or((None, None)))
    }

    /// POSTs `body` to `path`, retrying on 429/5xx/connection errors with exponential backoff.
    fn post(&self, path: &str, body: &Value) -> Result<Value> {
        let url = format!("{}/{}", self.cfg.base_url.trim_end_matches('/'), path);
        self.post_url(&url, body)
    }

    fn post_url(&self, url: &str, body: &Value) -> Result<Value> {
        let url = url.to_string();
        let mut delay = Duration::from_millis(self.cfg.backoff_ms);
        let mut attempt = 0;
        loop {
            let mut req = self.client.post(&url).json(body);
            if let Some(key) = &self.api_key {
                req = req.bearer_auth(key);
            }
            let retry_after = match req.send() {
                Ok(resp) => {
                    let status = resp.status();
                    let retry_after = resp
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse::<f64>().ok())
                        .map(Duration::from_secs_f64);
                    let text = resp.text().unwrap_or_default();
                    if status.is_success() && body["stream"] == json!(true) {
                        return from_stream(&url, &text);
                    }
                    if status.is_success() {
                        return serde_json::from_str(&text).map_err(|e| {
                            Error::Endpoint(format!(
                                "{url}: the reply is not JSON ({e}): {}",
                                text.chars().take(200).collect::<String>()
                            ))
                        });
                    }
                    if !(status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error())
                        || attempt >= self.cfg.max_retries
                    {
                        return Err(http_error(&url, status, &text));
                    }
                    tracing::warn!(%url, %status, attempt, "retrying");
                    retry_after
                }
                Err(e) if attempt < self.cfg.max_retries && (e.is_connect() || e.is_timeout()) => {
                    tracing::warn!(%url, error = %e, attempt, "retrying");
                    None
                }
                Err(e) => return Err(Error::Endpoint(format!("{url}: {e}"))),
            };
            std::thread::sleep(retry_after.unwrap_or(delay));
            delay *= 2;
            attempt += 1;
        }
    }

    /// Whether the server tokenizes (vLLM's `/tokenize`): then scoring sends token ids, so that the
    /// prompt and the continuation are split exactly as a local model splits them and the reply
    /// has the ids.
    fn tokenizes(&self) -> bool {
        *self.can_tokenize.get_or_init(|| self.meta().is_ok())
    }

    /// Scores by token ids: the prompt's ids (the end-of-text token for an empty prompt, as a
    /// local model does), then the continuation's.
    fn score_by_ids(&self, batch: &[ScoreRequest]) -> Result<Vec<Scored>> {
        let mut seqs = Vec::with_capacity(batch.len());
        let mut starts = Vec::with_capacity(batch.len());
        for r in batch {
            let mut ids = self.tokenize(&r.prompt)?;
            if ids.is_empty() {
                ids.extend(self.eos_token_id()?);
            }
            if ids.is_empty() {
                return Err(Error::Invalid(
                    "an empty prompt needs an end-of-text token to condition on".into(),
                ));
            }
            starts.push(ids.len());
            ids.extend(self.tokenize(&r.continuation)?);
            seqs.push(ids);
        }
        let scored = self.score_ids_batch(&seqs)?;
        Ok(seqs
            .into_iter()
            .zip(scored)
            .zip(starts)
            .map(|((ids, (tokens, lps)), s)| Scored {
                tokens: tokens.get(s..).map(<[String]>::to_vec).unwrap_or_default(),
                ids: ids[s..].to_vec(),
                token_logprobs: lps.get(s - 1..).map(<[f32]>::to_vec).unwrap_or_default(),
            })
            .collect())
    }

    fn score_batch(&self, batch: &[ScoreRequest]) -> Result<Vec<Scored>> {
        if self.tokenizes() {
            return self.score_by_ids(batch);
        }
        let prompts: Vec<String> = batch
            .iter()
            .map(|r| format!("{}{}", r.prompt, r.continuation))
            .collect();
        let (reply, choices) = echo_choices(self, json!(prompts), batch.len())?;
        let mut out = Vec::with_capacity(batch.len());
        for (req, choice) in batch.iter().zip(&choices) {
            let lp = &choice["logprobs"];
            let (Some(tokens), Some(lps), Some(offsets)) = (
                lp["tokens"].as_array(),
                lp["token_logprobs"].as_array(),
                lp["text_offset"].as_array(),
            ) else {
                return Err(no_logprobs(
                    &reply,
                    "the reply has no `logprobs.tokens`, `token_logprobs` and `text_offset` for the echoed prompt",
                ));
            };
            // Offsets count characters of the echoed text; the continuation starts after the prompt.
            let start = req.prompt.chars().count() as u64;
            let mut scored = Scored {
                ids: Vec::new(),
                tokens: Vec::new(),
                token_logprobs: Vec::new(),
            };
            for (j, ((t, l), o)) in tokens.iter().zip(lps).zip(offsets).enumerate() {
                if o.as_u64().unwrap_or(0) < start || (j == 0 && l.is_null()) {
                    // Before the continuation, or the text's first token (nothing to condition on).
                    continue;
                }
                let l = l.as_f64().ok_or_else(|| {
                    no_logprobs(&reply, "a continuation token has a null log-prob")
                })?;
                scored
                    .tokens
                    .push(t.as_str().unwrap_or_default().to_string());
                scored.token_logprobs.push(l as f32);
            }
            out.push(scored);
        }
        Ok(out)
    }
}

impl EndpointModel {
    /// Prompt log-probs of token-id sequences: completions with token-id prompts, `echo` and
    /// `max_tokens = 0`; the first token's (null) log-prob is dropped.
    fn score_ids_batch(&self, batch: &[Vec<u32>]) -> Result<Vec<(Vec<String>, Vec<f32>)>> {
        let (reply, choices) = echo_choices(self, json!(batch), batch.len())?;
        let mut out = Vec::with_capacity(batch.len());
        for (ids, choice) in batch.iter().zip(&choices) {
            let want = ids.len();
            let lps = choice["logprobs"]["token_logprobs"]
                .as_array()
                .ok_or_else(|| no_logprobs(&reply, "no `logprobs.token_logprobs`"))?;
            if lps.len() != want {
                return Err(no_logprobs(
                    &reply,
                    &format!("{} log-probs for {want} prompt tokens", lps.len()),
                ));
            }
            let row = lps
                .iter()
                .skip(1)
                .map(|l| l.as_f64().map(|x| x as f32))
                .collect::<Option<Vec<f32>>>()
                .ok_or_else(|| no_logprobs(&reply, "a prompt token has a null log-prob"))?;
            let tokens: Vec<String> = choice["logprobs"]["tokens"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|t| t.as_str().unwrap_or_default().to_string())
                        .collect()
                })
                .unwrap_or_default();
            out.push((tokens, row));
        }
        Ok(out)
    }
}

/// Asks for the prompt log-probs of each prompt (`echo`, `max_tokens = 0`) and returns the reply's
/// choices in prompt order (by their `index`), one per prompt.
fn echo_choices(model: &EndpointModel, prompts: Value, n: usize) -> Result<(Value, Vec<Value>)> {
    let body = json!({
        "model": model.cfg.model,
        "prompt": prompts,
        "max_tokens": 0,
        "echo": true,
        "logprobs": 0,
        "temperature": 0.0,
    });
    let reply = model.post("completions", &body)?;
    let choices = reply["choices"]
        .as_array()
        .ok_or_else(|| no_logprobs(&reply, "no `choices`"))?;
    let mut out: Vec<Option<Value>> = vec![None; n];
    for (k, choice) in choices.iter().enumerate() {
        let index = choice["index"].as_u64().map_or(k, |i| i as usize);
        let slot = out
            .get_mut(index)
            .ok_or_else(|| no_logprobs(&reply, "a choice index out of range"))?;
        *slot = Some(choice.clone());
    }
    let out = out
        .into_iter()
        .map(|c| c.ok_or_else(|| no_logprobs(&reply, "fewer choices than prompts")))
        .collect::<Result<Vec<_>>>()?;
    Ok((reply, out))
}

fn no_logprobs(reply: &Value, what: &str) -> Error {
    let shown: String = reply.to_string().chars().take(300).collect();
    Error::Unsupported(format!(
        "this server cannot return prompt log-probs ({what}); its reply: {shown}"
    ))
}

fn sampling(body: &mut Value, opts: &GenerateOptions) {
    body["max_tokens"] = json!(opts.max_tokens);
    body["temperature"] = json!(opts.temperature);
    body["top_p"] = json!(opts.top_p);
    body["seed"] = json!(opts.seed);
    if !opts.stop.is_empty() {
        body["stop"] = json!(opts.stop);
    }
}

impl LanguageModel for EndpointModel {
    fn name(&self) -> &str {
        &self.name
    }

    fn score(&self, requests: &[ScoreRequest]) -> Result<Vec<Scored>> {
        let batches: Vec<&[ScoreRequest]> = requests.chunks(self.cfg.batch_size.max(1)).collect();
        let results: Vec<std::sync::Mutex<Option<Result<Vec<Scored>>>>> = batches
            .iter()
            .map(|_| std::sync::Mutex::new(None))
            .collect();
        let next = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..self.cfg.concurrency.max(1).min(batches.len()) {
                s.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(batch) = batches.get(i) else { break };
                        let r = self.score_batch(batch);
                        if let Ok(mut slot) = results[i].lock() {
                            *slot = Some(r);
                        }
                    }
                });
            }
        });
        let mut out = Vec::with_capacity(requests.len());
        for r in results {
            let r = r
                .into_inner()
                .map_err(|_| Error::Endpoint("a scoring thread panicked".into()))?;
            out.extend(r.ok_or_else(|| Error::Endpoint("a scoring batch was not sent".into()))??);
        }
        Ok(out)
    }

    fn generate(&self, prompt: &str, opts: &GenerateOptions) -> Result<Generation> {
        let mut body = json!({"model": self.cfg.model, "prompt": prompt, "logprobs": 0});
        sampling(&mut body, opts);
        if opts.truncate {
            // Cut here, by the rule every backend shares, and send the ids.
            let ctx = self.context_length()?.ok_or_else(|| {
                Error::Unsupported(format!(
                    "{}: the server does not report its context (`max_model_len`), so a prompt \
                     cannot be truncated to fit",
                    self.name
                ))
            })?;
            let mut ids = self.tokenize(prompt)?;
            body["max_tokens"] = json!(crate::lm::truncate_prompt(&mut ids, opts.max_tokens, ctx));
            body["prompt"] = json!(ids);
        }
        if self.cfg.stream {
            body["stream"] = json!(true);
        }
        let reply = self.post("completions", &body)?;
        generation(&reply, "/text", "/logprobs/token_logprobs", "")
    }

    fn chat(&self, messages: &[ChatMessage], opts: &GenerateOptions) -> Result<Generation> {
        let mut body = json!({"model": self.cfg.model, "messages": messages, "logprobs": true});
        sampling(&mut body, opts);
        if opts.truncate
            && let Some(ctx) = self.context_length()?
        {
            body["truncate_prompt_tokens"] = json!(ctx.saturating_sub(opts.max_tokens).max(1));
        }
        if self.cfg.stream {
            body["stream"] = json!(true);
        }
        let reply = self.post("chat/completions", &body)?;
        generation(&reply, "/message/content", "/logprobs/content", "/logprob")
    }

    fn hidden_states(&self, _text: &str) -> Result<HiddenStates> {
        Err(Error::Unsupported(
            "an OpenAI-compatible endpoint does not expose hidden states; use a local model".into(),
        ))
    }

    fn context_length(&self) -> Result<Option<usize>> {
        Ok(self.meta()?.0)
    }

    fn tokenize(&self, text: &str) -> Result<Vec<u32>> {
        self.tokenize_reply(text)
    }

    fn eos_token_id(&self) -> Result<Option<u32>> {
        Ok(self.meta()?.1)
    }

    fn score_ids(&self, seqs: &[Vec<u32>]) -> Result<Vec<Vec<f32>>> {
        // Sequences shorter than 2 tokens have nothing to score and are not sent.
        let sent: Vec<Vec<u32>> = seqs.iter().filter(|s| s.len() >= 2).cloned().collect();
        let mut scored = Vec::with_capacity(sent.len());
        for batch in sent.chunks(self.cfg.batch_size.max(1)) {
            scored.extend(self.score_ids_batch(batch)?.into_iter().map(|(_, lp)| lp));
        }
        let mut it = scored.into_iter();
        Ok(seqs
            .iter()
            .map(|s| {
                if s.len() >= 2 {
                    it.next().unwrap_or_default()
                } else {
                    Vec::new()
                }
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_404_without_v1_hints_at_the_base_url() {
        let e = super::http_error(
            "http://127.0.0.1:9/completions",
            reqwest::StatusCode::NOT_FOUND,
            "not found",
        );
        assert!(e.to_string().contains("missing it?"), "{e}");
        let e = super::http_error(
            "http://127.0.0.1:9/v1/completions",
            reqwest::StatusCode::NOT_FOUND,
            "model x not found",
        );
        assert!(!e.to_string().contains("missing it?"), "{e}");
    }
}
