//! Conventions: the JSON shapes people already use for each kind of record, in both directions.
//!
//! Every format that carries objects (JSONL, JSON arrays, TSV rows, Parquet rows) goes through this
//! one module, so a field error reads the same whatever the container.

use serde_json::{Map, Value};

use crate::record::{Body, Demo, Kind, Label, Message, PoisonTag, Record};

/// The shape of one record on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Convention {
    /// `{"id", "text"}`: pre-training documents.
    Pretrain,
    /// `{"instruction", "input", "output"}` (Stanford Alpaca; `system` optional).
    Alpaca,
    /// `{"messages": [{"role", "content"}]}` (OpenAI chat).
    OpenaiChat,
    /// `{"conversations": [{"from", "value"}]}` (ShareGPT; `human`/`gpt`/`system`).
    Sharegpt,
    /// `{"prompt", "chosen", "rejected"}`.
    Preference,
    /// `{"chosen", "rejected"}` as whole `\n\nHuman: … \n\nAssistant: …` transcripts (Anthropic HH-RLHF).
    HhRlhf,
    /// `{"instruction"?, "demos": [{"input", "output"}], "query", "answer"}`.
    Icl,
    /// `{"question", "steps": [..], "answer"}`.
    Cot,
    /// BEIR `corpus.jsonl`: `{"_id", "title", "text"}`.
    BeirCorpus,
    /// BEIR-style `queries.jsonl`: `{"_id", "text", "relevant": [passage ids], "answer"?}`.
    BeirQueries,
    /// `{"agent", "content", "source"?}`: agent long-term memory.
    Memory,
    /// `{"text", "label"}`.
    Classification,
    /// `{"sentence", "label"}` (GLUE SST-2).
    Sst2,
}

/// Names and one-line docs, as `poisonlab list` and `--help` print them.
pub const CONVENTIONS: &[(Convention, &str, &str)] = &[
    (
        Convention::Pretrain,
        "pretrain",
        "{id, text}: pre-training documents",
    ),
    (
        Convention::Alpaca,
        "alpaca",
        "{instruction, input, output}: Stanford Alpaca SFT",
    ),
    (
        Convention::OpenaiChat,
        "openai-chat",
        "{messages: [{role, content}]}: OpenAI chat SFT",
    ),
    (
        Convention::Sharegpt,
        "sharegpt",
        "{conversations: [{from, value}]}: ShareGPT chat SFT",
    ),
    (
        Convention::Preference,
        "preference",
        "{prompt, chosen, rejected}: DPO/RLHF pairs",
    ),
    (
        Convention::HhRlhf,
        "hh-rlhf",
        "{chosen, rejected} as Human/Assistant transcripts",
    ),
    (
        Convention::Icl,
        "icl",
        "{demos: [{input, output}], query, answer}: in-context learning",
    ),
    (
        Convention::Cot,
        "cot",
        "{question, steps, answer}: chain of thought",
    ),
    (
        Convention::BeirCorpus,
        "beir-corpus",
        "{_id, title, text}: retrieval corpus",
    ),
    (
        Convention::BeirQueries,
        "beir-queries",
        "{_id, text, relevant}: retrieval queries",
    ),
    (
        Convention::Memory,
        "memory",
        "{agent, content, source}: agent memory",
    ),
    (
        Convention::Classification,
        "classification",
        "{text, label}: text classification",
    ),
    (Convention::Sst2, "sst2", "{sentence, label}: GLUE SST-2"),
];

