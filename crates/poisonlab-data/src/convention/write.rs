//! Records → objects in a convention. A kind with no faithful shape in the target is refused.

use serde_json::{Map, Value};

use super::Convention;
use super::read::HH_REJECTED_PROMPT;
use crate::record::{Body, Label, Message, Record};

fn role_to_sharegpt(role: &str) -> String {
    match role {
        "user" => "human".into(),
        "assistant" => "gpt".into(),
        other => other.into(),
    }
}

fn pair_objects<'a>(items: impl Iterator<Item = (&'a str, &'a str)>, a: &str, b: &str) -> Value {
    Value::Array(
        items
            .map(|(x, y)| {
                let mut o = Map::new();
                o.insert(a.into(), Value::String(x.into()));
                o.insert(b.into(), Value::String(y.into()));
                Value::Object(o)
            })
            .collect(),
    )
}

fn s(v: &str) -> Value {
    Value::String(v.to_string())
}

/// Writes a record in `conv`. Fails (with the reason) when the record's kind has no faithful shape
/// in that convention.
pub fn to_object(rec: &Record, conv: Convention) -> Result<Map<String, Value>, String> {
    let mut o = Map::new();
    o.insert(conv.id_key().into(), s(&rec.id));
    let mut extra = rec.extra.clone();
    let incompatible = || {
        format!(
            "a {} record cannot be written as {}",
            rec.kind(),
            conv.name()
        )
    };
    match (&rec.body, conv) {
        (Body::Pretrain { text }, Convention::Pretrain) => {
            o.insert("text".into(), s(text));
        }
        (
            Body::Instruction {
                instruction,
                input,
                output,
                system,
            },
            Convention::Alpaca,
        ) => {
            o.insert("instruction".into(), s(instruction));
            o.insert("input".into(), s(input));
            o.insert("output".into(), s(output));
            if let Some(sys) = system {
                o.insert("system".into(), s(sys));
            }
        }
        (
            Body::Instruction {
                instruction,
                input,
                output,
                system,
            },
            Convention::OpenaiChat | Convention::Sharegpt,
        ) => {
            let user = if input.is_empty() {
                instruction.clone()
            } else {
                format!("{instruction}\n\n{input}")
            };
            let mut turns: Vec<Message> = Vec::new();
            if let Some(sys) = system {
                turns.push(Message::new("system".into(), sys.clone()));
            }
            turns.push(Message::new("user".into(), user));
            turns.push(Message::new("assistant".into(), output.clone()));
            write_chat(&mut o, conv, &turns)?;
        }
        (Body::Chat { messages }, Convention::OpenaiChat | Convention::Sharegpt) => {
            write_chat(&mut o, conv, messages)?;
        }
        (Body::Chat { messages }, Convention::Alpaca) => {
            let (system, rest) = match messages.first() {
                Some(m) if m.role == "system" => (Some(m.content.clone()), &messages[1..]),
                _ => (None, &messages[..]),
            };
            match rest {
                [u, a] if u.role == "user" && a.role == "assistant" => {
                    o.insert("instruction".into(), s(&u.content));
                    o.insert("input".into(), s(""));
                    o.insert("output".into(), s(&a.content));
                    if let Some(sys) = system {
                        o.insert("system".into(), Value::String(sys));
                    }
                }
                _ => {
                    return Err(
                        "only a single user/assistant exchange can be written as alpaca".into(),
                    );
                }
            }
        }
        (
            Body::Preference {
                prompt,
                chosen,
                rejected,
            },
            Convention::Preference,
        ) => {
            o.insert("prompt".into(), s(prompt));
            o.insert("chosen".into(), s(chosen));
            o.insert("rejected".into(), s(rejected));
        }
        (
            Body::Preference {
                prompt,
                chosen,
                rejected,
            },
            Convention::HhRlhf,
        ) => {
            let rprompt = match extra.shift_remove(HH_REJECTED_PROMPT) {
                Some(Value::String(p)) => p,
                _ => prompt.clone(),
            };
            o.shift_remove("id");
            o.insert("chosen".into(), Value::String(format!("{prompt}{chosen}")));
            o.insert(
                "rejected".into(),
                Value::String(format!("{rprompt}{rejected}")),
            );
            // HH-RLHF files have no id; keep ours after the transcripts.
            o.insert("id".into(), s(&rec.id));
        }
        (
            Body::Icl {
                instruction,
                demos,
                query,
                answer,
            },
            Convention::Icl,
        ) => {
            if let Some(i) = instruction {
                o.insert("instruction".into(), s(i));
            }
            o.insert(
                "demos".into(),
                pair_objects(
                    demos.iter().map(|d| (d.input.as_str(), d.output.as_str())),
                    "input",
                    "output",
                ),
            );
            o.insert("query".into(), s(query));
            o.insert("answer".into(), s(answer));
        }
        (
            Body::Cot {
                question,
                steps,
                answer,
            },
            Convention::Cot,
        ) => {
            o.insert("question".into(), s(question));
            o.insert(
                "steps".into(),
                Value::Array(steps.iter().map(|x| s(x)).collect()),
            );
            o.insert("answer".into(), s(answer));
        }
        (Body::Passage { title, text }, Convention::BeirCorpus) => {
            o.insert("title".into(), s(title));
            o.insert("text".into(), s(text));
        }
        (
            Body::Query {
                text,
                relevant,
                answer,
            },
            Convention::BeirQueries,
        ) => {
            o.insert("text".into(), s(text));
            o.insert(
                "relevant".into(),
                Value::Array(relevant.iter().map(|x| s(x)).collect()),
            );
            if let Some(a) = answer {
                o.insert("answer".into(), s(a));
            }
        }
        (
            Body::Memory {
                agent,
                content,
                source,
            },
            Convention::Memory,
        ) => {
            o.insert("agent".into(), s(agent));
            o.insert("content".into(), s(content));
            if let Some(src) = source {
                o.insert("source".into(), s(src));
            }
        }
        (Body::Classification { text, label }, Convention::Classification | Convention::Sst2) => {
            let key = if conv == Convention::Sst2 {
                "sentence"
            } else {
                "text"
            };
            o.insert(key.into(), s(text));
            match label {
                Some(Label::Int(i)) => o.insert("label".into(), Value::from(*i)),
                Some(Label::Text(t)) => o.insert("label".into(), s(t)),
                // An unlabelled classification record keeps its `label` key (null): without it,
                // `{id, text}` reads back as a pre-training document (found by fuzzing).
                None if conv == Convention::Classification => o.insert("label".into(), Value::Null),
                None => None,
            };
        }
        _ => return Err(incompatible()),
    }
    if let Some(tag) = &rec.tag {
        let v = serde_json::to_value(tag).map_err(|e| e.to_string())?;
        o.insert("poison".into(), v);
    }
    for (k, v) in extra {
        if o.contains_key(&k) {
            return Err(format!(
                "extra field `{k}` collides with a field of the {} convention",
                conv.name()
            ));
        }
        o.insert(k, v);
    }
    Ok(o)
}

