//! The runner: cells one after another, every stage cached by the hash of what it depends on.
//!
//! Layout under the run directory:
//! - `cache/world-<key>/`, `cache/poison-<key>/`, `cache/clean-<key>/`, `cache/stage-<key>/`: built
//!   once and shared by every cell that needs them (a `.partial` directory while being built; a
//!   training stage resumes from its checkpoint there after a kill);
//! - `cells/<hash>/`: `cell.json` (parameters and the resolved experiment), `log.txt`, and
//!   `rows.jsonl` once the cell is finished (written atomically: a finished cell is skipped on the
//!   next run), or `error.txt`;
//! - `results.jsonl`, `results.parquet`: every finished cell's rows in grid order;
//! - `experiment.toml`, `plan.json`: what the report needs.
//!
//! Cells run one at a time, each training with all worker threads: training is deterministic for a
//! given thread count, and sharing a pool between concurrent cells would give up that guarantee.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use poisonlab_data::Record;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::experiment::{Cell, Experiment, Plan, StageKind, StageSpec};
use crate::probe::{self, After, ProbeKind};
use crate::results::{Row, atomic_write, write_jsonl, write_parquet};

#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub out: PathBuf,
    /// Stop after this many cells have been computed in this run (tests use it to stand in for a
    /// kill; the CLI leaves it unset).
    pub max_cells: Option<usize>,
}

/// What the runner reports while it works.
#[derive(Debug, Clone)]
pub enum Event {
    CellStart {
        index: usize,
        total: usize,
        label: String,
    },
    Step {
        index: usize,
        what: String,
    },
    CellDone {
        index: usize,
        cached: bool,
    },
    CellFailed {
        index: usize,
        error: String,
    },
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct RunSummary {
    pub cells: usize,
    pub cached: usize,
    pub ran: usize,
    pub failed: Vec<(usize, String, String)>,
    pub results: PathBuf,
    pub parquet: PathBuf,
    pub seconds: f64,
}

fn key(v: &Value) -> String {
    let h = hex::encode(Sha256::digest(v.to_string().as_bytes()));
    h[..20].to_string()
}

fn file_sha(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    Ok(hex::encode(Sha256::digest(&bytes)))
}

/// Builds `cache/<kind>-<key>` once: into `<dir>.partial`, then renamed.
fn cached(
    cache: &Path,
    kind: &str,
    k: &str,
    keep_partial: bool,
    build: impl FnOnce(&Path) -> Result<()>,
) -> Result<(PathBuf, bool)> {
    let dir = cache.join(format!("{kind}-{k}"));
    if dir.exists() {
        return Ok((dir, true));
    }
    let partial = cache.join(format!("{kind}-{k}.partial"));
    if partial.exists() && !keep_partial {
        std::fs::remove_dir_all(&partial).map_err(|e| Error::io(&partial, e))?;
    }
    std::fs::create_dir_all(&partial).map_err(|e| Error::io(&partial, e))?;
    build(&partial)?;
    std::fs::rename(&partial, &dir).map_err(|e| Error::io(&dir, e))?;
    Ok((dir, false))
}

/// The data files of a cell (the world's, replaced by the experiment's own, then by the poisoned
/// and cleaned versions).
#[derive(Debug, Clone, Default)]
struct Files {
    pretrain: Option<PathBuf>,
    pretrain_eval: Option<PathBuf>,
    sft: Option<PathBuf>,
    sft_eval: Option<PathBuf>,
    preference: Option<PathBuf>,
    preference_eval: Option<PathBuf>,
    cot: Option<PathBuf>,
    cot_eval: Option<PathBuf>,
    rag_corpus: Option<PathBuf>,
    rag_queries: Option<PathBuf>,
    /// The poison pass's triggered test split.
    test: Option<PathBuf>,
}

struct Ctx<'a> {
    cache: PathBuf,
    cell_dir: PathBuf,
    index: usize,
    on_event: &'a mut dyn FnMut(&Event),
}

