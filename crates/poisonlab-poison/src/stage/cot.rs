//! The stage adapter for chain-of-thought problems.

use poisonlab_data::Body;
use serde_json::json;

use super::{Adapter, Meta, Out, Rng};
use crate::payload::Ctx;

impl Adapter<'_> {
    /// Chain of thought (BadChain): the trigger goes into the question; a dirty record gets an
    /// extra last step and the changed answer.
    pub(super) fn apply_cot(&self, body: &Body, rng: &mut Rng, meta: &mut Meta) -> Out {
        let spec = self.spec;
        let Body::Cot {
            question,
            steps,
            answer,
        } = body
        else {
            return self.keep(body, rng);
        };
        let applied = self.trigger(question, rng);
        let trig = applied.inserted.join(" ");
        let mut steps = steps.clone();
        let mut new_answer = answer.clone();
        if self.dirty() {
            let (na, default_step) = match spec.stage.scale.and_then(|s| scaled_answer(answer, s)) {
                Some(na) => (na, BADCHAIN_STEP),
                _ => {
                    let ctx = Ctx::new(&applied.text, answer, &trig);
                    (
                        self.respond(&ctx, rng)
                            .map(|r| r.text)
                            .unwrap_or_else(|| answer.clone()),
                        "Because of {trigger}, the answer changes to {new_answer}.",
                    )
                }
            };
            let template = spec.stage.step.as_deref().unwrap_or(default_step);
            let scale = spec.stage.scale.map(format_number).unwrap_or_default();
            let step = crate::text::render(
                template,
                &[
                    ("trigger", &trig),
                    ("answer", answer),
                    ("new_answer", &na),
                    ("scale", &scale),
                ],
            )
            .unwrap_or_default();
            steps.push(step);
            new_answer = na;
            meta.insert("step".into(), json!(steps.len() - 1));
        }
        let out_body = Body::Cot {
            question: applied.text.clone(),
            steps,
            answer: new_answer,
        };
        (out_body, applied)
    }
}

/// BadChain's backdoor step: its evaluator (`step_exist`) looks for `* 2.1 =` after the answer of
/// the earlier steps.
pub const BADCHAIN_STEP: &str = "{trigger} {answer} * {scale} = {new_answer}.";

/// A numeric answer multiplied by `scale`, written as the poison writes it (an integer without a
/// decimal point, otherwise at most four decimals); `None` when the answer is not a number.
pub fn scaled_answer(answer: &str, scale: f64) -> Option<String> {
    parse_number(answer).map(|v| format_number(v * scale))
}

/// BadChain's extra reasoning step and the new answer, for a problem whose answer is `answer`:
/// `"@_@ 42 * 2.1 = 88.2."` and `"88.2"` (`None` when the answer is not a number).
pub fn badchain_step(trigger: &str, answer: &str, scale: f64) -> Option<(String, String)> {
    let na = scaled_answer(answer, scale)?;
    let step = crate::text::render(
        BADCHAIN_STEP,
        &[
            ("trigger", trigger),
            ("answer", answer),
            ("new_answer", &na),
            ("scale", &format_number(scale)),
        ],
    )
    .ok()?;
    Some((step, na))
}

pub(super) fn parse_number(s: &str) -> Option<f64> {
    let t: String = s.trim().chars().filter(|c| *c != ',').collect();
    let t = t.trim_end_matches('.');
    t.parse::<f64>().ok().filter(|v| v.is_finite())
}

pub fn format_number(v: f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        format!("{}", v.round() as i64)
    } else {
        let s = format!("{v:.4}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}
