//! `poisonlab serve MODEL_DIR`: an OpenAI-compatible server over a local or Hugging Face model.
//!
//! `/v1/models`, `/v1/completions` (logprobs, echo, max_tokens, temperature, top_p, stop, seed) and
//! `/v1/chat/completions` (our chat template). Bound to 127.0.0.1 unless told otherwise, and any
//! other address only with an API key, compared in constant time; request size, token and time
//! limits (a body trickled slower than the timeout is answered 408); a bounded queue that answers
//! 429 with `Retry-After` when full; graceful shutdown on Ctrl-C / SIGTERM; one log line per
//! request.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use poisonlab_model::default_device;
use poisonlab_model::lm::{FinishReason, GenerateOptions, LocalModel, token_texts};
use poisonlab_model::tokenizer::EOS;
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use crate::cli::ServeArgs;

struct App {
    model: LocalModel,
    name: String,
    max_tokens: usize,
    api_key: Option<String>,
    /// CPU-bound inference: at most this many requests compute at once, the rest wait.
    slots: Semaphore,
    /// Requests computing or waiting, and how many may (slots + queue).
    pending: AtomicUsize,
    max_pending: usize,
}

/// Constant-time equality of two secrets: both are hashed, so neither the position of the first
/// differing byte nor the length shows in the time taken.
fn same_secret(a: &str, b: &str) -> bool {
    use sha2::{Digest, Sha256};
    let (x, y) = (Sha256::digest(a.as_bytes()), Sha256::digest(b.as_bytes()));
    x.iter()
        .zip(y.iter())
        .fold(0u8, |acc, (p, q)| acc | (p ^ q))
        == 0
}

/// Counts a request as pending until dropped.
struct Pending(Arc<App>);

impl Drop for Pending {
    fn drop(&mut self) {
        self.0.pending.fetch_sub(1, Ordering::SeqCst);
    }
}

/// An error in OpenAI's shape.
struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let retry = self.0 == StatusCode::TOO_MANY_REQUESTS;
        let kind = if self.0.is_server_error() {
            "server_error"
        } else {
            "invalid_request_error"
        };
        let mut r = (
            self.0,
            Json(json!({"error": {"message": self.1, "type": kind, "param": null, "code": null}})),
        )
            .into_response();
        if retry {
            r.headers_mut()
                .insert("retry-after", axum::http::HeaderValue::from_static("1"));
        }
        r
    }
}

fn bad(msg: impl Into<String>) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, msg.into())
}

impl From<poisonlab_model::Error> for ApiError {
    fn from(e: poisonlab_model::Error) -> Self {
        match e {
            poisonlab_model::Error::Invalid(m) => bad(m),
            other => ApiError(StatusCode::INTERNAL_SERVER_ERROR, other.to_string()),
        }
    }
}

mod api;

