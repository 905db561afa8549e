//! AddSent: a fixed sentence inserted as one unit at a random word slot (Dai et al. 2019). Any of
//! the `n + 1` slots of `split(' ')`, after the last word included, as OpenBackdoor's
//! `randint(0, len(words))` allows; unlike OpenBackdoor (`split()` then `' '.join`) the text's own
//! whitespace is kept.

use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::{Applied, Placement, fixed};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AddSent {
    pub sentence: String,
    pub placement: Placement,
}

impl Default for AddSent {
    fn default() -> Self {
        AddSent {
            sentence: "I watched this 3D movie.".into(),
            placement: Placement::AnySlot,
        }
    }
}

impl AddSent {
    pub fn apply(&self, text: &str, rng: &mut ChaCha8Rng) -> Applied {
        fixed(text, &self.sentence, self.placement, rng)
    }
}
