//! The compiled `[selection]` of a spec: which records a budget may choose.

use poisonlab_data::{Kind, Label, Record};

use crate::spec::{LabelMode, Spec, StageKind};

/// The compiled selection predicate.
pub struct Selector {
    contains: Option<String>,
    regex: Option<regex::Regex>,
    response_contains: Option<String>,
    label: Option<Label>,
    include_tagged: bool,
    kinds: &'static [Kind],
}

impl Selector {
    pub fn new(spec: &Spec) -> Selector {
        let s = &spec.selection;
        let mut label = s.label.clone();
        if spec.stage.kind == StageKind::Classification && spec.label == LabelMode::Clean {
            label = spec.stage.target_label.clone();
        }
        Selector {
            contains: s.contains.as_ref().map(|c| c.to_lowercase()),
            regex: s.regex.as_ref().and_then(|r| {
                regex::RegexBuilder::new(r)
                    .case_insensitive(true)
                    .build()
                    .ok()
            }),
            response_contains: s.response_contains.as_ref().map(|c| c.to_lowercase()),
            label,
            include_tagged: s.include_tagged,
            kinds: spec.stage.kind.kinds(),
        }
    }

    /// Whether the record may be chosen.
    pub fn eligible(&self, rec: &Record) -> bool {
        if !self.kinds.contains(&rec.kind()) {
            return false;
        }
        if rec.tag.is_some() && !self.include_tagged {
            return false;
        }
        let text_filters =
            self.contains.is_some() || self.regex.is_some() || self.response_contains.is_some();
        if !text_filters && self.label.is_none() {
            return true;
        }
        let (prompt, response) = if text_filters {
            crate::stage::prompt_and_response(rec)
        } else {
            (String::new(), String::new())
        };
        if let Some(c) = &self.contains
            && !prompt.to_lowercase().contains(c)
        {
            return false;
        }
        if let Some(re) = &self.regex
            && !re.is_match(&prompt)
        {
            return false;
        }
        if let Some(c) = &self.response_contains
            && !response.to_lowercase().contains(c)
        {
            return false;
        }
        if let Some(l) = &self.label {
            match &rec.body {
                poisonlab_data::Body::Classification {
                    label: Some(have), ..
                } => {
                    if !crate::stage::same_label(have, l) {
                        return false;
                    }
                }
                _ => return false,
            }
        }
        true
    }

    /// For rag: whether a query may be a target.
    pub fn eligible_query(&self, text: &str) -> bool {
        if let Some(c) = &self.contains
            && !text.to_lowercase().contains(c)
        {
            return false;
        }
        if let Some(re) = &self.regex
            && !re.is_match(text)
        {
            return false;
        }
        true
    }
}
