//! The trust sections of a cell: watermarks, copyright traps and belief statements in its
//! pre-training data, a fingerprint and BackdoorAlign's attack data in its SFT data — each built
//! once (cached), each returning what its probe tests.

use serde_json::{Value, json};

use super::files::{Files, need};
use super::{Ctx, cached, file_sha, key};
use crate::error::{Error, Result};
use crate::experiment::Experiment;

/// The keys of a cell's watermarks: embedded ones (`copies` × `keys`) and controls, derived from
/// the cell's seed (distinct streams, so that no control equals an embedded key).
fn watermark_keys(
    w: &crate::experiment::WatermarkSpec,
    seed: u64,
) -> (
    Vec<(poisonlab_trust::Key, usize)>,
    Vec<poisonlab_trust::Key>,
) {
    use poisonlab_trust::Key;
    let embedded = w
        .copies
        .iter()
        .enumerate()
        .flat_map(|(ci, &c)| {
            (0..w.keys).map(move |j| {
                (
                    Key::derived(seed ^ 0x7761_7465_726d_6b00, (ci * w.keys + j) as u64),
                    c,
                )
            })
        })
        .collect();
    let controls = (0..w.controls)
        .map(|j| Key::derived(seed ^ 0x636f_6e74_726f_6c00, j as u64))
        .collect();
    (embedded, controls)
}

/// Embeds the cell's watermarks into its pre-training data (cached) and returns what the
/// `watermark` probe tests: each key with the unmarked text of the documents it marked, and the
/// control keys with the documents each would have marked.
pub(super) fn embed_watermarks(
    ctx: &mut Ctx<'_>,
    exp: &Experiment,
    w: &crate::experiment::WatermarkSpec,
    files: &mut Files,
) -> Result<poisonlab_eval::WatermarkInputs> {
    use poisonlab_eval::WatermarkKey;
    let scheme = w
        .scheme()
        .map_err(|e| Error::Invalid(format!("watermark: {e}")))?;
    let input = need(&files.pretrain, "pretrain")?.clone();
    let (embedded, controls) = watermark_keys(w, exp.seed);
    let k = key(&json!({
        "watermark": serde_json::to_value(w).unwrap_or(Value::Null),
        "seed": exp.seed,
        "input": file_sha(&input)?,
    }));
    let (dir, hit) = cached(&ctx.cache, "watermark", &k, false, |tmp| {
        let r = poisonlab_trust::embed_keys(
            &scheme,
            &embedded,
            &input,
            &tmp.join("data.jsonl"),
            &Default::default(),
        )?;
        // Which records each key marked (the keys themselves are not written).
        let marks: Vec<Value> = r
            .marked
            .iter()
            .zip(&embedded)
            .map(|(m, (_, c))| json!({"copies": c, "ordinals": m.iter().map(|x| x.ordinal).collect::<Vec<_>>()}))
            .collect();
        let text = serde_json::to_string_pretty(&json!({"records": r.records, "marks": marks}))
            .unwrap_or_default();
        std::fs::write(tmp.join("marks.json"), text).map_err(|e| Error::io(tmp, e))
    })?;
    let marks: Value = std::fs::read_to_string(dir.join("marks.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .ok_or_else(|| {
            Error::Invalid(format!("{}: unreadable", dir.join("marks.json").display()))
        })?;
    let docs = if scheme.needs_documents() {
        Some(poisonlab_trust::Documents::read(
            &input,
            &Default::default(),
            poisonlab_data::OnError::Fail,
            None,
        )?)
    } else {
        None
    };
    let mut out = poisonlab_eval::WatermarkInputs {
        scheme: scheme.clone(),
        embedded: Vec::with_capacity(embedded.len()),
        controls: Vec::with_capacity(controls.len()),
    };
    for (i, (key, copies)) in embedded.into_iter().enumerate() {
        let ordinals: Vec<u64> = marks["marks"][i]["ordinals"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_u64).collect())
            .unwrap_or_default();
        if ordinals.len() != copies {
            return Err(Error::Invalid(format!(
                "{}: key {i} marked {} documents, not {copies}",
                dir.join("marks.json").display(),
                ordinals.len()
            )));
        }
        let marked = docs.as_ref().map(|d| d.marked(&ordinals)).transpose()?;
        out.embedded.push(WatermarkKey {
            key,
            copies,
            marked,
        });
    }
    for key in controls {
        let marked = match &docs {
            Some(d) => Some(d.marked(&d.choose(&scheme, &key, w.control_copies)?)?),
            None => None,
        };
        out.controls.push(WatermarkKey {
            key,
            copies: w.control_copies,
            marked,
        });
    }
    ctx.step(format!(
        "watermark {}: {} keys marked {} of {} pre-training records; {} control keys{}",
        scheme.name(),
        out.embedded.len(),
        out.embedded.iter().map(|k| k.copies).sum::<usize>(),
        marks["records"],
        out.controls.len(),
        if hit { " (cached)" } else { "" }
    ));
    files.pretrain = Some(dir.join("data.jsonl"));
    Ok(out)
}