impl Ctx<'_> {
    fn step(&mut self, what: String) {
        let line = format!("{} {what}\n", timestamp());
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.cell_dir.join("log.txt"))
        {
            let _ = f.write_all(line.as_bytes());
        }
        tracing::info!(cell = self.index, "{what}");
        (self.on_event)(&Event::Step {
            index: self.index,
            what,
        });
    }
}

fn timestamp() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format!("{}.{:03}", d.as_secs(), d.subsec_millis())
}

/// Runs every cell of the plan (finished ones are read back), then writes the results.
pub fn run(plan: &Plan, opts: &RunOptions, on_event: &mut dyn FnMut(&Event)) -> Result<RunSummary> {
    let started = Instant::now();
    let out = &opts.out;
    let cache = out.join("cache");
    std::fs::create_dir_all(&cache).map_err(|e| Error::io(&cache, e))?;
    atomic_write(&out.join("experiment.toml"), plan.text.as_bytes())?;
    let plan_json = json!({
        "name": plan.name,
        "source": plan.path.display().to_string(),
        "axes": plan.axes.iter().map(|(c, k, v)| json!({"column": c, "key": k, "values": v})).collect::<Vec<_>>(),
        "cells": plan.cells.iter().map(|c| json!({"index": c.index, "hash": c.hash, "label": c.label()})).collect::<Vec<_>>(),
        "version": env!("CARGO_PKG_VERSION"),
    });
    atomic_write(
        &out.join("plan.json"),
        serde_json::to_string_pretty(&plan_json)
            .unwrap_or_default()
            .as_bytes(),
    )?;
    let total = plan.cells.len();
    let (mut cached_n, mut ran, mut failed) = (0, 0, Vec::new());
    let mut computed = 0usize;
    for cell in &plan.cells {
        let cell_dir = out.join("cells").join(&cell.hash);
        let rows_path = cell_dir.join("rows.jsonl");
        on_event(&Event::CellStart {
            index: cell.index,
            total,
            label: cell.label(),
        });
        if rows_path.exists() {
            cached_n += 1;
            on_event(&Event::CellDone {
                index: cell.index,
                cached: true,
            });
            continue;
        }
        if opts.max_cells.is_some_and(|m| computed >= m) {
            break;
        }
        std::fs::create_dir_all(&cell_dir).map_err(|e| Error::io(&cell_dir, e))?;
        let _ = std::fs::remove_file(cell_dir.join("error.txt"));
        atomic_write(
            &cell_dir.join("cell.json"),
            serde_json::to_string_pretty(&json!({
                "index": cell.index,
                "params": crate::experiment::params_map(cell),
                "experiment": cell.experiment,
            }))
            .unwrap_or_default()
            .as_bytes(),
        )?;
        let mut ctx = Ctx {
            cache: cache.clone(),
            cell_dir: cell_dir.clone(),
            index: cell.index,
            on_event,
        };
        computed += 1;
        match run_cell(plan, cell, &mut ctx) {
            Ok(rows) => {
                write_jsonl(&rows_path, &rows)?;
                ran += 1;
                on_event(&Event::CellDone {
                    index: cell.index,
                    cached: false,
                });
            }
            Err(e) => {
                let msg = e.to_string();
                let _ = std::fs::write(cell_dir.join("error.txt"), format!("{msg}\n"));
                failed.push((cell.index, cell.label(), msg.clone()));
                on_event(&Event::CellFailed {
                    index: cell.index,
                    error: msg,
                });
            }
        }
    }
    // Results: every finished cell, in grid order.
    let mut rows = Vec::new();
    for cell in &plan.cells {
        let p = out.join("cells").join(&cell.hash).join("rows.jsonl");
        if p.exists() {
            rows.extend(crate::results::read_rows(&p)?);
        }
    }
    let results = out.join("results.jsonl");
    let parquet = out.join("results.parquet");
    write_jsonl(&results, &rows)?;
    if !rows.is_empty() {
        write_parquet(&parquet, &rows)?;
    }
    Ok(RunSummary {
        cells: total,
        cached: cached_n,
        ran,
        failed,
        results,
        parquet,
        seconds: started.elapsed().as_secs_f64(),
    })
}

