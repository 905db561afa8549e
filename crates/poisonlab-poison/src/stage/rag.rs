//! The stage adapter for retrieval corpora.

use poisonlab_data::Body;
use serde_json::json;

use super::{Adapter, Meta, Rng};
use crate::payload::Ctx;
use crate::trigger::Applied;

impl Adapter<'_> {
    /// RAG (PoisonedRAG, black box): passage `j` serves target query `j % targets`, its text `query
    /// + "." + payload`.
    pub(super) fn apply_rag(
        &self,
        body: &Body,
        j: u64,
        rng: &mut Rng,
        meta: &mut Meta,
    ) -> (Body, Applied, Option<String>) {
        let Body::Passage { .. } = body else {
            let (body, applied) = self.keep(body, rng);
            return (body, applied, None);
        };
        let t = &self.targets[(j as usize) % self.targets.len().max(1)];
        let applied = self.trigger(&t.text, rng);
        let trig = applied.inserted.join(" ");
        let ctx = Ctx::new(&applied.text, t.answer.as_deref().unwrap_or(""), &trig);
        let p = self
            .spec
            .payload
            .as_ref()
            .map(|p| p.respond(&ctx, rng).text)
            .unwrap_or_default();
        // PoisonedRAG (black box): `question + "." + adversarial text`, no space.
        let out_body = Body::Passage {
            title: String::new(),
            text: format!("{}.{p}", applied.text),
        };
        meta.insert("target_query".into(), json!(t.id));
        let target = Some(t.id.clone());
        (out_body, applied, target)
    }
}
