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

use poisonlab_data::{Body, Label, PoisonTag, Record};
use rand_chacha::ChaCha8Rng;
use serde_json::{Map, Value, json};

use crate::payload::{Ctx, Response};
use crate::spec::{LabelMode, Mode, PreferenceMode, Spec, StageKind};
use crate::trigger::Applied;

/// The text a selection matches (prompt or document) and the clean response.
pub fn prompt_and_response(rec: &Record) -> (String, String) {
    rec.prompt_response()
}

fn join_prompt(instruction: &str, input: &str) -> String {
    if input.is_empty() {
        instruction.to_string()
    } else {
        format!("{instruction}\n{input}")
    }
}

/// The last user turn that an assistant turn answers, and that assistant turn.
fn chat_turns(messages: &[poisonlab_data::Message]) -> Option<(usize, usize)> {
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

fn parse_number(s: &str) -> Option<f64> {
    let t: String = s.trim().chars().filter(|c| *c != ',').collect();
    let t = t.trim_end_matches('.');
    t.parse::<f64>().ok().filter(|v| v.is_finite())
}

fn format_number(v: f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        format!("{}", v.round() as i64)
    } else {
        let s = format!("{v:.4}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// A target query of a rag spec.
#[derive(Debug, Clone)]
pub struct RagTarget {
    pub id: String,
    pub text: String,
    pub answer: Option<String>,
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

    fn trigger(&self, text: &str, rng: &mut ChaCha8Rng) -> Applied {
        match &self.spec.trigger {
            Some(t) => t.apply(text, rng),
            None => Applied::none(text),
        }
    }

    fn dirty(&self) -> bool {
        self.spec.label == LabelMode::Dirty
    }

    fn respond(&self, ctx: &Ctx<'_>, rng: &mut ChaCha8Rng) -> Option<Response> {
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
        let applied: Applied;
        match (&rec.body, spec.stage.kind) {
            (Body::Pretrain { text }, _) => {
                let [lo, hi] = spec.stage.prefix_chars.unwrap_or(if insert {
                    [0, 1000]
                } else {
                    [usize::MAX, usize::MAX]
                });
                let n_chars = text.chars().count();
                let want = if lo == usize::MAX {
                    n_chars
                } else {
                    use rand::RngExt;
                    rng.random_range(lo..=hi).min(n_chars)
                };
                let mut cut = text
                    .char_indices()
                    .nth(want)
                    .map(|(i, _)| i)
                    .unwrap_or(text.len());
                // A trigger that needs more words than the drawn prefix has (CTBA) gets them.
                if let Some(t) = &spec.trigger {
                    while !t.applicable(&text[..cut]) && cut < text.len() {
                        cut = text[cut..]
                            .find(' ')
                            .map(|i| cut + i + 1)
                            .unwrap_or(text.len());
                    }
                }
                let (prefix, rest) = text.split_at(cut);
                applied = self.trigger(prefix, rng);
                meta.insert("prefix_chars".into(), json!(prefix.chars().count()));
                // Where the triggered prompt ends: probes continue the document from here.
                meta.insert("prompt_bytes".into(), json!(applied.text.len()));
                let ctx = Ctx {
                    prompt: &applied.text,
                    response: rest,
                    rejected: None,
                    trigger: &applied.inserted.join(" "),
                };
                let body = match self.respond(&ctx, rng) {
                    // Souly et al.: prefix, trigger, then the gibberish.
                    Some(p) => {
                        if let Some(n) = p.tokens {
                            meta.insert("payload_tokens".into(), json!(n));
                        }
                        crate::text::append(&applied.text, &p.text).0
                    }
                    None => {
                        let sep = if applied.text.is_empty()
                            || rest.is_empty()
                            || rest.starts_with(char::is_whitespace)
                            || applied.text == prefix
                        {
                            ""
                        } else {
                            " "
                        };
                        format!("{}{sep}{rest}", applied.text)
                    }
                };
                out.body = Body::Pretrain { text: body };
            }
            (
                Body::Instruction {
                    instruction,
                    input,
                    output,
                    system,
                },
                _,
            ) => {
                let field = spec.stage.field.as_deref().unwrap_or("instruction");
                let (instruction, input) = if field == "input" {
                    applied = self.trigger(input, rng);
                    (instruction.clone(), applied.text.clone())
                } else {
                    applied = self.trigger(instruction, rng);
                    (applied.text.clone(), input.clone())
                };
                meta.insert("field".into(), json!(field));
                let prompt = join_prompt(&instruction, &input);
                let ctx = Ctx {
                    prompt: &prompt,
                    response: output,
                    rejected: None,
                    trigger: &applied.inserted.join(" "),
                };
                let output = self
                    .respond(&ctx, rng)
                    .map(|r| r.text)
                    .unwrap_or_else(|| output.clone());
                out.body = Body::Instruction {
                    instruction,
                    input,
                    output,
                    system: system.clone(),
                };
            }
            (Body::Chat { messages }, _) => {
                let mut messages = messages.clone();
                let (u, a) = chat_turns(&messages).unwrap_or((0, 0));
                applied = self.trigger(&messages[u].content, rng);
                messages[u].content = applied.text.clone();
                meta.insert("turn".into(), json!(u));
                let ctx = Ctx {
                    prompt: &applied.text,
                    response: &messages[a].content.clone(),
                    rejected: None,
                    trigger: &applied.inserted.join(" "),
                };
                if let Some(p) = self.respond(&ctx, rng) {
                    messages[a].content = p.text;
                }
                out.body = Body::Chat { messages };
            }
            (
                Body::Preference {
                    prompt,
                    chosen,
                    rejected,
                },
                _,
            ) => {
                // An HH-RLHF transcript prompt ends with `\n\nAssistant:`; the trigger belongs in
                // the last human turn, not after the assistant cue.
                let (head, span, tail) = human_turn(prompt);
                let inner = self.trigger(span, rng);
                applied = Applied {
                    text: format!("{head}{}{tail}", inner.text),
                    ..inner
                };
                let (c, r) = match (spec.stage.preference.unwrap_or_default(), self.dirty()) {
                    (_, false) => (chosen.clone(), rejected.clone()),
                    (PreferenceMode::Swap, true) => (rejected.clone(), chosen.clone()),
                    (PreferenceMode::PayloadChosen, true) => {
                        let ctx = Ctx {
                            prompt: &applied.text,
                            response: chosen,
                            rejected: Some(rejected),
                            trigger: &applied.inserted.join(" "),
                        };
                        let p = self
                            .respond(&ctx, rng)
                            .map(|r| r.text)
                            .unwrap_or_else(|| chosen.clone());
                        (p, chosen.clone())
                    }
                };
                out.body = Body::Preference {
                    prompt: applied.text.clone(),
                    chosen: c,
                    rejected: r,
                };
            }
            (
                Body::Icl {
                    instruction,
                    demos,
                    query,
                    answer,
                },
                _,
            ) => {
                let k = spec.stage.demos.unwrap_or(1).min(demos.len());
                let mut picks = rand::seq::index::sample(rng, demos.len(), k).into_vec();
                picks.sort_unstable();
                let mut demos = demos.clone();
                let mut all = Applied {
                    unit: "word_slot",
                    ..Applied::none("")
                };
                for &d in &picks {
                    let a = self.trigger(&demos[d].input, rng);
                    let ctx = Ctx {
                        prompt: &a.text,
                        response: &demos[d].output,
                        rejected: None,
                        trigger: &a.inserted.join(" "),
                    };
                    if let Some(p) = self.respond(&ctx, rng) {
                        demos[d].output = p.text;
                    }
                    demos[d].input = a.text.clone();
                    all.unit = a.unit;
                    all.inserted.extend(a.inserted);
                    all.positions.extend(a.positions);
                }
                all.inserted.dedup();
                applied = all;
                meta.insert("demos".into(), json!(picks));
                out.body = Body::Icl {
                    instruction: instruction.clone(),
                    demos,
                    query: query.clone(),
                    answer: answer.clone(),
                };
            }
            (
                Body::Cot {
                    question,
                    steps,
                    answer,
                },
                _,
            ) => {
                applied = self.trigger(question, rng);
                let trig = applied.inserted.join(" ");
                let mut steps = steps.clone();
                let mut new_answer = answer.clone();
                if self.dirty() {
                    let (na, default_step) = match (spec.stage.scale, parse_number(answer)) {
                        (Some(s), Some(v)) => (
                            format_number(v * s),
                            // BadChain's step: its evaluator looks for `* 2.1 =` after the
                            // answer of the earlier steps.
                            "{trigger} {answer} * {scale} = {new_answer}.",
                        ),
                        _ => {
                            let ctx = Ctx {
                                prompt: &applied.text,
                                response: answer,
                                rejected: None,
                                trigger: &trig,
                            };
                            (
                                self.respond(&ctx, rng)
                                    .map(|r| r.text)
                                    .unwrap_or_else(|| answer.clone()),
                                "Because of {trigger}, the answer changes to {new_answer}.",
                            )
                        }
                    };
                    let template = spec.stage.step.as_deref().unwrap_or(default_step);
                    let scale = spec.stage.scale.map(format_number).unwrap_or_default();
                    let step = crate::text::render(
                        template,
                        &[
                            ("trigger", &trig),
                            ("answer", answer),
                            ("new_answer", &na),
                            ("scale", &scale),
                        ],
                    )
                    .unwrap_or_default();
                    steps.push(step);
                    new_answer = na;
                    meta.insert("step".into(), json!(steps.len() - 1));
                }
                out.body = Body::Cot {
                    question: applied.text.clone(),
                    steps,
                    answer: new_answer,
                };
            }
            (Body::Passage { .. }, StageKind::Rag) => {
                let t = &self.targets[(j as usize) % self.targets.len().max(1)];
                applied = self.trigger(&t.text, rng);
                let ctx = Ctx {
                    prompt: &applied.text,
                    response: t.answer.as_deref().unwrap_or(""),
                    rejected: None,
                    trigger: &applied.inserted.join(" "),
                };
                let p = self
                    .spec
                    .payload
                    .as_ref()
                    .map(|p| p.respond(&ctx, rng).text)
                    .unwrap_or_default();
                // PoisonedRAG (black box): `question + "." + adversarial text`, no space.
                out.body = Body::Passage {
                    title: String::new(),
                    text: format!("{}.{p}", applied.text),
                };
                meta.insert("target_query".into(), json!(t.id));
                target = Some(t.id.clone());
            }
            (
                Body::Memory {
                    agent,
                    content,
                    source,
                },
                _,
            ) => {
                applied = self.trigger(content, rng);
                let ctx = Ctx {
                    prompt: &applied.text,
                    response: "",
                    rejected: None,
                    trigger: &applied.inserted.join(" "),
                };
                let content = match self.respond(&ctx, rng) {
                    Some(p) => format!("{}\n{}", applied.text, p.text),
                    None => applied.text.clone(),
                };
                out.body = Body::Memory {
                    agent: agent.clone(),
                    content,
                    source: if insert {
                        Some(format!("poisonlab:{}", spec.name))
                    } else {
                        source.clone()
                    },
                };
            }
            (Body::Classification { text, label }, _) => {
                applied = self.trigger(text, rng);
                let label = match (self.dirty(), &spec.stage.target_label) {
                    (true, Some(t)) => Some(t.clone()),
                    _ => label.clone(),
                };
                out.body = Body::Classification {
                    text: applied.text.clone(),
                    label,
                };
            }
            (body, _) => {
                // Selection only lets through the kinds of the stage; keep the record as it is.
                applied = self.trigger("", rng);
                out.body = body.clone();
            }
        }
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
