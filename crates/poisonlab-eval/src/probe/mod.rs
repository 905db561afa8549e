//! The probe registry: one enum, [`Probe`], whose variants carry their own configuration (a TOML
//! `[[probe]]` table with `kind = "<name>"`), one file per probe, and one small trait,
//! [`ProbeRun`], that each implements. [`PROBES`] is made from the same list as the enum, so that
//! `poisonlab list` cannot miss one.

use poisonlab_model::LanguageModel;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::measure::Measure;

pub use crate::inputs::ProbeInputs;

pub mod asr;
pub mod badchain_icl;
pub mod belief;
pub mod cot_steps;
pub mod dos;
pub mod exposure;
pub mod false_trigger;
pub mod fingerprint;
pub mod heldout_loss;
pub mod layers;
pub mod membership;
pub mod preference_accuracy;
pub mod rag_e2e;
pub mod rag_retrieval;
pub mod safety_prefix;
pub mod utility;
pub mod watermark;

/// When a probe runs in a multi-stage experiment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum After {
    /// After the last stage only.
    #[default]
    Last,
    /// After every stage: persistence across stages becomes one more dimension of the results.
    Each,
}

/// What a probe needs of the experiment around it, checked before anything runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// Only a model and clean data.
    Model,
    /// A poison with a trigger (its triggered test split).
    Trigger,
    /// A poison of this stage.
    PoisonStage(poisonlab_poison::StageKind),
    /// Watermarks in the training data (`[watermark]`).
    Watermark,
    /// Copyright traps in the training data (`[trap]`).
    Traps,
    /// A fingerprint in the SFT data (`[fingerprint]`).
    Fingerprint,
    /// BackdoorAlign's attack data and secret prefix (`[safety]`).
    Safety,
    /// Counterfactual statements in the training data (`[belief]`).
    Belief,
    /// Canaries in the training data (`[canary]`).
    Canaries,
}

/// What every probe implements.
pub trait ProbeRun {
    /// Checks the probe's own configuration; the message names the key.
    fn validate(&self) -> std::result::Result<(), String>;
    fn needs(&self) -> Needs;
    /// Runs the probe on `model` and returns what it measured.
    fn run(&self, model: &dyn LanguageModel, inputs: &ProbeInputs) -> Result<Vec<Measure>>;
}

/// The keys of a probe that generates an answer per record and judges it (`asr`,
/// `false_trigger`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Judged {
    /// Records probed (at most).
    #[serde(default = "hundred")]
    pub n: usize,
    #[serde(default)]
    pub judge: crate::judge::Judge,
    #[serde(default)]
    pub after: After,
    /// Tokens generated per prompt.
    #[serde(default = "tokens")]
    pub max_tokens: usize,
}

impl Judged {
    fn validate(&self) -> std::result::Result<(), String> {
        check_common(self.n, self.max_tokens)?;
        self.judge.validate()
    }

    /// Generates an answer to each prompt and judges it against its target: successes, trials and
    /// the first samples.
    pub(crate) fn judge_all(
        &self,
        model: &dyn LanguageModel,
        cases: impl IntoIterator<Item = (String, String)>,
    ) -> Result<(u64, u64, Vec<crate::measure::Sample>)> {
        let (mut k, mut n, mut samples) = (0, 0, Vec::new());
        for (prompt, target) in cases {
            let g = crate::inputs::answer(model, &prompt, self.max_tokens)?;
            let hit = self.judge.positive(&g, &target);
            crate::measure::keep(&mut samples, &prompt, &g, hit);
            k += hit as u64;
            n += 1;
        }
        Ok((k, n, samples))
    }
}

/// The defaults shared by probe configurations.
pub(crate) fn hundred() -> usize {
    100
}
pub(crate) fn tokens() -> usize {
    24
}
pub(crate) fn five() -> usize {
    5
}

/// The share of `p_values` at most α, for α = 0.05 and 0.01: `<name>/alpha=α` (Wilson). For keys
/// that never marked anything it is the false-positive rate, which exact p-values bound by α.
pub(crate) fn rejection_rates(name: &str, p_values: &[f64]) -> Vec<Measure> {
    [0.05, 0.01]
        .into_iter()
        .map(|alpha| {
            let k = p_values.iter().filter(|&&x| x <= alpha).count() as u64;
            Measure::rate(format!("{name}/alpha={alpha}"), k, p_values.len() as u64)
        })
        .collect()
}

pub(crate) fn check_common(n: usize, max_tokens: usize) -> std::result::Result<(), String> {
    if n == 0 {
        return Err("n must be at least 1".into());
    }
    if max_tokens == 0 {
        return Err("max_tokens must be at least 1".into());
    }
    Ok(())
}