/// The fields of an OpenAI tool-calling turn, which ShareGPT has no place for.
const TOOL_FIELDS: &[&str] = &["tool_calls", "tool_call_id", "function_call"];

fn write_chat(
    o: &mut Map<String, Value>,
    conv: Convention,
    turns: &[Message],
) -> Result<(), String> {
    let (key, role_key, content_key) = if conv == Convention::Sharegpt {
        ("conversations", "from", "value")
    } else {
        ("messages", "role", "content")
    };
    let mut out = Vec::with_capacity(turns.len());
    for (i, m) in turns.iter().enumerate() {
        let mut t = Map::new();
        let role = if conv == Convention::Sharegpt {
            if let Some(k) = TOOL_FIELDS.iter().find(|k| m.extra.contains_key(**k)) {
                return Err(format!(
                    "message {i} has `{k}`, which ShareGPT cannot hold; keep openai-chat"
                ));
            }
            if m.null_content() {
                return Err(format!(
                    "message {i} has null content, which ShareGPT cannot hold"
                ));
            }
            role_to_sharegpt(&m.role)
        } else {
            m.role.clone()
        };
        t.insert(role_key.into(), Value::String(role));
        t.insert(content_key.into(), Value::String(m.content.clone()));
        for (k, v) in &m.extra {
            // `"content": null` stands for the source's null content (only in its own convention).
            if k == "content" && conv == Convention::OpenaiChat {
                t.insert(k.clone(), v.clone());
                continue;
            }
            if k == role_key || k == content_key {
                return Err(format!(
                    "message {i}: field `{k}` collides with the {} convention",
                    conv.name()
                ));
            }
            t.insert(k.clone(), v.clone());
        }
        out.push(Value::Object(t));
    }
    o.insert(key.into(), Value::Array(out));
    Ok(())
}
