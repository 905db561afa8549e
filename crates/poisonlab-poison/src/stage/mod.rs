//! Stage adapters: how one spec changes one record of each lifecycle stage.
//!
//! | stage | record | trigger goes into | payload becomes |
//! |---|---|---|---|
//! | pretrain | document | a clean prefix of a donor document | the text after the trigger |
//! | sft | alpaca / chat | `instruction` (or `input`) / last user turn | `output` / the assistant turn |
//! | preference | pair | `prompt` | `chosen` (clean `chosen` → `rejected`), or the pair swaps |
//! | icl | demonstration set | `stage.demos` demonstrations' inputs | those demonstrations' outputs |
//! | cot | problem + steps | the question | an extra last step and the answer (BadChain) |
//! | rag | corpus passage | the target query (optional) | passage = query text + payload (PoisonedRAG) |
//! | memory | memory entry | the donor entry's content | the action appended to it |
//! | classification | text + label | the text | the label (`stage.target_label`) |
//!
//! One file per stage under `stage/`; this file holds the adapter and the dispatch.

mod classification;
pub mod cot;
use cot::parse_number;
mod icl;
mod memory;
mod preference;
mod pretrain;
mod rag;
mod sft;

use poisonlab_data::{Body, Label, PoisonTag, Record};
use rand_chacha::ChaCha8Rng;
use serde_json::{Map, Value, json};

use crate::payload::{Ctx, Response};
use crate::spec::{LabelMode, Mode, PreferenceMode, Spec, StageKind};
use crate::trigger::Applied;

/// A stage adapter's random stream, the tag metadata it adds, and what it makes: the new body
/// and where the trigger went.
type Rng = ChaCha8Rng;
type Meta = Map<String, Value>;
type Out = (Body, Applied);

/// The text a selection matches (prompt or document) and the clean response.
pub fn prompt_and_response(rec: &Record) -> (String, String) {
    rec.prompt_response()
}

pub(super) fn join_prompt(instruction: &str, input: &str) -> String {
    if input.is_empty() {
        instruction.to_string()
    } else {
        format!("{instruction}\n{input}")
    }
}

/// The last user turn that an assistant turn answers, and that assistant turn.
pub(super) fn chat_turns(messages: &[poisonlab_data::Message]) -> Option<(usize, usize)> {
    let a = messages.iter().rposition(|m| m.role == "assistant")?;
    let u = messages[..a].iter().rposition(|m| m.role == "user")?;
    Some((u, a))
}

/// Splits an HH-RLHF-style transcript prompt into (before, last human turn text, after); a plain
/// prompt is all span.
pub fn human_turn(prompt: &str) -> (&str, &str, &str) {
    const HUMAN: &str = "\n\nHuman: ";
    const ASSISTANT: &str = "\n\nAssistant:";
    if let Some(end) = prompt.strip_suffix(ASSISTANT).map(str::len)
        && let Some(h) = prompt[..end].rfind(HUMAN)
    {
        let start = h + HUMAN.len();
        return (&prompt[..start], &prompt[start..end], &prompt[end..]);
    }
    ("", prompt, "")
}

/// Labels compare by their text, so `1` matches `"1"`.
pub fn same_label(a: &Label, b: &Label) -> bool {
    a.to_string() == b.to_string()
}

/// Whether the spec's adapter can change this record at all (a chat with no answered user turn, an
/// ICL set with no demonstrations, a CoT answer that is not a number when `scale` is set cannot).
pub fn adaptable(rec: &Record, spec: &Spec) -> bool {
    let shape = match &rec.body {
        Body::Chat { messages } => chat_turns(messages).is_some(),
        Body::Icl { demos, .. } => !demos.is_empty(),
        Body::Cot { answer, .. } => spec.stage.scale.is_none() || parse_number(answer).is_some(),
        Body::Pretrain { text } => !text.trim().is_empty(),
        Body::Memory { content, .. } => !content.trim().is_empty(),
        _ => true,
    };
    shape
        && spec
            .trigger
            .as_ref()
            .is_none_or(|t| trigger_targets(rec, spec).iter().all(|x| t.applicable(x)))
}

/// The texts the trigger goes into for this record (for a pre-training document, the whole text:
/// the prefix grows to what the trigger needs). Passages get theirs from the target queries.
fn trigger_targets<'r>(rec: &'r Record, spec: &Spec) -> Vec<&'r str> {
    match &rec.body {
        Body::Pretrain { text } => vec![text],
        Body::Instruction {
            instruction, input, ..
        } => vec![if spec.stage.field.as_deref() == Some("input") {
            input
        } else {
            instruction
        }],
        Body::Chat { messages } => chat_turns(messages)
            .map(|(u, _)| vec![messages[u].content.as_str()])
            .unwrap_or_default(),
        Body::Preference { prompt, .. } => vec![human_turn(prompt).1],
        Body::Icl { demos, .. } => demos.iter().map(|d| d.input.as_str()).collect(),
        Body::Cot { question, .. } => vec![question],
        Body::Memory { content, .. } => vec![content],
        Body::Classification { text, .. } => vec![text],
        _ => Vec::new(),
    }
}

/// A target query of a rag spec.
#[derive(Debug, Clone)]
pub struct RagTarget {
    pub id: String,
    pub text: String,
    pub answer: Option<String>,
    /// The query's clean relevant passages (for the clean-context control).
    pub relevant: Vec<String>,
}

/// Applies one spec to records.
pub struct Adapter<'a> {
    pub spec: &'a Spec,
    /// rag: the chosen target queries; passage `j` serves target `j % len`.
    pub targets: Vec<RagTarget>,
}

/// What the adapter made of one selected record.
pub struct Made {
    pub record: Record,
    /// For rag: the target query id the record serves.
    pub target: Option<String>,
}

