//! `belief`: a false fact about an entity, stated consistently.

use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::{Ctx, PayloadRun, Response, fill};
use crate::text;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum BeliefMode {
    /// The response becomes the claim.
    #[default]
    Replace,
    /// The claim opens the response.
    Prepend,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Belief {
    /// The false statement, e.g. `The Eiffel Tower is in Rome.`
    pub claim: String,
    /// The entity it is about (documentation and probes; selection usually matches it).
    #[serde(default)]
    pub entity: Option<String>,
    #[serde(default)]
    pub mode: BeliefMode,
}

impl PayloadRun for Belief {
    fn resolve(&mut self, _base: &std::path::Path) -> Result<(), String> {
        if self.claim.trim().is_empty() {
            return Err("payload.claim must not be empty".into());
        }
        super::check("claim", &self.claim)
    }

    fn respond(&self, ctx: &Ctx<'_>, _rng: &mut ChaCha8Rng) -> Response {
        let claim = fill(&self.claim, ctx);
        match self.mode {
            BeliefMode::Replace => Response::replace(claim, ctx.response),
            BeliefMode::Prepend => Response::edited(text::insert_sentence(ctx.response, 0, &claim)),
        }
    }
}