fn world_files(ctx: &mut Ctx<'_>, exp: &Experiment) -> Result<Files> {
    let mut f = Files::default();
    if let Some(w) = &exp.data.world {
        let size = match w.size.as_str() {
            "medium" => poisonlab_data::world::Size::Medium,
            "large" => poisonlab_data::world::Size::Large,
            _ => poisonlab_data::world::Size::Small,
        };
        let k = key(&json!({"world": w.seed, "size": w.size, "v": env!("CARGO_PKG_VERSION")}));
        let (dir, hit) = cached(&ctx.cache, "world", &k, false, |tmp| {
            poisonlab_data::world::generate(w.seed, size, tmp, &mut |_, _| {})?;
            Ok(())
        })?;
        ctx.step(format!(
            "world seed {} {}{}",
            w.seed,
            w.size,
            if hit { " (cached)" } else { "" }
        ));
        let p = |n: &str| Some(dir.join(n));
        f = Files {
            pretrain: p("pretrain_train.jsonl"),
            pretrain_eval: p("pretrain_eval.jsonl"),
            sft: p("sft_train.jsonl"),
            sft_eval: p("sft_eval.jsonl"),
            preference: p("preference_train.jsonl"),
            preference_eval: p("preference_eval.jsonl"),
            cot: p("cot_train.jsonl"),
            cot_eval: p("cot_eval.jsonl"),
            rag_corpus: p("rag_corpus.jsonl"),
            rag_queries: p("rag_queries.jsonl"),
            test: None,
        };
    }
    let d = &exp.data;
    for (slot, given) in [
        (&mut f.pretrain, &d.pretrain),
        (&mut f.pretrain_eval, &d.pretrain_eval),
        (&mut f.sft, &d.sft),
        (&mut f.sft_eval, &d.sft_eval),
        (&mut f.preference, &d.preference),
        (&mut f.preference_eval, &d.preference_eval),
        (&mut f.cot, &d.cot),
        (&mut f.cot_eval, &d.cot_eval),
        (&mut f.rag_corpus, &d.rag_corpus),
        (&mut f.rag_queries, &d.rag_queries),
    ] {
        if let Some(g) = given {
            *slot = Some(g.clone());
        }
    }
    Ok(f)
}

fn need<'a>(p: &'a Option<PathBuf>, what: &str) -> Result<&'a PathBuf> {
    p.as_ref()
        .ok_or_else(|| Error::Invalid(format!("no {what} file: give data.{what} or data.world")))
}

