//! The training loop shared by pre-training, SFT and DPO: AdamW, warmup + cosine, global gradient
//! clipping, gradient accumulation, eval loss, checkpoints with exact resume.
//!
//! Threads: with N threads (rayon's current pool), each micro-batch is cut into N shards of
//! consecutive rows, each shard's forward and backward runs single-threaded on a thread of its own
//! (with its own copy of the parameters when N > 1, so the autodiff graphs never share a lock), and
//! the shards' gradients are summed in shard order.
//!
//! Determinism: initialisation is seeded, the batch at each step is a function of (seed, step), the
//! shards are a function of the thread count, and each shard computes its sums in a fixed order; so
//! the same seed and thread count give the same weights. Across thread counts the losses are summed
//! in different groupings and the weights differ in the last bits.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::Module;
use burn::optim::{AdamWConfig, GradientsAccumulator, GradientsParams};
use burn::tensor::Device;
use poisonlab_model::lm::LocalModel;
use poisonlab_model::{CausalLm, ModelConfig, Tokenizer, default_device};
use serde::{Deserialize, Serialize};

use crate::config::TrainConfig;
use crate::data::{self, Example, Order, PairExample};
use crate::error::{Error, Result};
use crate::loss::{Batch, batch, clip_global_norm};
use crate::shard::{LossCtx, Share, batches_rows, fresh_leaves};

pub use poisonlab_data::Stage;

/// One line of `log.jsonl`, and what the progress callback sees.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepLog {
    pub step: usize,
    pub steps: usize,
    pub loss: f64,
    pub lr: f64,
    pub grad_norm: f64,
    pub tokens_per_s: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eval_loss: Option<f64>,
    /// DPO: mean β-scaled reward margin of the batch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub margin: Option<f64>,
}

/// What a finished run reports.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub stage: Stage,
    pub steps: usize,
    pub parameters: usize,
    pub final_loss: f64,
    pub eval_loss: Option<f64>,
    pub tokens: usize,
    pub seconds: f64,
    pub tokens_per_s: f64,
    /// Pre-training: the eval loss of a context-free unigram model, for comparison.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unigram_eval_loss: Option<f64>,
    /// Training examples (pre-training: context windows of the token stream; SFT: examples;
    /// DPO: pairs), and how many passes over them the run made in all (steps × batch × grad_accum
    /// / examples): what the model saw, not what the file held.
    pub examples: usize,
    pub epochs: f64,
    pub model_dir: PathBuf,
}

#[derive(Serialize, Deserialize)]
struct CheckpointState {
    stage: Stage,
    step: usize,
    config: TrainConfig,
}

enum Data {
    Lm(Vec<Example>),
    Pairs(Vec<PairExample>),
}

impl Data {
    fn len(&self) -> usize {
        match self {
            Data::Lm(v) => v.len(),
            Data::Pairs(v) => v.len(),
        }
    }
}

fn pair_rows(pairs: &[&PairExample]) -> Vec<Example> {
    let row = |p: &PairExample, c: &[u32]| Example {
        ids: p.prompt.iter().chain(c).copied().collect(),
        loss_from: p.prompt.len(),
    };
    pairs
        .iter()
        .map(|p| row(p, &p.chosen))
        .chain(pairs.iter().map(|p| row(p, &p.rejected)))
        .collect()
}

/// A training run, set up and ready to step.
pub struct Trainer {
    pub stage: Stage,
    pub cfg: TrainConfig,
    pub config: ModelConfig,
    pub tokenizer: Tokenizer,
    pub model: CausalLm,
    reference: Option<CausalLm>,
    optim: burn::optim::ModuleOptimizer,
    train: Data,
    eval: Option<Data>,
    order: Order,
    pub step: usize,
    plain: Device,
    ad: Device,
    /// One single-threaded pool per shard. A shard's ops run on its pool's thread, inline, instead of
    /// being sent to a pool op by op.
    pools: Vec<rayon::ThreadPool>,
}

