//! The trust sections of a cell: watermarks and copyright traps in its pre-training data, a
//! fingerprint and BackdoorAlign's attack data in its SFT data — each built once (cached), each
//! returning what its probe tests. Belief statements are in `belief.rs`.

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
