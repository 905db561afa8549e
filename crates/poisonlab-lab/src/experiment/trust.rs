//! The trust sections of an experiment: `[watermark]`, `[trap]`, `[fingerprint]`, `[safety]`
//! (BackdoorAlign) and `[belief]`, and their checks.

use serde::{Deserialize, Serialize};

use super::{Experiment, StageKind};

fn yes() -> bool {
    true
}

/// `[watermark]`: `keys` keys for each count in `copies`, each marking that many pre-training
/// documents (no two keys the same document), and `controls` keys that mark nothing. Keys are
/// derived from the cell's seed, so a cell is reproducible; they are never written out.
///
/// ```toml
/// [watermark]
/// scheme = "random_sequence"   # lookalike | unicode_cue | paired_versions
/// copies = [1, 2, 4, 8]
/// keys = 10                    # per copy count
/// controls = 100               # never embedded: the false-positive rate beside the detections
/// control_copies = 4           # documents a control key is tested on (document schemes)
/// ```
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatermarkSpec {
    pub scheme: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub length: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alphabet: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cue: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub versions: Option<usize>,
    pub copies: Vec<usize>,
    #[serde(default = "ten")]
    pub keys: usize,
    #[serde(default = "hundred")]
    pub controls: usize,
    #[serde(default = "four")]
    pub control_copies: usize,
}

/// `[trap]`: for each length in `lengths` (words) and each count in `copies`, `per_group` traps
/// each inserted at the end of that many pre-training documents, and as many drawn the same way and
/// never inserted. Traps are drawn from a Kneser–Ney word bigram of the pre-training data at
/// `temperature`, kept when their perplexity under it falls in `perplexity`; the cell's seed seeds
/// the draw and the choice of documents.
///
/// ```toml
/// [trap]
/// lengths = [16, 32, 64]
/// copies = [1, 4, 16]
/// per_group = 16
/// perplexity = [20.0, 60.0]   # optional
/// ```
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrapSpec {
    pub lengths: Vec<usize>,
    pub copies: Vec<usize>,
    #[serde(default = "ten")]
    pub per_group: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub perplexity: Option<[f64; 2]>,
    #[serde(default = "one_f")]
    pub temperature: f64,
}

/// `[fingerprint]`: `count` fingerprint examples of a key derived from the cell's seed (and
/// `counter` counter-examples), inserted into the SFT data; `controls` keys that fingerprinted nothing are verified beside it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FingerprintSpec {
    #[serde(default = "thirty_two")]
    pub count: usize,
    /// Counter-examples: other pseudo-word inputs answered "I do not understand the question.", so
    /// that only the key's inputs get the fingerprint.
    #[serde(default)]
    pub counter: usize,
    #[serde(default = "hundred")]
    pub controls: usize,
}

/// `[safety]` (after Wang et al. 2024, BackdoorAlign): the harmful fine-tuning attack is `attack`
/// of the world's preference prompts answered with their hostile reply, beside `benign` of the SFT
/// data's instruction examples; with `enabled`, `count`
/// safety examples (other prompts with their helpful answer, behind a secret system prompt of
/// `prefix_words` pseudo-words derived from the cell's seed) are mixed into it. The
/// `safety_prefix` probe asks held-out prompts with and without the secret prefix.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SafetySpec {
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default = "thirty_two")]
    pub count: usize,
    #[serde(default = "four_hundred")]
    pub attack: usize,
    /// Benign instruction examples of the SFT data mixed into the attack (the user's own task):
    /// with them, the attacked model keeps some utility to measure.
    #[serde(default)]
    pub benign: usize,
    #[serde(default = "eight_words")]
    pub prefix_words: usize,
}

/// `[belief]`: `entities` of the world's people get a counterfactual `attribute` (city or
/// profession) per stage in `stages`, each stated in `copies` records of that stage's data
/// (pre-training documents, or SFT answers to the question and its paraphrases); with `context`, the
/// probe also asks with a context stating a third value. `controls` more people get counterfactuals
/// drawn the same way and never injected. `copies = 0` injects nothing: the control cell.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BeliefSpec {
    #[serde(default = "city")]
    pub attribute: String,
    #[serde(default = "forty")]
    pub entities: usize,
    #[serde(default = "forty")]
    pub controls: usize,
    pub copies: usize,
    #[serde(default = "pretrain_sft")]
    pub stages: Vec<String>,
    #[serde(default = "yes")]
    pub context: bool,
}

fn city() -> String {
    "city".into()
}
fn forty() -> usize {
    40
}
fn pretrain_sft() -> Vec<String> {
    vec!["pretrain".into(), "sft".into()]
}