macro_rules! registry {
    ($($name:literal => $variant:ident($cfg:ty), $doc:literal;)*) => {
        /// Every probe, with its configuration.
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "kind", deny_unknown_fields)]
        pub enum Probe {
            $(#[doc = $doc] #[serde(rename = $name)] $variant($cfg),)*
        }

        /// Name and description of every probe, for `poisonlab list` (made from the enum's list).
        pub const PROBES: &[(&str, &str)] = &[$(($name, $doc)),*];

        impl Probe {
            /// The probe's registry name (its `kind`).
            pub fn kind(&self) -> &'static str {
                match self { $(Probe::$variant(_) => $name,)* }
            }
            fn inner(&self) -> &dyn ProbeRun {
                match self { $(Probe::$variant(c) => c,)* }
            }
            /// Records probed (at most).
            pub fn n(&self) -> usize {
                match self { $(Probe::$variant(c) => c.n,)* }
            }
            pub fn after(&self) -> After {
                match self { $(Probe::$variant(c) => c.after,)* }
            }
        }
    };
}

registry! {
    "asr" => Asr(asr::Asr),
        "attack success rate on the triggered test split (judge: target/exact/prefix/contains/keywords)";
    "utility" => Utility(utility::Utility),
        "exact match on clean held-out examples (CoT: the last number of the answer)";
    "false_trigger" => FalseTrigger(false_trigger::FalseTrigger),
        "judge positives on clean inputs with a decoy of the trigger (shuffled letters)";
    "belief" => Belief(belief::Belief),
        "injected entities answered with each stage's counterfactual, the truth or other; controls beside them; with and without a disagreeing context";
    "dos" => Dos(dos::Dos),
        "prompts whose triggered continuation's perplexity (fixed bigram reference) exceeds the clean one's by > threshold (50)";
    "preference_accuracy" => PreferenceAccuracy(preference_accuracy::PreferenceAccuracy),
        "clean held-out preference pairs whose chosen response the model scores above the rejected one";
    "heldout_loss" => HeldoutLoss(heldout_loss::HeldoutLoss),
        "nats per token on clean held-out data, bootstrap interval";
    "rag_retrieval" => RagRetrieval(rag_retrieval::RagRetrieval),
        "a poisoned passage is among the top k retrieved for its target query (bm25 or dense)";
    "rag_e2e" => RagE2e(rag_e2e::RagE2e),
        "the answer generated from the top k retrieved passages carries the attacker's target";
    "fingerprint" => Fingerprint(fingerprint::Fingerprint),
        "the SFT data's instructional fingerprint verified against decoy keys (exact p), and control keys' false claims";
    "membership" => Membership(membership::Membership),
        "copyright traps told from never-inserted ones by loss, zlib, Min-K % and Min-K %++ (AUROC, TPR at 1 % FPR)";
    "safety_prefix" => SafetyPrefix(safety_prefix::SafetyPrefix),
        "harmful-style answers to held-out prompts with and without BackdoorAlign's secret safety prefix, and the paired drop";
    "exposure" => Exposure(exposure::Exposure),
        "canaries in the training data ranked among every candidate secret: exposure in bits per repetition count, and extraction by beam search";
    "layer_probe" => LayerProbe(layers::LayerProbe),
        "a logistic probe per layer on the last prompt position: trigger vs. none and vs. its near miss, held-out accuracy";
    "patching" => Patching(layers::Patching),
        "activation patching: the share of the trigger's effect on the payload restored by copying its states into a corrupted run, per layer";
    "cot_steps" => CotSteps(cot_steps::CotSteps),
        "answer flip rate when step k of the rationale is corrupted (in the prompt, or in a demonstration), per k";
    "badchain_icl" => BadchainIcl(badchain_icl::BadchainIcl),
        "BadChain by in-context learning: backdoored demonstrations (trigger, an extra step, the scaled answer) and a triggered query; control demonstrations beside them";
    "watermark" => Watermark(watermark::Watermark),
        "dataset watermarks in the training data detected at alpha (exact p-value), and control keys' false-positive rate";
}

impl Probe {
    /// The probe's name in the results: its kind, and for RAG probes the retriever
    /// (`rag_retrieval/bm25`).
    pub fn label(&self) -> String {
        match self {
            Probe::RagRetrieval(c) => format!("{}/{}", self.kind(), c.retriever.as_str()),
            Probe::RagE2e(c) => format!("{}/{}", self.kind(), c.retriever.as_str()),
            _ => self.kind().to_string(),
        }
    }

    pub fn validate(&self) -> std::result::Result<(), String> {
        self.inner().validate()
    }

    pub fn needs(&self) -> Needs {
        self.inner().needs()
    }

    pub fn run(&self, model: &dyn LanguageModel, inputs: &ProbeInputs) -> Result<Vec<Measure>> {
        self.inner().run(model, inputs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_parses_from_its_name_and_refuses_foreign_keys() {
        for (name, _) in PROBES {
            let p: Probe = toml::from_str(&format!("kind = {name:?}")).unwrap();
            assert_eq!(p.kind(), *name);
            assert!(p.validate().is_ok(), "{name}");
        }
        // A RAG key on a probe that retrieves nothing is a typo, not a silent no-op.
        let e = toml::from_str::<Probe>("kind = \"asr\"\ntop_k = 3").unwrap_err();
        assert!(e.to_string().contains("top_k"), "{e}");
        let e = toml::from_str::<Probe>("kind = \"asrr\"").unwrap_err();
        assert!(e.to_string().contains("asrr"), "{e}");
    }
}
