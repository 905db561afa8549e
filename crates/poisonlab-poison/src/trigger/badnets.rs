//! BadNets for text: a rare word at a random word position (Gu et al. 2017; Kurita et al. 2020).
//! Default `BadMagic` at a uniformly random whitespace-token slot, as in BackdoorLLM's badnet sets.

use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::{Applied, Placement, fixed};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BadNets {
    /// The rare word.
    pub word: String,
    pub placement: Placement,
}

impl Default for BadNets {
    fn default() -> Self {
        BadNets {
            word: "BadMagic".into(),
            placement: Placement::RandomWord,
        }
    }
}

impl BadNets {
    pub fn apply(&self, text: &str, rng: &mut ChaCha8Rng) -> Applied {
        fixed(text, &self.word, self.placement, rng)
    }
}
