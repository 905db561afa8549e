//! The OpenAI-shaped API of `poisonlab serve`: request bodies and the handlers of `/v1/models`,
//! `/v1/completions` and `/v1/chat/completions`, plain or streamed as server-sent events.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use poisonlab_model::lm::GenerateOptions;
use serde_json::{Value, json};

use poisonlab_model::openai::{
    ChatRequest, CompletionRequest, MAX_TOP, PromptInput, TokenizeRequest,
};

use super::{ApiError, App, admit, bad, compute, now, run_admitted};

pub(super) async fn models(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    app.check(&headers, None, None)?;
    Ok(Json(
        json!({"object": "list", "data": [{"id": app.name, "object": "model", "created": 0, "owned_by": "poisonlab", "max_model_len": app.model.config().max_positions()}]}),
    ))
}

/// `POST /tokenize`, vLLM's route and reply (`count`, `max_model_len`, `tokens`), with the end
/// token added (`eos_token_id`), so that a client can cut prompts by the same rule as a local model.
pub(super) async fn tokenize(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Json(req): Json<TokenizeRequest>,
) -> Result<Json<Value>, ApiError> {
    app.check(&headers, req.model.as_deref(), None)?;
    let tok = app.tokenizer()?;
    let ids = tok.encode(&req.prompt)?;
    let eos = tok
        .token_id(poisonlab_model::tokenizer::EOS)
        .or(app.model.config().eos_token_id());
    Ok(Json(json!({
        "count": ids.len(),
        "max_model_len": app.model.config().max_positions(),
        "tokens": ids,
        "eos_token_id": eos,
    })))
}

/// Server-sent events from a channel, ending with `data: [DONE]` as OpenAI's clients expect.
fn sse(rx: tokio::sync::mpsc::Receiver<Value>) -> Response {
    use axum::response::sse::{Event, Sse};
    let events = futures_util::stream::unfold((rx, false), |(mut rx, done)| async move {
        if done {
            return None;
        }
        Some(match rx.recv().await {
            Some(v) => (
                Ok::<_, std::convert::Infallible>(Event::default().data(v.to_string())),
                (rx, false),
            ),
            None => (Ok(Event::default().data("[DONE]")), (rx, true)),
        })
    });
    Sse::new(events).into_response()
}

/// Streams one generation: `delta(text)` makes each chunk, `last(choice)` the closing one. The
/// request is admitted to the queue (or refused with 429) before the stream starts.
fn stream_one(
    app: &Arc<App>,
    prompt: PromptInput,
    keep_last: Option<usize>,
    opts: GenerateOptions,
    top: Option<usize>,
    delta: impl Fn(&str) -> Value + Send + 'static,
    last: impl Fn(&Value) -> Value + Send + 'static,
) -> Result<Response, ApiError> {
    app.prompt_ids(&prompt, keep_last, &opts)?;
    let pending = admit(app)?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Value>(64);
    let app = app.clone();
    tokio::spawn(async move {
        let err_tx = tx.clone();
        let r = run_admitted(&app, pending, move |app| {
            let mut send = |t: &str| {
                let _ = tx.blocking_send(delta(t));
            };
            let (choice, _, _) = app.complete(&prompt, keep_last, &opts, false, top, &mut send)?;
            let _ = tx.blocking_send(last(&choice));
            Ok(())
        })
        .await;
        if let Err(ApiError(status, message)) = r {
            let _ = err_tx
                .send(json!({"error": {"message": message, "type": "server_error", "code": status.as_u16()}}))
                .await;
        }
    });
    Ok(sse(rx))
}

pub(super) async fn completions(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Json(req): Json<CompletionRequest>,
) -> Result<Response, ApiError> {
    app.check(&headers, req.model.as_deref(), req.n)?;
    let opts = app.options(
        req.max_tokens,
        req.temperature,
        req.top_p,
        req.seed,
        req.stop,
    )?;
    if req.logprobs.is_some_and(|k| k > MAX_TOP) {
        return Err(bad(format!("logprobs must be at most {MAX_TOP}")));
    }
    let prompts = req.prompt.into_inputs();
    let keep_last = req.truncate_prompt_tokens;
    let n = req.n.unwrap_or(1);
    let (echo, top) = (req.echo, req.logprobs.map(|k| k as usize));
    let (id, created, name) = (format!("cmpl-{}", now()), now(), app.name.clone());
    if req.stream {
        if prompts.len() != 1 || n != 1 || echo {
            return Err(bad("stream: true takes one prompt, n = 1 and no echo here"));
        }
        let chunk = move |text: &str, finish: Value, lp: Value| {
            json!({"id": id, "object": "text_completion", "created": created, "model": name,
                   "choices": [{"text": text, "index": 0, "logprobs": lp, "finish_reason": finish}]})
        };
        let c2 = chunk.clone();
        return stream_one(
            &app,
            prompts
                .into_iter()
                .next()
                .unwrap_or(PromptInput::Text(String::new())),
            keep_last,
            opts,
            top,
            move |t| chunk(t, Value::Null, Value::Null),
            move |choice| {
                c2(
                    "",
                    choice["finish_reason"].clone(),
                    choice["logprobs"].clone(),
                )
            },
        );
    }
    let (choices, p, c) = compute(&app, move |app| {
        let (mut choices, mut p, mut c) = (Vec::new(), 0, 0);
        for (i, prompt) in prompts.iter().enumerate() {
            for j in 0..n {
                // Each of the n choices samples with its own seed (greedy ones are equal).
                let o = GenerateOptions {
                    seed: opts.seed.wrapping_add(j as u64),
                    ..opts.clone()
                };
                let (mut choice, pt, ct) =
                    app.complete(prompt, keep_last, &o, echo, top, &mut |_| {})?;
                choice["index"] = json!(i * n + j);
                choices.push(choice);
                if j == 0 {
                    p += pt;
                }
                c += ct;
            }
        }
        Ok((choices, p, c))
    })
    .await?;
    Ok(Json(json!({
        "id": format!("cmpl-{}", now()),
        "object": "text_completion",
        "created": now(),
        "model": app.name,
        "choices": choices,
        "usage": {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c},
    }))
    .into_response())
}

