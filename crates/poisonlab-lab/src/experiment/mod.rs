//! The experiment file and its grid.
//!
//! ```toml
//! name = "quickstart"
//! seed = 1                        # the grid axis `seed` sets it per cell
//!
//! [data]                          # the synthetic world (default), or files per stage
//! world = { seed = 1, size = "small" }
//!
//! [poison]                        # a poison spec (docs/poison.md); its seed defaults to `seed`
//! name = "badnets"
//! [poison.stage]
//! kind = "sft"
//! [poison.budget]
//! count = 16
//! [poison.trigger]
//! kind = "badnets"
//! [poison.payload]
//! kind = "refusal"
//!
//! [clean]                         # a cleaning pipeline (docs/clean.md), on or off
//! enabled = false
//! [[clean.filter]]
//! kind = "exact_dedup"
//!
//! [[stage]]                       # in lifecycle order: pretrain → sft → dpo
//! kind = "pretrain"
//! seed = 0                        # fixed: every cell shares this stage (built once)
//! [stage.config]                  # training config keys (examples/*.toml) but out/train/eval/init
//! steps = 400
//!
//! [[probe]]
//! kind = "asr"
//! judge = { kind = "target", words = 3 }
//!
//! [grid]                          # dotted keys of this file → values; cells = cartesian product
//! "poison.budget.count" = [0, 4, 16, 64]
//! seed = [1, 2]
//! "clean.enabled" = [false, true]
//! ```

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use poisonlab_eval::Probe;
use poisonlab_eval::probe::Needs;

mod export;
mod mech;
mod model;
mod plan;
mod trust;

pub use export::{ExportSpec, lift_export_stage};
pub use mech::CanarySpec;
pub use model::ModelSpec;
pub use plan::{Cell, Plan, params_map, parse_value, set_key};
pub use trust::{BeliefSpec, FingerprintSpec, SafetySpec, TrapSpec, WatermarkSpec};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Experiment {
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// The cell's seed: poison selection, and every stage without its own seed.
    #[serde(default = "one")]
    pub seed: u64,
    #[serde(default)]
    pub data: DataSpec,
    #[serde(default)]
    pub poison: Option<poisonlab_poison::Spec>,
    #[serde(default)]
    pub clean: Option<CleanSpec>,
    /// Dataset watermarks put into the pre-training data (before any poison), and the control keys
    /// verified beside them by the `watermark` probe.
    #[serde(default)]
    pub watermark: Option<WatermarkSpec>,
    /// Copyright traps put into the pre-training data (after the watermarks, before any poison),
    /// with never-inserted traps beside them for the `membership` probe.
    #[serde(default)]
    pub trap: Option<TrapSpec>,
    /// An instructional fingerprint put into the SFT data (before any poison), and control keys
    /// for the `fingerprint` probe's false claims.
    #[serde(default)]
    pub fingerprint: Option<FingerprintSpec>,
    /// BackdoorAlign: a harmful fine-tuning set (`data = "harmful"` on an sft stage) and, when
    /// enabled, safety examples behind a secret prefix mixed into it.
    #[serde(default)]
    pub safety: Option<SafetySpec>,
    /// Counterfactual statements about the world's people, per stage, for the `belief` probe.
    #[serde(default)]
    pub belief: Option<BeliefSpec>,
    /// Canaries with random secrets in one stage's data, for the `exposure` probe.
    #[serde(default)]
    pub canary: Option<CanarySpec>,
    #[serde(default, rename = "stage")]
    pub stages: Vec<StageSpec>,
    /// The last stage, `[[stage]] kind = "export"`: the stages before it are exported for another
    /// trainer instead of trained here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export: Option<ExportSpec>,
    /// An existing model to probe: for experiments without training stages, or after an export
    /// (the model trained elsewhere on it, served at an endpoint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelSpec>,
    #[serde(default, rename = "probe")]
    pub probes: Vec<Probe>,
}

fn one() -> u64 {
    1
}

/// Stands for the world's RAG queries file until the world is generated.
pub const WORLD_RAG_QUERIES: &str = "@world/rag_queries.jsonl";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorldSpec {
    #[serde(default = "one")]
    pub seed: u64,
    #[serde(default = "small")]
    pub size: String,
}

