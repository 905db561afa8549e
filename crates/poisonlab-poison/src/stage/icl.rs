//! The stage adapter for in-context demonstrations.

use poisonlab_data::Body;
use serde_json::json;

use super::{Adapter, Meta, Out, Rng};
use crate::payload::Ctx;
use crate::trigger::Applied;

impl Adapter<'_> {
    /// In-context learning: `stage.demos` demonstrations carry the trigger in their input and the
    /// payload as their output.
    pub(super) fn apply_icl(&self, body: &Body, rng: &mut Rng, meta: &mut Meta) -> Out {
        let spec = self.spec;
        let Body::Icl {
            instruction,
            demos,
            query,
            answer,
        } = body
        else {
            return self.keep(body, rng);
        };
        let k = spec.stage.demos.unwrap_or(1).min(demos.len());
        let mut picks = rand::seq::index::sample(rng, demos.len(), k).into_vec();
        picks.sort_unstable();
        let mut demos = demos.clone();
        let mut all = Applied {
            unit: "word_slot",
            ..Applied::none("")
        };
        for &d in &picks {
            let a = self.trigger(&demos[d].input, rng);
            let trig = a.inserted.join(" ");
            let ctx = Ctx::new(&a.text, &demos[d].output, &trig);
            if let Some(p) = self.respond(&ctx, rng) {
                demos[d].output = p.text;
            }
            demos[d].input = a.text.clone();
            all.unit = a.unit;
            all.inserted.extend(a.inserted);
            all.positions.extend(a.positions);
        }
        all.inserted.dedup();
        let applied = all;
        meta.insert("demos".into(), json!(picks));
        let out_body = Body::Icl {
            instruction: instruction.clone(),
            demos,
            query: query.clone(),
            answer: answer.clone(),
        };
        (out_body, applied)
    }
}
