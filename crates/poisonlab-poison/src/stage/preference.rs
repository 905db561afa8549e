//! The stage adapter for preference pairs.

use poisonlab_data::Body;
use rand_chacha::ChaCha8Rng;
use serde_json::{Map, Value};

use super::Adapter;
use super::human_turn;
use crate::payload::Ctx;
use crate::spec::PreferenceMode;
use crate::trigger::Applied;

impl Adapter<'_> {
    /// Preference pairs: the trigger goes into the last human turn of the prompt; the payload becomes `chosen` (the clean `chosen` becomes `rejected`), or the pair swaps.
    pub(super) fn apply_preference(
        &self,
        rec_body: &Body,
        rng: &mut ChaCha8Rng,
        _meta: &mut Map<String, Value>,
    ) -> (Body, Applied) {
        let spec = self.spec;
        let Body::Preference {
            prompt,
            chosen,
            rejected,
        } = rec_body
        else {
            return (rec_body.clone(), self.trigger("", rng));
        };
        let applied: Applied;
        // An HH-RLHF transcript prompt ends with `\n\nAssistant:`; the trigger belongs in
        // the last human turn, not after the assistant cue.
        let (head, span, tail) = human_turn(prompt);
        let inner = self.trigger(span, rng);
        applied = Applied {
            text: format!("{head}{}{tail}", inner.text),
            ..inner
        };
        let (c, r) = match (spec.stage.preference.unwrap_or_default(), self.dirty()) {
            (_, false) => (chosen.clone(), rejected.clone()),
            (PreferenceMode::Swap, true) => (rejected.clone(), chosen.clone()),
            (PreferenceMode::PayloadChosen, true) => {
                let trig = applied.inserted.join(" ");
                let ctx = Ctx::new(&applied.text, chosen, &trig).with_rejected(rejected);
                let p = self
                    .respond(&ctx, rng)
                    .map(|r| r.text)
                    .unwrap_or_else(|| chosen.clone());
                (p, chosen.clone())
            }
        };
        let out_body = Body::Preference {
            prompt: applied.text.clone(),
            chosen: c,
            rejected: r,
        };
        (out_body, applied)
    }
}