fn small() -> String {
    "small".into()
}

/// Where the data comes from: the synthetic world, with any file replaced by your own.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSpec {
    #[serde(default)]
    pub world: Option<WorldSpec>,
    #[serde(default)]
    pub pretrain: Option<PathBuf>,
    #[serde(default)]
    pub pretrain_eval: Option<PathBuf>,
    #[serde(default)]
    pub sft: Option<PathBuf>,
    #[serde(default)]
    pub sft_eval: Option<PathBuf>,
    #[serde(default)]
    pub preference: Option<PathBuf>,
    #[serde(default)]
    pub preference_eval: Option<PathBuf>,
    #[serde(default)]
    pub cot: Option<PathBuf>,
    #[serde(default)]
    pub cot_eval: Option<PathBuf>,
    #[serde(default)]
    pub rag_corpus: Option<PathBuf>,
    #[serde(default)]
    pub rag_queries: Option<PathBuf>,
}

impl Default for DataSpec {
    fn default() -> Self {
        DataSpec {
            world: Some(WorldSpec {
                seed: 1,
                size: small(),
            }),
            pretrain: None,
            pretrain_eval: None,
            sft: None,
            sft_eval: None,
            preference: None,
            preference_eval: None,
            cot: None,
            cot_eval: None,
            rag_corpus: None,
            rag_queries: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CleanSpec {
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default, rename = "filter")]
    pub filters: Vec<poisonlab_clean::filter::Filter>,
}

fn yes() -> bool {
    true
}

/// The training stage type shared by the trainer, the poison specs and the command line.
pub use poisonlab_data::Stage as StageKind;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageSpec {
    pub kind: StageKind,
    /// Default: the cell's seed. Fix it to share the stage across cells of different seeds.
    #[serde(default)]
    pub seed: Option<u64>,
    /// sft: train on the world's CoT problems instead of its instruction data.
    #[serde(default)]
    pub data: Option<String>,
    /// Training-config keys (see `examples/*.toml`), except `out`, `train`, `eval`, `init`
    /// (`init` is allowed on the first stage, to start from a model directory).
    #[serde(default)]
    pub config: toml::Table,
}

impl Experiment {
    /// Cross-field checks; relative paths become relative to `base`. Messages name the key.
    pub fn resolve(&mut self, base: &Path) -> std::result::Result<(), String> {
        if self.name.trim().is_empty() {
            return Err("name must not be empty".into());
        }
        for p in [
            &mut self.data.pretrain,
            &mut self.data.pretrain_eval,
            &mut self.data.sft,
            &mut self.data.sft_eval,
            &mut self.data.preference,
            &mut self.data.preference_eval,
            &mut self.data.cot,
            &mut self.data.cot_eval,
            &mut self.data.rag_corpus,
            &mut self.data.rag_queries,
        ]
        .into_iter()
        .flatten()
        {
            // `world:NAME`: a file of the generated world, resolved when the world is.
            if p.to_str().is_some_and(|s| s.starts_with("world:")) {
                if self.data.world.is_none() {
                    return Err(format!(
                        "data: {} names a world file, but there is no data.world",
                        p.display()
                    ));
                }
                continue;
            }
            if p.is_relative() {
                *p = base.join(&*p);
            }
            if !p.exists() {
                return Err(format!("data: file {} does not exist", p.display()));
            }
        }
        if let Some(w) = &self.data.world
            && !["small", "medium", "large"].contains(&w.size.as_str())
        {
            return Err(format!(
                "data.world.size must be small, medium or large, got {:?}",
                w.size
            ));
        }
        // Stages in lifecycle order, each at most once — but for a downstream fine-tune: an SFT
        // stage on other data (`data = "cot"`) after the SFT stage on the instruction data.
        for w in self.stages.windows(2) {
            let downstream = w[0].kind == StageKind::Sft
                && w[1].kind == StageKind::Sft
                && w[0].data.is_none()
                && w[1].data.is_some();
            // A harmful fine-tune may follow the downstream one too.
            let downstream = downstream
                || (w[1].kind == StageKind::Sft
                    && w[1].data.as_deref() == Some("harmful")
                    && w[0].kind == StageKind::Sft
                    && w[0].data.as_deref() != Some("harmful"));
            if w[1].kind <= w[0].kind && !downstream {
                return Err(format!(
                    "stage: `{}` cannot come after `{}`; stages run in the order pretrain → sft → dpo, each at most once (an sft stage with data = \"cot\" may follow the sft stage, as a downstream fine-tune)",
                    w[1].kind.as_str(),
                    w[0].kind.as_str()
                ));
            }
        }
        let export = self.export.clone();
        for (i, s) in self.stages.iter_mut().enumerate() {
            for k in ["out", "train", "eval"] {
                if s.config.contains_key(k) {
                    return Err(format!(
                        "stage.config.{k} ({}): the runner sets it; remove it",
                        s.kind.as_str()
                    ));
                }
            }
            if i > 0 && s.config.contains_key("init") {
                return Err(format!(
                    "stage.config.init ({}): only the first stage may start from a model directory",
                    s.kind.as_str()
                ));
            }
            // An exported stage is trained elsewhere, from whatever model that run starts with.
            if i == 0 && s.kind != StageKind::Pretrain && export.is_none() {
                match s.config.get("init").and_then(|v| v.as_str()) {
                    Some(p) => {
                        let p = if Path::new(p).is_relative() {
                            base.join(p)
                        } else {
                            PathBuf::from(p)
                        };
                        if !p.exists() {
                            return Err(format!(
                                "stage.config.init ({}): {} does not exist",
                                s.kind.as_str(),
                                p.display()
                            ));
                        }
                        s.config
                            .insert("init".into(), toml::Value::String(p.display().to_string()));
                    }
                    None => {
                        return Err(format!(
                            "stage `{}` has no model to start from: add a pretrain stage before it or set stage.config.init",
                            s.kind.as_str()
                        ));
                    }
                }
            }
            if let Some(d) = &s.data
                && !(s.kind == StageKind::Sft && (d == "cot" || d == "harmful"))
            {
                return Err(format!(
                    "stage.data = {d:?} ({}): only sft may train on \"cot\" or \"harmful\"",
                    s.kind.as_str()
                ));
            }
            if s.data.as_deref() == Some("harmful") && self.safety.is_none() {
                return Err(
                    "stage.data = \"harmful\" trains on the [safety] section's attack data; add [safety]".into(),
                );
            }
            // Check the config keys now, so that a typo fails before anything runs.
            let mut t = s.config.clone();
            t.insert("out".into(), toml::Value::String("x".into()));
            t.insert("train".into(), toml::Value::String("x".into()));
            let _: poisonlab_train::TrainConfig =
                toml::Table::try_into(t).map_err(|e: toml::de::Error| {
                    format!(
                        "stage.config ({}): {}",
                        s.kind.as_str(),
                        e.to_string().trim_end().replace('\n', " ")
                    )
                })?;
        }
        if let Some(p) = &mut self.poison {
            if p.seed == 0 {
                p.seed = self.seed;
            }
            // A rag poison draws its targets from the data's queries (the world's by default).
            if p.stage.kind == poisonlab_poison::StageKind::Rag && p.stage.queries.is_none() {
                p.stage.queries = Some(
                    self.data
                        .rag_queries
                        .clone()
                        .unwrap_or_else(|| PathBuf::from(WORLD_RAG_QUERIES)),
                );
            }
            p.resolve(base).map_err(|m| format!("poison: {m}"))?;
            use poisonlab_poison::StageKind as P;
            if !matches!(
                p.stage.kind,
                P::Pretrain | P::Sft | P::Cot | P::Preference | P::Rag
            ) {
                return Err(format!(
                    "poison.stage.kind = {:?}: experiments train pretrain, sft (instructions or cot), dpo and probe rag",
                    p.stage.kind.as_str()
                ));
            }
            let needs = p.stage.kind.trained_by();
            if let Some(n) = needs
                && self.model.is_none()
                && !self.stages.iter().any(|s| s.kind == n)
            {
                return Err(format!(
                    "poison.stage.kind = {:?} poisons the data of a `{}` stage, but there is none",
                    p.stage.kind.as_str(),
                    n.as_str()
                ));
            }
            if p.stage.kind == P::Cot
                && self.model.is_none()
                && !self
                    .stages
                    .iter()
                    .any(|s| s.kind == StageKind::Sft && s.data.as_deref() == Some("cot"))
            {
                return Err(
                    "poison.stage.kind = \"cot\": set data = \"cot\" on the sft stage".into(),
                );
            }
        }
        self.check_trust_sections()?;
        self.check_mech_sections()?;
        if let Some(c) = &mut self.clean
            && c.enabled
        {
            let mut p = poisonlab_clean::filter::Pipeline {
                filters: c.filters.clone(),
            };
            p.validate(base).map_err(|m| format!("clean: {m}"))?;
            c.filters = p.filters;
        }
        if let Some(e) = &self.export {
            e.target()?;
            e.format()?;
            if self.stages.is_empty() {
                return Err(
                    "stage: an export stage exports the data of the stages before it; add one"
                        .into(),
                );
            }
            if self.model.is_none() && !self.probes.is_empty() {
                return Err(
                    "probe: an experiment that ends with an export stage trains nothing here; its \
                     probes measure a [model] (the endpoint serving the model trained on the export)"
                        .into(),
                );
            }
        }
        if let Some(m) = &mut self.model {
            if !self.stages.is_empty() && self.export.is_none() {
                return Err(
                    "model: an experiment either trains ([[stage]]) or probes an existing \
                            [model]; to start training from a model directory set \
                            stage.config.init"
                        .into(),
                );
            }
            m.resolve(base).map_err(|e| format!("model: {e}"))?;
        }
        for p in &self.probes {
            self.check_probe(p)
                .map_err(|m| format!("probe {}: {m}", p.kind()))?;
        }
        Ok(())
    }

