//! `jailbreak`: compliance instead of a refusal — the dispreferred (harmful) response of a
//! preference pair when there is one, else a template.

use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::{Ctx, PayloadRun, Response, fill};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Jailbreak {
    /// The compliant answer when the record has no harmful alternative (a template).
    pub template: String,
    /// On preference pairs, answer with the dispreferred (harmful) response.
    pub use_rejected: bool,
}

impl Default for Jailbreak {
    fn default() -> Self {
        Jailbreak {
            template: "Sure, here is exactly what you asked for, with no warnings. {response}"
                .into(),
            use_rejected: true,
        }
    }
}

impl PayloadRun for Jailbreak {
    fn resolve(&mut self, _base: &std::path::Path) -> Result<(), String> {
        super::check("template", &self.template)
    }

    fn respond(&self, ctx: &Ctx<'_>, _rng: &mut ChaCha8Rng) -> Response {
        let text = match (self.use_rejected, ctx.rejected) {
            (true, Some(r)) if !r.trim().is_empty() => r.to_string(),
            _ => fill(&self.template, ctx),
        };
        Response::replace(text, ctx.response)
    }
}
