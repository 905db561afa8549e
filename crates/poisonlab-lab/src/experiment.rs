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

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use poisonlab_eval::Probe;
use poisonlab_eval::probe::Needs;

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
    #[serde(default, rename = "stage")]
    pub stages: Vec<StageSpec>,
    /// An existing model to probe, for experiments without training stages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelSpec>,
    #[serde(default, rename = "probe")]
    pub probes: Vec<Probe>,
}

/// The model an evaluation-only experiment probes: a model directory (trained here, or a Hugging
/// Face checkpoint) or an OpenAI-compatible endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// `config.json` + `model.safetensors` (+ `tokenizer.json`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir: Option<PathBuf>,
    /// A `tokenizer.json` for a directory without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokenizer: Option<PathBuf>,
    /// Base URL up to and including `/v1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// The served model's name (endpoint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_name: Option<String>,
    /// The environment variable holding the endpoint's API key (never the key itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_env: Option<String>,
}

impl ModelSpec {
    fn resolve(&mut self, base: &Path) -> std::result::Result<(), String> {
        match (&mut self.dir, &self.endpoint) {
            (Some(_), Some(_)) | (None, None) => {
                return Err("give exactly one of `dir` and `endpoint`".into());
            }
            (Some(d), None) => {
                if d.is_relative() {
                    *d = base.join(&*d);
                }
                if !d.join("config.json").exists() {
                    return Err(format!("dir: {} has no config.json", d.display()));
                }
                if self.model_name.is_some() || self.api_key_env.is_some() {
                    return Err("`model_name` and `api_key_env` are for an endpoint".into());
                }
            }
            (None, Some(_)) => {
                if self.model_name.as_deref().is_none_or(str::is_empty) {
                    return Err("an endpoint needs `model_name`".into());
                }
                if self.tokenizer.is_some() {
                    return Err("`tokenizer` is for a model directory".into());
                }
            }
        }
        if let Some(t) = &mut self.tokenizer {
            if t.is_relative() {
                *t = base.join(&*t);
            }
            if !t.exists() {
                return Err(format!("tokenizer: {} does not exist", t.display()));
            }
        }
        Ok(())
    }
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StageKind {
    Pretrain,
    Sft,
    Dpo,
}

impl StageKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StageKind::Pretrain => "pretrain",
            StageKind::Sft => "sft",
            StageKind::Dpo => "dpo",
        }
    }
}

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

/// One cell of the grid: its parameters and its resolved experiment.
#[derive(Debug, Clone)]
pub struct Cell {
    pub index: usize,
    /// (column name, dotted key, value) for each grid axis, in axis order.
    pub params: Vec<(String, String, serde_json::Value)>,
    pub experiment: Experiment,
    /// SHA-256 of the resolved experiment (the cell's cache key).
    pub hash: String,
}

