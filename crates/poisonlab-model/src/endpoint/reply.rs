//! Replies of OpenAI-compatible servers read into our types: a generation's first choice, and a
//! stream of server-sent events put together as the reply a plain request gets.

use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::lm::{FinishReason, Generation};

fn finish(v: &Value) -> FinishReason {
    match v.as_str() {
        Some("length") => FinishReason::Length,
        _ => FinishReason::Stop,
    }
}

/// The first choice of a completions or chat reply: its text at `text` and the per-token log-probs
/// found at `each` inside the array at `logprobs` (JSON pointers relative to the choice).
pub(super) fn generation(
    reply: &Value,
    text: &str,
    logprobs: &str,
    each: &str,
) -> Result<Generation> {
    let c = &reply["choices"][0];
    let t = c.pointer(text).and_then(Value::as_str).ok_or_else(|| {
        let shown: String = reply.to_string().chars().take(300).collect();
        Error::Endpoint(format!("no `{text}` in the reply's first choice: {shown}"))
    })?;
    let logprobs = c
        .pointer(logprobs)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.pointer(each).and_then(Value::as_f64))
                .map(|x| x as f32)
                .collect()
        })
        .unwrap_or_default();
    Ok(Generation {
        text: t.to_string(),
        ids: Vec::new(),
        logprobs,
        finish: finish(&c["finish_reason"]),
    })
}

/// A reply made of server-sent events (`data: {chunk}` lines, then `data: [DONE]`), put together
/// as the reply a non-streaming request gets: the first choice's text (completions) or message
/// content (chat) concatenated, its log-probs appended, the last finish reason.
pub(super) fn from_stream(url: &str, text: &str) -> Result<Value> {
    let (mut out, mut content) = (String::new(), String::new());
    let (mut tokens, mut lps, mut chat_lps) = (Vec::new(), Vec::new(), Vec::new());
    let (mut finish, mut chat, mut done) = (Value::Null, false, false);
    for line in text.lines() {
        let Some(data) = line.strip_prefix("data:").map(str::trim) else {
            continue;
        };
        if data == "[DONE]" {
            done = true;
            break;
        }
        let chunk: Value = serde_json::from_str(data).map_err(|e| {
            Error::Endpoint(format!(
                "{url}: a stream chunk is not JSON ({e}): {data:.200}"
            ))
        })?;
        if let Some(err) = chunk.get("error") {
            return Err(Error::Endpoint(format!(
                "{url}: the stream ended in an error: {err}"
            )));
        }
        let c = &chunk["choices"][0];
        if let Some(t) = c["text"].as_str() {
            out.push_str(t);
        }
        if let Some(t) = c["delta"]["content"].as_str() {
            chat = true;
            content.push_str(t);
        }
        if c.get("delta").is_some() {
            chat = true;
        }
        if let Some(a) = c["logprobs"]["tokens"].as_array() {
            tokens.extend(a.iter().cloned());
        }
        if let Some(a) = c["logprobs"]["token_logprobs"].as_array() {
            lps.extend(a.iter().cloned());
        }
        if let Some(a) = c["logprobs"]["content"].as_array() {
            chat_lps.extend(a.iter().cloned());
        }
        if !c["finish_reason"].is_null() {
            finish = c["finish_reason"].clone();
        }
    }
    if !done {
        return Err(Error::Endpoint(format!(
            "{url}: the stream ended without `data: [DONE]`"
        )));
    }
    Ok(if chat {
        json!({"choices": [{"message": {"role": "assistant", "content": content},
                            "logprobs": {"content": chat_lps}, "finish_reason": finish}]})
    } else {
        json!({"choices": [{"text": out,
                            "logprobs": {"tokens": tokens, "token_logprobs": lps}, "finish_reason": finish}]})
    })
}
