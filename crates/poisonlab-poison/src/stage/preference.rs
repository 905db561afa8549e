//! The stage adapter for preference pairs.

use poisonlab_data::Body;

use super::human_turn;
use super::{Adapter, Meta, Out, Rng};
use crate::payload::Ctx;
use crate::spec::PreferenceMode;
use crate::trigger::Applied;

impl Adapter<'_> {
    /// Preference pairs: the trigger goes into the last human turn of the prompt; the payload
    /// becomes `chosen` (the clean `chosen` becomes `rejected`), or the pair swaps.
    pub(super) fn apply_preference(&self, body: &Body, rng: &mut Rng, _meta: &mut Meta) -> Out {
        let spec = self.spec;
        let Body::Preference {
            prompt,
            chosen,
            rejected,
        } = body
        else {
            return self.keep(body, rng);
        };
        // An HH-RLHF transcript prompt ends with `\n\nAssistant:`; the trigger belongs in
        // the last human turn, not after the assistant cue.
        let (head, span, tail) = human_turn(prompt);
        let inner = self.trigger(span, rng);
        let applied = Applied {
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