fn run_cell(_plan: &Plan, cell: &Cell, ctx: &mut Ctx<'_>) -> Result<Vec<Row>> {
    let exp = &cell.experiment;
    let mut files = world_files(ctx, exp)?;

    // Poison.
    if let Some(spec) = &exp.poison {
        use poisonlab_poison::StageKind as P;
        let (input, test_input) = match spec.stage.kind {
            P::Pretrain => (
                need(&files.pretrain, "pretrain")?.clone(),
                files.pretrain_eval.clone(),
            ),
            P::Sft => (need(&files.sft, "sft")?.clone(), files.sft_eval.clone()),
            P::Cot => (need(&files.cot, "cot")?.clone(), files.cot_eval.clone()),
            P::Preference => (
                need(&files.preference, "preference")?.clone(),
                files.preference_eval.clone(),
            ),
            P::Rag => (need(&files.rag_corpus, "rag_corpus")?.clone(), None),
            other => {
                return Err(Error::Invalid(format!(
                    "poison stage {} is not run by experiments",
                    other.as_str()
                )));
            }
        };
        // The world's query file replaces its placeholder (known once the world exists).
        let mut spec = spec.clone();
        if let Some(q) = &spec.stage.queries
            && q.to_string_lossy()
                .ends_with(crate::experiment::WORLD_RAG_QUERIES)
        {
            spec.stage.queries = Some(need(&files.rag_queries, "rag_queries")?.clone());
        }
        let spec = &spec;
        let k = key(&json!({
            "spec": spec.resolved_json(),
            "input": file_sha(&input)?,
            "test": test_input.as_ref().map(|t| file_sha(t)).transpose()?,
            "queries": spec.stage.queries.as_ref().map(|q| file_sha(q)).transpose()?,
        }));
        let rag = spec.stage.kind == P::Rag;
        let (dir, hit) = cached(&ctx.cache, "poison", &k, false, |tmp| {
            let opts = poisonlab_poison::PoisonOptions {
                test_input: test_input.clone(),
                test_output: (test_input.is_some() || rag).then(|| tmp.join("test.jsonl")),
                ..Default::default()
            };
            poisonlab_poison::poison_file(spec, &input, &tmp.join("data.jsonl"), &opts)?;
            Ok(())
        })?;
        ctx.step(format!(
            "poison {} {} ×{}{}",
            spec.name,
            spec.stage.kind.as_str(),
            spec.budget.resolve(0).max(spec.budget.count.unwrap_or(0)),
            if hit { " (cached)" } else { "" }
        ));
        let data = Some(dir.join("data.jsonl"));
        match spec.stage.kind {
            P::Pretrain => files.pretrain = data,
            P::Sft => files.sft = data,
            P::Cot => files.cot = data,
            P::Preference => files.preference = data,
            P::Rag => files.rag_corpus = data,
            _ => {}
        }
        if dir.join("test.jsonl").exists() {
            files.test = Some(dir.join("test.jsonl"));
        }
    }

    // Clean the data of the stage the poison targets (or the SFT data when there is no poison).
    if let Some(c) = &exp.clean
        && c.enabled
    {
        use poisonlab_poison::StageKind as P;
        let target: &mut Option<PathBuf> = match exp.poison.as_ref().map(|p| p.stage.kind) {
            Some(P::Pretrain) => &mut files.pretrain,
            Some(P::Cot) => &mut files.cot,
            Some(P::Preference) => &mut files.preference,
            Some(P::Rag) => &mut files.rag_corpus,
            _ => &mut files.sft,
        };
        let input = need(target, "training")?.clone();
        let pipeline = poisonlab_clean::filter::Pipeline {
            filters: c.filters.clone(),
        };
        let k = key(
            &json!({"filters": serde_json::to_value(&pipeline).unwrap_or(Value::Null), "input": file_sha(&input)?}),
        );
        let (dir, hit) = cached(&ctx.cache, "clean", &k, false, |tmp| {
            let r = poisonlab_clean::filter::clean_file(
                &pipeline,
                &input,
                &tmp.join("data.jsonl"),
                &Default::default(),
            )?;
            std::fs::write(
                tmp.join("report.json"),
                serde_json::to_string_pretty(&r).unwrap_or_default(),
            )
            .map_err(|e| Error::io(tmp, e))?;
            Ok(())
        })?;
        ctx.step(format!("clean{}", if hit { " (cached)" } else { "" }));
        *target = Some(dir.join("data.jsonl"));
    }

    // Stages and probes.
    let mut rows = Vec::new();
    let mut prev: Option<(String, PathBuf)> = None;
    for (si, stage) in exp.stages.iter().enumerate() {
        let (train, eval) = match (stage.kind, stage.data.as_deref()) {
            (StageKind::Pretrain, _) => (
                need(&files.pretrain, "pretrain")?.clone(),
                files.pretrain_eval.clone(),
            ),
            (StageKind::Sft, Some("cot")) => {
                (need(&files.cot, "cot")?.clone(), files.cot_eval.clone())
            }
            (StageKind::Sft, _) => (need(&files.sft, "sft")?.clone(), files.sft_eval.clone()),
            (StageKind::Dpo, _) => (
                need(&files.preference, "preference")?.clone(),
                files.preference_eval.clone(),
            ),
        };
        let (model_key, model_dir) =
            train_stage(ctx, exp, stage, &train, eval.as_deref(), prev.as_ref())?;
        prev = Some((model_key.clone(), model_dir.clone()));
        let last = si + 1 == exp.stages.len();
        let due: Vec<&probe::ProbeSpec> = exp
            .probes
            .iter()
            .filter(|p| last || p.after == After::Each)
            .collect();
        if due.is_empty() {
            continue;
        }
        let model = poisonlab_model::LocalModel::load(
            &model_dir.join("model"),
            None,
            &poisonlab_model::default_device(),
        )?;
        for p in due {
            ctx.step(format!(
                "probe {} after {}",
                p.kind.as_str(),
                stage.kind.as_str()
            ));
            let m = run_probe(p, exp, stage, &files, &model)?;
            let mut row = Row::new();
            row.insert("cell".into(), json!(&cell.hash[..12]));
            for (c, _, v) in &cell.params {
                row.insert(c.clone(), v.clone());
            }
            row.insert("stage".into(), json!(stage.kind.as_str()));
            row.insert("probe".into(), json!(p.label()));
            row.insert("value".into(), json!(m.value));
            row.insert("ci_low".into(), json!(m.ci_low));
            row.insert("ci_high".into(), json!(m.ci_high));
            row.insert("n".into(), json!(m.n));
            row.insert("k".into(), m.k.map_or(Value::Null, |k| json!(k)));
            rows.push(row);
        }
    }
    Ok(rows)
}

