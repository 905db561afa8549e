//! The stage adapter for agent memory.

use poisonlab_data::Body;

use super::{Adapter, Meta, Out, Rng};
use crate::payload::Ctx;

impl Adapter<'_> {
    /// Agent memory: the trigger goes into the entry's content, the payload (an action) is
    /// appended.
    pub(super) fn apply_memory(
        &self,
        body: &Body,
        rng: &mut Rng,
        _meta: &mut Meta,
        insert: bool,
    ) -> Out {
        let spec = self.spec;
        let Body::Memory {
            agent,
            content,
            source,
        } = body
        else {
            return self.keep(body, rng);
        };
        let applied = self.trigger(content, rng);
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
