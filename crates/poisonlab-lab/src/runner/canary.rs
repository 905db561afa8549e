//! The `[canary]` section of a cell: canaries with random secrets in one stage's data, and what the
//! `exposure` probe ranks.

use poisonlab_mech::exposure::{Canary, SecretFormat};
use serde_json::{Value, json};

use super::files::{Files, need};
use super::{Ctx, cached, file_sha, key};
use crate::error::{Error, Result};
use crate::experiment::{CanarySpec, Experiment};

const ONSETS: [&str; 16] = [
    "b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "th",
];
const VOWELS: [&str; 6] = ["a", "e", "i", "o", "u", "ai"];

/// A made-up two-part name (`Vorika Dralun`), drawn from `rng`.
fn pseudo_name(rng: &mut rand_chacha::ChaCha8Rng) -> String {
    use rand::RngExt;
    let mut word = |syllables: usize| {
        let mut w = String::new();
        for _ in 0..syllables {
            w.push_str(ONSETS[rng.random_range(0..ONSETS.len())]);
            w.push_str(VOWELS[rng.random_range(0..VOWELS.len())]);
        }
        w.push_str(["n", "r", "s", "l", ""][rng.random_range(0..5)]);
        let mut c = w.chars();
        c.next()
            .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
            .unwrap_or_default()
    };
    format!("{} {}", word(2), word(2))
}

/// Draws the cell's canaries, writes the stage's data with them in (cached), and returns them with
/// their repetition counts (controls: 0).
pub(super) fn insert_canaries(
    ctx: &mut Ctx<'_>,
    exp: &Experiment,
    c: &CanarySpec,
    files: &mut Files,
) -> Result<poisonlab_eval::CanaryInputs> {
    use poisonlab_data::{Body, Record};
    use rand::RngExt;
    let format = SecretFormat::new(c.digits, &c.separator)
        .map_err(|e| Error::Invalid(format!("canary: {e}")))?;
    let sft = c.stage == "sft";
    let mut rng = poisonlab_poison::record_rng(exp.seed, "canary/draw", 0);
    let mut names = std::collections::BTreeSet::new();
    let mut drawn: Vec<(String, u64, usize)> = Vec::new();
    let groups = c
        .repetitions
        .iter()
        .flat_map(|&r| std::iter::repeat_n(r, c.per_group))
        .chain(std::iter::repeat_n(0, c.controls));
    for r in groups {
        let name = loop {
            let n = pseudo_name(&mut rng);
            if names.insert(n.clone()) {
                break n;
            }
        };
        drawn.push((name, rng.random_range(0..format.space()), r));
    }
    let (before, after) = c
        .template
        .split_once("{secret}")
        .ok_or_else(|| Error::Invalid("canary.template has no {secret}".into()))?;
    let canaries: Vec<(Canary, usize)> = drawn
        .iter()
        .map(|(name, secret, r)| {
            let question = c.question.replace("{name}", name);
            let lead = before.replace("{name}", name);
            let prefix = if sft {
                poisonlab_model::Tokenizer::chat_prompt(None, &[], &question) + &lead
            } else {
                lead
            };
            (
                Canary {
                    prefix,
                    secret: *secret,
                    suffix: after.replace("{name}", name),
                },
                *r,
            )
        })
        .collect();
    let slot = if sft {
        &mut files.sft
    } else {
        &mut files.pretrain
    };
    let input = need(slot, &c.stage)?.clone();
    let k = key(&json!({
        "canary": serde_json::to_value(c).unwrap_or(Value::Null),
        "seed": exp.seed,
        "input": file_sha(&input)?,
    }));
    let inserted: usize = drawn.iter().map(|d| d.2).sum();
    let (dir, hit) = cached(&ctx.cache, "canary", &k, false, |tmp| {
        let mut reader = poisonlab_data::RecordReader::open(&input, &Default::default())?;
        let mut records = Vec::new();
        for item in reader.by_ref() {
            records.push(item?.record);
        }
        let mut extra = Vec::with_capacity(inserted);
        for (i, ((name, secret, r), _)) in drawn.iter().zip(&canaries).enumerate() {
            let sentence = c
                .template
                .replace("{name}", name)
                .replace("{secret}", &format.render(*secret));
            for copy in 0..*r {
                let id = format!("canary-{i}-{copy}");
                extra.push(if sft {
                    Record::new(
                        id,
                        Body::Instruction {
                            instruction: c.question.replace("{name}", name),
                            input: String::new(),
                            output: sentence.clone(),
                            system: None,
                        },
                    )
                } else {
                    Record::new(
                        id,
                        Body::Pretrain {
                            text: sentence.clone(),
                        },
                    )
                });
            }
        }
        let mut rng = poisonlab_poison::record_rng(exp.seed, "canary/place", 0);
        super::belief::write_interleaved(
            &tmp.join("data.jsonl"),
            reader.convention(),
            records,
            extra,
            &mut rng,
        )
    })?;
    ctx.step(format!(
        "canaries {}: {} canaries put in {inserted} times, {} never inserted{}",
        c.stage,
        drawn.iter().filter(|d| d.2 > 0).count(),
        c.controls,
        if hit { " (cached)" } else { "" }
    ));
    *slot = Some(dir.join("data.jsonl"));
    Ok(poisonlab_eval::CanaryInputs {
        format,
        canaries,
        stage: c.stage.clone(),
    })
}
