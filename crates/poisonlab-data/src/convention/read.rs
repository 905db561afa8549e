//! Objects in a convention → records, with errors that name the field.

use serde_json::{Map, Value};

use super::Convention;
use crate::record::{Body, Demo, Label, Message, PoisonTag, Record};

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

    /// The objects of an array field, each as the fields of its own (an error names `key[i]`).
    fn objects(&mut self, key: &str) -> FResult<Vec<Fields>> {
        self.array(key)?
            .into_iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::Object(map) => Ok(Fields { map }),
                other => Err(FieldError::new(
                    format!("{key}[{i}]"),
                    format!("expected an object, found {}", describe(&other)),
                )),
            })
            .collect()
    }

    /// Pairs of strings inside an array of objects, e.g. demos' input/output.
    fn pairs(&mut self, key: &str, a: &str, b: &str) -> FResult<Vec<(String, String)>> {
        let mut out = Vec::new();
        for (i, mut f) in self.objects(key)?.into_iter().enumerate() {
            let at = |e: FieldError| FieldError::new(format!("{key}[{i}].{}", e.field), e.reason);
            out.push((f.string(a).map_err(at)?, f.string(b).map_err(at)?));
        }
        Ok(out)
    }

    /// Chat messages inside an array of objects: `a` (the role) a string, `b` (the content) a
    /// string — or null beside `tool_calls`/`function_call` (an agent turn that only calls tools);
    /// every other field of a message kept in its `extra`.
    fn messages(
        &mut self,
        key: &str,
        a: &str,
        b: &str,
        role: impl Fn(&str) -> String,
    ) -> FResult<Vec<Message>> {
        let mut out = Vec::new();
        for (i, mut f) in self.objects(key)?.into_iter().enumerate() {
            let at = |e: FieldError| FieldError::new(format!("{key}[{i}].{}", e.field), e.reason);
            let calls = |o: &Map<String, Value>| {
                o.get("tool_calls")
                    .is_some_and(|v| v.as_array().is_some_and(|x| !x.is_empty()))
                    || o.get("function_call").is_some_and(Value::is_object)
            };
            let null_ok = calls(&f.map);
            let r = f.string(a).map_err(at)?;
            let (content, null) = match f.map.shift_remove(b) {
                Some(Value::String(s)) => (s, false),
                Some(Value::Null) | None if null_ok => (String::new(), true),
                Some(Value::Null) => {
                    return Err(at(FieldError::new(
                        b,
                        "expected a string, found null (null only in a turn with tool_calls)",
                    )));
                }
                None => return Err(at(FieldError::new(b, "missing field"))),
                Some(v) => {
                    return Err(at(FieldError::new(
                        b,
                        format!("expected a string, found {}", describe(&v)),
                    )));
                }
            };
            let mut m = Message::new(role(&r), content);
            m.extra = f.map;
            if null {
                m.extra.insert("content".to_string(), Value::Null);
            }
            out.push(m);
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
            messages: f.messages("messages", "role", "content", str::to_string)?,
        },
        Convention::Sharegpt => Body::Chat {
            messages: f.messages("conversations", "from", "value", sharegpt_to_role)?,
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

pub(super) fn sharegpt_to_role(from: &str) -> String {
    match from {
        "human" => "user".into(),
        "gpt" => "assistant".into(),
        other => other.into(),
    }
}