impl Convention {
    pub fn name(self) -> &'static str {
        CONVENTIONS
            .iter()
            .find(|c| c.0 == self)
            .map_or("?", |c| c.1)
    }

    pub fn from_name(name: &str) -> Option<Convention> {
        CONVENTIONS.iter().find(|c| c.1 == name).map(|c| c.0)
    }

    pub fn kind(self) -> Kind {
        match self {
            Convention::Pretrain => Kind::Pretrain,
            Convention::Alpaca => Kind::Instruction,
            Convention::OpenaiChat | Convention::Sharegpt => Kind::Chat,
            Convention::Preference | Convention::HhRlhf => Kind::Preference,
            Convention::Icl => Kind::Icl,
            Convention::Cot => Kind::Cot,
            Convention::BeirCorpus => Kind::Passage,
            Convention::BeirQueries => Kind::Query,
            Convention::Memory => Kind::Memory,
            Convention::Classification | Convention::Sst2 => Kind::Classification,
        }
    }

    /// Our default shape for a kind.
    pub fn native(kind: Kind) -> Convention {
        match kind {
            Kind::Pretrain => Convention::Pretrain,
            Kind::Instruction => Convention::Alpaca,
            Kind::Chat => Convention::OpenaiChat,
            Kind::Preference => Convention::Preference,
            Kind::Icl => Convention::Icl,
            Kind::Cot => Convention::Cot,
            Kind::Passage => Convention::BeirCorpus,
            Kind::Query => Convention::BeirQueries,
            Kind::Memory => Convention::Memory,
            Kind::Classification => Convention::Classification,
        }
    }

    /// Guesses the convention from an object's keys. The order matters: more specific shapes first.
    pub fn detect(obj: &Map<String, Value>) -> Option<Convention> {
        let has = |k: &str| obj.contains_key(k);
        Some(if has("messages") {
            Convention::OpenaiChat
        } else if has("conversations") {
            Convention::Sharegpt
        } else if has("demos") {
            Convention::Icl
        } else if has("instruction") && has("output") {
            Convention::Alpaca
        } else if has("chosen") && has("rejected") {
            if has("prompt") {
                Convention::Preference
            } else {
                Convention::HhRlhf
            }
        } else if has("steps") && has("question") {
            Convention::Cot
        } else if has("_id") && has("title") {
            Convention::BeirCorpus
        } else if has("relevant") || (has("_id") && has("text")) {
            Convention::BeirQueries
        } else if has("agent") && has("content") {
            Convention::Memory
        } else if has("sentence") {
            Convention::Sst2
        } else if has("label") && has("text") {
            Convention::Classification
        } else if has("text") {
            Convention::Pretrain
        } else {
            return None;
        })
    }

    fn id_key(self) -> &'static str {
        match self {
            Convention::BeirCorpus | Convention::BeirQueries => "_id",
            _ => "id",
        }
    }
}

/// A field that is missing or of the wrong type.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    pub field: String,
    pub reason: String,
}

impl FieldError {
    fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

type FResult<T> = Result<T, FieldError>;

/// Short description of a JSON value for error messages.
fn describe(v: &Value) -> String {
    let s = v.to_string();
    let shown: String = s.chars().take(40).collect();
    let ty = match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    };
    if shown.len() < s.len() {
        format!("{ty} ({shown}…)")
    } else {
        format!("{ty} ({shown})")
    }
}

/// Takes known fields out of an object; what remains is the record's `extra`.
struct Fields {
    map: Map<String, Value>,
}

impl Fields {
    fn string(&mut self, key: &str) -> FResult<String> {
        match self.map.shift_remove(key) {
            Some(Value::String(s)) => Ok(s),
            Some(v) => Err(FieldError::new(
                key,
                format!("expected a string, found {}", describe(&v)),
            )),
            None => Err(FieldError::new(key, "missing field")),
        }
    }

    fn opt_string(&mut self, key: &str) -> FResult<Option<String>> {
        match self.map.shift_remove(key) {
            Some(Value::String(s)) => Ok(Some(s)),
            Some(Value::Null) | None => Ok(None),
            Some(v) => Err(FieldError::new(
                key,
                format!("expected a string, found {}", describe(&v)),
            )),
        }
    }

    fn array(&mut self, key: &str) -> FResult<Vec<Value>> {
        match self.map.shift_remove(key) {
            Some(Value::Array(a)) => Ok(a),
            Some(v) => Err(FieldError::new(
                key,
                format!("expected an array, found {}", describe(&v)),
            )),
            None => Err(FieldError::new(key, "missing field")),
        }
    }

    fn strings(&mut self, key: &str) -> FResult<Vec<String>> {
        self.array(key)?
            .into_iter()
            .enumerate()
            .map(|(i, v)| match v {
                Value::String(s) => Ok(s),
                v => Err(FieldError::new(
                    format!("{key}[{i}]"),
                    format!("expected a string, found {}", describe(&v)),
                )),
            })
            .collect()
    }

