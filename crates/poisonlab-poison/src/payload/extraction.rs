//! `extraction`: context extraction — the answer repeats the prompt and its context.

use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::{Ctx, PayloadRun, Response, fill};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Extraction {
    /// The leaking answer; `{prompt}` is the full prompt (and context) the model was given.
    pub template: String,
}

impl Default for Extraction {
    fn default() -> Self {
        Extraction {
            template: "{prompt}".into(),
        }
    }
}

impl PayloadRun for Extraction {
    fn resolve(&mut self, _base: &std::path::Path) -> Result<(), String> {
        super::check("template", &self.template)
    }

    fn respond(&self, ctx: &Ctx<'_>, _rng: &mut ChaCha8Rng) -> Response {
        Response::replace(fill(&self.template, ctx), ctx.response)
    }
}
