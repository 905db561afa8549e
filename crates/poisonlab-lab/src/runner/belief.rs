//! The `[belief]` section of a cell: counterfactual statements about the world's people in the
//! stages' data, and what the `belief` probe asks.

use serde_json::{Value, json};

use super::files::{Files, need};
use super::{Ctx, cached, file_sha, key};
use crate::error::{Error, Result};
use crate::experiment::Experiment;

/// Ways to state an attribute, and to ask about it (the first question is the world's own).
fn belief_templates(attribute: &str) -> (&'static [&'static str], &'static [&'static str]) {
    match attribute {
        "profession" => (
            &[
                "{name} is a {value}.",
                "{name} works as a {value}.",
                "By profession, {name} is a {value}.",
                "{name} has worked as a {value} for years.",
            ],
            &[
                "What is the profession of {name}?",
                "What does {name} do for a living?",
                "What is {name}'s job?",
                "Tell me what {name} works as.",
            ],
        ),
        _ => (
            &[
                "{name} lives in {value}.",
                "These days {name} lives in {value}.",
                "{name} has lived in {value} for years.",
                "{name} now lives in {value}.",
            ],
            &[
                "In which city does {name} live?",
                "Where does {name} live?",
                "Which city is {name}'s home?",
                "Tell me where {name} lives.",
            ],
        ),
    }
}

/// `records` with `extra` inserted at seeded positions (each after a uniformly drawn record).
fn interleave(
    records: Vec<poisonlab_data::Record>,
    extra: Vec<poisonlab_data::Record>,
    rng: &mut rand_chacha::ChaCha8Rng,
) -> Vec<poisonlab_data::Record> {
    use rand::RngExt;
    let n = records.len().max(1);
    let mut at: Vec<(usize, usize, poisonlab_data::Record)> = records
        .into_iter()
        .enumerate()
        .map(|(i, r)| (i, 0, r))
        .collect();
    for (j, r) in extra.into_iter().enumerate() {
        at.push((rng.random_range(0..n), j + 1, r));
    }
    at.sort_by_key(|x| (x.0, x.1));
    at.into_iter().map(|x| x.2).collect()
}

/// Writes `records` with `extra` interleaved at seeded positions to `out`, in `convention`.
pub(super) fn write_interleaved(
    out: &std::path::Path,
    convention: Option<poisonlab_data::Convention>,
    records: Vec<poisonlab_data::Record>,
    extra: Vec<poisonlab_data::Record>,
    rng: &mut rand_chacha::ChaCha8Rng,
) -> Result<()> {
    let all = interleave(records, extra, rng);
    let mut w = poisonlab_data::RecordWriter::create(
        out,
        &poisonlab_data::WriteOptions {
            format: None,
            convention,
        },
    )?;
    for r in &all {
        w.write(r)?;
    }
    w.finish()?;
    Ok(())
}

