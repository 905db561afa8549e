//! The stage adapter for retrieval corpora.

use poisonlab_data::Body;
use rand_chacha::ChaCha8Rng;
use serde_json::{Map, Value, json};

use super::Adapter;
use crate::payload::Ctx;
use crate::trigger::Applied;

impl Adapter<'_> {
    /// RAG (PoisonedRAG, black box): passage `j` serves target query `j % targets`, its text `query + "." + payload`.
    pub(super) fn apply_rag(
        &self,
        rec_body: &Body,
        j: u64,
        rng: &mut ChaCha8Rng,
        meta: &mut Map<String, Value>,
    ) -> (Body, Applied, Option<String>) {
        let Body::Passage { .. } = rec_body else {
            return (rec_body.clone(), self.trigger("", rng), None);
        };
        let target;
        let applied: Applied;
        let t = &self.targets[(j as usize) % self.targets.len().max(1)];
        applied = self.trigger(&t.text, rng);
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
        target = Some(t.id.clone());
        (out_body, applied, target)
    }
}
