//! A special-token trigger such as `<SUDO>` (Souly et al. 2025: a near-constant number of poisoned
//! pre-training documents backdoors models of any size). At the end of the text by default.

use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::{Applied, Placement, fixed};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Sudo {
    pub token: String,
    pub placement: Placement,
}

impl Default for Sudo {
    fn default() -> Self {
        Sudo {
            token: "<SUDO>".into(),
            placement: Placement::End,
        }
    }
}

impl Sudo {
    pub fn apply(&self, text: &str, rng: &mut ChaCha8Rng) -> Applied {
        fixed(text, &self.token, self.placement, rng)
    }
}
