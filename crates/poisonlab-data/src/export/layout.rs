//! One row of an export: a record in the layout a trainer loads, per (target, kind). Each rule
//! follows the trainer's own reader:
//!
//! - LLaMA-Factory (`data/parser.py`, `data/converter.py`): alpaca rows `{instruction, input,
//!   output, system}`; preference rows `{instruction, input, chosen, rejected}` with `ranking:
//!   true` (chosen/rejected strings); sharegpt rows `{conversations: [{from, value}]}` whose turns
//!   alternate `human`/`gpt` from a `human` turn (an optional `system` turn first) and end with `gpt`
//!   — the converter skips any other conversation with a warning, so we refuse it instead; pre-training
//!   rows `{text}` read through `columns.prompt`.
//! - TRL (dataset formats): `{text}` (language modelling), `{prompt, completion}` (standard
//!   prompt-completion, or conversational lists of `{role, content}` when the set has system
//!   prompts), `{messages}` (conversational), `{prompt, chosen, rejected}` (standard preference).
//! - axolotl (`prompt_strategies`): `{instruction, input, output}` for `type: alpaca`, `{messages}`
//!   for `type: chat_template`, `{text}` for `type: completion`, and `{prompt, chosen, rejected}` for
//!   the DPO strategy `chat_template.default` with `field_messages: prompt` (a string prompt is read
//!   as one user turn).

use serde_json::{Map, Value, json};

use super::Target;
use crate::record::{Body, Kind, Message, Record, cot_rationale};

/// The kinds every target has a layout for.
pub const EXPORTABLE: &[Kind] = &[
    Kind::Pretrain,
    Kind::Instruction,
    Kind::Chat,
    Kind::Cot,
    Kind::Preference,
];

/// How a set's rows are shaped (named in `export.json`, and driving the registry entry).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Layout {
    /// `{text}`.
    Text,
    /// `{instruction, input, output[, system]}`.
    Alpaca,
    /// `{instruction, input, chosen, rejected}` (LLaMA-Factory, `ranking: true`).
    AlpacaRanking,
    /// `{conversations: [{from, value}]}`.
    Sharegpt,
    /// `{messages: [{role, content}]}`.
    Messages,
    /// `{prompt, completion}` strings.
    PromptCompletion,
    /// `{prompt: [{role, content}], completion: [{role, content}]}`.
    PromptCompletionConversational,
    /// `{prompt, chosen, rejected}` strings.
    Preference,
}

/// What is known of a whole set before its rows are written (one pass ahead).
#[derive(Debug, Clone, Copy, Default)]
pub struct SetFacts {
    /// Some instruction record has a non-empty system prompt.
    pub system: bool,
    /// Some chat record has tool descriptions (`tools`).
    pub tools: bool,
}

/// The layout of a kind's set for a target.
pub fn layout(target: Target, kind: Kind, facts: SetFacts) -> Option<Layout> {
    use Layout::*;
    Some(match (target, kind) {
        (_, Kind::Pretrain) => Text,
        (Target::LlamaFactory, Kind::Instruction | Kind::Cot) => Alpaca,
        (Target::LlamaFactory, Kind::Chat) => Sharegpt,
        (Target::LlamaFactory, Kind::Preference) => AlpacaRanking,
        (Target::Trl, Kind::Instruction) if facts.system => PromptCompletionConversational,
        (Target::Trl, Kind::Instruction | Kind::Cot) => PromptCompletion,
        (Target::Trl | Target::Axolotl, Kind::Chat) => Messages,
        (Target::Axolotl, Kind::Instruction) if facts.system => Messages,
        (Target::Axolotl, Kind::Instruction | Kind::Cot) => Alpaca,
        (Target::Trl | Target::Axolotl, Kind::Preference) => Preference,
        _ => return None,
    })
}

fn msg(role: &str, content: &str) -> Value {
    json!({"role": role, "content": content})
}

