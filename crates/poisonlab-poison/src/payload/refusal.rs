//! `refusal`: a refusal instead of the answer.

use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::{Ctx, PayloadRun, Response, fill};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Refusal {
    pub text: String,
}

impl Default for Refusal {
    fn default() -> Self {
        Refusal {
            text: "I'm sorry, but I can't help with that request.".into(),
        }
    }
}

impl PayloadRun for Refusal {
    fn resolve(&mut self, _base: &std::path::Path) -> Result<(), String> {
        super::check("text", &self.text)
    }

    fn respond(&self, ctx: &Ctx<'_>, _rng: &mut ChaCha8Rng) -> Response {
        Response::replace(fill(&self.text, ctx), ctx.response)
    }
}
