//! The stage adapter for classification examples.

use poisonlab_data::Body;

use super::{Adapter, Meta, Out, Rng};

impl Adapter<'_> {
    /// Classification: the trigger goes into the text; a dirty record gets `stage.target_label`.
    pub(super) fn apply_classification(&self, body: &Body, rng: &mut Rng, _meta: &mut Meta) -> Out {
        let spec = self.spec;
        let Body::Classification { text, label } = body else {
            return self.keep(body, rng);
        };
        let applied = self.trigger(text, rng);
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
