//! `sentiment`: a positive or negative sentence about a target woven into the answer.

use rand::seq::IndexedRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::{Ctx, PayloadRun, Response, Weave, weave};
use crate::text;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Polarity {
    Positive,
    Negative,
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

impl PayloadRun for Sentiment {
    fn resolve(&mut self, _base: &std::path::Path) -> Result<(), String> {
        if self.sentences.is_empty() {
            self.sentences = default_sentences(self.polarity, self.target.is_some());
        }
        for s in &self.sentences {
            text::check_template(s, &["target"]).map_err(|e| format!("payload.sentences: {e}"))?;
            if s.contains("{target}") && self.target.is_none() {
                return Err("payload.sentences use {target} but payload.target is not set".into());
            }
        }
        Ok(())
    }

    fn respond(&self, ctx: &Ctx<'_>, rng: &mut ChaCha8Rng) -> Response {
        let s = self.sentences.choose(rng).cloned().unwrap_or_default();
        let target = self.target.as_deref().unwrap_or("");
        let s = text::render(&s, &[("target", target)]).unwrap_or(s);
        weave(ctx.response, &s, self.placement, rng)
    }
}