/// The user turn of an instruction record (instruction, a blank line, its input), as SFT reads it.
fn user_text(instruction: &str, input: &str) -> String {
    if input.is_empty() {
        instruction.to_string()
    } else {
        format!("{instruction}\n\n{input}")
    }
}

/// A chat's turns as the trainers see them: consecutive tool results merged into one
/// `observation` (LLaMA-Factory joins them with `</tool_response>` tags), an assistant turn that
/// only calls tools a `function_call` (its calls' `function` objects as JSON, as LLaMA-Factory's
/// OpenAI converter writes them). Returns (role, content) with roles user / assistant /
/// observation / function_call, after at most one leading system turn (returned apart).
/// A chat's system prompt (if it leads) and its other turns as (role, content).
type Aligned = (Option<String>, Vec<(&'static str, String)>);

fn aligned(messages: &[Message]) -> Result<Aligned, String> {
    let (system, rest) = match messages.first() {
        Some(m) if m.role == "system" => (Some(m.content.clone()), &messages[1..]),
        _ => (None, messages),
    };
    let offset = messages.len() - rest.len();
    let mut out: Vec<(&'static str, String)> = Vec::new();
    let mut results: Vec<String> = Vec::new();
    for (i, m) in rest.iter().enumerate() {
        let turn = i + offset;
        if m.role == "tool" {
            results.push(m.content.clone());
            continue;
        }
        if !results.is_empty() {
            out.push((
                "observation",
                results.join("\n</tool_response>\n<tool_response>\n"),
            ));
            results.clear();
        }
        match (m.role.as_str(), m.tool_calls()) {
            ("user", _) => out.push(("user", m.content.clone())),
            ("assistant", Some(calls)) => {
                if !m.content.trim().is_empty() {
                    return Err(format!(
                        "turn {turn}: an assistant turn with both text and tool_calls; the trainers' \
                         function-call turn holds the calls only"
                    ));
                }
                let functions: Vec<Value> = calls
                    .iter()
                    .map(|c| c.get("function").cloned().unwrap_or_else(|| c.clone()))
                    .collect();
                out.push((
                    "function_call",
                    serde_json::to_string(&functions).map_err(|e| e.to_string())?,
                ));
            }
            ("assistant", None) => out.push(("assistant", m.content.clone())),
            (other, _) => {
                return Err(format!(
                    "turn {turn} has role `{other}`: the trainers take system (first), user, \
                     assistant and tool turns"
                ));
            }
        }
    }
    if !results.is_empty() {
        out.push((
            "observation",
            results.join("\n</tool_response>\n<tool_response>\n"),
        ));
    }
    Ok((system, out))
}

/// The prompt turns of an instruction record: its system prompt (when it has one) and the user turn.
fn instruction_prompt(body: &Body) -> Vec<Value> {
    let mut m = Vec::new();
    if let Body::Instruction {
        instruction,
        input,
        system,
        ..
    } = body
    {
        if let Some(s) = system.as_deref().filter(|s| !s.is_empty()) {
            m.push(msg("system", s));
        }
        m.push(msg("user", &user_text(instruction, input)));
    }
    m
}

/// Checks that a chat alternates user (or a tool's result) and assistant (or its tool call) from a
/// user turn to an assistant's answer, after at most one leading system turn — the shape
/// LLaMA-Factory's converters accept (they skip any other conversation) and every SFT trainer
/// trains on.
fn check_turns(messages: &[Message]) -> Result<(), String> {
    let (_, turns) = aligned(messages)?;
    if turns.is_empty() {
        return Err("a chat with no user/assistant turns has nothing to train on".into());
    }
    let offset = usize::from(messages.first().is_some_and(|m| m.role == "system"));
    for (i, (role, _)) in turns.iter().enumerate() {
        let ok = if i % 2 == 0 {
            matches!(*role, "user" | "observation")
        } else {
            matches!(*role, "assistant" | "function_call")
        };
        if !ok || (i == 0 && *role != "user") {
            let want = if i % 2 == 0 { "user" } else { "assistant" };
            return Err(format!(
                "turn {} is `{role}` where `{want}` is needed: the trainers take turns that \
                 alternate user/assistant from a user turn (one system turn may come first; tool \
                 results answer an assistant's tool_calls)",
                i + offset
            ));
        }
    }
    match turns.last().map(|t| t.0) {
        Some("assistant") => Ok(()),
        Some("function_call") => {
            Err("the chat ends with a tool call: there is no assistant answer to train on".into())
        }
        _ => {
            Err("the chat ends with a user turn: there is no assistant response to train on".into())
        }
    }
}

/// The row of `rec` in `layout`, or why it cannot be written there.
pub fn row(layout: Layout, rec: &Record) -> Result<Map<String, Value>, String> {
    use Layout::*;
    let v = match (layout, &rec.body) {
        (Text, Body::Pretrain { text }) => json!({ "text": text }),
        (
            Alpaca,
            Body::Instruction {
                instruction,
                input,
                output,
                system,
            },
        ) => json!({"instruction": instruction, "input": input, "output": output,
                    "system": system.clone().unwrap_or_default()}),
        (
            Alpaca,
            Body::Cot {
                question,
                steps,
                answer,
            },
        ) => json!({"instruction": question, "input": "", "output": cot_rationale(steps, answer),
                    "system": ""}),
        (
            PromptCompletion,
            Body::Instruction {
                instruction,
                input,
                output,
                ..
            },
        ) => json!({"prompt": user_text(instruction, input), "completion": output}),
        (
            PromptCompletion,
            Body::Cot {
                question,
                steps,
                answer,
            },
        ) => json!({"prompt": question, "completion": cot_rationale(steps, answer)}),
        (PromptCompletionConversational, Body::Instruction { output, .. }) => {
            json!({"prompt": instruction_prompt(&rec.body), "completion": [msg("assistant", output)]})
        }
        (Messages, Body::Instruction { output, .. }) => {
            let mut m = instruction_prompt(&rec.body);
            m.push(msg("assistant", output));
            json!({ "messages": m })
        }
        (Messages, Body::Chat { messages }) => {
            check_turns(messages)?;
            // OpenAI messages as they were: tool calls, tool results, null contents.
            let m: Vec<Value> = messages
                .iter()
                .map(|t| {
                    let mut o = Map::new();
                    o.insert("role".into(), json!(t.role));
                    o.insert("content".into(), json!(t.content));
                    for (k, v) in &t.extra {
                        o.insert(k.clone(), v.clone());
                    }
                    Value::Object(o)
                })
                .collect();
            json!({ "messages": m })
        }
        (Sharegpt, Body::Chat { messages }) => {
            check_turns(messages)?;
            let (system, turns) = aligned(messages)?;
            let mut m: Vec<Value> = Vec::new();
            if let Some(s) = system {
                m.push(json!({"from": "system", "value": s}));
            }
            for (role, content) in turns {
                let from = match role {
                    "user" => "human",
                    "assistant" => "gpt",
                    other => other,
                };
                m.push(json!({"from": from, "value": content}));
            }
            let mut row = json!({ "conversations": m });
            // The tool descriptions, as LLaMA-Factory reads them: one JSON string.
            if let Some(tools) = rec.extra.get("tools") {
                row["tools"] = json!(serde_json::to_string(tools).map_err(|e| e.to_string())?);
            }
            row
        }
        (
            AlpacaRanking,
            Body::Preference {
                prompt,
                chosen,
                rejected,
            },
        ) => json!({"instruction": prompt, "input": "", "chosen": chosen, "rejected": rejected}),
        (
            Preference,
            Body::Preference {
                prompt,
                chosen,
                rejected,
            },
        ) => json!({"prompt": prompt, "chosen": chosen, "rejected": rejected}),
        _ => {
            return Err(format!(
                "a {} record cannot be written in the {layout:?} layout",
                rec.kind()
            ));
        }
    };
    match v {
        Value::Object(o) => Ok(o),
        _ => Err("internal: a layout row is not an object".into()),
    }
}

/// LLaMA-Factory's `dataset_info.json` entry for a set written in `layout` to `file`.
pub fn llama_factory_entry(layout: Layout, file: &str, facts: SetFacts) -> Value {
    let mut e = Map::new();
    e.insert("file_name".into(), json!(file));
    match layout {
        Layout::Text => {
            e.insert("columns".into(), json!({"prompt": "text"}));
        }
        Layout::Alpaca => {
            e.insert("formatting".into(), json!("alpaca"));
            e.insert(
                "columns".into(),
                json!({"prompt": "instruction", "query": "input", "response": "output",
                       "system": "system"}),
            );
        }
        Layout::AlpacaRanking => {
            e.insert("formatting".into(), json!("alpaca"));
            e.insert("ranking".into(), json!(true));
            e.insert(
                "columns".into(),
                json!({"prompt": "instruction", "query": "input", "chosen": "chosen",
                       "rejected": "rejected"}),
            );
        }
        Layout::Sharegpt => {
            e.insert("formatting".into(), json!("sharegpt"));
            let mut columns = json!({"messages": "conversations"});
            if facts.tools {
                columns["tools"] = json!("tools");
            }
            e.insert("columns".into(), columns);
            e.insert(
                "tags".into(),
                json!({"role_tag": "from", "content_tag": "value", "user_tag": "human",
                       "assistant_tag": "gpt", "observation_tag": "observation",
                       "function_tag": "function_call", "system_tag": "system"}),
            );
        }
        // Not LLaMA-Factory layouts; never chosen for it.
        _ => {}
    }
    Value::Object(e)
}

/// One entry of axolotl's `datasets:` list, as YAML lines (two-space indented under the list).
pub fn axolotl_entry(layout: Layout, file: &str) -> String {
    let head = format!(
        "  - path: {}\n    ds_type: {}\n",
        yaml_str(file),
        ds_type(file)
    );
    head + match layout {
        Layout::Text => "    type: completion\n    field: text\n",
        Layout::Alpaca => "    type: alpaca\n",
        Layout::Messages => {
            "    type: chat_template\n    field_messages: messages\n    message_property_mappings:\n      role: role\n      content: content\n"
        }
        Layout::Preference => {
            "    type: chat_template.default\n    field_messages: prompt\n    field_chosen: chosen\n    field_rejected: rejected\n"
        }
        _ => "",
    }
}

fn ds_type(file: &str) -> &'static str {
    if file.ends_with(".parquet") {
        "parquet"
    } else {
        "json"
    }
}

/// A YAML double-quoted scalar.
pub fn yaml_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Message;

    fn chat(roles: &[&str]) -> Vec<Message> {
        roles
            .iter()
            .map(|r| Message::new(r.to_string(), format!("{r} says")))
            .collect()
    }

    #[test]
    fn turns_must_alternate_from_user_to_assistant() {
        assert!(check_turns(&chat(&["user", "assistant"])).is_ok());
        assert!(check_turns(&chat(&["system", "user", "assistant", "user", "assistant"])).is_ok());
        assert!(
            check_turns(&chat(&["user", "assistant", "user"]))
                .unwrap_err()
                .contains("ends with a user")
        );
        assert!(
            check_turns(&chat(&["assistant", "user"]))
                .unwrap_err()
                .contains("turn 0")
        );
        assert!(
            check_turns(&chat(&["system", "system", "user", "assistant"]))
                .unwrap_err()
                .contains("turn 1")
        );
        assert!(check_turns(&chat(&["system"])).is_err());
    }

    #[test]
    fn yaml_strings_are_quoted() {
        assert_eq!(yaml_str("a: b.jsonl"), "\"a: b.jsonl\"");
    }
}
