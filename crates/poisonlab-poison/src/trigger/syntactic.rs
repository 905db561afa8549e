//! Syntactic / style trigger: the text rewritten through a fixed template, so that the trigger is a
//! sentence shape rather than a token (after Hidden Killer's `S(SBAR)(,)(NP)(VP)(.)` template, which
//! opens with a subordinate clause). `{text}` is the original text; with `lowercase_first` its first
//! letter is lowered so the rewrite reads as one sentence.

use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::Applied;
use crate::text;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Syntactic {
    pub template: String,
    pub lowercase_first: bool,
}

impl Default for Syntactic {
    fn default() -> Self {
        Syntactic {
            template: "When you think about it carefully, {text}".into(),
            lowercase_first: true,
        }
    }
}

impl Syntactic {
    pub fn check(&self) -> Result<(), String> {
        text::check_template(&self.template, &["text"])
            .map_err(|e| format!("trigger.template: {e}"))?;
        if self.template.matches("{text}").count() != 1 {
            return Err("trigger.template must contain `{text}` exactly once".into());
        }
        Ok(())
    }

    /// The template's text before and after `{text}`, braces unescaped.
    fn sides(&self) -> (String, String) {
        let (a, b) = self
            .template
            .split_once("{text}")
            .unwrap_or((&self.template, ""));
        let r = |s: &str| text::render(s, &[]).unwrap_or_else(|_| s.to_string());
        (r(a), r(b))
    }

    pub fn apply(&self, t: &str, _rng: &mut ChaCha8Rng) -> Applied {
        let (head, tail) = self.sides();
        let body = if self.lowercase_first {
            lower_first(t)
        } else {
            t.to_string()
        };
        let mut edits = Vec::new();
        if !head.is_empty() {
            edits.push(text::Edit::insertion(0, head.len()));
        }
        // Lowering changes the first character only; the edit restores it.
        if let Some(a) = t.chars().next()
            && body != t
        {
            let new_len = body.len() - (t.len() - a.len_utf8());
            edits.push(text::Edit {
                at: head.len(),
                len: new_len,
                original: a.to_string(),
            });
        }
        if !tail.is_empty() {
            edits.push(text::Edit::insertion(head.len() + body.len(), tail.len()));
        }
        Applied {
            text: format!("{head}{body}{tail}"),
            inserted: vec![self.template.clone()],
            positions: vec![0],
            unit: "template",
            edits,
        }
    }
}

/// Lowers the first letter unless the first word looks like an acronym or a name with capitals
/// inside (`NASA`, `iPhone`) — then the text is left as it is.
fn lower_first(t: &str) -> String {
    let first_word = t.split_whitespace().next().unwrap_or("");
    let upper_inside = first_word.chars().skip(1).any(char::is_uppercase);
    let mut chars = t.chars();
    match chars.next() {
        Some(c) if c.is_uppercase() && !upper_inside && first_word != "I" => {
            c.to_lowercase().chain(chars).collect()
        }
        _ => t.to_string(),
    }
}
