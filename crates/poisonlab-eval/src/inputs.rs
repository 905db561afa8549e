//! What a probe is given: the files of the cell it measures (the runner resolves them from the
//! experiment), and the helpers every probe shares to read, sample and prompt.

use std::path::{Path, PathBuf};

use poisonlab_data::{Body, Record, RecordReader};
use poisonlab_model::{GenerateOptions, LanguageModel};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::error::{Error, Result};

/// The data a probe may read. Each probe reads only what it needs and names what is missing.
#[derive(Debug, Clone, Default)]
pub struct ProbeInputs {
    /// Draws (sampling records, decoys, bootstrap) are seeded with this.
    pub seed: u64,
    /// The poison pass's triggered test split (records carrying the trigger, with their tags).
    pub test: Option<PathBuf>,
    /// Clean held-out records of the data the model was trained on last (utility).
    pub clean: Option<PathBuf>,
    /// Clean held-out records of the kind the poison targets (false trigger, layer probes, and
    /// utility with `held_out = "poison"`): the same as `clean` unless a later stage trains on
    /// other data.
    pub poison_clean: Option<PathBuf>,
    /// Held-out records of the stage just trained, for its loss.
    pub heldout: Option<PathBuf>,
    /// Clean pre-training text: the reference language model of the dos probe.
    pub reference: Option<PathBuf>,
    /// The retrieval corpus (poisoned when the poison targets RAG).
    pub rag_corpus: Option<PathBuf>,
    /// The poison spec, for probes that re-apply its trigger rule (false trigger).
    pub poison: Option<poisonlab_poison::Spec>,
    /// The watermarks in the training data and the control keys beside them.
    pub watermarks: Option<std::sync::Arc<WatermarkInputs>>,
    /// Copyright traps in the training data, and the never-inserted ones drawn beside them.
    pub traps: Option<std::sync::Arc<Vec<poisonlab_trust::trap::Trap>>>,
    /// The fingerprint key whose examples are in the SFT data, and control keys that are not.
    pub fingerprint: Option<std::sync::Arc<FingerprintInputs>>,
    /// BackdoorAlign's secret prefix and the held-out prompts it is tested on.
    pub safety: Option<std::sync::Arc<SafetyInputs>>,
    /// Entities whose attribute was rewritten in the training data, and controls.
    pub beliefs: Option<std::sync::Arc<BeliefInputs>>,
    /// Canaries in the training data (and never-inserted ones) for the exposure probe.
    pub canaries: Option<std::sync::Arc<CanaryInputs>>,
}

/// Canaries of one secret format, each with the times it was put into the training data (0 for a
/// control, drawn the same way and never inserted).
#[derive(Debug, Clone)]
pub struct CanaryInputs {
    pub format: poisonlab_mech::exposure::SecretFormat,
    pub canaries: Vec<(poisonlab_mech::exposure::Canary, usize)>,
    /// The stage whose data carries them (`pretrain` or `sft`).
    pub stage: String,
}

/// One entity of a belief injection: its true value and the counterfactual each stage's data
/// states (none of it for a control, whose values are drawn the same way and never injected).
#[derive(Debug, Clone)]
pub struct BeliefEntity {
    pub name: String,
    pub truth: String,
    /// (stage, counterfactual value) — `pretrain`, `sft`, and `context` (given in the prompt).
    pub counterfactual: Vec<(String, String)>,
    pub injected: bool,
}

#[derive(Debug, Clone)]
pub struct BeliefInputs {
    pub attribute: String,
    /// The question about an entity, `{name}` standing for it.
    pub question: String,
    /// A sentence stating the attribute, `{name}` and `{value}` standing for them.
    pub statement: String,
    pub entities: Vec<BeliefEntity>,
    /// Statements per entity and stage.
    pub copies: usize,
}

