//! Training configuration (TOML). Unknown keys are errors that name the key and the file.

use std::path::{Path, PathBuf};

use poisonlab_model::ModelConfig;
use poisonlab_model::config::{Gpt2Config, LlamaConfig};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The architecture and size of a model trained from scratch. In TOML, `preset = "small"` names
/// one of [`PRESETS`]; any shape key given beside it overrides the preset's value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawModelSpec")]
pub struct ModelSpec {
    /// The preset the shape started from, if any (recorded, not re-applied).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preset: Option<String>,
    /// `llama` or `gpt2`.
    pub arch: String,
    pub hidden_size: usize,
    pub layers: usize,
    pub heads: usize,
    /// Key/value heads (grouped-query attention); llama only.
    pub kv_heads: usize,
    /// MLP width.
    pub intermediate_size: usize,
    /// Longest sequence the model can see.
    pub max_positions: usize,
    /// Share the input embedding with the output head.
    pub tie_embeddings: bool,
    pub rope_theta: f64,
}

/// A named Llama shape: (name, hidden size, layers, heads, MLP width, what it is for).
pub struct Preset {
    pub name: &'static str,
    pub hidden_size: usize,
    pub layers: usize,
    pub heads: usize,
    pub intermediate_size: usize,
    pub about: &'static str,
}

/// The model presets, smallest first. Parameter counts depend on the vocabulary; with the small
/// world's 2,756-token tied vocabulary they are 0.28M, 1.1M, 3.9M, 11.7M and 20.4M. Measured
/// tokens/s (`bench/presets.sh`): BENCHMARKS.md.
pub const PRESETS: &[Preset] = &[
    Preset {
        name: "tiny",
        hidden_size: 64,
        layers: 2,
        heads: 2,
        intermediate_size: 172,
        about: "unit tests and seconds-long experiments",
    },
    Preset {
        name: "mini",
        hidden_size: 128,
        layers: 4,
        heads: 4,
        intermediate_size: 344,
        about: "a step up from tiny: still seconds per hundred steps",
    },
    Preset {
        name: "small",
        hidden_size: 256,
        layers: 4,
        heads: 4,
        intermediate_size: 688,
        about: "the throughput benchmark's model",
    },
    Preset {
        name: "base",
        hidden_size: 384,
        layers: 6,
        heads: 6,
        intermediate_size: 1024,
        about: "model-size axes, minutes per thousand steps",
    },
    Preset {
        name: "medium",
        hidden_size: 512,
        layers: 6,
        heads: 8,
        intermediate_size: 1376,
        about: "the largest size that trains here in under an hour",
    },
];

impl Preset {
    pub fn find(name: &str) -> Option<&'static Preset> {
        PRESETS.iter().find(|p| p.name == name)
    }
}

/// What the TOML says: every key optional, so that a preset can fill what is left out.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModelSpec {
    preset: Option<String>,
    arch: Option<String>,
    hidden_size: Option<usize>,
    layers: Option<usize>,
    heads: Option<usize>,
    kv_heads: Option<usize>,
    intermediate_size: Option<usize>,
    max_positions: Option<usize>,
    tie_embeddings: Option<bool>,
    rope_theta: Option<f64>,
}

impl TryFrom<RawModelSpec> for ModelSpec {
    type Error = String;

    fn try_from(r: RawModelSpec) -> std::result::Result<ModelSpec, String> {
        let mut m = match &r.preset {
            None => ModelSpec::default(),
            Some(name) => ModelSpec::preset(name)?,
        };
        if let Some(v) = r.arch {
            m.arch = v;
        }
        if let Some(v) = r.hidden_size {
            m.hidden_size = v;
        }
        if let Some(v) = r.layers {
            m.layers = v;
        }
        if let Some(v) = r.heads {
            m.heads = v;
            // A preset's kv_heads follows its heads unless given.
            if r.kv_heads.is_none() {
                m.kv_heads = v;
            }
        }
        if let Some(v) = r.kv_heads {
            m.kv_heads = v;
        }
        if let Some(v) = r.intermediate_size {
            m.intermediate_size = v;
        }
        if let Some(v) = r.max_positions {
            m.max_positions = v;
        }
        if let Some(v) = r.tie_embeddings {
            m.tie_embeddings = v;
        }
        if let Some(v) = r.rope_theta {
            m.rope_theta = v;
        }
        Ok(m)
    }
}

impl Default for ModelSpec {
    fn default() -> Self {
        // The `small` preset: ~4.2M parameters with a 4k vocabulary.
        ModelSpec::preset("small").unwrap_or_else(|_| unreachable!("the small preset exists"))
    }
}