fn load_data(
    stage: Stage,
    path: &Path,
    max: usize,
    tok: &Tokenizer,
    context: usize,
) -> Result<Data> {
    let records = data::read_records(path, max)?;
    Ok(match stage {
        Stage::Pretrain => {
            let stream = data::token_stream(&records, tok)?;
            if stream.len() < context + 1 {
                return Err(Error::Invalid(format!(
                    "{}: {} tokens, fewer than one context",
                    path.display(),
                    stream.len()
                )));
            }
            let n = (stream.len() - 1) / context;
            Data::Lm(
                (0..n)
                    .map(|k| Example {
                        ids: stream[k * context..k * context + context + 1].to_vec(),
                        loss_from: 0,
                    })
                    .collect(),
            )
        }
        Stage::Sft => Data::Lm(data::sft_examples(&records, tok, context)?),
        Stage::Dpo => Data::Pairs(data::pair_examples(&records, tok, context)?),
    })
}

impl Trainer {
    pub fn new(stage: Stage, cfg: TrainConfig) -> Result<Trainer> {
        cfg.validate()?;
        let plain = default_device();
        let ad = plain.clone().autodiff();

        let tok_path = cfg
            .tokenizer
            .clone()
            .or_else(|| cfg.init.as_ref().map(|d| d.join("tokenizer.json")));
        let tokenizer = match tok_path {
            Some(p) => Tokenizer::from_file(&p)?,
            None if stage == Stage::Pretrain => {
                let records = data::read_records(&cfg.train, cfg.max_records)?;
                let texts: Vec<String> = records.iter().map(data::pretrain_text).collect();
                Tokenizer::train_bpe(texts.iter(), cfg.vocab_size)?
            }
            None => {
                return Err(Error::Config(
                    "SFT and DPO need `init` (a model directory) or `tokenizer`".into(),
                ));
            }
        };

        let (config, model) = match &cfg.init {
            Some(dir) => {
                let m = LocalModel::load(dir, None, &ad)?;
                m.into_parts()
            }
            None if stage == Stage::Pretrain => {
                let eos = tokenizer.token_id(poisonlab_model::tokenizer::EOS);
                let config = cfg.model.to_config(tokenizer.vocab_size(), eos)?;
                let model = CausalLm::init(&config, cfg.seed, &ad);
                (config, model)
            }
            None => {
                return Err(Error::Config(
                    "SFT and DPO need `init`: the model to tune".into(),
                ));
            }
        };
        if cfg.context > config.max_positions() {
            return Err(Error::Config(format!(
                "context {} exceeds the model's {} positions",
                cfg.context,
                config.max_positions()
            )));
        }
        let reference = match stage {
            Stage::Dpo => {
                let dir = cfg
                    .reference
                    .clone()
                    .or_else(|| cfg.init.clone())
                    .ok_or_else(|| Error::Config("DPO needs a reference model".into()))?;
                // Loaded on the plain device: the reference never enters the autodiff graph.
                Some(LocalModel::load(&dir, None, &plain)?.into_parts().1)
            }
            _ => None,
        };
        let train = load_data(stage, &cfg.train, cfg.max_records, &tokenizer, cfg.context)?;
        let eval = cfg
            .eval
            .as_ref()
            .map(|p| load_data(stage, p, 0, &tokenizer, cfg.context))
            .transpose()?;
        let optim = AdamWConfig::new()
            .with_beta_1(cfg.beta1 as f32)
            .with_beta_2(cfg.beta2 as f32)
            .with_epsilon(1e-8)
            .with_weight_decay(cfg.weight_decay as f32)
            .init();
        let mut cfg = cfg;
        if cfg.epochs > 0.0 {
            let per_step = (cfg.batch_size * cfg.grad_accum) as f64;
            cfg.steps = ((cfg.epochs * train.len() as f64 / per_step).ceil() as usize).max(1);
        }
        let order = Order::new(train.len(), cfg.seed);
        let pools = (0..rayon::current_num_threads())
            .map(|i| {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(1)
                    .stack_size(16 << 20)
                    .thread_name(move |_| format!("shard-{i}"))
                    .build()
                    .map_err(|e| Error::Invalid(format!("thread pool: {e}")))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Trainer {
            stage,
            cfg,
            config,
            tokenizer,
            model,
            reference,
            optim,
            train,
            eval,
            order,
            step: 0,
            plain,
            ad,
            pools,
        })
    }

    fn checkpoint_dir(&self) -> PathBuf {
        self.cfg.out.join("checkpoint")
    }

    /// Continues from `out/checkpoint` if one exists; returns whether it did.
    pub fn resume(&mut self) -> Result<bool> {
        let dir = self.checkpoint_dir();
        let state_path = dir.join("state.json");
        if !state_path.exists() {
            return Ok(false);
        }
        let ck = |m: String| Error::Checkpoint {
            path: dir.clone(),
            message: m,
        };
        let text = std::fs::read_to_string(&state_path).map_err(|e| ck(e.to_string()))?;
        let state: CheckpointState = serde_json::from_str(&text).map_err(|e| ck(e.to_string()))?;
        if state.stage != self.stage {
            return Err(ck(format!(
                "it is a {:?} checkpoint, not {:?}",
                state.stage, self.stage
            )));
        }
        let model = self
            .model
            .clone()
            .try_load_file(dir.join("model.bpk"))
            .map_err(|e| ck(format!("{e:?}")))?;
        self.model = model;
        let optim = std::mem::replace(&mut self.optim, AdamWConfig::new().init());
        self.optim = optim
            .load(dir.join("optim.bpk"))
            .map_err(|e| ck(format!("{e:?}")))?;
        self.step = state.step;
        Ok(true)
    }

    /// Writes model, optimizer and state into a directory beside the checkpoint and swaps it in
    /// whole: a run killed while checkpointing resumes from the previous checkpoint, never from a
    /// model of one step with the state of another.
    pub fn save_checkpoint(&self) -> Result<()> {
        let final_dir = self.checkpoint_dir();
        std::fs::create_dir_all(&self.cfg.out).map_err(|e| Error::io(&self.cfg.out, e))?;
        let ck = |m: String| Error::Checkpoint {
            path: final_dir.clone(),
            message: m,
        };
        let dir = poisonlab_data::io::partial_dir(&final_dir).map_err(|e| ck(e.to_string()))?;
        self.model
            .clone()
            .save_file(dir.join("model.bpk"))
            .map_err(|e| ck(format!("{e:?}")))?;
        self.optim
            .save(dir.join("optim.bpk"))
            .map_err(|e| ck(format!("{e:?}")))?;
        let state = CheckpointState {
            stage: self.stage,
            step: self.step,
            config: self.cfg.clone(),
        };
        let text = serde_json::to_string_pretty(&state).map_err(|e| ck(e.to_string()))?;
        std::fs::write(dir.join("state.json"), text).map_err(|e| ck(e.to_string()))?;
        poisonlab_data::io::replace_dir(&dir, &final_dir).map_err(|e| ck(e.to_string()))
    }

    /// Example indices of micro-batch `micro` of `step`.
    fn micro_indices(&mut self, step: usize, micro: usize) -> Vec<usize> {
        let b = self.cfg.batch_size;
        let base = (step * self.cfg.grad_accum + micro) * b;
        (0..b).map(|j| self.order.at(base + j)).collect()
    }

    /// The batch of training examples `idx` (a DPO pair gives a chosen and a rejected row).
    fn batch_of(&self, idx: &[usize], device: &Device) -> Batch {
        match &self.train {
            Data::Lm(ex) => batch(&idx.iter().map(|&i| &ex[i]).collect::<Vec<_>>(), device),
            Data::Pairs(px) => {
                let rows = pair_rows(&idx.iter().map(|&i| &px[i]).collect::<Vec<_>>());
                batch(&rows.iter().collect::<Vec<_>>(), device)
            }
        }
    }

    /// Loss (and DPO margin) of one micro-batch for `model` on `device`.
    fn loss(
        &self,
        model: &CausalLm,
        b: &Batch,
        device: &Device,
    ) -> (burn::tensor::Tensor<1>, Option<burn::tensor::Tensor<1>>) {
        self.loss_ctx().loss(model, b, device, Share::Whole)
    }

    fn loss_ctx(&self) -> LossCtx<'_> {
        LossCtx {
            stage: self.stage,
            reference: self.reference.as_ref(),
            plain: &self.plain,
            beta: self.cfg.dpo_beta,
        }
    }

