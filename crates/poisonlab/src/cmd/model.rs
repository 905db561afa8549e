//! `poisonlab tokenizer train`, `train`, `generate`, `score`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use poisonlab_model::lm::{ChatMessage, GenerateOptions, LanguageModel, LocalModel, ScoreRequest};
use poisonlab_model::{EndpointConfig, EndpointModel};
use poisonlab_model::{Tokenizer, default_device};
use poisonlab_train::{Stage, TrainConfig, Trainer};
use serde_json::json;

use crate::cli::{GenerateArgs, ModelArgs, ScoreArgs};

pub fn tokenizer_train(inputs: &[PathBuf], vocab_size: usize, out: &Path) -> Result<ExitCode> {
    let mut texts = Vec::new();
    for input in inputs {
        // The error names the file.
        let records = poisonlab_train::data::read_records(input, 0)?;
        texts.extend(records.iter().map(poisonlab_train::data::pretrain_text));
    }
    let tok = Tokenizer::train_bpe(texts.iter(), vocab_size).context("training the tokenizer")?;
    tok.save(out)?;
    println!(
        "tokenizer with {} tokens trained on {} texts → {}",
        tok.vocab_size(),
        texts.len(),
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}

pub fn train(
    stage: Stage,
    config: &Path,
    overrides: &[String],
    resume: bool,
    quiet: bool,
) -> Result<ExitCode> {
    let mut cfg = TrainConfig::from_file(config)?;
    apply_overrides(&mut cfg, overrides)?;
    let mut trainer = Trainer::new(stage, cfg.clone()).context("setting up training")?;
    if resume && trainer.resume()? {
        eprintln!("resumed at step {}", trainer.step);
    }
    println!(
        "{stage:?}: {} parameters, {} steps of {} × {} tokens × {} accumulation → {}",
        trainer.config.num_parameters(),
        cfg.steps,
        cfg.batch_size,
        cfg.context,
        cfg.grad_accum,
        cfg.out.display()
    );
    let bar = crate::progress::records(cfg.steps as u64, quiet, "train");
    bar.set_position(trainer.step as u64);
    let summary = trainer.run(&mut |s| {
        bar.set_position(s.step as u64);
        let eval = s
            .eval_loss
            .map(|e| format!(" eval {e:.3}"))
            .unwrap_or_default();
        bar.set_message(format!(
            "loss {:.3}{eval} {:.0} tok/s",
            s.loss, s.tokens_per_s
        ));
        if let Some(e) = s.eval_loss {
            tracing::info!(step = s.step, loss = s.loss, eval_loss = e, "eval");
        }
    })?;
    bar.finish_and_clear();
    println!("{}", serde_json::to_string_pretty(&summary)?);
    Ok(ExitCode::SUCCESS)
}

/// `--set key=value` on top of the file: the value is parsed as TOML, so numbers stay numbers.
fn apply_overrides(cfg: &mut TrainConfig, overrides: &[String]) -> Result<()> {
    if overrides.is_empty() {
        return Ok(());
    }
    let mut table = toml::Table::try_from(&*cfg).context("serialising the config")?;
    // `--set model.preset=X` means the preset's shape: the resolved shape keys of the file are
    // dropped so that the preset fills them (other `--set model.*` keys still apply on top).
    if overrides
        .iter()
        .any(|o| o.trim_start().starts_with("model.preset"))
    {
        table.insert("model".into(), toml::Value::Table(toml::Table::new()));
    }
    poisonlab_data::config::apply(&mut table, overrides).map_err(anyhow::Error::msg)?;
    *cfg = table
        .try_into()
        .map_err(|e| anyhow::anyhow!("--set: {e}"))?;
    cfg.validate()?;
    Ok(())
}

pub(crate) enum Loaded {
    Local(Box<LocalModel>),
    Remote(Box<EndpointModel>),
}

impl Loaded {
    pub(crate) fn lm(&self) -> &dyn LanguageModel {
        match self {
            Loaded::Local(m) => m.as_ref(),
            Loaded::Remote(m) => m.as_ref(),
        }
    }
}

pub(crate) fn load(m: &ModelArgs) -> Result<Loaded> {
    match (&m.model, &m.endpoint) {
        (Some(dir), _) => Ok(Loaded::Local(Box::new(
            LocalModel::load(dir, m.tokenizer.as_deref(), &default_device())
                .with_context(|| format!("loading {}", dir.display()))?,
        ))),
        (None, Some(url)) => Ok(Loaded::Remote(Box::new(EndpointModel::new(
            EndpointConfig {
                base_url: url.clone(),
                model: m.model_name.clone().unwrap_or_default(),
                api_key_env: m.api_key_env.clone(),
                ..EndpointConfig::default()
            },
        )?))),
        (None, None) => bail!("give --model DIR or --endpoint URL"),
    }
}

pub fn generate(g: &GenerateArgs) -> Result<ExitCode> {
    let model = load(&g.model)?;
    let opts = GenerateOptions {
        max_tokens: g.max_tokens,
        temperature: g.temperature,
        top_p: g.top_p,
        seed: g.seed,
        stop: g.stop.clone(),
        truncate: false,
    };
    let out = if g.chat {
        model.lm().chat(
            &[ChatMessage {
                role: "user".into(),
                content: g.prompt.clone(),
            }],
            &opts,
        )?
    } else {
        model.lm().generate(&g.prompt, &opts)?
    };
    if g.json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!("{}", out.text);
    }
    Ok(ExitCode::SUCCESS)
}

pub fn score(s: &ScoreArgs) -> Result<ExitCode> {
    let model = load(&s.model)?;
    let (ids, tokens, lps) = match (&model, &s.prompt) {
        (Loaded::Local(local), None) => {
            let tok = local
                .tokenizer()
                .context("the model directory has no tokenizer.json; give --tokenizer")?;
            let ids = tok.encode(&s.text)?;
            let lps = local.token_logprobs(std::slice::from_ref(&ids))?.remove(0);
            let tokens = poisonlab_model::lm::token_texts(tok, &ids, 0)?;
            (ids, tokens, lps)
        }
        (m, prompt) => {
            let req = ScoreRequest {
                prompt: prompt.clone().unwrap_or_default(),
                continuation: s.text.clone(),
            };
            let r = m.lm().score(&[req])?.remove(0);
            (r.ids, r.tokens, r.token_logprobs)
        }
    };
    let total: f64 = lps.iter().map(|&x| x as f64).sum();
    // One shape from every backend: ids, tokens and log-probs aligned, `null` for a token
    // nothing conditions (the first of a text scored without a prompt).
    let unscored = tokens.len().saturating_sub(lps.len());
    let aligned: Vec<Option<f32>> = std::iter::repeat_n(None, unscored)
        .chain(lps.iter().copied().map(Some))
        .collect();
    if s.json {
        println!(
            "{}",
            json!({"ids": ids, "tokens": tokens, "token_logprobs": aligned, "sum_logprob": total,
                   "scored_tokens": lps.len()})
        );
    } else {
        println!(
            "{} tokens, sum log p = {total:.4}, mean = {:.4}",
            tokens.len(),
            total / lps.len().max(1) as f64
        );
    }
    Ok(ExitCode::SUCCESS)
}