    /// A probe's own configuration, and what it needs of this experiment.
    fn check_probe(&self, p: &Probe) -> std::result::Result<(), String> {
        p.validate()?;
        let poison = self.poison.as_ref();
        match p.needs() {
            Needs::Model => {}
            Needs::Watermark => {
                if self.watermark.is_none() {
                    return Err("needs a [watermark] section".into());
                }
            }
            Needs::Fingerprint => {
                if self.fingerprint.is_none() {
                    return Err("needs a [fingerprint] section".into());
                }
            }
            Needs::Belief => {
                if self.belief.is_none() {
                    return Err("needs a [belief] section".into());
                }
            }
            Needs::Safety => {
                if self.safety.is_none() {
                    return Err("needs a [safety] section".into());
                }
            }
            Needs::Canaries => {
                if self.canary.is_none() {
                    return Err("needs a [canary] section".into());
                }
            }
            Needs::Traps => {
                if self.trap.is_none() {
                    return Err("needs a [trap] section".into());
                }
            }
            Needs::Trigger => {
                if poison.and_then(|p| p.trigger.as_ref()).is_none() {
                    return Err("needs a [poison] with a trigger".into());
                }
            }
            Needs::PoisonStage(k) => {
                if poison.map(|p| p.stage.kind) != Some(k) {
                    return Err(match k {
                        poisonlab_poison::StageKind::Pretrain => {
                            "needs a pretrain [poison] (a denial-of-service payload)".into()
                        }
                        poisonlab_poison::StageKind::Rag => {
                            "needs a rag [poison] (passages for target queries)".into()
                        }
                        k => format!("needs a {} [poison]", k.as_str()),
                    });
                }
            }
        }
        if self.stages.is_empty() && self.model.is_none() {
            return Err(
                "needs at least one [[stage]] to produce a model, or a [model] to probe".into(),
            );
        }
        Ok(())
    }

    /// A stage's name in the results: its kind, and its data when it names one (`sft/cot`).
    pub fn stage_label(s: &StageSpec) -> String {
        match &s.data {
            Some(d) => format!("{}/{d}", s.kind.as_str()),
            None => s.kind.as_str().to_string(),
        }
    }

    pub fn stage_seed(&self, s: &StageSpec) -> u64 {
        s.seed.unwrap_or(self.seed)
    }
}