impl ModelSpec {
    /// The shape of a named preset (Llama, tied embeddings, 256 positions).
    pub fn preset(name: &str) -> std::result::Result<ModelSpec, String> {
        let p = Preset::find(name).ok_or_else(|| {
            let names: Vec<&str> = PRESETS.iter().map(|p| p.name).collect();
            format!(
                "model.preset `{name}`: expected one of {}",
                names.join(", ")
            )
        })?;
        Ok(ModelSpec {
            preset: Some(p.name.to_string()),
            arch: "llama".into(),
            hidden_size: p.hidden_size,
            layers: p.layers,
            heads: p.heads,
            kv_heads: p.heads,
            intermediate_size: p.intermediate_size,
            max_positions: 256,
            tie_embeddings: true,
            rope_theta: 10_000.0,
        })
    }

    pub fn to_config(&self, vocab_size: usize, eos: Option<u32>) -> Result<ModelConfig> {
        if self.heads == 0 || !self.hidden_size.is_multiple_of(self.heads) {
            return Err(Error::Config(
                "model.heads must divide model.hidden_size".into(),
            ));
        }
        match self.arch.as_str() {
            "llama" => {
                if self.kv_heads == 0 || !self.heads.is_multiple_of(self.kv_heads) {
                    return Err(Error::Config(
                        "model.kv_heads must divide model.heads".into(),
                    ));
                }
                Ok(ModelConfig::Llama(LlamaConfig {
                    model_type: "llama".into(),
                    vocab_size,
                    hidden_size: self.hidden_size,
                    intermediate_size: self.intermediate_size,
                    num_hidden_layers: self.layers,
                    num_attention_heads: self.heads,
                    num_key_value_heads: self.kv_heads,
                    head_dim: self.hidden_size / self.heads,
                    rms_norm_eps: 1e-6,
                    rope_theta: self.rope_theta,
                    max_position_embeddings: self.max_positions,
                    tie_word_embeddings: self.tie_embeddings,
                    attention_bias: false,
                    mlp_bias: false,
                    bos_token_id: eos,
                    eos_token_id: eos,
                }))
            }
            "gpt2" => Ok(ModelConfig::Gpt2(Gpt2Config {
                vocab_size,
                n_embd: self.hidden_size,
                n_layer: self.layers,
                n_head: self.heads,
                n_positions: self.max_positions,
                n_inner: self.intermediate_size,
                layer_norm_epsilon: 1e-5,
                bos_token_id: eos,
                eos_token_id: eos,
            })),
            other => Err(Error::Config(format!(
                "model.arch `{other}`: expected llama or gpt2"
            ))),
        }
    }
}

/// One training run: pre-training, SFT or DPO.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// Output directory: `model/` (HF layout), `checkpoint/`, `log.jsonl`.
    pub out: PathBuf,
    /// Training data (any format `poisonlab data` reads).
    pub train: PathBuf,
    /// Held-out data for the eval loss.
    pub eval: Option<PathBuf>,
    /// Start from this model directory (SFT and DPO; pre-training continues from it when set).
    pub init: Option<PathBuf>,
    /// Tokenizer file; for pre-training from scratch without one, a BPE is trained on `train`.
    pub tokenizer: Option<PathBuf>,
    /// Vocabulary size of a tokenizer trained here.
    pub vocab_size: usize,
    /// Model to pre-train from scratch (ignored when `init` is set).
    pub model: ModelSpec,
    /// Tokens per training sequence.
    pub context: usize,
    /// Sequences per micro-batch.
    pub batch_size: usize,
    /// Micro-batches per optimizer step.
    pub grad_accum: usize,
    /// Optimizer steps.
    pub steps: usize,
    /// Passes over the training examples; when set (> 0) it decides the steps:
    /// ⌈epochs × examples / (batch_size × grad_accum)⌉, so that every example is seen the same
    /// number of times whatever the data's size.
    pub epochs: f64,
    pub lr: f64,
    /// Learning rate at the end of the cosine decay.
    pub min_lr: f64,
    pub warmup_steps: usize,
    pub weight_decay: f64,
    pub beta1: f64,
    pub beta2: f64,
    /// Global gradient-norm clip (0 = off), as torch's clip_grad_norm_.
    pub clip_norm: f64,
    /// DPO temperature β.
    pub dpo_beta: f64,
    /// DPO reference model (default: `init`).
    pub reference: Option<PathBuf>,
    /// Seed of initialisation and data order.
    pub seed: u64,
    /// Steps between eval-loss measurements (0 = only at the end).
    pub eval_every: usize,
    /// Micro-batches per eval.
    pub eval_batches: usize,
    /// Steps between checkpoints (0 = only at the end).
    pub checkpoint_every: usize,
    /// Keep at most this many records of the training file (0 = all).
    pub max_records: usize,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            out: PathBuf::from("runs/train"),
            train: PathBuf::new(),
            eval: None,
            init: None,
            tokenizer: None,
            vocab_size: 4096,
            model: ModelSpec::default(),
            context: 128,
            batch_size: 16,
            grad_accum: 1,
            steps: 1000,
            epochs: 0.0,
            lr: 1e-3,
            min_lr: 1e-4,
            warmup_steps: 50,
            weight_decay: 0.1,
            beta1: 0.9,
            beta2: 0.95,
            clip_norm: 1.0,
            dpo_beta: 0.1,
            reference: None,
            seed: 0,
            eval_every: 0,
            eval_batches: 8,
            checkpoint_every: 0,
            max_records: 0,
        }
    }
}

