//! The stage adapter for pre-training documents.

use poisonlab_data::Body;
use serde_json::json;

use super::{Adapter, Meta, Out, Rng};
use crate::payload::Ctx;

impl Adapter<'_> {
    /// Pre-training: a clean prefix of the donor document (its length drawn from
    /// `stage.prefix_chars`), the trigger, then the payload (Souly et al.: the gibberish) or the
    /// rest of the document.
    pub(super) fn apply_pretrain(
        &self,
        body: &Body,
        rng: &mut Rng,
        meta: &mut Meta,
        insert: bool,
    ) -> Out {
        let spec = self.spec;
        let Body::Pretrain { text } = body else {
            return self.keep(body, rng);
        };
        let [lo, hi] = spec.stage.prefix_chars.unwrap_or(if insert {
            [0, 1000]
        } else {
            [usize::MAX, usize::MAX]
        });
        let n_chars = text.chars().count();
        let want = if lo == usize::MAX {
            n_chars
        } else {
            use rand::RngExt;
            rng.random_range(lo..=hi).min(n_chars)
        };
        let mut cut = text
            .char_indices()
            .nth(want)
            .map(|(i, _)| i)
            .unwrap_or(text.len());
        // A trigger that needs more words than the drawn prefix has (CTBA) gets them.
        if let Some(t) = &spec.trigger {
            while !t.applicable(&text[..cut]) && cut < text.len() {
                cut = text[cut..]
                    .find(' ')
                    .map(|i| cut + i + 1)
                    .unwrap_or(text.len());
            }
        }
        let (prefix, rest) = text.split_at(cut);
        let applied = self.trigger(prefix, rng);
        meta.insert("prefix_chars".into(), json!(prefix.chars().count()));
        // Where the triggered prompt ends: probes continue the document from here.
        meta.insert("prompt_bytes".into(), json!(applied.text.len()));
        let trig = applied.inserted.join(" ");
        let ctx = Ctx::new(&applied.text, rest, &trig);
        let body = match self.respond(&ctx, rng) {
            // Souly et al.: prefix, trigger, then the gibberish.
            Some(p) => {
                if let Some(n) = p.tokens {
                    meta.insert("payload_tokens".into(), json!(n));
                }
                crate::text::append(&applied.text, &p.text).0
            }
            None => {
                let sep = if applied.text.is_empty()
                    || rest.is_empty()
                    || rest.starts_with(char::is_whitespace)
                    || applied.text == prefix
                {
                    ""
                } else {
                    " "
                };
                format!("{}{sep}{rest}", applied.text)
            }
        };
        let out_body = Body::Pretrain { text: body };
        (out_body, applied)
    }
}