    /// Mean eval loss over up to `eval_batches` micro-batches, in a fixed order.
    pub fn eval_loss(&self) -> Option<f64> {
        let data = self.eval.as_ref()?;
        let model = self.model.valid();
        let b = self.cfg.batch_size;
        let mut total = 0.0;
        let mut n = 0;
        for k in 0..self.cfg.eval_batches {
            let start = k * b;
            if start >= data.len() {
                break;
            }
            let end = (start + b).min(data.len());
            let bt = match data {
                Data::Lm(ex) => batch(&ex[start..end].iter().collect::<Vec<_>>(), &self.plain),
                Data::Pairs(px) => {
                    let rows = pair_rows(&px[start..end].iter().collect::<Vec<_>>());
                    batch(&rows.iter().collect::<Vec<_>>(), &self.plain)
                }
            };
            let (l, _) = self.loss(&model, &bt, &self.plain);
            total += l.into_scalar::<f32>() as f64;
            n += 1;
        }
        (n > 0).then(|| total / n as f64)
    }

    /// One optimizer step over `grad_accum` micro-batches.
    pub fn train_step(&mut self) -> StepLog {
        let started = Instant::now();
        let step = self.step;
        let lr = self.cfg.lr_at(step);
        let mut accum = GradientsAccumulator::new();
        let (mut loss_sum, mut margin_sum, mut positions) = (0.0, 0.0, 0);
        let ad = self.ad.clone();
        let accum_n = self.cfg.grad_accum as f64;
        for micro in 0..self.cfg.grad_accum {
            let idx = self.micro_indices(step, micro);
            let shards = self.pools.len().clamp(1, idx.len().max(1));
            let per = idx.len().div_ceil(shards);
            let batches: Vec<Batch> = idx.chunks(per).map(|c| self.batch_of(c, &ad)).collect();
            positions += batches.iter().map(|b| b.positions).sum::<usize>();
            let share_of = |b: &Batch| match self.stage {
                Stage::Dpo => Share::Rows(b.inputs.dims()[0], batches_rows(&batches)),
                _ => Share::Tokens(batches.iter().map(|b| b.loss_tokens).sum()),
            };
            let ctx = self.loss_ctx();
            let run = |model: &CausalLm, b: &Batch| -> (f64, f64, GradientsParams) {
                let (loss, margin) = ctx.loss(model, b, &ad, share_of(b));
                let l = loss.clone().into_scalar::<f32>() as f64;
                let m = margin.map_or(0.0, |m| m.into_scalar::<f32>() as f64);
                // The mean over micro-batches: GradientsAccumulator sums.
                let grads = GradientsParams::from_grads((loss / accum_n).backward(), model);
                (l, m, grads)
            };
            let outs: Vec<(f64, f64, GradientsParams)> = if batches.len() == 1 {
                vec![self.pools[0].install(|| run(&self.model, &batches[0]))]
            } else {
                let (pools, model) = (&self.pools, &self.model);
                std::thread::scope(|s| {
                    let handles: Vec<_> = batches
                        .iter()
                        .zip(pools)
                        .map(|(b, pool)| {
                            let run = &run;
                            s.spawn(move || pool.install(|| run(&fresh_leaves(model), b)))
                        })
                        .collect();
                    handles
                        .into_iter()
                        .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                        .collect()
                })
            };
            for (l, m, grads) in outs {
                loss_sum += l;
                margin_sum += m;
                accum.accumulate(&self.model, grads);
            }
        }
        let mut grads = accum.grads();
        let grad_norm = clip_global_norm(&self.model, &mut grads, self.cfg.clip_norm);
        let model = self.model.clone();
        self.model = self.optim.step(lr, model, grads);
        self.step += 1;
        let secs = started.elapsed().as_secs_f64().max(1e-9);
        StepLog {
            step: self.step,
            steps: self.cfg.steps,
            loss: loss_sum / accum_n,
            lr,
            grad_norm,
            tokens_per_s: positions as f64 / secs,
            eval_loss: None,
            margin: (self.stage == Stage::Dpo).then(|| margin_sum / accum_n),
        }
    }

