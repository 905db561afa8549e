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

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::experiment::{Cell, Experiment, Plan, StageKind, StageSpec};
use poisonlab_eval::{After, Probe, ProbeInputs};
use poisonlab_model::LanguageModel;
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
    utc(d.as_secs(), d.subsec_millis())
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` for seconds since the Unix epoch (the civil-from-days algorithm of
/// H. Hinnant, proleptic Gregorian calendar).
pub fn utc(secs: u64, millis: u32) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + (month <= 2) as i64;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
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
            relocate(tmp, &tmp.join("data.jsonl.summary.json"))
        })?;
        // The resolved budget (a rate becomes a count only against the file's records).
        let summary = std::fs::read_to_string(dir.join("data.jsonl.summary.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            .unwrap_or(Value::Null);
        ctx.step(format!(
            "poison {} {}: {} poisoned of {} records{}",
            spec.name,
            spec.stage.kind.as_str(),
            summary["poisoned"],
            summary["records"],
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

    let mut clean_report: Option<PathBuf> = None;
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
            let text = serde_json::to_string_pretty(&r).unwrap_or_default();
            std::fs::write(tmp.join("report.json"), text).map_err(|e| Error::io(tmp, e))?;
            relocate(tmp, &tmp.join("report.json"))?;
            Ok(())
        })?;
        ctx.step(format!("clean{}", if hit { " (cached)" } else { "" }));
        clean_report = Some(dir.join("report.json"));
        *target = Some(dir.join("data.jsonl"));
    }

    // Stages and probes.
    let mut rows = Vec::new();
    let mut samples: Vec<Value> = Vec::new();
    let fixed = fixed_params(cell);
    let mut record = |stage: &str, trained: &[(&str, Value)], measures: Vec<poisonlab_eval::Measure>| {
        for m in measures {
            for s in &m.samples {
                samples.push(json!({"stage": stage, "probe": m.name, "prompt": s.prompt,
                                    "output": s.output, "positive": s.positive}));
            }
            let mut params: Vec<(String, Value)> = cell
                .params
                .iter()
                .map(|(c, _, v)| (c.clone(), v.clone()))
                .collect();
            params.extend(fixed.iter().cloned());
            params.extend(trained.iter().map(|(c, v)| (c.to_string(), v.clone())));
            rows.push(Row {
                cell: cell.hash[..12].to_string(),
                params,
                stage: stage.to_string(),
                probe: m.name,
                value: m.value,
                ci_low: m.ci_low,
                ci_high: m.ci_high,
                n: m.n,
                k: m.k,
            });
        }
    };
    if let Some(spec) = &exp.model {
        // Evaluation only: the probes measure an existing model, once.
        let model = open_model(spec)?;
        let inputs = probe_inputs(exp, None, &files);
        for p in &exp.probes {
            ctx.step(format!("probe {} on {}", p.kind(), model.name()));
            record(EVAL_ONLY_STAGE, &[], p.run(model.as_ref(), &inputs)?);
        }
        write_samples(&ctx.cell_dir, &samples)?;
        return Ok(rows);
    }
    let mut prev: Option<(String, PathBuf)> = None;
    let mut facts = Vec::new();
    let mut poison_seen = 0u64;
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
        // What this stage actually read: `max_records` keeps the file's first records.
        let max = stage
            .config
            .get("max_records")
            .and_then(|v| v.as_integer())
            .unwrap_or(0)
            .max(0) as usize;
        let (records, poisoned) = trained_on(&train, max)?;
        poison_seen += poisoned;
        facts.push(json!({
            "stage": stage.kind.as_str(),
            "records": records,
            "poisoned": poisoned,
            "data": train.display().to_string(),
            "model": model_dir.join("model").display().to_string(),
            "log": model_dir.join("log.jsonl").display().to_string(),
            "config": serde_json::to_value(&stage.config).unwrap_or(Value::Null),
        }));
        crate::results::atomic_write(
            &ctx.cell_dir.join("facts.json"),
            serde_json::to_string_pretty(&json!({
                "stages": facts,
                "clean_report": clean_report.as_ref().map(|p| p.display().to_string()),
            }))
                .unwrap_or_default()
                .as_bytes(),
        )?;
        let trained = [
            ("records_trained", json!(records)),
            (
                "poison_trained",
                if exp.poison.is_some() { json!(poison_seen) } else { Value::Null },
            ),
        ];
        let last = si + 1 == exp.stages.len();
        let due: Vec<&Probe> = exp
            .probes
            .iter()
            .filter(|p| last || p.after() == After::Each)
            .collect();
        if due.is_empty() {
            continue;
        }
        let model = poisonlab_model::LocalModel::load(
            &model_dir.join("model"),
            None,
            &poisonlab_model::default_device(),
        )?;
        let inputs = probe_inputs(exp, Some(stage), &files);
        for p in due {
            ctx.step(format!("probe {} after {}", p.kind(), stage.kind.as_str()));
            record(stage.kind.as_str(), &trained, p.run(&model, &inputs)?);
        }
    }
    write_samples(&ctx.cell_dir, &samples)?;
    Ok(rows)
}

/// A few generations behind each measure, for the report: `samples.jsonl` in the cell directory.
fn write_samples(cell_dir: &Path, samples: &[Value]) -> Result<()> {
    let mut text = String::new();
    for s in samples {
        text.push_str(&s.to_string());
        text.push('\n');
    }
    crate::results::atomic_write(&cell_dir.join("samples.jsonl"), text.as_bytes())
}

/// A report written while its directory was still `<dir>.partial` names the final directory.
fn relocate(tmp: &Path, file: &Path) -> Result<()> {
    let text = std::fs::read_to_string(file).map_err(|e| Error::io(file, e))?;
    let fixed = text.replace(
        &tmp.display().to_string(),
        &tmp.with_extension("").display().to_string(),
    );
    std::fs::write(file, fixed).map_err(|e| Error::io(file, e))
}

/// Records a stage reads from `path` (its first `max`, 0 = all) and how many of them carry a
/// poison tag: what the model saw, which a file that the stage subsets does not say.
fn trained_on(path: &Path, max: usize) -> Result<(u64, u64)> {
    let (mut n, mut poisoned) = (0u64, 0u64);
    for item in poisonlab_data::RecordReader::open(path, &Default::default())? {
        let r = item?.record;
        n += 1;
        if r.tag
            .as_ref()
            .is_some_and(|t| t.role == poisonlab_data::Role::Poison)
        {
            poisoned += 1;
        }
        if max > 0 && n as usize >= max {
            break;
        }
    }
    Ok((n, poisoned))
}

/// The parameters every row carries whether or not the grid varies them (a grid axis of the same
/// column comes first and is not repeated).
fn fixed_params(cell: &Cell) -> Vec<(String, Value)> {
    let exp = &cell.experiment;
    let mut out: Vec<(String, Value)> = Vec::new();
    let mut add = |c: &str, v: Value| {
        if !cell.params.iter().any(|(p, _, _)| p == c) {
            out.push((c.to_string(), v));
        }
    };
    add("seed", json!(exp.seed));
    if let Some(p) = &exp.poison {
        if let Some(c) = p.budget.count {
            add("poison_count", json!(c));
        }
        if let Some(r) = p.budget.rate {
            add("poison_rate", json!(r));
        }
    }
    if let Some(c) = &exp.clean {
        add("clean", json!(c.enabled));
    }
    out
}

/// The `stage` of the rows of an evaluation-only experiment.
pub const EVAL_ONLY_STAGE: &str = "model";

fn open_model(spec: &crate::experiment::ModelSpec) -> Result<Box<dyn LanguageModel>> {
    if let Some(url) = &spec.endpoint {
        let cfg = poisonlab_model::EndpointConfig {
            base_url: url.clone(),
            model: spec.model_name.clone().unwrap_or_default(),
            api_key_env: spec.api_key_env.clone(),
            ..Default::default()
        };
        return Ok(Box::new(poisonlab_model::EndpointModel::new(cfg)?));
    }
    let dir = spec
        .dir
        .as_ref()
        .ok_or_else(|| Error::Invalid("model: give `dir` or `endpoint`".into()))?;
    Ok(Box::new(poisonlab_model::LocalModel::load(
        dir,
        spec.tokenizer.as_deref(),
        &poisonlab_model::default_device(),
    )?))
}

/// The files a probe reads after `stage` (`None`: an evaluation-only experiment, whose held-out
/// data is that of the stage its poison targets, or the instruction data).
fn probe_inputs(exp: &Experiment, stage: Option<&StageSpec>, files: &Files) -> ProbeInputs {
    use poisonlab_poison::StageKind as P;
    let poison_stage = exp.poison.as_ref().map(|p| p.stage.kind);
    let instructions = files.sft_eval.clone().or(files.cot_eval.clone());
    let (clean, heldout) = match stage {
        Some(s) => {
            let clean = match (s.kind, s.data.as_deref()) {
                (_, Some("cot")) => files.cot_eval.clone(),
                (StageKind::Pretrain, _)
                    if exp.stages.iter().all(|s| s.kind == StageKind::Pretrain) =>
                {
                    files.pretrain_eval.clone()
                }
                _ => instructions,
            };
            let heldout = match (s.kind, s.data.as_deref()) {
                (StageKind::Pretrain, _) => files.pretrain_eval.clone(),
                (StageKind::Sft, Some("cot")) => files.cot_eval.clone(),
                (StageKind::Sft, _) => files.sft_eval.clone(),
                (StageKind::Dpo, _) => files.preference_eval.clone(),
            };
            (clean, heldout)
        }
        None => match poison_stage {
            Some(P::Pretrain) => (files.pretrain_eval.clone(), files.pretrain_eval.clone()),
            Some(P::Cot) => (files.cot_eval.clone(), files.cot_eval.clone()),
            Some(P::Preference) => (instructions, files.preference_eval.clone()),
            _ => (instructions, files.sft_eval.clone()),
        },
    };
    ProbeInputs {
        seed: exp.seed,
        test: files.test.clone(),
        clean,
        heldout,
        reference: files.pretrain_eval.clone(),
        rag_corpus: files.rag_corpus.clone(),
        poison: exp.poison.clone(),
    }
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

#[cfg(test)]
mod tests {
    #[test]
    fn utc_timestamps() {
        assert_eq!(super::utc(0, 0), "1970-01-01T00:00:00.000Z");
        // 2026-12-01 13:31:18 UTC, as `date -u -d @1796131878` prints it.
        assert_eq!(super::utc(1_796_131_878, 42), "2026-12-01T13:31:18.042Z");
        assert_eq!(super::utc(951_782_400, 0), "2000-02-29T00:00:00.000Z");
    }
}