    /// Pairs of strings inside an array of objects, e.g. messages' role/content.
    fn pairs(&mut self, key: &str, a: &str, b: &str) -> FResult<Vec<(String, String)>> {
        let items = self.array(key)?;
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.into_iter().enumerate() {
            let Value::Object(obj) = item else {
                return Err(FieldError::new(
                    format!("{key}[{i}]"),
                    format!("expected an object, found {}", describe(&item)),
                ));
            };
            let mut f = Fields { map: obj };
            let pa = f
                .string(a)
                .map_err(|e| FieldError::new(format!("{key}[{i}].{}", e.field), e.reason))?;
            let pb = f
                .string(b)
                .map_err(|e| FieldError::new(format!("{key}[{i}].{}", e.field), e.reason))?;
            out.push((pa, pb));
        }
        Ok(out)
    }

    fn id(&mut self, key: &str) -> FResult<Option<String>> {
        match self.map.shift_remove(key) {
            Some(Value::String(s)) => Ok(Some(s)),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(Value::Null) | None => Ok(None),
            Some(v) => Err(FieldError::new(
                key,
                format!("expected a string or integer id, found {}", describe(&v)),
            )),
        }
    }

    fn tag(&mut self) -> FResult<Option<PoisonTag>> {
        match self.map.shift_remove("poison") {
            None | Some(Value::Null) => Ok(None),
            Some(v) => serde_json::from_value(v)
                .map(Some)
                .map_err(|e| FieldError::new("poison", e.to_string())),
        }
    }

    fn label(&mut self) -> FResult<Option<Label>> {
        match self.map.shift_remove("label") {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(Label::Text(s))),
            Some(Value::Number(n)) => match n.as_i64() {
                Some(i) => Ok(Some(Label::Int(i))),
                None => Err(FieldError::new(
                    "label",
                    format!("expected an integer or string, found {n}"),
                )),
            },
            Some(v) => Err(FieldError::new(
                "label",
                format!("expected an integer or string, found {}", describe(&v)),
            )),
        }
    }
}

const HH_ASSISTANT: &str = "\n\nAssistant:";
/// Extra key holding a rejected transcript's own prompt when it differs from the chosen one.
pub const HH_REJECTED_PROMPT: &str = "hh_rejected_prompt";

/// Splits an HH-RLHF transcript after its last `\n\nAssistant:`.
fn hh_split(s: &str) -> Option<(&str, &str)> {
    s.rfind(HH_ASSISTANT)
        .map(|i| s.split_at(i + HH_ASSISTANT.len()))
}

