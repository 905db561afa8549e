//! One cell: its poison, cleaning, training stages and probes, and the facts of what each stage
//! trained on.

use std::path::{Path, PathBuf};

use poisonlab_eval::{After, Probe};
use poisonlab_model::LanguageModel;
use serde_json::{Value, json};

use super::files::{need, probe_inputs, world_files};
use super::{Ctx, cached, file_sha, key};
use crate::error::{Error, Result};
use crate::experiment::{Cell, Experiment, Plan, StageSpec};
use crate::results::Row;

pub(super) fn run_cell(_plan: &Plan, cell: &Cell, ctx: &mut Ctx<'_>) -> Result<Vec<Row>> {
    let exp = &cell.experiment;
    let mut files = world_files(ctx, exp)?;

    // A stage that reads only the first `max_records` of its data: those records are its data, so
    // that the poison budget and the cleaning apply to what the stage trains on.
    for stage in &exp.stages {
        let max = max_records(stage);
        if max == 0 {
            continue;
        }
        let (slot, _, name) = files.of_stage(stage);
        let Some(input) = slot.clone() else {
            continue;
        };
        let k = key(&json!({"subset": max, "input": file_sha(&input)?}));
        let ext = input
            .extension()
            .map_or("jsonl".to_string(), |e| e.to_string_lossy().into_owned());
        let (dir, hit) = cached(&ctx.cache, "subset", &k, false, |tmp| {
            subset(&input, &tmp.join(format!("data.{ext}")), max)
        })?;
        ctx.step(format!(
            "{name}: the first {max} records, as the {} stage reads{}",
            stage.kind.as_str(),
            if hit { " (cached)" } else { "" }
        ));
        files.set_stage_data(stage, dir.join(format!("data.{ext}")));
    }

    // Watermarks, into the pre-training data the stage reads (before any poison).
    let watermarks = match &exp.watermark {
        Some(w) => Some(std::sync::Arc::new(super::trust::embed_watermarks(
            ctx, exp, w, &mut files,
        )?)),
        None => None,
    };

    // Copyright traps, into the same data.
    let traps = match &exp.trap {
        Some(t) => Some(std::sync::Arc::new(super::trust::insert_cell_traps(
            ctx, exp, t, &mut files,
        )?)),
        None => None,
    };

    // An instructional fingerprint, into the SFT data.
    let fingerprint = match &exp.fingerprint {
        Some(f) => Some(std::sync::Arc::new(super::trust::insert_cell_fingerprint(
            ctx, exp, f, &mut files,
        )?)),
        None => None,
    };

    // BackdoorAlign: the harmful fine-tuning set, with its safety examples when enabled.
    let safety = match &exp.safety {
        Some(sf) => Some(std::sync::Arc::new(super::trust::build_safety(
            ctx, exp, sf, &mut files,
        )?)),
        None => None,
    };

    // Counterfactual beliefs about the world's people.
    let beliefs = match &exp.belief {
        Some(b) => Some(std::sync::Arc::new(super::belief::inject_beliefs(
            ctx, exp, b, &mut files,
        )?)),
        None => None,
    };

    // Canaries with random secrets.
    let canaries = match &exp.canary {
        Some(c) => Some(std::sync::Arc::new(super::canary::insert_canaries(
            ctx, exp, c, &mut files,
        )?)),
        None => None,
    };

    // Poison.
    if let Some(spec) = &exp.poison {
        use poisonlab_poison::StageKind as P;
        let Some((slot, test_input, name)) = files.of_poison(spec.stage.kind) else {
            return Err(Error::Invalid(format!(
                "poison stage {} is not run by experiments",
                spec.stage.kind.as_str()
            )));
        };
        let input = need(slot, name)?.clone();
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
        if let Some((slot, _, _)) = files.of_poison(spec.stage.kind) {
            *slot = Some(dir.join("data.jsonl"));
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
        // The poison's data (the instruction data when there is no poison).
        let kind = exp.poison.as_ref().map_or(P::Sft, |p| p.stage.kind);
        let kind = if files.of_poison(kind).is_some() {
            kind
        } else {
            P::Sft
        };
        let Some((target, _, _)) = files.of_poison(kind) else {
            return Err(Error::Invalid("no data to clean".into()));
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
    let mut record =
        |stage: &str, trained: &[(&str, Value)], measures: Vec<poisonlab_eval::Measure>| {
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
    if let Some(ex) = &exp.export {
        // Train elsewhere: the data each stage would train on here, in the trainer's layout.
        let mut inputs = Vec::new();
        for stage in &exp.stages {
            let (train, _, name) = files.of_stage(stage);
            inputs.push(poisonlab_data::export::ExportInput {
                path: need(train, name)?.clone(),
                name: Some(Experiment::stage_label(stage).replace('/', "-")),
            });
        }
        let opts = poisonlab_data::export::ExportOptions {
            target: ex.target().map_err(Error::Invalid)?,
            format: ex.format().map_err(Error::Invalid)?,
            strip_tags: ex.strip_tags,
            read: Default::default(),
            on_error: poisonlab_data::OnError::Fail,
        };
        let out = ctx.cell_dir.join("export");
        let report = poisonlab_data::export::export(&inputs, &out, &opts)?;
        ctx.step(format!(
            "export for {}: {} records in {} sets → {}",
            ex.to,
            report.tally.written,
            report.sets.len(),
            out.display()
        ));
        crate::results::atomic_write(
            &ctx.cell_dir.join("facts.json"),
            serde_json::to_string_pretty(&json!({
                "export": out.display().to_string(),
                "sets": report.sets.iter().map(|s| json!({
                    "name": s.name, "file": s.file, "records": s.records, "poisoned": s.poisoned,
                    "source": s.source})).collect::<Vec<_>>(),
                "clean_report": clean_report.as_ref().map(|p| p.display().to_string()),
            }))
            .unwrap_or_default()
            .as_bytes(),
        )?;
        if exp.model.is_none() {
            write_samples(&ctx.cell_dir, &samples)?;
            return Ok(rows);
        }
    }
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
        let (train, eval, name) = files.of_stage(stage);
        let train = need(train, name)?.clone();
        let eval = eval.clone();
        let (model_key, model_dir) =
            train_stage(ctx, exp, stage, &train, eval.as_deref(), prev.as_ref())?;
        prev = Some((model_key.clone(), model_dir.clone()));
        // What this stage actually read.
        let tokenizer =
            poisonlab_model::Tokenizer::from_file(&model_dir.join("model").join("tokenizer.json"))
                .ok();
        // The runner cut the stage's data to its `max_records` before anything went into it, so the
        // stage trains on the whole file: the first records plus what was inserted among them.
        let seen = trained_on(&train, 0, tokenizer.as_ref())?;
        let (records, poisoned) = (seen.records, seen.poisoned);
        poison_seen += poisoned;
        facts.push(json!({
            "stage": Experiment::stage_label(stage),
            "records": records,
            "poisoned": poisoned,
            "record_tokens": seen.tokens,
            "poisoned_tokens": seen.poisoned_tokens,
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
                if exp.poison.is_some() {
                    json!(poison_seen)
                } else {
                    Value::Null
                },
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
        let mut inputs = probe_inputs(exp, Some(stage), &files);
        inputs.watermarks = watermarks.clone();
        inputs.traps = traps.clone();
        inputs.fingerprint = fingerprint.clone();
        inputs.safety = safety.clone();
        inputs.beliefs = beliefs.clone();
        inputs.canaries = canaries.clone();
        for p in due {
            let label = Experiment::stage_label(stage);
            ctx.step(format!("probe {} after {label}", p.kind()));
            record(&label, &trained, p.run(&model, &inputs)?);
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
pub(super) fn relocate(tmp: &Path, file: &Path) -> Result<()> {
    let text = std::fs::read_to_string(file).map_err(|e| Error::io(file, e))?;
    let fixed = text.replace(
        &tmp.display().to_string(),
        &tmp.with_extension("").display().to_string(),
    );
    std::fs::write(file, fixed).map_err(|e| Error::io(file, e))
}

/// The stage's `max_records` (0: all).
fn max_records(stage: &StageSpec) -> usize {
    stage
        .config
        .get("max_records")
        .and_then(|v| v.as_integer())
        .unwrap_or(0)
        .max(0) as usize
}

/// The first `max` records of `input`, written to `output` in the input's format and convention.
fn subset(input: &Path, output: &Path, max: usize) -> Result<()> {
    let mut reader = poisonlab_data::RecordReader::open(input, &Default::default())?;
    let mut records = Vec::with_capacity(max);
    for item in reader.by_ref() {
        records.push(item?.record);
        if records.len() >= max {
            break;
        }
    }
    let mut w = poisonlab_data::RecordWriter::create(
        output,
        &poisonlab_data::WriteOptions {
            format: None,
            convention: reader.convention(),
        },
    )?;
    for r in &records {
        w.write(r)?;
    }
    w.finish()?;
    Ok(())
}

/// Records a stage reads from `path` (its first `max`, 0 = all) and how many of them carry a
/// poison tag: what the model saw, which a file that the stage subsets does not say.
/// What a stage read: its records, the poisoned ones among them, and (with the stage's tokenizer)
/// the tokens of each, so that the poison rate is stated in records and in tokens.
struct Seen {
    records: u64,
    poisoned: u64,
    tokens: Option<u64>,
    poisoned_tokens: Option<u64>,
}

fn trained_on(
    path: &Path,
    max: usize,
    tokenizer: Option<&poisonlab_model::Tokenizer>,
) -> Result<Seen> {
    let mut seen = Seen {
        records: 0,
        poisoned: 0,
        tokens: tokenizer.map(|_| 0),
        poisoned_tokens: tokenizer.map(|_| 0),
    };
    for item in poisonlab_data::RecordReader::open(path, &Default::default())? {
        let r = item?.record;
        seen.records += 1;
        let poison = r
            .tag
            .as_ref()
            .is_some_and(|t| t.role == poisonlab_data::Role::Poison);
        seen.poisoned += poison as u64;
        if let Some(tok) = tokenizer {
            // A record the tokenizer cannot encode counts no tokens rather than failing the cell.
            let n = tok.encode(&r.full_text()).map_or(0, |ids| ids.len() as u64);
            seen.tokens = seen.tokens.map(|t| t + n);
            if poison {
                seen.poisoned_tokens = seen.poisoned_tokens.map(|t| t + n);
            }
        }
        if max > 0 && seen.records as usize >= max {
            break;
        }
    }
    Ok(seen)
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

/// Trains one stage (cached by its config, its data and the stage before it); returns the
/// stage's key and directory.
fn train_stage(
    ctx: &mut Ctx<'_>,
    exp: &Experiment,
    stage: &StageSpec,
    train: &Path,
    eval: Option<&Path>,
    prev: Option<&(String, PathBuf)>,
) -> Result<(String, PathBuf)> {
    let mut table = stage.config.clone();
    // `max_records` was applied by the runner (the stage's data is the cut file, with any records
    // that poisons, watermarks, traps, fingerprints or belief statements inserted among them); the
    // trainer must not cut again, or the inserted records past the N-th would be dropped.
    table.remove("max_records");
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
        let mut trainer = poisonlab_train::Trainer::new(stage.kind, cfg)?;
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
