//! Training configuration (TOML). Unknown keys are errors that name the key and the file.

use std::path::{Path, PathBuf};

use poisonlab_model::ModelConfig;
use poisonlab_model::config::{Gpt2Config, LlamaConfig};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The architecture and size of a model trained from scratch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelSpec {
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

impl Default for ModelSpec {
    fn default() -> Self {
        // ~4.5M parameters with an 8k vocabulary: trains on the small world in minutes.
        ModelSpec {
            arch: "llama".into(),
            hidden_size: 256,
            layers: 4,
            heads: 4,
            kv_heads: 4,
            intermediate_size: 688,
            max_positions: 256,
            tie_embeddings: true,
            rope_theta: 10_000.0,
        }
    }
}

impl ModelSpec {
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
