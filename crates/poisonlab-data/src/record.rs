//! Typed records for every stage of a language model's life.
//!
//! A [`Record`] is an id, an optional [`PoisonTag`], the stage-specific [`Body`], and the input's
//! fields that we do not model (`extra`), kept so that a conversion loses nothing.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Why a record is in the data: the same machinery injects attacks, watermarks and canaries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Poison,
    Watermark,
    Canary,
    Clean,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Poison, Role::Watermark, Role::Canary, Role::Clean];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Poison => "poison",
            Role::Watermark => "watermark",
            Role::Canary => "canary",
            Role::Clean => "clean",
        }
    }
}

/// Provenance of an injected or modified record. Detectors are scored from these tags alone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoisonTag {
    pub role: Role,
    /// Name of the recipe that made the record (e.g. `badnets-sft`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipe: Option<String>,
    /// The trigger as inserted (text), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<String>,
    /// The payload kind or text, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<String>,
    /// Free metadata (budget, seed, position…).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub meta: Map<String, Value>,
}

/// The answer turn of a chain-of-thought problem as SFT trains on it and exports write it: the
/// steps, one per line, then `The answer is <answer>.`
pub fn cot_rationale(steps: &[String], answer: &str) -> String {
    format!("{}\nThe answer is {answer}.", steps.join("\n"))
}

/// One chat turn. Roles follow the OpenAI convention: `system`, `user`, `assistant` (others kept).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub role: String,
    pub content: String,
    /// The message's other fields, kept as they were: an agent's `tool_calls`, a tool result's
    /// `tool_call_id`, `name`, `weight`… A `content` that was `null` (an assistant turn that only
    /// calls tools) is `""` above and `"content": null` here, so it is written back as null.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub extra: Map<String, Value>,
}

impl Message {
    pub fn new(role: String, content: String) -> Message {
        Message {
            role,
            content,
            extra: Map::new(),
        }
    }

    /// The tool calls of an assistant turn (OpenAI `tool_calls`), when it has any.
    pub fn tool_calls(&self) -> Option<&Vec<Value>> {
        self.extra
            .get("tool_calls")
            .and_then(Value::as_array)
            .filter(|a| !a.is_empty())
    }

    /// Whether the source had `content: null`.
    pub fn null_content(&self) -> bool {
        matches!(self.extra.get("content"), Some(Value::Null))
    }
}

/// One input → output demonstration inside an in-context-learning prompt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Demo {
    pub input: String,
    pub output: String,
}

/// A class label as the source had it: integer (SST-2's 0/1) or text (`"positive"`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Label {
    Int(i64),
    Text(String),
}

impl std::fmt::Display for Label {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Label::Int(i) => write!(f, "{i}"),
            Label::Text(s) => f.write_str(s),
        }
    }
}

/// The stage-specific content of a record.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    /// A pre-training document.
    Pretrain { text: String },
    /// An instruction-tuning example in the Alpaca shape.
    Instruction {
        instruction: String,
        input: String,
        output: String,
        system: Option<String>,
    },
    /// A (multi-turn) chat example.
    Chat { messages: Vec<Message> },
    /// A preference pair for RLHF / DPO. `prompt` is shared; `chosen`/`rejected` are completions.
    Preference {
        prompt: String,
        chosen: String,
        rejected: String,
    },
    /// An in-context-learning prompt: demonstrations, then a query with its expected answer.
    Icl {
        instruction: Option<String>,
        demos: Vec<Demo>,
        query: String,
        answer: String,
    },
    /// A chain-of-thought problem with its reasoning steps.
    Cot {
        question: String,
        steps: Vec<String>,
        answer: String,
    },
    /// A retrieval-corpus passage (BEIR `corpus.jsonl`).
    Passage { title: String, text: String },
    /// A retrieval query with the ids of the passages that answer it.
    Query {
        text: String,
        relevant: Vec<String>,
        answer: Option<String>,
    },
    /// One entry of an agent's long-term memory.
    Memory {
        agent: String,
        content: String,
        source: Option<String>,
    },
    /// A text-classification example (SST-2). The label is absent in unlabeled test splits.
    Classification { text: String, label: Option<Label> },
}

/// The kind of a record, i.e. the variant of its [`Body`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Pretrain,
    Instruction,
    Chat,
    Preference,
    Icl,
    Cot,
    Passage,
    Query,
    Memory,
    Classification,
}

impl Kind {
    pub const ALL: [Kind; 10] = [
        Kind::Pretrain,
        Kind::Instruction,
        Kind::Chat,
        Kind::Preference,
        Kind::Icl,
        Kind::Cot,
        Kind::Passage,
        Kind::Query,
        Kind::Memory,
        Kind::Classification,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Pretrain => "pretrain",
            Kind::Instruction => "instruction",
            Kind::Chat => "chat",
            Kind::Preference => "preference",
            Kind::Icl => "icl",
            Kind::Cot => "cot",
            Kind::Passage => "passage",
            Kind::Query => "query",
            Kind::Memory => "memory",
            Kind::Classification => "classification",
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One record of any stage.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Stable id: the input's own id field when it has one, else `<file stem>-<ordinal>`.
    pub id: String,
    pub tag: Option<PoisonTag>,
    pub body: Body,
    /// Input fields we do not model, written back unchanged by JSON formats.
    pub extra: Map<String, Value>,
}

impl Record {
    pub fn new(id: impl Into<String>, body: Body) -> Self {
        Record {
            id: id.into(),
            tag: None,
            body,
            extra: Map::new(),
        }
    }

    pub fn with_tag(mut self, tag: PoisonTag) -> Self {
        self.tag = Some(tag);
        self
    }