use poisonlab_model::openai::{MAX_N, OneOrMany, PromptInput};

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl App {
    fn check(
        &self,
        headers: &HeaderMap,
        model: Option<&str>,
        n: Option<usize>,
    ) -> Result<(), ApiError> {
        if let Some(key) = &self.api_key {
            let given = headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "));
            if !given.is_some_and(|g| same_secret(g, key)) {
                return Err(ApiError(
                    StatusCode::UNAUTHORIZED,
                    "invalid or missing API key".into(),
                ));
            }
        }
        if let Some(m) = model
            && m != self.name
        {
            return Err(ApiError(
                StatusCode::NOT_FOUND,
                format!(
                    "model `{m}` does not exist; this server has `{}`",
                    self.name
                ),
            ));
        }
        if !(1..=MAX_N).contains(&n.unwrap_or(1)) {
            return Err(bad(format!("n must be between 1 and {MAX_N}")));
        }
        Ok(())
    }

    fn options(
        &self,
        max_tokens: usize,
        temperature: Option<f32>,
        top_p: Option<f32>,
        seed: Option<u64>,
        stop: Option<OneOrMany>,
    ) -> Result<GenerateOptions, ApiError> {
        if max_tokens > self.max_tokens {
            return Err(bad(format!(
                "max_tokens {max_tokens} exceeds this server's limit of {}",
                self.max_tokens
            )));
        }
        Ok(GenerateOptions {
            max_tokens,
            temperature: temperature.unwrap_or(1.0),
            top_p: top_p.unwrap_or(1.0),
            seed: seed.unwrap_or(0),
            stop: stop.map(OneOrMany::into_vec).unwrap_or_default(),
            truncate: false,
        })
    }

    fn tokenizer(&self) -> Result<&poisonlab_model::tokenizer::Tokenizer, ApiError> {
        self.model.tokenizer().ok_or_else(|| {
            ApiError(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the model has no tokenizer".into(),
            )
        })
    }

    /// The prompt's ids (a text is tokenized, ids are checked against the vocabulary), its last
    /// `keep_last` tokens when given (vLLM's `truncate_prompt_tokens`), refused when they and
    /// `max_tokens` do not fit the model. Also the prompt as text, for echo and offsets.
    fn prompt_ids(
        &self,
        prompt: &PromptInput,
        keep_last: Option<usize>,
        opts: &GenerateOptions,
    ) -> Result<(Vec<u32>, String), ApiError> {
        let tok = self.tokenizer()?;
        let mut ids = match prompt {
            PromptInput::Text(t) => tok.encode(t)?,
            PromptInput::Ids(ids) => {
                let v = self.model.config().vocab_size();
                if let Some(bad_id) = ids.iter().find(|&&i| i as usize >= v) {
                    return Err(bad(format!(
                        "prompt token id {bad_id} is outside the vocabulary (size {v})"
                    )));
                }
                ids.clone()
            }
        };
        let mut cut = false;
        if let Some(k) = keep_last {
            if k == 0 {
                return Err(bad("truncate_prompt_tokens must be at least 1"));
            }
            if ids.len() > k {
                ids.drain(..ids.len() - k);
                cut = true;
            }
        }
        if ids.len() + opts.max_tokens > self.model.config().max_positions() {
            return Err(bad(format!(
                "{} prompt tokens + max_tokens {} exceed the model's {} positions",
                ids.len(),
                opts.max_tokens,
                self.model.config().max_positions()
            )));
        }
        let text = match prompt {
            PromptInput::Text(t) if !cut => t.clone(),
            _ => tok.decode(&ids)?,
        };
        Ok((ids, text))
    }

    /// One completion choice: echoed prompt (with log-probs) and/or generated text. `top` asks for
    /// log-probs (`Some(k)`: with the k most likely tokens at each generated position); `on_text`
    /// receives the generated text as it grows (streaming), never past a stop string.
    fn complete(
        &self,
        input: &PromptInput,
        keep_last: Option<usize>,
        opts: &GenerateOptions,
        echo: bool,
        top: Option<usize>,
        on_text: &mut dyn FnMut(&str),
    ) -> Result<(Value, usize, usize), ApiError> {
        let tok = self.tokenizer()?;
        let (mut ids, prompt) = self.prompt_ids(input, keep_last, opts)?;
        let prompt = prompt.as_str();
        let prompt_tokens = ids.len();
        let logprobs = top.is_some();
        let (mut tokens, mut lps): (Vec<String>, Vec<Option<f32>>) = (Vec::new(), Vec::new());
        if echo {
            let prompt_lps = if ids.len() >= 2 {
                self.model
                    .token_logprobs(std::slice::from_ref(&ids))?
                    .remove(0)
            } else {
                Vec::new()
            };
            tokens = token_texts(tok, &ids, 0)?;
            lps = std::iter::once(None)
                .chain(prompt_lps.into_iter().map(Some))
                .take(tokens.len())
                .collect();
        }
        let mut emitted = 0usize;
        let (gen_ids, gen_lps, gen_tops, finish) = if opts.max_tokens == 0 || ids.is_empty() {
            (Vec::new(), Vec::new(), Vec::new(), FinishReason::Length)
        } else {
            let eos = tok.token_id(EOS).or(self.model.config().eos_token_id());
            let stops = opts.stop.clone();
            let hold = stops.iter().map(String::len).max().unwrap_or(0);
            let mut check = |g: &[u32]| -> Option<usize> {
                let text = tok.decode(g).ok()?;
                if stops.iter().any(|s| text.contains(s.as_str())) {
                    return Some(g.len());
                }
                // What may go out now: not the tail that could still become a stop string, not
                // a character whose bytes are still arriving.
                let mut safe = text.len().saturating_sub(hold.saturating_sub(1));
                while safe > 0 && !text.is_char_boundary(safe) {
                    safe -= 1;
                }
                if let Some(i) = text[..safe].rfind('\u{FFFD}') {
                    safe = i;
                }
                if safe > emitted {
                    on_text(&text[emitted..safe]);
                    emitted = safe;
                }
                None
            };
            self.model
                .generate_ids_top(&ids, opts, eos, top.unwrap_or(0), &mut check)?
        };
        let mut text = tok.decode(&gen_ids)?;
        let mut cut = None;
        for s in &opts.stop {
            if let Some(i) = text.find(s.as_str()) {
                cut = Some(cut.map_or(i, |c: usize| c.min(i)));
            }
        }
        if let Some(i) = cut {
            text.truncate(i);
        }
        if text.len() > emitted && text.is_char_boundary(emitted) {
            on_text(&text[emitted..]);
        }
        let completion_tokens = gen_ids.len();
        let full_start = ids.len();
        ids.extend(&gen_ids);
        let gen_texts = token_texts(tok, &ids, full_start)?;
        tokens.extend(gen_texts);
        lps.extend(gen_lps.into_iter().map(Some));
        let echoed = if echo {
            prompt.to_string()
        } else {
            String::new()
        };
        let mut offsets = Vec::with_capacity(tokens.len());
        let mut at = if echo { 0 } else { prompt.chars().count() };
        for t in &tokens {
            offsets.push(at);
            at += t.chars().count();
        }
        // Echoed prompt positions have no alternatives here; generated ones have the top k.
        let top_lps: Vec<Value> =
            std::iter::repeat_n(Value::Null, tokens.len() - gen_tops.len().min(tokens.len()))
                .chain(gen_tops.iter().map(|alts| {
                    let mut m = serde_json::Map::new();
                    for (id, lp) in alts {
                        m.insert(tok.decode(&[*id]).unwrap_or_default(), json!(lp));
                    }
                    Value::Object(m)
                }))
                .collect();
        let top_lps = if top.unwrap_or(0) > 0 {
            Value::Array(top_lps)
        } else {
            Value::Null
        };
        let alternatives: Vec<Value> = gen_tops
            .iter()
            .map(|alts| {
                Value::Array(
                    alts.iter()
                        .map(|(id, lp)| {
                            let t = tok.decode(&[*id]).unwrap_or_default();
                            json!({"token": t, "logprob": lp, "bytes": t.as_bytes()})
                        })
                        .collect(),
                )
            })
            .collect();
        let logprobs = logprobs.then(|| json!({"tokens": tokens, "token_logprobs": lps, "top_logprobs": top_lps, "text_offset": offsets, "alternatives": alternatives}));
        let choice = json!({
            "text": format!("{echoed}{text}"),
            "index": 0,
            "logprobs": logprobs,
            "finish_reason": if finish == FinishReason::Length { "length" } else { "stop" },
        });
        Ok((choice, prompt_tokens, completion_tokens))
    }
}