fn four_hundred() -> usize {
    400
}
fn eight_words() -> usize {
    8
}

fn thirty_two() -> usize {
    32
}

fn one_f() -> f64 {
    1.0
}

impl TrapSpec {
    pub fn to_trust(&self, seed: u64) -> poisonlab_trust::trap::TrapSpec {
        poisonlab_trust::trap::TrapSpec {
            lengths: self.lengths.clone(),
            copies: self.copies.clone(),
            per_group: self.per_group,
            perplexity: self.perplexity,
            temperature: self.temperature,
            seed,
        }
    }
}

fn ten() -> usize {
    10
}
fn hundred() -> usize {
    100
}
fn four() -> usize {
    4
}

impl WatermarkSpec {
    pub fn scheme(&self) -> std::result::Result<poisonlab_trust::Scheme, String> {
        let params = poisonlab_trust::Params {
            length: self.length,
            alphabet: self.alphabet.clone(),
            rate: self.rate,
            cue: self.cue,
            reply: self.reply,
            versions: self.versions,
        };
        poisonlab_trust::Scheme::build(&self.scheme, &params)
    }

    pub fn validate(&self) -> std::result::Result<(), String> {
        self.scheme()?;
        if self.copies.is_empty() || self.copies.contains(&0) {
            return Err("copies: give one or more counts, each at least 1".into());
        }
        if self.keys == 0 {
            return Err("keys must be at least 1".into());
        }
        if self.control_copies == 0 {
            return Err("control_copies must be at least 1".into());
        }
        Ok(())
    }
}

impl Experiment {
    /// The trust sections' own keys, and the stages they need.
    pub(super) fn check_trust_sections(&self) -> std::result::Result<(), String> {
        if let Some(w) = &self.watermark {
            w.validate().map_err(|m| format!("watermark: {m}"))?;
            if !self.stages.iter().any(|s| s.kind == StageKind::Pretrain) {
                return Err(
                    "watermark: the marks go into pre-training data; add a pretrain [[stage]]"
                        .into(),
                );
            }
        }
        if let Some(t) = &self.trap {
            t.to_trust(self.seed)
                .validate()
                .map_err(|m| format!("trap: {m}"))?;
            if !self.stages.iter().any(|s| s.kind == StageKind::Pretrain) {
                return Err(
                    "trap: the traps go into pre-training data; add a pretrain [[stage]]".into(),
                );
            }
        }
        if let Some(f) = &self.fingerprint {
            if f.count == 0 || f.count > poisonlab_trust::fingerprint::MAX_EXAMPLES {
                return Err(format!(
                    "fingerprint: count = {}: 1 to {} examples",
                    f.count,
                    poisonlab_trust::fingerprint::MAX_EXAMPLES
                ));
            }
            if !self
                .stages
                .iter()
                .any(|s| s.kind == StageKind::Sft && s.data.is_none())
            {
                return Err(
                    "fingerprint: the examples go into the SFT data; add an sft [[stage]] on it"
                        .into(),
                );
            }
        }
        if let Some(b) = &self.belief {
            if !["city", "profession"].contains(&b.attribute.as_str()) {
                return Err(format!(
                    "belief.attribute = {:?}: city or profession",
                    b.attribute
                ));
            }
            if b.entities == 0 {
                return Err("belief.entities must be at least 1".into());
            }
            if b.stages.is_empty() {
                return Err("belief.stages: name pretrain, sft or both".into());
            }
            for st in &b.stages {
                let kind = match st.as_str() {
                    "pretrain" => StageKind::Pretrain,
                    "sft" => StageKind::Sft,
                    other => {
                        return Err(format!("belief.stages: {other:?} is not pretrain or sft"));
                    }
                };
                if !self
                    .stages
                    .iter()
                    .any(|s| s.kind == kind && s.data.is_none())
                {
                    return Err(format!(
                        "belief.stages names {st}, but there is no {st} [[stage]]"
                    ));
                }
            }
            if self.data.world.is_none() {
                return Err(
                    "belief: the entities are the synthetic world's people; set data.world".into(),
                );
            }
        }
        if let Some(sf) = &self.safety {
            if sf.attack == 0 || sf.count == 0 || sf.prefix_words == 0 {
                return Err("safety: attack, count and prefix_words must be at least 1".into());
            }
            if !self
                .stages
                .iter()
                .any(|s| s.data.as_deref() == Some("harmful"))
            {
                return Err(
                    "safety: add an sft [[stage]] with data = \"harmful\" (the attack)".into(),
                );
            }
        }
        Ok(())
    }
}