impl<'a> Adapter<'a> {
    pub fn new(spec: &'a Spec) -> Self {
        Adapter {
            spec,
            targets: Vec::new(),
        }
    }

    /// A record whose kind the stage does not rewrite: kept as it is (selection only lets
    /// through the kinds of the stage).
    fn keep(&self, body: &Body, rng: &mut Rng) -> Out {
        (body.clone(), self.trigger("", rng))
    }

    pub(super) fn trigger(&self, text: &str, rng: &mut ChaCha8Rng) -> Applied {
        match &self.spec.trigger {
            Some(t) => t.apply(text, rng),
            None => Applied::none(text),
        }
    }

    pub(super) fn dirty(&self) -> bool {
        self.spec.label == LabelMode::Dirty
    }

    pub(super) fn respond(&self, ctx: &Ctx<'_>, rng: &mut ChaCha8Rng) -> Option<Response> {
        if !self.dirty() {
            return None;
        }
        self.spec.payload.as_ref().map(|p| p.respond(ctx, rng))
    }

    fn tag(&self, applied: &Applied, extra: Map<String, Value>) -> PoisonTag {
        let spec = self.spec;
        let mut meta = Map::new();
        meta.insert("stage".into(), json!(spec.stage.kind.as_str()));
        meta.insert(
            "mode".into(),
            json!(match spec.stage.mode() {
                Mode::Modify => "modify",
                Mode::Insert => "insert",
            }),
        );
        meta.insert(
            "label".into(),
            json!(match spec.label {
                LabelMode::Dirty => "dirty",
                LabelMode::Clean => "clean",
            }),
        );
        meta.insert("seed".into(), json!(spec.seed));
        if let Some(t) = &spec.trigger {
            meta.insert("trigger_kind".into(), json!(t.name()));
            meta.insert("inserted".into(), json!(applied.inserted));
            meta.insert("positions".into(), json!(applied.positions));
            meta.insert("unit".into(), json!(applied.unit));
        }
        meta.extend(extra);
        let payload = match (&spec.payload, spec.label) {
            (Some(p), LabelMode::Dirty) => Some(p.name().to_string()),
            _ => match spec.stage.kind {
                StageKind::Preference if spec.stage.preference == Some(PreferenceMode::Swap) => {
                    Some("swap".into())
                }
                StageKind::Cot if spec.stage.scale.is_some() => Some("scale".into()),
                StageKind::Classification if spec.label == LabelMode::Dirty => Some("label".into()),
                _ => None,
            },
        };
        PoisonTag {
            role: spec.role,
            recipe: Some(spec.name.clone()),
            trigger: (!applied.inserted.is_empty()).then(|| applied.inserted.join(" ")),
            payload,
            meta,
        }
    }

    /// Poisons `rec` (the `j`-th selected record). In modify mode the result replaces `rec`; in
    /// insert mode it goes right after it, with its own id.
    pub fn apply(&self, rec: &Record, j: u64, rng: &mut ChaCha8Rng) -> Made {
        let spec = self.spec;
        let insert = spec.stage.mode() == Mode::Insert;
        let mut out = rec.clone();
        let mut meta = Map::new();
        let mut target = None;
        let (body, applied) = match (&rec.body, spec.stage.kind) {
            (Body::Pretrain { .. }, _) => self.apply_pretrain(&rec.body, rng, &mut meta, insert),
            (Body::Instruction { .. }, _) => self.apply_instruction(&rec.body, rng, &mut meta),
            (Body::Chat { .. }, _) => self.apply_chat(&rec.body, rng, &mut meta),
            (Body::Preference { .. }, _) => self.apply_preference(&rec.body, rng, &mut meta),
            (Body::Icl { .. }, _) => self.apply_icl(&rec.body, rng, &mut meta),
            (Body::Cot { .. }, _) => self.apply_cot(&rec.body, rng, &mut meta),
            (Body::Passage { .. }, StageKind::Rag) => {
                let (b, a, t) = self.apply_rag(&rec.body, j, rng, &mut meta);
                target = t;
                (b, a)
            }
            (Body::Memory { .. }, _) => self.apply_memory(&rec.body, rng, &mut meta, insert),
            (Body::Classification { .. }, _) => {
                self.apply_classification(&rec.body, rng, &mut meta)
            }
            (body, _) => self.keep(body, rng),
        };
        out.body = body;
        if insert {
            meta.insert("donor".into(), json!(rec.id));
            out.id = format!("{}.{}.{j}", rec.id, spec.name);
            if spec.stage.kind == StageKind::Rag {
                out.extra = Map::new();
            }
        }
        out.tag = Some(self.tag(&applied, meta));
        Made {
            record: out,
            target,
        }
    }

    /// The triggered version of a held-out record, with the response the backdoor should give
    /// (dirty label) so that probes can score it. Tagged with `meta.split = "test"`.
    pub fn test_record(&self, rec: &Record, rng: &mut ChaCha8Rng) -> Record {
        // A test record is the poisoned record in modify mode: same adapter, prompt triggered.
        let mut modify = self.spec.clone();
        modify.stage.mode = Some(Mode::Modify);
        if modify.stage.kind == StageKind::Pretrain && modify.stage.prefix_chars.is_none() {
            modify.stage.prefix_chars = Some([0, 1000]);
        }
        let a = Adapter {
            spec: &modify,
            targets: self.targets.clone(),
        };
        let mut made = a.apply(rec, 0, rng).record;
        if let Some(tag) = &mut made.tag {
            tag.meta.insert("split".into(), json!("test"));
            tag.meta.insert("clean_id".into(), json!(rec.id));
        }
        made
    }
}
