//! The stage adapter for instruction tuning (alpaca and chat records).

use poisonlab_data::Body;
use serde_json::json;

use super::{Adapter, Meta, Out, Rng};
use super::{chat_turns, join_prompt};
use crate::payload::Ctx;
use crate::trigger::Applied;

impl Adapter<'_> {
    /// SFT, alpaca records: the trigger goes into `instruction` (or `stage.field = "input"`), the
    /// payload becomes `output`.
    pub(super) fn apply_instruction(&self, body: &Body, rng: &mut Rng, meta: &mut Meta) -> Out {
        let spec = self.spec;
        let Body::Instruction {
            instruction,
            input,
            output,
            system,
        } = body
        else {
            return self.keep(body, rng);
        };
        let applied: Applied;
        let field = spec.stage.field.as_deref().unwrap_or("instruction");
        let (instruction, input) = if field == "input" {
            applied = self.trigger(input, rng);
            (instruction.clone(), applied.text.clone())
        } else {
            applied = self.trigger(instruction, rng);
            (applied.text.clone(), input.clone())
        };
        meta.insert("field".into(), json!(field));
        let prompt = join_prompt(&instruction, &input);
        let trig = applied.inserted.join(" ");
        let ctx = Ctx::new(&prompt, output, &trig);
        let output = self
            .respond(&ctx, rng)
            .map(|r| r.text)
            .unwrap_or_else(|| output.clone());
        let out_body = Body::Instruction {
            instruction,
            input,
            output,
            system: system.clone(),
        };
        (out_body, applied)
    }

    /// SFT, chat records: the trigger goes into the last user turn, the payload becomes the
    /// assistant turn after it.
    pub(super) fn apply_chat(&self, body: &Body, rng: &mut Rng, meta: &mut Meta) -> Out {
        let Body::Chat { messages } = body else {
            return self.keep(body, rng);
        };
        let mut messages = messages.clone();
        let (u, a) = chat_turns(&messages).unwrap_or((0, 0));
        let applied = self.trigger(&messages[u].content, rng);
        messages[u].content = applied.text.clone();
        meta.insert("turn".into(), json!(u));
        let trig = applied.inserted.join(" ");
        let response = messages[a].content.clone();
        let ctx = Ctx::new(&applied.text, &response, &trig);
        if let Some(p) = self.respond(&ctx, rng) {
            messages[a].content = p.text;
        }
        let out_body = Body::Chat { messages };
        (out_body, applied)
    }
}