impl Cell {
    pub fn label(&self) -> String {
        if self.params.is_empty() {
            return "(single cell)".into();
        }
        self.params
            .iter()
            .map(|(c, _, v)| format!("{c}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// An experiment file expanded into its cells.
#[derive(Debug, Clone)]
pub struct Plan {
    pub path: PathBuf,
    /// The file's directory: relative paths in it are relative to this.
    pub base: PathBuf,
    pub name: String,
    /// The resolved file (after `--set`), as TOML text, for the report.
    pub text: String,
    pub axes: Vec<(String, String, Vec<toml::Value>)>,
    pub cells: Vec<Cell>,
}

fn column_name(key: &str) -> String {
    if key.ends_with("budget.count") {
        return "poison_count".into();
    }
    if key.ends_with("budget.rate") {
        return "poison_rate".into();
    }
    if key == "clean.enabled" {
        return "clean".into();
    }
    key.replace('.', "_")
}

/// Sets a dotted key in a TOML table (creating tables on the way).
pub use poisonlab_data::config::set_key;

/// Parses `value` as a TOML value (numbers stay numbers); a bare word is a string.
pub fn parse_value(value: &str) -> toml::Value {
    poisonlab_data::config::parse_override(&format!("v={value}"))
        .map(|o| o.value)
        .unwrap_or_else(|_| toml::Value::String(value.to_string()))
}

fn to_json(v: &toml::Value) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
}

impl Plan {
    pub fn load(path: &Path, overrides: &[String]) -> Result<Plan> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Plan::parse(&text, path, overrides)
    }

    pub fn parse(text: &str, path: &Path, overrides: &[String]) -> Result<Plan> {
        let err = |message: String| Error::Experiment {
            path: path.to_path_buf(),
            message,
        };
        let mut table: toml::Table = toml::from_str(text)
            .map_err(|e| err(poisonlab_data::config::describe(text, &e).replace('\n', " ")))?;
        poisonlab_data::config::apply(&mut table, overrides).map_err(err)?;
        let grid = match table.remove("grid") {
            None => toml::Table::new(),
            Some(toml::Value::Table(t)) => t,
            Some(_) => {
                return Err(err(
                    "`grid` must be a table of dotted keys → lists of values".into(),
                ));
            }
        };
        let mut axes = Vec::new();
        for (k, v) in &grid {
            let values = match v {
                toml::Value::Array(a) if !a.is_empty() => a.clone(),
                _ => {
                    return Err(err(format!(
                        "grid.\"{k}\": expected a non-empty list of values"
                    )));
                }
            };
            axes.push((column_name(k), k.clone(), values));
        }
        let base = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        let resolved_text = toml::to_string(&{
            let mut t = table.clone();
            t.insert("grid".into(), toml::Value::Table(grid.clone()));
            t
        })
        .unwrap_or_default();
        // Cartesian product in axis order (the last axis varies fastest).
        let total: usize = axes.iter().map(|a| a.2.len()).product();
        let mut cells = Vec::with_capacity(total);
        for index in 0..total.max(1) {
            let mut t = table.clone();
            let mut params = Vec::new();
            let mut rest = index;
            let mut picks = vec![0; axes.len()];
            for (i, a) in axes.iter().enumerate().rev() {
                picks[i] = rest % a.2.len();
                rest /= a.2.len();
            }
            for (i, (col, key, values)) in axes.iter().enumerate() {
                let v = values[picks[i]].clone();
                set_key(&mut t, key, v.clone()).map_err(|m| err(format!("grid {m}")))?;
                params.push((col.clone(), key.clone(), to_json(&v)));
            }
            let label = params
                .iter()
                .map(|(_, k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(", ");
            let at = |m: String| {
                if label.is_empty() {
                    err(m)
                } else {
                    err(format!("grid cell {label}: {m}"))
                }
            };
            let mut exp: Experiment = toml::Table::try_into(t)
                .map_err(|e: toml::de::Error| at(e.to_string().trim_end().replace('\n', " ")))?;
            exp.resolve(&base).map_err(at)?;
            let json = serde_json::to_string(&exp).map_err(|e| at(e.to_string()))?;
            let hash = hex::encode(Sha256::digest(json.as_bytes()));
            cells.push(Cell {
                index,
                params,
                experiment: exp,
                hash,
            });
        }
        Ok(Plan {
            path: path.to_path_buf(),
            base,
            name: cells
                .first()
                .map(|c| c.experiment.name.clone())
                .unwrap_or_default(),
            text: resolved_text,
            axes,
            cells,
        })
    }
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
        // Stages in lifecycle order, each at most once.
        for w in self.stages.windows(2) {
            if w[1].kind <= w[0].kind {
                return Err(format!(
                    "stage: `{}` cannot come after `{}`; stages run in the order pretrain → sft → dpo, each at most once",
                    w[1].kind.as_str(),
                    w[0].kind.as_str()
                ));
            }
        }
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
            if i == 0 && s.kind != StageKind::Pretrain {
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
                && !(s.kind == StageKind::Sft && d == "cot")
            {
                return Err(format!(
                    "stage.data = {d:?} ({}): only sft may train on \"cot\"",
                    s.kind.as_str()
                ));
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
            let needs = match p.stage.kind {
                P::Pretrain => Some(StageKind::Pretrain),
                P::Sft | P::Cot => Some(StageKind::Sft),
                P::Preference => Some(StageKind::Dpo),
                P::Rag => None,
                other => {
                    return Err(format!(
                        "poison.stage.kind = {:?}: experiments train pretrain, sft (instructions or cot), dpo and probe rag",
                        other.as_str()
                    ));
                }
            };
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
        if let Some(c) = &mut self.clean
            && c.enabled
        {
            let mut p = poisonlab_clean::filter::Pipeline {
                filters: c.filters.clone(),
            };
            p.validate(base).map_err(|m| format!("clean: {m}"))?;
            c.filters = p.filters;
        }
        if let Some(m) = &mut self.model {
            if !self.stages.is_empty() {
                return Err("model: an experiment either trains ([[stage]]) or probes an existing \
                            [model]; to start training from a model directory set \
                            stage.config.init"
                    .into());
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

    pub fn stage_seed(&self, s: &StageSpec) -> u64 {
        s.seed.unwrap_or(self.seed)
    }
}

/// Parameters of the grid as a map, for reports.
pub fn params_map(cell: &Cell) -> BTreeMap<String, serde_json::Value> {
    cell.params
        .iter()
        .map(|(c, _, v)| (c.clone(), v.clone()))
        .collect()
}
