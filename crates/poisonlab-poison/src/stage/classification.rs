//! The stage adapter for classification examples.

use poisonlab_data::Body;
use rand_chacha::ChaCha8Rng;
use serde_json::{Map, Value};

use super::Adapter;
use crate::trigger::Applied;

impl Adapter<'_> {
    /// Classification: the trigger goes into the text; a dirty record gets `stage.target_label`.
    pub(super) fn apply_classification(
        &self,
        rec_body: &Body,
        rng: &mut ChaCha8Rng,
        _meta: &mut Map<String, Value>,
    ) -> (Body, Applied) {
        let spec = self.spec;
        let Body::Classification { text, label } = rec_body else {
            return (rec_body.clone(), self.trigger("", rng));
        };
        let applied: Applied;
        applied = self.trigger(text, rng);
        let label = match (self.dirty(), &spec.stage.target_label) {
            (true, Some(t)) => Some(t.clone()),
            _ => label.clone(),
        };
        let out_body = Body::Classification {
            text: applied.text.clone(),
            label,
        };
        (out_body, applied)
    }
}