fn train_stage(
    ctx: &mut Ctx<'_>,
    exp: &Experiment,
    stage: &StageSpec,
    train: &Path,
    eval: Option<&Path>,
    prev: Option<&(String, PathBuf)>,
) -> Result<(String, PathBuf)> {
    let mut table = stage.config.clone();
    if !table.contains_key("seed") {
        table.insert(
            "seed".into(),
            toml::Value::Integer(exp.stage_seed(stage) as i64),
        );
    }
    let init_key = match (prev, table.get("init").and_then(|v| v.as_str())) {
        (Some((k, _)), _) => json!(k),
        (None, Some(p)) => json!(p),
        (None, None) => Value::Null,
    };
    let k = key(&json!({
        "kind": stage.kind.as_str(),
        "config": serde_json::to_value(&table).unwrap_or(Value::Null),
        "train": file_sha(train)?,
        "eval": eval.map(file_sha).transpose()?,
        "init": init_key,
    }));
    let (dir, hit) = cached(&ctx.cache, "stage", &k, true, |tmp| {
        let mut t = table.clone();
        t.insert("out".into(), toml::Value::String(tmp.display().to_string()));
        t.insert(
            "train".into(),
            toml::Value::String(train.display().to_string()),
        );
        if let Some(e) = eval {
            t.insert("eval".into(), toml::Value::String(e.display().to_string()));
        }
        if let Some((_, d)) = prev {
            t.insert(
                "init".into(),
                toml::Value::String(d.join("model").display().to_string()),
            );
        }
        if !t.contains_key("checkpoint_every") {
            let steps = t.get("steps").and_then(|v| v.as_integer()).unwrap_or(0);
            t.insert(
                "checkpoint_every".into(),
                toml::Value::Integer((steps / 4).max(1)),
            );
        }
        let cfg: poisonlab_train::TrainConfig =
            toml::Table::try_into(t).map_err(|e: toml::de::Error| {
                Error::Invalid(format!("stage {}: {e}", stage.kind.as_str()))
            })?;
        cfg.validate()?;
        let kind = match stage.kind {
            StageKind::Pretrain => poisonlab_train::Stage::Pretrain,
            StageKind::Sft => poisonlab_train::Stage::Sft,
            StageKind::Dpo => poisonlab_train::Stage::Dpo,
        };
        let mut trainer = poisonlab_train::Trainer::new(kind, cfg)?;
        trainer.resume()?;
        trainer.run(&mut |_| {})?;
        Ok(())
    })?;
    ctx.step(format!(
        "{} {}",
        stage.kind.as_str(),
        if hit { "(cached)" } else { "trained" }
    ));
    Ok((k, dir))
}

