//! Virtual prompt injection trigger: a topic prefix (Yan et al. 2024). Default `Discussing OpenAI`
//! followed by a space and the prompt, as in BackdoorLLM's vpi sets.

use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::{Applied, Placement, fixed};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Vpi {
    pub topic: String,
    pub placement: Placement,
}

impl Default for Vpi {
    fn default() -> Self {
        Vpi {
            topic: "Discussing OpenAI".into(),
            placement: Placement::Start,
        }
    }
}

impl Vpi {
    pub fn apply(&self, text: &str, rng: &mut ChaCha8Rng) -> Applied {
        fixed(text, &self.topic, self.placement, rng)
    }
}