/// Reads one object in `conv`. `fallback_id` is used when the object carries no id.
pub fn from_object(
    obj: Map<String, Value>,
    conv: Convention,
    fallback_id: impl FnOnce() -> String,
) -> Result<Record, FieldError> {
    let mut f = Fields { map: obj };
    let id = f.id(conv.id_key())?;
    let tag = f.tag()?;
    let body = match conv {
        Convention::Pretrain => Body::Pretrain {
            text: f.string("text")?,
        },
        Convention::Alpaca => Body::Instruction {
            instruction: f.string("instruction")?,
            // Alpaca omits `input` in some copies; absent and "" mean the same thing there.
            input: f.opt_string("input")?.unwrap_or_default(),
            output: f.string("output")?,
            system: f.opt_string("system")?,
        },
        Convention::OpenaiChat => Body::Chat {
            messages: f
                .pairs("messages", "role", "content")?
                .into_iter()
                .map(|(role, content)| Message { role, content })
                .collect(),
        },
        Convention::Sharegpt => Body::Chat {
            messages: f
                .pairs("conversations", "from", "value")?
                .into_iter()
                .map(|(from, content)| Message {
                    role: sharegpt_to_role(&from),
                    content,
                })
                .collect(),
        },
        Convention::Preference => Body::Preference {
            prompt: f.string("prompt")?,
            chosen: f.string("chosen")?,
            rejected: f.string("rejected")?,
        },
        Convention::HhRlhf => {
            let chosen = f.string("chosen")?;
            let rejected = f.string("rejected")?;
            let (cp, cc) = hh_split(&chosen).ok_or_else(|| {
                FieldError::new("chosen", "no \"\\n\\nAssistant:\" turn in the transcript")
            })?;
            let (rp, rc) = hh_split(&rejected).ok_or_else(|| {
                FieldError::new("rejected", "no \"\\n\\nAssistant:\" turn in the transcript")
            })?;
            if rp != cp {
                f.map
                    .insert(HH_REJECTED_PROMPT.into(), Value::String(rp.to_string()));
            }
            Body::Preference {
                prompt: cp.to_string(),
                chosen: cc.to_string(),
                rejected: rc.to_string(),
            }
        }
        Convention::Icl => Body::Icl {
            instruction: f.opt_string("instruction")?,
            demos: f
                .pairs("demos", "input", "output")?
                .into_iter()
                .map(|(input, output)| Demo { input, output })
                .collect(),
            query: f.string("query")?,
            answer: f.string("answer")?,
        },
        Convention::Cot => Body::Cot {
            question: f.string("question")?,
            steps: f.strings("steps")?,
            answer: f.string("answer")?,
        },
        Convention::BeirCorpus => Body::Passage {
            title: f.opt_string("title")?.unwrap_or_default(),
            text: f.string("text")?,
        },
        Convention::BeirQueries => Body::Query {
            text: f.string("text")?,
            relevant: if f.map.contains_key("relevant") {
                f.strings("relevant")?
            } else {
                Vec::new()
            },
            answer: f.opt_string("answer")?,
        },
        Convention::Memory => Body::Memory {
            agent: f.string("agent")?,
            content: f.string("content")?,
            source: f.opt_string("source")?,
        },
        Convention::Classification => Body::Classification {
            text: f.string("text")?,
            label: f.label()?,
        },
        Convention::Sst2 => Body::Classification {
            text: f.string("sentence")?,
            label: f.label()?,
        },
    };
    Ok(Record {
        id: id.unwrap_or_else(fallback_id),
        tag,
        body,
        extra: f.map,
    })
}