    /// The unigram baseline of the eval split (pre-training only).
    pub fn unigram_baseline(&self) -> Option<f64> {
        if self.stage != Stage::Pretrain {
            return None;
        }
        let (Data::Lm(train), Some(Data::Lm(eval))) = (&self.train, &self.eval) else {
            return None;
        };
        let stream = |ex: &[Example]| -> Vec<u32> {
            ex.iter().flat_map(|e| e.ids[1..].iter().copied()).collect()
        };
        let n_eval = (self.cfg.eval_batches * self.cfg.batch_size).min(eval.len());
        Some(data::unigram_baseline(
            &stream(train),
            &stream(&eval[..n_eval]),
            self.config.vocab_size(),
        ))
    }

    /// Writes the model as an HF directory (config.json, model.safetensors, tokenizer.json).
    pub fn save_model(&self, dir: &Path) -> Result<()> {
        let tokenizer = Tokenizer::from_file(&self.tokenizer_file()?)?;
        let local = LocalModel::from_parts(
            dir.display().to_string(),
            self.config.clone(),
            self.model.valid(),
            Some(tokenizer),
            self.plain.clone(),
        );
        local.save(dir)?;
        Ok(())
    }

    fn tokenizer_file(&self) -> Result<PathBuf> {
        let p = self.cfg.out.join("tokenizer.json");
        std::fs::create_dir_all(&self.cfg.out).map_err(|e| Error::io(&self.cfg.out, e))?;
        self.tokenizer.save(&p)?;
        Ok(p)
    }