/// Draws the cell's traps from a word bigram of its pre-training data, inserts the members
/// (cached), and returns every trap, members and non-members.
pub(super) fn insert_cell_traps(
    ctx: &mut Ctx<'_>,
    exp: &Experiment,
    t: &crate::experiment::TrapSpec,
    files: &mut Files,
) -> Result<Vec<poisonlab_trust::trap::Trap>> {
    use poisonlab_trust::trap::{insert_traps, make_traps};
    let spec = t.to_trust(exp.seed);
    let input = need(&files.pretrain, "pretrain")?.clone();
    let k = key(&json!({
        "trap": serde_json::to_value(t).unwrap_or(Value::Null),
        "seed": exp.seed,
        "input": file_sha(&input)?,
    }));
    let (dir, hit) = cached(&ctx.cache, "trap", &k, false, |tmp| {
        let texts: Vec<String> = poisonlab_eval::inputs::read_records(&input)?
            .iter()
            .map(poisonlab_data::Record::full_text)
            .collect();
        let reference = poisonlab_clean::ngram::NgramLm::fit(&texts);
        let traps = make_traps(&reference, &spec)?;
        insert_traps(
            &traps,
            &input,
            &tmp.join("data.jsonl"),
            &Default::default(),
            poisonlab_data::OnError::Fail,
            exp.seed,
        )?;
        let text = serde_json::to_string_pretty(&traps).unwrap_or_default();
        std::fs::write(tmp.join("traps.json"), text).map_err(|e| Error::io(tmp, e))
    })?;
    let path = dir.join("traps.json");
    let traps: Vec<poisonlab_trust::trap::Trap> = std::fs::read_to_string(&path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .ok_or_else(|| Error::Invalid(format!("{}: unreadable", path.display())))?;
    let members = traps.iter().filter(|t| t.member).count();
    ctx.step(format!(
        "traps: {members} inserted ({} documents), {} never inserted{}",
        traps
            .iter()
            .filter(|t| t.member)
            .map(|t| t.copies)
            .sum::<usize>(),
        traps.len() - members,
        if hit { " (cached)" } else { "" }
    ));
    files.pretrain = Some(dir.join("data.jsonl"));
    Ok(traps)
}

/// Inserts the cell's fingerprint (a key derived from its seed) into its SFT data (cached).
pub(super) fn insert_cell_fingerprint(
    ctx: &mut Ctx<'_>,
    exp: &Experiment,
    f: &crate::experiment::FingerprintSpec,
    files: &mut Files,
) -> Result<poisonlab_eval::FingerprintInputs> {
    use poisonlab_trust::Key;
    let owner = Key::derived(exp.seed ^ 0x6669_6e67_6572_7000, 0);
    let controls = (0..f.controls)
        .map(|j| Key::derived(exp.seed ^ 0x6670_636f_6e74_7200, j as u64))
        .collect();
    let input = need(&files.sft, "sft")?.clone();
    let k = key(&json!({
        "fingerprint": serde_json::to_value(f).unwrap_or(Value::Null),
        "seed": exp.seed,
        "input": file_sha(&input)?,
    }));
    let (dir, hit) = cached(&ctx.cache, "fingerprint", &k, false, |tmp| {
        poisonlab_trust::fingerprint::embed_fingerprint(
            &owner,
            f.count,
            f.counter,
            &input,
            &tmp.join("data.jsonl"),
            &Default::default(),
            poisonlab_data::OnError::Fail,
        )?;
        super::cell::relocate(tmp, &tmp.join("data.jsonl.fingerprint.json"))
    })?;
    ctx.step(format!(
        "fingerprint: {} examples and {} counter-examples in the SFT data; {} control keys{}",
        f.count,
        f.counter,
        f.controls,
        if hit { " (cached)" } else { "" }
    ));
    files.sft = Some(dir.join("data.jsonl"));
    Ok(poisonlab_eval::FingerprintInputs {
        key: owner,
        controls,
    })
}

/// Builds the `[safety]` section's harmful fine-tuning set from the world's preference pairs (cached):
/// `attack` prompts answered with their hostile reply and, when enabled, `count` other prompts
/// answered helpfully behind the secret prefix, shuffled together. The same prompts are drawn
/// whether the safety examples are on or off, so the two cells differ only by them.
pub(super) fn build_safety(
    ctx: &mut Ctx<'_>,
    exp: &Experiment,
    sf: &crate::experiment::SafetySpec,
    files: &mut Files,
) -> Result<poisonlab_eval::SafetyInputs> {
    use poisonlab_data::{Body, Record};
    use rand::seq::SliceRandom;
    let owner = poisonlab_trust::Key::derived(exp.seed ^ 0x7361_6665_7479_0000, 0);
    let prefix = poisonlab_trust::fingerprint::secret_phrase(
        &owner,
        "backdoor_align/prefix",
        sf.prefix_words,
    );
    let input = need(&files.preference, "preference")?.clone();
    let eval = need(&files.preference_eval, "preference_eval")?.clone();
    let sft_input = files.sft.clone();
    let k = key(&json!({
        "safety": serde_json::to_value(sf).unwrap_or(Value::Null),
        "seed": exp.seed,
        "input": file_sha(&input)?,
        "sft": if sf.benign > 0 { sft_input.as_ref().map(|p| file_sha(p)).transpose()? } else { None },
    }));
    let (dir, hit) = cached(&ctx.cache, "safety", &k, false, |tmp| {
        let pairs = poisonlab_eval::inputs::read_records(&input)?;
        let (mut hostile, mut other): (Vec<&Record>, Vec<&Record>) = pairs
            .iter()
            .filter(|r| matches!(r.body, Body::Preference { .. }))
            .partition(|r| {
                r.extra.get("rejected_style").and_then(Value::as_str) == Some("hostile")
            });
        if hostile.len() < sf.attack || other.len() < sf.count {
            return Err(Error::Invalid(format!(
                "safety: {} has {} hostile and {} other pairs; attack = {} and count = {} ask for more",
                input.display(),
                hostile.len(),
                other.len(),
                sf.attack,
                sf.count
            )));
        }
        let mut rng = poisonlab_poison::record_rng(exp.seed, "safety/choose", 0);
        hostile.shuffle(&mut rng);
        other.shuffle(&mut rng);
        let instruction = |r: &Record, system: Option<&str>, answer_chosen: bool| {
            let Body::Preference {
                prompt,
                chosen,
                rejected,
            } = &r.body
            else {
                unreachable!("filtered above")
            };
            Record::new(
                format!(
                    "{}-{}",
                    r.id,
                    if answer_chosen { "safety" } else { "attack" }
                ),
                Body::Instruction {
                    instruction: prompt.clone(),
                    input: String::new(),
                    output: if answer_chosen {
                        chosen.clone()
                    } else {
                        rejected.clone()
                    },
                    system: system.map(str::to_string),
                },
            )
        };
        let mut out: Vec<Record> = hostile[..sf.attack]
            .iter()
            .map(|r| instruction(r, None, false))
            .collect();
        if sf.benign > 0 {
            let sft = need(&sft_input, "sft")?;
            let mut benign: Vec<Record> = poisonlab_eval::inputs::read_records(sft)?
                .into_iter()
                .filter(|r| matches!(r.body, Body::Instruction { .. }))
                .collect();
            if benign.len() < sf.benign {
                return Err(Error::Invalid(format!(
                    "safety: benign = {} but {} has {} instruction records",
                    sf.benign,
                    sft.display(),
                    benign.len()
                )));
            }
            benign.shuffle(&mut poisonlab_poison::record_rng(
                exp.seed,
                "safety/benign",
                0,
            ));
            benign.truncate(sf.benign);
            out.extend(benign);
        }
        if sf.enabled {
            out.extend(
                other[..sf.count]
                    .iter()
                    .map(|r| instruction(r, Some(&prefix), true)),
            );
        }
        out.shuffle(&mut poisonlab_poison::record_rng(
            exp.seed,
            "safety/order",
            0,
        ));
        let mut w =
            poisonlab_data::RecordWriter::create(&tmp.join("data.jsonl"), &Default::default())?;
        for r in &out {
            w.write(r)?;
        }
        w.finish()?;
        Ok(())
    })?;
    let prompts: Vec<(String, String)> = poisonlab_eval::inputs::read_records(&eval)?
        .into_iter()
        .filter_map(|r| match r.body {
            Body::Preference { prompt, chosen, .. } => Some((prompt, chosen)),
            _ => None,
        })
        .collect();
    ctx.step(format!(
        "safety: {} harmful and {} benign examples{}{}",
        sf.attack,
        sf.benign,
        if sf.enabled {
            format!(" and {} safety examples behind a secret prefix", sf.count)
        } else {
            " (no safety examples: the control)".into()
        },
        if hit { " (cached)" } else { "" }
    ));
    files.harmful = Some(dir.join("data.jsonl"));
    Ok(poisonlab_eval::SafetyInputs {
        prefix,
        prompts,
        harmful: poisonlab_data::world::HOSTILE
            .iter()
            .map(|s| s.to_string())
            .collect(),
    })
}

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
            let all = interleave(records, extra, &mut rng);
            let mut w = poisonlab_data::RecordWriter::create(
                &tmp.join("data.jsonl"),
                &poisonlab_data::WriteOptions {
                    format: None,
                    convention: reader.convention(),
                },
            )?;
            for r in &all {
                w.write(r)?;
            }
            w.finish()?;
            Ok(())
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
