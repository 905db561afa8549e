//! The stage adapter for agent memory.

use poisonlab_data::Body;
use rand_chacha::ChaCha8Rng;
use serde_json::{Map, Value};

use super::Adapter;
use crate::payload::Ctx;
use crate::trigger::Applied;

impl Adapter<'_> {
    /// Agent memory: the trigger goes into the entry's content, the payload (an action) is appended.
    pub(super) fn apply_memory(
        &self,
        rec_body: &Body,
        rng: &mut ChaCha8Rng,
        _meta: &mut Map<String, Value>,
        insert: bool,
    ) -> (Body, Applied) {
        let spec = self.spec;
        let Body::Memory {
            agent,
            content,
            source,
        } = rec_body
        else {
            return (rec_body.clone(), self.trigger("", rng));
        };
        let applied: Applied;
        applied = self.trigger(content, rng);
        let trig = applied.inserted.join(" ");
        let ctx = Ctx::new(&applied.text, "", &trig);
        let content = match self.respond(&ctx, rng) {
            Some(p) => format!("{}\n{}", applied.text, p.text),
            None => applied.text.clone(),
        };
        let out_body = Body::Memory {
            agent: agent.clone(),
            content,
            source: if insert {
                Some(format!("poisonlab:{}", spec.name))
            } else {
                source.clone()
            },
        };
        (out_body, applied)
    }
}