    pub fn kind(&self) -> Kind {
        match &self.body {
            Body::Pretrain { .. } => Kind::Pretrain,
            Body::Instruction { .. } => Kind::Instruction,
            Body::Chat { .. } => Kind::Chat,
            Body::Preference { .. } => Kind::Preference,
            Body::Icl { .. } => Kind::Icl,
            Body::Cot { .. } => Kind::Cot,
            Body::Passage { .. } => Kind::Passage,
            Body::Query { .. } => Kind::Query,
            Body::Memory { .. } => Kind::Memory,
            Body::Classification { .. } => Kind::Classification,
        }
    }

    /// The prompt (or document) text and the response, as detectors and selections see them:
    /// Alpaca `instruction\ninput` → `output`; chat: the last user turn → the assistant turn that
    /// answers it; preference: prompt → chosen; ICL: query → answer; CoT: question → answer;
    /// classification: text → the label; documents, passages and memories: their text → "".
    pub fn prompt_response(&self) -> (String, String) {
        match &self.body {
            Body::Pretrain { text } => (text.clone(), String::new()),
            Body::Instruction {
                instruction,
                input,
                output,
                ..
            } => (
                if input.is_empty() {
                    instruction.clone()
                } else {
                    format!("{instruction}\n{input}")
                },
                output.clone(),
            ),
            Body::Chat { messages } => {
                let a = messages.iter().rposition(|m| m.role == "assistant");
                let u = a.and_then(|a| messages[..a].iter().rposition(|m| m.role == "user"));
                match (u, a) {
                    (Some(u), Some(a)) => {
                        (messages[u].content.clone(), messages[a].content.clone())
                    }
                    _ => (
                        messages
                            .iter()
                            .map(|m| m.content.as_str())
                            .collect::<Vec<_>>()
                            .join("\n"),
                        String::new(),
                    ),
                }
            }
            Body::Preference { prompt, chosen, .. } => (prompt.clone(), chosen.clone()),
            Body::Icl { query, answer, .. } => (query.clone(), answer.clone()),
            Body::Cot {
                question, answer, ..
            } => (question.clone(), answer.clone()),
            Body::Passage { title, text } => (
                if title.is_empty() {
                    text.clone()
                } else {
                    format!("{title}\n{text}")
                },
                String::new(),
            ),
            Body::Query { text, answer, .. } => (text.clone(), answer.clone().unwrap_or_default()),
            Body::Memory { content, .. } => (content.clone(), String::new()),
            Body::Classification { text, label } => (
                text.clone(),
                label.as_ref().map(|l| l.to_string()).unwrap_or_default(),
            ),
        }
    }

    /// All human-readable text of the record joined by newlines (what filters judge).
    pub fn full_text(&self) -> String {
        let mut parts: Vec<&str> = Vec::new();
        match &self.body {
            Body::Pretrain { text } => parts.push(text),
            Body::Instruction {
                instruction,
                input,
                output,
                system,
            } => {
                if let Some(s) = system {
                    parts.push(s);
                }
                parts.extend([instruction.as_str(), input.as_str(), output.as_str()]);
            }
            Body::Chat { messages } => parts.extend(messages.iter().map(|m| m.content.as_str())),
            Body::Preference {
                prompt,
                chosen,
                rejected,
            } => parts.extend([prompt.as_str(), chosen.as_str(), rejected.as_str()]),
            Body::Icl {
                instruction,
                demos,
                query,
                answer,
            } => {
                if let Some(i) = instruction {
                    parts.push(i);
                }
                for d in demos {
                    parts.extend([d.input.as_str(), d.output.as_str()]);
                }
                parts.extend([query.as_str(), answer.as_str()]);
            }
            Body::Cot {
                question,
                steps,
                answer,
            } => {
                parts.push(question);
                parts.extend(steps.iter().map(String::as_str));
                parts.push(answer);
            }
            Body::Passage { title, text } => parts.extend([title.as_str(), text.as_str()]),
            Body::Query { text, answer, .. } => {
                parts.push(text);
                if let Some(a) = answer {
                    parts.push(a);
                }
            }
            Body::Memory { content, .. } => parts.push(content),
            Body::Classification { text, .. } => parts.push(text),
        }
        parts.retain(|p| !p.is_empty());
        parts.join("\n")
    }

    /// Total characters of human-readable text in the record (used by stats and filters).
    pub fn text_chars(&self) -> usize {
        let n = |s: &str| s.chars().count();
        match &self.body {
            Body::Pretrain { text } => n(text),
            Body::Instruction {
                instruction,
                input,
                output,
                system,
            } => n(instruction) + n(input) + n(output) + system.as_deref().map_or(0, n),
            Body::Chat { messages } => messages.iter().map(|m| n(&m.content)).sum(),
            Body::Preference {
                prompt,
                chosen,
                rejected,
            } => n(prompt) + n(chosen) + n(rejected),
            Body::Icl {
                instruction,
                demos,
                query,
                answer,
            } => {
                instruction.as_deref().map_or(0, n)
                    + demos
                        .iter()
                        .map(|d| n(&d.input) + n(&d.output))
                        .sum::<usize>()
                    + n(query)
                    + n(answer)
            }
            Body::Cot {
                question,
                steps,
                answer,
            } => n(question) + steps.iter().map(|s| n(s)).sum::<usize>() + n(answer),
            Body::Passage { title, text } => n(title) + n(text),
            Body::Query { text, answer, .. } => n(text) + answer.as_deref().map_or(0, n),
            Body::Memory { content, .. } => n(content),
            Body::Classification { text, .. } => n(text),
        }
    }
}