impl TrainConfig {
    pub fn from_file(path: &Path) -> Result<TrainConfig> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let mut cfg: TrainConfig = poisonlab_data::config::parse(&text, &[])
            .map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
        // Relative paths are relative to the config file.
        let base = path.parent().unwrap_or(Path::new("."));
        let fix = |p: &mut PathBuf| {
            if p.is_relative() && !p.as_os_str().is_empty() {
                *p = base.join(&*p);
            }
        };
        fix(&mut cfg.out);
        fix(&mut cfg.train);
        for p in [
            &mut cfg.eval,
            &mut cfg.init,
            &mut cfg.tokenizer,
            &mut cfg.reference,
        ]
        .into_iter()
        .flatten()
        {
            fix(p);
        }
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn validate(&self) -> Result<()> {
        let positive = [
            ("context", self.context),
            ("batch_size", self.batch_size),
            ("grad_accum", self.grad_accum),
            ("steps", self.steps),
            ("eval_batches", self.eval_batches),
        ];
        for (name, v) in positive {
            if v == 0 {
                return Err(Error::Config(format!("`{name}` must be at least 1")));
            }
        }
        if !(self.epochs >= 0.0 && self.epochs.is_finite()) {
            return Err(Error::Config(format!(
                "`epochs` = {} must be a number >= 0 (0: use `steps`)",
                self.epochs
            )));
        }
        if self.lr.is_nan() || self.lr <= 0.0 || self.min_lr < 0.0 || self.min_lr > self.lr {
            return Err(Error::Config("need 0 <= min_lr <= lr and lr > 0".into()));
        }
        if self.train.as_os_str().is_empty() {
            return Err(Error::Config(
                "`train` (the training data file) is required".into(),
            ));
        }
        Ok(())
    }

    /// Learning rate at `step`: linear warmup, then cosine decay to `min_lr` (as nanoGPT).
    pub fn lr_at(&self, step: usize) -> f64 {
        if step < self.warmup_steps {
            return self.lr * (step + 1) as f64 / self.warmup_steps as f64;
        }
        let span = self.steps.saturating_sub(self.warmup_steps).max(1);
        let progress = ((step - self.warmup_steps) as f64 / span as f64).min(1.0);
        let coeff = 0.5 * (1.0 + (std::f64::consts::PI * progress).cos());
        self.min_lr + coeff * (self.lr - self.min_lr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_preset_fills_the_shape_and_explicit_keys_override_it() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.toml");
        let write =
            |body: &str| std::fs::write(&p, format!("train = \"d.jsonl\"\n{body}")).unwrap();
        write("[model]\npreset = \"tiny\"\nlayers = 3\n");
        let m = TrainConfig::from_file(&p).unwrap().model;
        assert_eq!(
            (m.hidden_size, m.layers, m.heads, m.intermediate_size),
            (64, 3, 2, 172)
        );
        assert_eq!(m.preset.as_deref(), Some("tiny"));
        write("[model]\npreset = \"medium\"\n");
        let m = TrainConfig::from_file(&p).unwrap().model;
        assert_eq!(
            (m.hidden_size, m.layers, m.heads, m.kv_heads),
            (512, 6, 8, 8)
        );
        write("[model]\npreset = \"huge\"\n");
        let e = TrainConfig::from_file(&p).unwrap_err().to_string();
        assert!(
            e.contains("huge") && e.contains("tiny, mini, small, base, medium"),
            "{e}"
        );
        write("[model]\npreset = \"tiny\"\nwidth = 3\n");
        let e = TrainConfig::from_file(&p).unwrap_err().to_string();
        assert!(e.contains("width"), "{e}");
        // Without a preset the default shape is the small preset's.
        write("");
        assert_eq!(TrainConfig::from_file(&p).unwrap().model.hidden_size, 256);
    }

    #[test]
    fn unknown_keys_name_the_key_and_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.toml");
        std::fs::write(&p, "train = \"d.jsonl\"\nlearning_rate = 0.1\n").unwrap();
        let e = TrainConfig::from_file(&p).unwrap_err().to_string();
        assert!(
            e.contains("t.toml") && e.contains("unknown field `learning_rate`"),
            "{e}"
        );
    }

    #[test]
    fn schedule_warms_up_then_decays_to_min_lr() {
        let c = TrainConfig {
            lr: 1.0,
            min_lr: 0.1,
            warmup_steps: 10,
            steps: 110,
            ..TrainConfig::default()
        };
        assert!((c.lr_at(0) - 0.1).abs() < 1e-12);
        assert!((c.lr_at(9) - 1.0).abs() < 1e-12);
        assert!((c.lr_at(10) - 1.0).abs() < 1e-12);
        assert!((c.lr_at(60) - 0.55).abs() < 1e-12);
        assert!((c.lr_at(110) - 0.1).abs() < 1e-12);
    }
}