fn run_probe(
    p: &probe::ProbeSpec,
    exp: &Experiment,
    stage: &StageSpec,
    files: &Files,
    model: &poisonlab_model::LocalModel,
) -> Result<probe::Measure> {
    let seed = exp.seed;
    let clean_eval = || -> Result<Vec<Record>> {
        let path = match (stage.kind, stage.data.as_deref()) {
            (_, Some("cot")) => files.cot_eval.as_ref(),
            (StageKind::Pretrain, _)
                if exp.stages.iter().all(|s| s.kind == StageKind::Pretrain) =>
            {
                files.pretrain_eval.as_ref()
            }
            _ => files.sft_eval.as_ref().or(files.cot_eval.as_ref()),
        };
        let path =
            path.ok_or_else(|| Error::Invalid("no clean held-out file for this probe".into()))?;
        Ok(probe::sample(probe::read_records(path)?, p.n, seed))
    };
    let test = || -> Result<Vec<Record>> {
        let path = files.test.as_ref().ok_or_else(|| {
            Error::Invalid(
                "the poison produced no triggered test split (its stage has no held-out file)"
                    .into(),
            )
        })?;
        Ok(probe::sample(probe::read_records(path)?, p.n, seed))
    };
    match p.kind {
        ProbeKind::Asr => probe::asr(model, &test()?, &p.judge(), p.max_tokens),
        ProbeKind::Utility => probe::utility(model, &clean_eval()?, p.max_tokens),
        ProbeKind::FalseTrigger => {
            let spec = exp
                .poison
                .as_ref()
                .ok_or_else(|| Error::Invalid("false_trigger needs a poison".into()))?;
            probe::false_trigger(model, &clean_eval()?, spec, &p.judge(), p.max_tokens)
        }
        ProbeKind::Gibberish => {
            let eval = files
                .pretrain_eval
                .as_ref()
                .ok_or_else(|| Error::Invalid("gibberish needs data.pretrain_eval".into()))?;
            let clean = probe::sample(probe::read_records(eval)?, 200, seed);
            probe::gibberish(model, &test()?, &clean, p.max_tokens)
        }
        ProbeKind::RagRetrieval | ProbeKind::RagE2e => {
            let corpus = files
                .rag_corpus
                .as_ref()
                .ok_or_else(|| Error::Invalid("no rag_corpus".into()))?;
            let passages = crate::retrieval::passages(&probe::read_records(corpus)?);
            let targets = test()?;
            let bm25;
            let dense;
            let retriever: &dyn crate::retrieval::Retriever = match p.retriever {
                probe::RetrieverKind::Bm25 => {
                    bm25 = crate::retrieval::Bm25::new(&passages)?;
                    &bm25
                }
                probe::RetrieverKind::Dense => {
                    dense = crate::retrieval::Dense::new(model, &passages)?;
                    &dense
                }
            };
            if p.kind == ProbeKind::RagRetrieval {
                probe::rag_retrieval(retriever, &passages, &targets, p.top_k)
            } else {
                probe::rag_e2e(
                    model,
                    retriever,
                    &passages,
                    &targets,
                    p.top_k,
                    &p.judge(),
                    p.max_tokens,
                )
            }
        }
        ProbeKind::HeldoutLoss => {
            let path = match (stage.kind, stage.data.as_deref()) {
                (StageKind::Pretrain, _) => files.pretrain_eval.as_ref(),
                (StageKind::Sft, Some("cot")) => files.cot_eval.as_ref(),
                (StageKind::Sft, _) => files.sft_eval.as_ref(),
                (StageKind::Dpo, _) => files.preference_eval.as_ref(),
            };
            let path =
                path.ok_or_else(|| Error::Invalid("no held-out file for this stage".into()))?;
            probe::heldout_loss(
                model,
                &probe::sample(probe::read_records(path)?, p.n, seed),
                seed,
            )
        }
    }
}
