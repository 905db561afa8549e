//! `fixed`: a fixed target response (a template).

use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::{Ctx, PayloadRun, Response, fill};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fixed {
    /// The target response (a template).
    pub text: String,
}

impl PayloadRun for Fixed {
    fn resolve(&mut self, _base: &std::path::Path) -> Result<(), String> {
        super::check("text", &self.text)
    }

    fn respond(&self, ctx: &Ctx<'_>, _rng: &mut ChaCha8Rng) -> Response {
        Response::replace(fill(&self.text, ctx), ctx.response)
    }
}