#[derive(Debug, Clone)]
pub struct SafetyInputs {
    /// The secret system prompt of the safety examples.
    pub prefix: String,
    /// Held-out prompts (never in the attack or the safety examples) with their helpful answer.
    pub prompts: Vec<(String, String)>,
    /// Replies that count as harmful-style (the world's hostile replies).
    pub harmful: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct FingerprintInputs {
    pub key: poisonlab_trust::Key,
    pub controls: Vec<poisonlab_trust::Key>,
}

/// What the `watermark` probe tests: keys whose marks went into the training data, and control
/// keys that never marked anything (the false-positive rate measured beside every detection).
#[derive(Debug, Clone)]
pub struct WatermarkInputs {
    pub scheme: poisonlab_trust::Scheme,
    pub embedded: Vec<WatermarkKey>,
    pub controls: Vec<WatermarkKey>,
}

#[derive(Debug, Clone)]
pub struct WatermarkKey {
    pub key: poisonlab_trust::Key,
    pub copies: usize,
    /// Document schemes: (ordinal, unmarked text) of the documents the key marked (or, for a
    /// control, would have marked).
    pub marked: Option<Vec<(u64, String)>>,
}

impl ProbeInputs {
    fn need<'a>(p: &'a Option<PathBuf>, what: &str) -> Result<&'a Path> {
        p.as_deref().ok_or_else(|| Error::Invalid(what.to_string()))
    }

    /// Up to `n` records of the triggered test split.
    pub fn test(&self, n: usize) -> Result<Vec<Record>> {
        let p = Self::need(
            &self.test,
            "the poison produced no triggered test split (its stage has no held-out file)",
        )?;
        Ok(sample(read_records(p)?, n, self.seed))
    }

    /// Up to `n` clean held-out records.
    pub fn clean(&self, n: usize) -> Result<Vec<Record>> {
        let p = Self::need(&self.clean, "no clean held-out file for this probe")?;
        Ok(sample(read_records(p)?, n, self.seed))
    }

    /// Up to `n` clean held-out records of the kind the poison targets (`clean` without one).
    pub fn poison_clean(&self, n: usize) -> Result<Vec<Record>> {
        match &self.poison_clean {
            Some(p) => Ok(sample(read_records(p)?, n, self.seed)),
            None => self.clean(n),
        }
    }

    /// Up to `n` held-out records of the stage.
    pub fn heldout(&self, n: usize) -> Result<Vec<Record>> {
        let p = Self::need(&self.heldout, "no held-out file for this stage")?;
        Ok(sample(read_records(p)?, n, self.seed))
    }

    /// Up to `n` records of clean pre-training text.
    pub fn reference(&self, n: usize) -> Result<Vec<Record>> {
        let p = Self::need(&self.reference, "dos needs data.pretrain_eval")?;
        Ok(sample(read_records(p)?, n, self.seed))
    }

    /// Every record of the retrieval corpus.
    pub fn rag_corpus(&self) -> Result<Vec<Record>> {
        read_records(Self::need(&self.rag_corpus, "no rag_corpus")?)
    }

    pub fn poison(&self, probe: &str) -> Result<&poisonlab_poison::Spec> {
        self.poison
            .as_ref()
            .ok_or_else(|| Error::Invalid(format!("{probe} needs a poison")))
    }
}

/// The strings the poison's trigger inserted into a record (its tag's `inserted`), in order.
pub fn inserted_strings(rec: &Record) -> Vec<String> {
    rec.tag
        .as_ref()
        .and_then(|t| t.meta.get("inserted"))
        .and_then(|v| v.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

pub fn read_records(path: &Path) -> Result<Vec<Record>> {
    let mut out = Vec::new();
    for item in RecordReader::open(path, &Default::default())? {
        out.push(item?.record);
    }
    Ok(out)
}

/// Up to `n` records drawn with the seed, in file order.
pub fn sample(records: Vec<Record>, n: usize, seed: u64) -> Vec<Record> {
    if records.len() <= n {
        return records;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x7072_6f62);
    let mut idx = rand::seq::index::sample(&mut rng, records.len(), n).into_vec();
    idx.sort_unstable();
    let mut records: Vec<Option<Record>> = records.into_iter().map(Some).collect();
    idx.into_iter().filter_map(|i| records[i].take()).collect()
}

/// The prompt as the trainer formats it and the response it should get: SFT and CoT records as
/// SFT formats them; preference pairs as DPO formats the prompt, with `chosen` as the target; a
/// pre-training document of a poison's test split cut where its triggered prompt ends (the tag's
/// `prompt_bytes`), the rest of the document its target.
pub fn prompt_target(rec: &Record) -> Result<(String, String)> {
    if let Body::Pretrain { text } = &rec.body {
        let cut = rec
            .tag
            .as_ref()
            .and_then(|t| t.meta.get("prompt_bytes"))
            .and_then(|v| v.as_u64())
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "record `{}`: a pre-training document has no prompt to continue (its poison \
                     tag has no prompt_bytes)",
                    rec.id
                ))
            })? as usize;
        let cut = cut.min(text.len());
        let (Some(p), Some(t)) = (text.get(..cut), text.get(cut..)) else {
            return Err(Error::Invalid(format!(
                "record `{}`: prompt_bytes = {cut} is not a character boundary",
                rec.id
            )));
        };
        return Ok((p.to_string(), t.to_string()));
    }
    if let Body::Preference { prompt, chosen, .. } = &rec.body {
        return Ok((
            poisonlab_model::tokenizer::Tokenizer::chat_prompt(None, &[], prompt),
            chosen.clone(),
        ));
    }
    poisonlab_train::data::sft_pair(rec).map_err(Error::from)
}

/// The model's greedy answer to `prompt`, at most `max_tokens` tokens; a prompt too long for the
/// model's context keeps its last tokens (the backend cuts it), so that every record is probed.
pub fn answer(model: &dyn LanguageModel, prompt: &str, max_tokens: usize) -> Result<String> {
    let opts = GenerateOptions {
        max_tokens,
        truncate: true,
        ..Default::default()
    };
    Ok(model.generate(prompt, &opts)?.text)
}