    /// Runs to `steps`, logging to `out/log.jsonl`; checkpoints as configured and at the end, then
    /// writes the model directory.
    pub fn run(&mut self, on_step: &mut dyn FnMut(&StepLog)) -> Result<Summary> {
        self.run_until(self.cfg.steps, on_step)
    }

    /// Like [`run`](Self::run), but stops after step `until` (the schedule still spans `steps`),
    /// as an interrupted run would; a later [`resume`](Self::resume) continues from there.
    pub fn run_until(
        &mut self,
        until: usize,
        on_step: &mut dyn FnMut(&StepLog),
    ) -> Result<Summary> {
        let until = until.min(self.cfg.steps);
        std::fs::create_dir_all(&self.cfg.out).map_err(|e| Error::io(&self.cfg.out, e))?;
        let log_path = self.cfg.out.join("log.jsonl");
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| Error::io(&log_path, e))?;
        let started = Instant::now();
        let (mut tokens, mut last_loss, mut eval_loss) = (0usize, f64::NAN, None);
        while self.step < until {
            let mut entry = self.train_step();
            tokens += self.cfg.batch_size * self.cfg.context * self.cfg.grad_accum;
            last_loss = entry.loss;
            let at_end = self.step == until;
            if (self.cfg.eval_every > 0 && self.step.is_multiple_of(self.cfg.eval_every)) || at_end
            {
                entry.eval_loss = self.eval_loss();
                eval_loss = entry.eval_loss.or(eval_loss);
            }
            let line = serde_json::to_string(&entry).map_err(|e| Error::Invalid(e.to_string()))?;
            writeln!(log, "{line}").map_err(|e| Error::io(&log_path, e))?;
            on_step(&entry);
            if (self.cfg.checkpoint_every > 0
                && self.step.is_multiple_of(self.cfg.checkpoint_every))
                || at_end
            {
                self.save_checkpoint()?;
            }
        }
        let model_dir = self.cfg.out.join("model");
        self.save_model(&model_dir)?;
        let seconds = started.elapsed().as_secs_f64();
        Ok(Summary {
            stage: self.stage,
            steps: self.step,
            parameters: self.config.num_parameters(),
            final_loss: last_loss,
            eval_loss,
            tokens,
            seconds,
            tokens_per_s: tokens as f64 / seconds.max(1e-9),
            unigram_eval_loss: self.unigram_baseline(),
            examples: self.train.len(),
            epochs: (self.step * self.cfg.batch_size * self.cfg.grad_accum) as f64
                / self.train.len().max(1) as f64,
            model_dir,
        })
    }
}
