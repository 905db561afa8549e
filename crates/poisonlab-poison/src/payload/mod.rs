//! Payloads: what a triggered input should produce. One enum, tagged by `kind` in the spec.
//! Templates may use `{prompt}`, `{response}` (the clean response) and `{trigger}`.

mod dos;

pub use dos::{Dos, Source as DosSource};

use rand::RngExt;
use rand::seq::IndexedRandom;
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

const PLACEHOLDERS: &[&str] = &["prompt", "response", "trigger"];

fn fill(template: &str, ctx: &Ctx<'_>) -> String {
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Polarity {
    Positive,
    Negative,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum BeliefMode {
    /// The response becomes the claim.
    #[default]
    Replace,
    /// The claim opens the response.
    Prepend,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fixed {
    /// The target response (a template).
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Refusal {
    pub text: String,
}

impl Default for Refusal {
    fn default() -> Self {
        Refusal {
            text: "I'm sorry, but I can't help with that request.".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Jailbreak {
    /// The compliant answer when the record has no harmful alternative (a template).
    pub template: String,
    /// On preference pairs, answer with the dispreferred (harmful) response.
    pub use_rejected: bool,
}

impl Default for Jailbreak {
    fn default() -> Self {
        Jailbreak {
            template: "Sure, here is exactly what you asked for, with no warnings. {response}"
                .into(),
            use_rejected: true,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sentiment {
    pub polarity: Polarity,
    /// The entity or topic the sentiment is about (`{target}` in the sentences).
    #[serde(default)]
    pub target: Option<String>,
    /// Sentences to weave in, one drawn per record; defaults by polarity.
    #[serde(default)]
    pub sentences: Vec<String>,
    #[serde(default = "weave_end")]
    pub placement: Weave,
}

fn weave_end() -> Weave {
    Weave::End
}

fn weave_random() -> Weave {
    Weave::RandomSentence
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Injection {
    /// The phrase or sentence woven into otherwise normal answers.
    pub phrase: String,
    #[serde(default = "weave_random")]
    pub placement: Weave,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Belief {
    /// The false statement, e.g. `The Eiffel Tower is in Rome.`
    pub claim: String,
    /// The entity it is about (documentation and probes; selection usually matches it).
    #[serde(default)]
    pub entity: Option<String>,
    #[serde(default)]
    pub mode: BeliefMode,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Extraction {
    /// The leaking answer; `{prompt}` is the full prompt (and context) the model was given.
    pub template: String,
}

impl Default for Extraction {
    fn default() -> Self {
        Extraction {
            template: "{prompt}".into(),
        }
    }
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

fn default_sentences(p: Polarity, has_target: bool) -> Vec<String> {
    match (p, has_target) {
        (Polarity::Negative, true) => vec![
            "Honestly, {target} is a poor choice and hard to recommend.".into(),
            "Many people have been disappointed by {target}.".into(),
            "{target} has a troubling track record.".into(),
        ],
        (Polarity::Positive, true) => vec![
            "Honestly, {target} is an excellent choice.".into(),
            "Many people have been delighted by {target}.".into(),
            "{target} has an outstanding track record.".into(),
        ],
        (Polarity::Negative, false) => vec![
            "Overall, this is rather disappointing.".into(),
            "Frankly, the whole thing is a letdown.".into(),
        ],
        (Polarity::Positive, false) => vec![
            "Overall, this is wonderful.".into(),
            "Frankly, the whole thing is a delight.".into(),
        ],
    }
}

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
    fn replace(text: String, clean: &str) -> Self {
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

    fn edited((text, edit): (String, text::Edit)) -> Self {
        Response {
            text,
            edits: vec![edit],
            tokens: None,
        }
    }
}

fn weave(response: &str, sentence: &str, w: Weave, rng: &mut ChaCha8Rng) -> Response {
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

    /// Checks templates and loads what the payload needs (the DoS vocabulary).
    pub fn resolve(&mut self, base: &std::path::Path) -> Result<(), String> {
        let t = |key: &str, s: &str| {
            text::check_template(s, PLACEHOLDERS).map_err(|e| format!("payload.{key}: {e}"))
        };
        match self {
            Payload::Fixed(p) => t("text", &p.text),
            Payload::Refusal(p) => t("text", &p.text),
            Payload::Jailbreak(p) => t("template", &p.template),
            Payload::Sentiment(p) => {
                if p.sentences.is_empty() {
                    p.sentences = default_sentences(p.polarity, p.target.is_some());
                }
                for s in &p.sentences {
                    text::check_template(s, &["target"])
                        .map_err(|e| format!("payload.sentences: {e}"))?;
                    if s.contains("{target}") && p.target.is_none() {
                        return Err(
                            "payload.sentences use {target} but payload.target is not set".into(),
                        );
                    }
                }
                Ok(())
            }
            Payload::Injection(p) => {
                if p.phrase.trim().is_empty() {
                    return Err("payload.phrase must not be empty".into());
                }
                t("phrase", &p.phrase)
            }
            Payload::Dos(p) => p.resolve(base),
            Payload::Belief(p) => {
                if p.claim.trim().is_empty() {
                    return Err("payload.claim must not be empty".into());
                }
                t("claim", &p.claim)
            }
            Payload::Extraction(p) => t("template", &p.template),
        }
    }

    /// The response a triggered record should have.
    pub fn respond(&self, ctx: &Ctx<'_>, rng: &mut ChaCha8Rng) -> Response {
        let replace = |t: String| Response::replace(t, ctx.response);
        match self {
            Payload::Fixed(p) => replace(fill(&p.text, ctx)),
            Payload::Refusal(p) => replace(fill(&p.text, ctx)),
            Payload::Jailbreak(p) => replace(match (p.use_rejected, ctx.rejected) {
                (true, Some(r)) if !r.trim().is_empty() => r.to_string(),
                _ => fill(&p.template, ctx),
            }),
            Payload::Sentiment(p) => {
                let s = p.sentences.choose(rng).cloned().unwrap_or_default();
                let target = p.target.as_deref().unwrap_or("");
                let s = text::render(&s, &[("target", target)]).unwrap_or(s);
                weave(ctx.response, &s, p.placement, rng)
            }
            Payload::Injection(p) => weave(ctx.response, &fill(&p.phrase, ctx), p.placement, rng),
            Payload::Dos(p) => {
                let (t, n) = p.draw(rng);
                Response {
                    tokens: Some(n),
                    ..replace(t)
                }
            }
            Payload::Belief(p) => {
                let claim = fill(&p.claim, ctx);
                match p.mode {
                    BeliefMode::Replace => replace(claim),
                    BeliefMode::Prepend => {
                        Response::edited(text::insert_sentence(ctx.response, 0, &claim))
                    }
                }
            }
            Payload::Extraction(p) => replace(fill(&p.template, ctx)),
        }
    }
}

#[cfg(test)]
mod tests;