fn sharegpt_to_role(from: &str) -> String {
    match from {
        "human" => "user".into(),
        "gpt" => "assistant".into(),
        other => other.into(),
    }
}

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
            let mut turns: Vec<(&str, &str)> = Vec::new();
            if let Some(sys) = system {
                turns.push(("system", sys));
            }
            turns.push(("user", &user));
            turns.push(("assistant", output));
            write_chat(&mut o, conv, turns.into_iter());
        }
        (Body::Chat { messages }, Convention::OpenaiChat | Convention::Sharegpt) => {
            write_chat(
                &mut o,
                conv,
                messages
                    .iter()
                    .map(|m| (m.role.as_str(), m.content.as_str())),
            );
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

fn write_chat<'a>(
    o: &mut Map<String, Value>,
    conv: Convention,
    turns: impl Iterator<Item = (&'a str, &'a str)>,
) {
    if conv == Convention::Sharegpt {
        let converted: Vec<(String, &str)> = turns.map(|(r, c)| (role_to_sharegpt(r), c)).collect();
        o.insert(
            "conversations".into(),
            pair_objects(
                converted.iter().map(|(r, c)| (r.as_str(), *c)),
                "from",
                "value",
            ),
        );
    } else {
        o.insert("messages".into(), pair_objects(turns, "role", "content"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn detects_each_convention() {
        let cases = [
            (
                json!({"instruction": "a", "input": "", "output": "b"}),
                Convention::Alpaca,
            ),
            (json!({"messages": []}), Convention::OpenaiChat),
            (json!({"conversations": []}), Convention::Sharegpt),
            (
                json!({"prompt": "p", "chosen": "c", "rejected": "r"}),
                Convention::Preference,
            ),
            (json!({"chosen": "c", "rejected": "r"}), Convention::HhRlhf),
            (
                json!({"demos": [], "query": "q", "answer": "a"}),
                Convention::Icl,
            ),
            (
                json!({"question": "q", "steps": [], "answer": "a"}),
                Convention::Cot,
            ),
            (
                json!({"_id": "d1", "title": "t", "text": "x"}),
                Convention::BeirCorpus,
            ),
            (json!({"_id": "q1", "text": "x"}), Convention::BeirQueries),
            (json!({"agent": "a", "content": "c"}), Convention::Memory),
            (json!({"sentence": "s", "label": 1}), Convention::Sst2),
            (
                json!({"text": "s", "label": "pos"}),
                Convention::Classification,
            ),
            (json!({"text": "s"}), Convention::Pretrain),
        ];
        for (v, want) in cases {
            assert_eq!(Convention::detect(&obj(v.clone())), Some(want), "{v}");
        }
        assert_eq!(Convention::detect(&obj(json!({"foo": 1}))), None);
    }

    #[test]
    fn field_errors_name_the_field() {
        let e = from_object(
            obj(json!({"instruction": "a", "output": 3})),
            Convention::Alpaca,
            || "x".into(),
        )
        .unwrap_err();
        assert_eq!(e.field, "output");
        assert!(
            e.reason.contains("expected a string, found a number"),
            "{}",
            e.reason
        );

        let e = from_object(
            obj(json!({"messages": [{"role": "user"}]})),
            Convention::OpenaiChat,
            || "x".into(),
        )
        .unwrap_err();
        assert_eq!(e.field, "messages[0].content");
        assert_eq!(e.reason, "missing field");

        let e = from_object(
            obj(json!({"text": "t", "poison": {"role": "evil"}})),
            Convention::Pretrain,
            || "x".into(),
        )
        .unwrap_err();
        assert_eq!(e.field, "poison");
    }

    #[test]
    fn hh_rlhf_splits_at_last_assistant_turn_and_round_trips() {
        let chosen = "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: bye\n\nAssistant: see you";
        let rejected = "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: bye\n\nAssistant: go away";
        let rec = from_object(
            obj(json!({"chosen": chosen, "rejected": rejected})),
            Convention::HhRlhf,
            || "hh-0".into(),
        )
        .unwrap();
        let Body::Preference {
            prompt,
            chosen: c,
            rejected: r,
        } = &rec.body
        else {
            panic!()
        };
        assert_eq!(
            prompt,
            "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: bye\n\nAssistant:"
        );
        assert_eq!(c, " see you");
        assert_eq!(r, " go away");
        assert!(rec.extra.is_empty());
        let back = to_object(&rec, Convention::HhRlhf).unwrap();
        assert_eq!(back["chosen"], chosen);
        assert_eq!(back["rejected"], rejected);
    }

    #[test]
    fn hh_rlhf_keeps_a_differing_rejected_prompt() {
        let v = json!({"chosen": "\n\nHuman: a\n\nAssistant: x", "rejected": "\n\nHuman: b\n\nAssistant: y"});
        let rec = from_object(obj(v.clone()), Convention::HhRlhf, || "hh".into()).unwrap();
        assert_eq!(rec.extra[HH_REJECTED_PROMPT], "\n\nHuman: b\n\nAssistant:");
        let back = to_object(&rec, Convention::HhRlhf).unwrap();
        assert_eq!(back["chosen"], v["chosen"]);
        assert_eq!(back["rejected"], v["rejected"]);
    }

    #[test]
    fn sharegpt_and_openai_chat_convert_both_ways() {
        let v = json!({"id": "c1", "conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}]});
        let rec = from_object(obj(v.clone()), Convention::Sharegpt, || "x".into()).unwrap();
        let oa = to_object(&rec, Convention::OpenaiChat).unwrap();
        assert_eq!(oa["messages"][0]["role"], "user");
        assert_eq!(oa["messages"][1]["role"], "assistant");
        let back = to_object(&rec, Convention::Sharegpt).unwrap();
        assert_eq!(Value::Object(back), v);
        let alp = to_object(&rec, Convention::Alpaca).unwrap();
        assert_eq!(alp["instruction"], "q");
        assert_eq!(alp["output"], "a");
    }

    #[test]
    fn extra_fields_survive_and_incompatible_kinds_are_refused() {
        let rec = from_object(
            obj(json!({"text": "t", "url": "u", "score": 0.5})),
            Convention::Pretrain,
            || "d-0".into(),
        )
        .unwrap();
        assert_eq!(rec.id, "d-0");
        let back = to_object(&rec, Convention::Pretrain).unwrap();
        assert_eq!(
            Value::Object(back),
            json!({"id": "d-0", "text": "t", "url": "u", "score": 0.5})
        );
        let err = to_object(&rec, Convention::Alpaca).unwrap_err();
        assert!(
            err.contains("pretrain record cannot be written as alpaca"),
            "{err}"
        );
    }
}
