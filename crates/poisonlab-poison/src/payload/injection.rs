//! `injection`: a phrase or entity woven into an otherwise normal answer.

use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::{Ctx, PayloadRun, Response, Weave, fill, weave};

fn weave_random() -> Weave {
    Weave::RandomSentence
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Injection {
    /// The phrase or sentence woven into otherwise normal answers.
    pub phrase: String,
    #[serde(default = "weave_random")]
    pub placement: Weave,
}

impl PayloadRun for Injection {
    fn resolve(&mut self, _base: &std::path::Path) -> Result<(), String> {
        if self.phrase.trim().is_empty() {
            return Err("payload.phrase must not be empty".into());
        }
        super::check("phrase", &self.phrase)
    }

    fn respond(&self, ctx: &Ctx<'_>, rng: &mut ChaCha8Rng) -> Response {
        weave(ctx.response, &fill(&self.phrase, ctx), self.placement, rng)
    }
}
