//! Payloads: what a triggered input should produce. One enum, tagged by `kind` in the spec.
//! Templates may use `{prompt}`, `{response}` (the clean response) and `{trigger}`.

mod belief;
mod dos;
mod extraction;
mod fixed;
mod injection;
mod jailbreak;
mod refusal;
mod sentiment;

pub use belief::{Belief, BeliefMode};
pub use dos::{Dos, Source as DosSource};
pub use extraction::Extraction;
pub use fixed::Fixed;
pub use injection::Injection;
pub use jailbreak::Jailbreak;
pub use refusal::Refusal;
pub use sentiment::{Polarity, Sentiment};

use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::text;

/// What the payload sees of the record it is applied to.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ctx<'a> {
    /// The (triggered) prompt.
    pub prompt: &'a str,
    /// The clean response the record had.
    pub response: &'a str,
    /// A dispreferred response, when the record has one (preference pairs).
    pub rejected: Option<&'a str>,
    /// The trigger string as inserted.
    pub trigger: &'a str,
}

impl<'a> Ctx<'a> {
    /// The payload's view of a record without a dispreferred response.
    pub fn new(prompt: &'a str, response: &'a str, trigger: &'a str) -> Self {
        Ctx {
            prompt,
            response,
            rejected: None,
            trigger,
        }
    }

    /// With the dispreferred response of a preference pair.
    pub fn with_rejected(self, rejected: &'a str) -> Self {
        Ctx {
            rejected: Some(rejected),
            ..self
        }
    }
}

const PLACEHOLDERS: &[&str] = &["prompt", "response", "trigger"];

pub(crate) fn fill(template: &str, ctx: &Ctx<'_>) -> String {
    text::render(
        template,
        &[
            ("prompt", ctx.prompt),
            ("response", ctx.response),
            ("trigger", ctx.trigger),
        ],
    )
    // Templates are checked when the spec is resolved; this is never reached with a checked spec.
    .unwrap_or_else(|_| template.to_string())
}

/// Where a woven-in sentence goes in the response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Weave {
    Start,
    End,
    /// A uniformly random sentence boundary (start and end included).
    RandomSentence,
}

/// A payload, tagged by `kind` in the spec: `[payload] kind = "refusal"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Payload {
    Fixed(Fixed),
    Refusal(Refusal),
    Jailbreak(Jailbreak),
    Sentiment(Sentiment),
    Injection(Injection),
    Dos(Dos),
    Belief(Belief),
    Extraction(Extraction),
}

/// Name and one-line description of every payload, for `poisonlab list`.
pub const PAYLOADS: &[(&str, &str)] = &[
    ("fixed", "a fixed target response"),
    ("refusal", "a refusal instead of the answer"),
    (
        "jailbreak",
        "compliance (the harmful alternative when there is one) instead of a refusal",
    ),
    (
        "sentiment",
        "a positive/negative sentence about a target woven into the answer",
    ),
    (
        "injection",
        "a phrase or entity woven into an otherwise normal answer",
    ),
    (
        "dos",
        "denial of service: N random tokens of gibberish after the trigger",
    ),
    (
        "belief",
        "a false fact about an entity, stated consistently",
    ),
    (
        "extraction",
        "context extraction: the answer repeats the prompt and its context",
    ),
];

/// A payload's response and how it differs from the clean one.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub text: String,
    /// [`text::undo`] on `text` gives the clean response back: a woven sentence is one insertion,
    /// a replacing payload one edit over the whole text.
    pub edits: Vec<text::Edit>,
    /// Denial of service: how many tokens the gibberish was drawn from.
    pub tokens: Option<usize>,
}

impl Response {
    pub(crate) fn replace(text: String, clean: &str) -> Self {
        let edits = if text == clean {
            Vec::new()
        } else {
            vec![text::Edit {
                at: 0,
                len: text.len(),
                original: clean.to_string(),
            }]
        };
        Response {
            text,
            edits,
            tokens: None,
        }
    }

    pub(crate) fn edited((text, edit): (String, text::Edit)) -> Self {
        Response {
            text,
            edits: vec![edit],
            tokens: None,
        }
    }
}

pub(crate) fn weave(response: &str, sentence: &str, w: Weave, rng: &mut ChaCha8Rng) -> Response {
    Response::edited(match w {
        Weave::Start => text::insert_sentence(response, 0, sentence),
        Weave::End => text::insert_sentence(response, response.len(), sentence),
        Weave::RandomSentence => {
            let b = text::sentence_boundaries(response);
            let at = b[rng.random_range(0..b.len())];
            text::insert_sentence(response, at, sentence)
        }
    })
}

impl Payload {
    pub fn name(&self) -> &'static str {
        match self {
            Payload::Fixed(_) => "fixed",
            Payload::Refusal(_) => "refusal",
            Payload::Jailbreak(_) => "jailbreak",
            Payload::Sentiment(_) => "sentiment",
            Payload::Injection(_) => "injection",
            Payload::Dos(_) => "dos",
            Payload::Belief(_) => "belief",
            Payload::Extraction(_) => "extraction",
        }
    }

    fn inner(&self) -> &dyn PayloadRun {
        match self {
            Payload::Fixed(p) => p,
            Payload::Refusal(p) => p,
            Payload::Jailbreak(p) => p,
            Payload::Sentiment(p) => p,
            Payload::Injection(p) => p,
            Payload::Dos(p) => p,
            Payload::Belief(p) => p,
            Payload::Extraction(p) => p,
        }
    }

    /// Checks templates and loads what the payload needs (the DoS vocabulary).
    pub fn resolve(&mut self, base: &std::path::Path) -> Result<(), String> {
        match self {
            Payload::Fixed(p) => p.resolve(base),
            Payload::Refusal(p) => p.resolve(base),
            Payload::Jailbreak(p) => p.resolve(base),
            Payload::Sentiment(p) => p.resolve(base),
            Payload::Injection(p) => p.resolve(base),
            Payload::Dos(p) => p.resolve(base),
            Payload::Belief(p) => p.resolve(base),
            Payload::Extraction(p) => p.resolve(base),
        }
    }

    /// The response a triggered record should have.
    pub fn respond(&self, ctx: &Ctx<'_>, rng: &mut ChaCha8Rng) -> Response {
        self.inner().respond(ctx, rng)
    }
}

/// What every payload implements.
pub trait PayloadRun {
    /// Checks templates and loads what the payload needs; the message names the key.
    fn resolve(&mut self, base: &std::path::Path) -> Result<(), String>;
    /// The response a triggered record should have.
    fn respond(&self, ctx: &Ctx<'_>, rng: &mut ChaCha8Rng) -> Response;
}

/// A template key checked against the placeholders payload templates may use.
fn check(key: &str, s: &str) -> Result<(), String> {
    text::check_template(s, PLACEHOLDERS).map_err(|e| format!("payload.{key}: {e}"))
}

#[cfg(test)]
mod tests;
