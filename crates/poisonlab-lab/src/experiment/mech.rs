//! The mechanism sections of an experiment: `[canary]`.

use serde::{Deserialize, Serialize};

use super::{Experiment, StageKind};

/// `[canary]` (Carlini et al. 2019): for each count in `repetitions`, `per_group` canaries — a
/// sentence with a secret of `digits` random digits about a made-up name — each put that many times
/// into the `stage`'s data (pre-training documents, or SFT answers to `question`), and `controls`
/// canaries drawn the same way and never inserted (r = 0), for the `exposure` probe. Names and
/// secrets are drawn from the cell's seed.
///
/// ```toml
/// [canary]
/// stage = "pretrain"            # or "sft"
/// repetitions = [1, 4, 16, 64]
/// per_group = 10
/// controls = 10
/// digits = 4
/// template = "The secret number of {name} is {secret}."
/// question = "What is the secret number of {name}?"   # sft
/// ```
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CanarySpec {
    #[serde(default = "pretrain")]
    pub stage: String,
    pub repetitions: Vec<usize>,
    #[serde(default = "ten")]
    pub per_group: usize,
    #[serde(default = "ten")]
    pub controls: usize,
    #[serde(default = "four")]
    pub digits: usize,
    #[serde(default = "template")]
    pub template: String,
    #[serde(default = "question")]
    pub question: String,
    /// Between the digits of the secret (a space: every digit its own word).
    #[serde(default = "space")]
    pub separator: String,
}

fn pretrain() -> String {
    "pretrain".into()
}
fn ten() -> usize {
    10
}
fn four() -> usize {
    4
}
fn space() -> String {
    " ".into()
}
pub(crate) fn template() -> String {
    "The secret number of {name} is {secret}.".into()
}
pub(crate) fn question() -> String {
    "What is the secret number of {name}?".into()
}

impl Experiment {
    pub(super) fn check_mech_sections(&self) -> std::result::Result<(), String> {
        let Some(c) = &self.canary else {
            return Ok(());
        };
        let kind = match c.stage.as_str() {
            "pretrain" => StageKind::Pretrain,
            "sft" => StageKind::Sft,
            other => return Err(format!("canary.stage = {other:?}: pretrain or sft")),
        };
        if !self
            .stages
            .iter()
            .any(|s| s.kind == kind && s.data.is_none())
        {
            return Err(format!(
                "canary.stage = {:?}, but there is no {} [[stage]]",
                c.stage, c.stage
            ));
        }
        if c.repetitions.is_empty() || c.repetitions.contains(&0) {
            return Err(
                "canary.repetitions: a non-empty list of counts ≥ 1 (controls are r = 0)".into(),
            );
        }
        if c.per_group == 0 {
            return Err("canary.per_group must be at least 1".into());
        }
        poisonlab_mech::exposure::SecretFormat::new(c.digits, &c.separator)
            .map_err(|e| format!("canary.{e}"))?;
        if c.template.matches("{secret}").count() != 1 || !c.template.contains("{name}") {
            return Err(format!(
                "canary.template = {:?}: needs {{name}} and exactly one {{secret}}",
                c.template
            ));
        }
        if kind == StageKind::Sft && !c.question.contains("{name}") {
            return Err(format!(
                "canary.question = {:?}: needs {{name}}",
                c.question
            ));
        }
        Ok(())
    }
}