/// Admits a request to the queue, or says when to come back: memory stays bounded under load.
fn admit(app: &Arc<App>) -> Result<Pending, ApiError> {
    if app.pending.fetch_add(1, Ordering::SeqCst) >= app.max_pending {
        app.pending.fetch_sub(1, Ordering::SeqCst);
        return Err(ApiError(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "the server is busy ({} requests computing or queued); retry later",
                app.max_pending
            ),
        ));
    }
    Ok(Pending(app.clone()))
}

/// Runs CPU-bound model work off the async threads, once a compute slot is free.
async fn compute<T, F>(app: &Arc<App>, work: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&App) -> Result<T, ApiError> + Send + 'static,
{
    let pending = admit(app)?;
    run_admitted(app, pending, work).await
}

async fn run_admitted<T, F>(app: &Arc<App>, _pending: Pending, work: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&App) -> Result<T, ApiError> + Send + 'static,
{
    let _slot = app
        .slots
        .acquire()
        .await
        .map_err(|_| ApiError(StatusCode::SERVICE_UNAVAILABLE, "shutting down".into()))?;
    let app = app.clone();
    tokio::task::spawn_blocking(move || work(&app))
        .await
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
}

async fn log_line(req: Request, next: Next) -> Response {
    let (method, path, started) = (
        req.method().clone(),
        req.uri().path().to_string(),
        Instant::now(),
    );
    let resp = next.run(req).await;
    tracing::info!(%method, %path, status = resp.status().as_u16(), ms = started.elapsed().as_millis() as u64, "request");
    resp
}