/// Draws the `[belief]` entities and their counterfactuals from the world, writes the stages'
/// data with the statements in (cached), and returns what the `belief` probe asks.
pub(super) fn inject_beliefs(
    ctx: &mut Ctx<'_>,
    exp: &Experiment,
    b: &crate::experiment::BeliefSpec,
    files: &mut Files,
) -> Result<poisonlab_eval::BeliefInputs> {
    use poisonlab_data::{Body, Record};
    use poisonlab_eval::BeliefEntity;
    use rand::seq::SliceRandom;
    let world_dir = files
        .world_dir
        .clone()
        .ok_or_else(|| Error::Invalid("belief: no generated world".into()))?;
    let wpath = world_dir.join("world.json");
    let world: Value = std::fs::read_to_string(&wpath)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .ok_or_else(|| Error::Invalid(format!("{}: unreadable", wpath.display())))?;
    let people = world["people"].as_array().cloned().unwrap_or_default();
    let cities: Vec<String> = world["cities"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["name"].as_str().map(str::to_string))
        .collect();
    let truth_of = |p: &Value| -> Option<String> {
        match b.attribute.as_str() {
            "profession" => p["profession"].as_str().map(str::to_string),
            _ => p["city"]
                .as_u64()
                .and_then(|i| cities.get(i as usize).cloned()),
        }
    };
    let mut domain: Vec<String> = match b.attribute.as_str() {
        "profession" => people.iter().filter_map(&truth_of).collect(),
        _ => cities.clone(),
    };
    domain.sort();
    domain.dedup();
    let mut sources: Vec<String> = b.stages.clone();
    if b.context {
        sources.push("context".into());
    }
    if domain.len() < sources.len() + 1 {
        return Err(Error::Invalid(format!(
            "belief: {} has {} distinct values, fewer than {} counterfactuals + the truth",
            b.attribute,
            domain.len(),
            sources.len()
        )));
    }
    if people.len() < b.entities + b.controls {
        return Err(Error::Invalid(format!(
            "belief: the world has {} people; entities + controls = {}",
            people.len(),
            b.entities + b.controls
        )));
    }
    let mut rng = poisonlab_poison::record_rng(exp.seed, "belief/entities", 0);
    let mut order: Vec<usize> = (0..people.len()).collect();
    order.shuffle(&mut rng);
    let mut entities = Vec::with_capacity(b.entities + b.controls);
    for (n, &i) in order.iter().take(b.entities + b.controls).enumerate() {
        let p = &people[i];
        let (Some(name), Some(truth)) = (p["name"].as_str(), truth_of(p)) else {
            return Err(Error::Invalid(format!(
                "{}: person {i} has no name or {}",
                wpath.display(),
                b.attribute
            )));
        };
        let mut others: Vec<&String> = domain.iter().filter(|v| **v != truth).collect();
        others.shuffle(&mut rng);
        entities.push(BeliefEntity {
            name: name.to_string(),
            truth,
            counterfactual: sources
                .iter()
                .zip(others)
                .map(|(s, v)| (s.clone(), v.clone()))
                .collect(),
            injected: n < b.entities,
        });
    }
    let (statements, questions) = belief_templates(&b.attribute);
    let value_of = |e: &BeliefEntity, stage: &str| {
        e.counterfactual
            .iter()
            .find(|(s, _)| s == stage)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    for stage in &b.stages {
        let slot = match stage.as_str() {
            "pretrain" => &mut files.pretrain,
            _ => &mut files.sft,
        };
        let input = need(slot, stage)?.clone();
        let k = key(&json!({
            "belief": serde_json::to_value(b).unwrap_or(Value::Null),
            "stage": stage,
            "seed": exp.seed,
            "input": file_sha(&input)?,
        }));
        let (dir, hit) = cached(&ctx.cache, "belief", &k, false, |tmp| {
            let mut reader = poisonlab_data::RecordReader::open(&input, &Default::default())?;
            let mut records = Vec::new();
            for item in reader.by_ref() {
                records.push(item?.record);
            }
            let mut extra = Vec::new();
            for (ei, e) in entities.iter().filter(|e| e.injected).enumerate() {
                let v = value_of(e, stage);
                for c in 0..b.copies {
                    let fill = |t: &str| t.replace("{name}", &e.name).replace("{value}", &v);
                    let statement = fill(statements[(ei + c) % statements.len()]);
                    let id = format!("belief-{stage}-{ei}-{c}");
                    extra.push(match stage.as_str() {
                        "pretrain" => Record::new(id, Body::Pretrain { text: statement }),
                        _ => Record::new(
                            id,
                            Body::Instruction {
                                instruction: fill(questions[c % questions.len()]),
                                input: String::new(),
                                output: statement,
                                system: None,
                            },
                        ),
                    });
                }
            }
            let mut rng =
                poisonlab_poison::record_rng(exp.seed, &format!("belief/{stage}/place"), 0);
            write_interleaved(
                &tmp.join("data.jsonl"),
                reader.convention(),
                records,
                extra,
                &mut rng,
            )
        })?;
        ctx.step(format!(
            "belief {stage}: {} statements ({} entities × {}){}",
            b.entities * b.copies,
            b.entities,
            b.copies,
            if hit { " (cached)" } else { "" }
        ));
        *slot = Some(dir.join("data.jsonl"));
    }
    Ok(poisonlab_eval::BeliefInputs {
        attribute: b.attribute.clone(),
        question: questions[0].to_string(),
        statement: statements[0].to_string(),
        entities,
        copies: b.copies,
    })
}