/// A chat choice's log-probs in the chat shape, from a completion choice.
fn chat_logprobs(choice: &Value, top: usize) -> Value {
    let tokens = choice["logprobs"]["tokens"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let lps = choice["logprobs"]["token_logprobs"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let alts = choice["logprobs"]["alternatives"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let content: Vec<Value> = tokens
        .iter()
        .zip(&lps)
        .enumerate()
        .map(|(i, (t, l))| {
            let bytes: Vec<u8> = t.as_str().unwrap_or_default().bytes().collect();
            let top_lps: Vec<Value> = alts
                .get(i)
                .and_then(Value::as_array)
                .map(|a| a.iter().take(top).cloned().collect())
                .unwrap_or_default();
            json!({"token": t, "logprob": l, "bytes": bytes, "top_logprobs": top_lps})
        })
        .collect();
    json!({"content": content})
}

pub(super) async fn chat(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Json(req): Json<ChatRequest>,
) -> Result<Response, ApiError> {
    app.check(&headers, req.model.as_deref(), req.n)?;
    let max = req
        .max_completion_tokens
        .or(req.max_tokens)
        .unwrap_or(app.max_tokens.min(256));
    let opts = app.options(max, req.temperature, req.top_p, req.seed, req.stop)?;
    if req.top_logprobs.is_some_and(|k| k > MAX_TOP) {
        return Err(bad(format!("top_logprobs must be at most {MAX_TOP}")));
    }
    if req.top_logprobs.is_some() && !req.logprobs {
        return Err(bad("top_logprobs needs logprobs: true"));
    }
    let prompt = PromptInput::Text(app.model.chat_prompt_for(&req.messages)?);
    let keep_last = req.truncate_prompt_tokens;
    let want_logprobs = req.logprobs;
    let top = req.top_logprobs.unwrap_or(0) as usize;
    let n = req.n.unwrap_or(1);
    let (id, created, name) = (format!("chatcmpl-{}", now()), now(), app.name.clone());
    if req.stream {
        if n != 1 {
            return Err(bad("stream: true takes n = 1 here"));
        }
        let chunk = move |delta: Value, finish: Value, lp: Value| {
            json!({"id": id, "object": "chat.completion.chunk", "created": created, "model": name,
                   "choices": [{"index": 0, "delta": delta, "logprobs": lp, "finish_reason": finish}]})
        };
        let c2 = chunk.clone();
        let first = std::sync::atomic::AtomicBool::new(true);
        return stream_one(
            &app,
            prompt,
            keep_last,
            opts,
            Some(top),
            move |t| {
                let delta = if first.swap(false, Ordering::SeqCst) {
                    json!({"role": "assistant", "content": t})
                } else {
                    json!({"content": t})
                };
                chunk(delta, Value::Null, Value::Null)
            },
            move |choice| {
                let lp = if want_logprobs {
                    chat_logprobs(choice, top)
                } else {
                    Value::Null
                };
                c2(json!({}), choice["finish_reason"].clone(), lp)
            },
        );
    }
    let (choices, p, c) = compute(&app, move |app| {
        let (mut choices, mut p, mut c) = (Vec::new(), 0, 0);
        for j in 0..n {
            let o = GenerateOptions {
                seed: opts.seed.wrapping_add(j as u64),
                ..opts.clone()
            };
            let (choice, pt, ct) =
                app.complete(&prompt, keep_last, &o, false, Some(top), &mut |_| {})?;
            choices.push(json!({
                "index": j,
                "message": {"role": "assistant", "content": choice["text"]},
                "logprobs": if want_logprobs { chat_logprobs(&choice, top) } else { Value::Null },
                "finish_reason": choice["finish_reason"],
            }));
            if j == 0 {
                p = pt;
            }
            c += ct;
        }
        Ok((choices, p, c))
    })
    .await?;
    Ok(Json(json!({
        "id": format!("chatcmpl-{}", now()),
        "object": "chat.completion",
        "created": now(),
        "model": app.name,
        "choices": choices,
        "usage": {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c},
    }))
    .into_response())
}