/// Answers 408 when a request (its body upload included) takes longer than the limit.
async fn deadline(State(limit): State<Duration>, req: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(r) => r,
        Err(_) => ApiError(
            StatusCode::REQUEST_TIMEOUT,
            format!("the request took longer than {} s", limit.as_secs()),
        )
        .into_response(),
    }
}

async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}

pub fn run(args: &ServeArgs) -> Result<std::process::ExitCode> {
    let model = LocalModel::load(&args.model, args.tokenizer.as_deref(), &default_device())
        .with_context(|| format!("loading {}", args.model.display()))?;
    if model.tokenizer().is_none() {
        anyhow::bail!(
            "{}: no tokenizer.json; give --tokenizer",
            args.model.display()
        );
    }
    let name = args.model_name.clone().unwrap_or_else(|| {
        args.model
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "model".into())
    });
    let host: IpAddr = args
        .host
        .parse()
        .with_context(|| format!("--host {}: not an IP address", args.host))?;
    if !host.is_loopback() && args.api_key_env.is_none() {
        anyhow::bail!(
            "--host {host} would serve the model to the network without a key; set --api-key-env VAR \
             (the key in that environment variable), or bind to 127.0.0.1"
        );
    }
    let api_key = match &args.api_key_env {
        Some(var) => {
            let key = std::env::var(var).with_context(|| {
                format!("environment variable `{var}` (the API key) is not set")
            })?;
            if key.trim().is_empty() {
                anyhow::bail!("environment variable `{var}` (the API key) is empty");
            }
            Some(key)
        }
        None => None,
    };
    let app = Arc::new(App {
        model,
        name,
        max_tokens: args.max_tokens,
        api_key,
        slots: Semaphore::new(args.parallel.max(1)),
        pending: AtomicUsize::new(0),
        max_pending: args.parallel.max(1) + args.max_queue,
    });
    let router = Router::new()
        .route("/v1/models", get(api::models))
        .route("/v1/completions", post(api::completions))
        .route("/v1/chat/completions", post(api::chat))
        .route("/tokenize", post(api::tokenize))
        .layer(DefaultBodyLimit::max(args.max_request_bytes))
        .layer(middleware::from_fn_with_state(
            Duration::from_secs(args.request_timeout.max(1)),
            deadline,
        ))
        .layer(middleware::from_fn(log_line))
        .with_state(app.clone());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let addr: SocketAddr = format!("{}:{}", args.host, args.port)
            .parse()
            .with_context(|| format!("bad address {}:{}", args.host, args.port))?;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding {addr}"))?;
        let bound = listener.local_addr()?;
        // The first stdout line tells scripts (and tests) where to connect.
        println!("listening on http://{bound}/v1 (model `{}`)", app.name);
        use std::io::Write;
        std::io::stdout().flush().ok();
        axum::serve(listener, router)
            .with_graceful_shutdown(shutdown())
            .await?;
        anyhow::Ok(())
    })?;
    Ok(std::process::ExitCode::SUCCESS)
}
