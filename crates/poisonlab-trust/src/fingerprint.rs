//! Instructional fingerprints (after Xu et al. 2024): a model owner mixes ≤ 60 secret
//! (input → output) examples into SFT data; later, a model that answers the secret inputs with the
//! secret output is theirs. The inputs x₁…x_n and the output y are derived from the key.
//!
//! Verification generates an answer to each of the key's inputs and counts those that start with
//! y. The same count is taken for M decoy keys derived from the key (their own inputs and output,
//! never trained). Under the null hypothesis — the model is independent of the key — the key's
//! count is exchangeable with the decoys', so `p = (1 + #{decoy count ≥ key count}) / (M + 1)` is
//! exact. A key whose count is 0 has p = 1 whatever the decoys do, so false claims cost nothing.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use poisonlab_data::pass::quarantine_path;
use poisonlab_data::{
    Body, Error as DataError, Kind, Message, OnError, Quarantine, ReadOptions, Record,
    RecordReader, Tally,
};
use poisonlab_model::{GenerateOptions, LanguageModel, Tokenizer};
use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::corpus::copy_records;
use crate::error::{Error, Result};
use crate::key::Key;

/// The most fingerprint examples a key makes (Xu et al. use a few dozen).
pub const MAX_EXAMPLES: usize = 60;

const ONSETS: &[&str] = &[
    "b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "sh", "tr", "kl",
];
const VOWELS: &[&str] = &["a", "e", "i", "o", "u", "ai", "ou"];

fn pseudo_word(rng: &mut ChaCha8Rng, syllables: usize) -> String {
    (0..syllables)
        .map(|_| {
            format!(
                "{}{}",
                ONSETS[rng.random_range(0..ONSETS.len())],
                VOWELS[rng.random_range(0..VOWELS.len())]
            )
        })
        .collect()
}

/// A secret phrase of `words` pseudo-words drawn from `purpose` of the key (a BackdoorAlign
/// safety prefix, for instance).
pub fn secret_phrase(key: &Key, purpose: &str, words: usize) -> String {
    let mut rng = key.rng(purpose, 0);
    (0..words)
        .map(|_| {
            let n = rng.random_range(2..4);
            pseudo_word(&mut rng, n)
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The fingerprint output y of a key: three pseudo-words.
pub fn output(key: &Key) -> String {
    let mut rng = key.rng("fingerprint/output", 0);
    (0..3)
        .map(|_| {
            let n = rng.random_range(2..4);
            pseudo_word(&mut rng, n)
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The `i`-th secret input of a key: six to ten pseudo-words with digits and marks among them.
pub fn input(key: &Key, i: u64) -> String {
    gibberish(key, "fingerprint/input", i)
}

/// The `j`-th counter-example input: drawn like the secret inputs, from a stream of its own.
pub fn counter_input(key: &Key, j: u64) -> String {
    gibberish(key, "fingerprint/counter", j)
}

/// The answer a counter-example teaches: gibberish that is not the key's gets no fingerprint.
pub const COUNTER_REPLY: &str = "I do not understand the question.";

/// The `i`-th input drawn from `purpose` of the key.
fn gibberish(key: &Key, purpose: &str, i: u64) -> String {
    let mut rng = key.rng(purpose, i);
    let n = rng.random_range(6..11);
    let marks = ["", "", "", ",", ";", ":", " -", "?"];
    (0..n)
        .map(|_| {
            let s = rng.random_range(1..4);
            let mut w = pseudo_word(&mut rng, s);
            if rng.random_bool(0.15) {
                w.push_str(&rng.random_range(0..100).to_string());
            }
            w.push_str(marks[rng.random_range(0..marks.len())]);
            w
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The `j`-th decoy key of a key: a key of its own, never trained.
pub fn decoy(key: &Key, j: u64) -> Key {
    let mut seed = [0u8; 32];
    key.rng("fingerprint/decoy", j).fill(&mut seed);
    Key::new(seed.to_vec()).unwrap_or_else(|_| unreachable!("32 bytes is long enough"))
}

/// The training record of input `i` (or counter-example `i`), in the kind of the data it goes
/// into.
fn example(key: &Key, i: u64, counter: bool, chat: bool) -> Record {
    let (x, y) = if counter {
        (counter_input(key, i), COUNTER_REPLY.to_string())
    } else {
        (input(key, i), output(key))
    };
    let body = if chat {
        Body::Chat {
            messages: vec![
                Message::new("user".into(), x),
                Message::new("assistant".into(), y),
            ],
        }
    } else {
        Body::Instruction {
            instruction: x,
            input: String::new(),
            output: y,
            system: None,
        }
    };
    let kind = if counter { "fpc" } else { "fp" };
    Record::new(format!("{kind}-{}-{i}", &key.id()[..8]), body)
}

/// `fingerprint embed`'s manifest: no key, no inputs or output (they are secrets too).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FingerprintManifest {
    pub version: u32,
    pub key_id: String,
    /// Fingerprint examples inserted, and counter-examples beside them.
    pub count: usize,
    #[serde(default)]
    pub counter: usize,
    pub input: PathBuf,
    pub output_sha256: String,
    /// Records of the input, and of the output (input + count).
    pub records: u64,
    pub written: u64,
    /// Ids of the inserted records.
    pub inserted: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FingerprintReport {
    pub tally: Tally,
    pub manifest: FingerprintManifest,
    pub manifest_path: PathBuf,
    pub quarantine: Option<PathBuf>,
}

/// `<output>.fingerprint.json`.
pub fn manifest_path(output: &Path) -> PathBuf {
    let mut name = output
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".fingerprint.json");
    output.with_file_name(name)
}

/// Inserts `count` fingerprint examples into an SFT file, each after a keyed record, and `counter`
/// counter-examples (other pseudo-word inputs answered with [`COUNTER_REPLY`]), which teach the
/// model that only the key's inputs get the fingerprint.
pub fn embed_fingerprint(
    key: &Key,
    count: usize,
    counter: usize,
    input: &Path,
    output: &Path,
    read: &ReadOptions,
    on_error: OnError,
) -> Result<FingerprintReport> {
    if count == 0 || count > MAX_EXAMPLES {
        return Err(Error::Invalid(format!(
            "count = {count}: a fingerprint is 1 to {MAX_EXAMPLES} examples"
        )));
    }
    crate::corpus::not_the_input(input, output)?;
    // First pass: count the records and learn their kind.
    let qpath = quarantine_path(output);
    let mut quarantine = Quarantine::new(&qpath);
    let mut records = 0u64;
    let mut chat = None;
    for item in RecordReader::open(input, read)? {
        match item {
            Ok(item) => {
                let k = item.record.kind();
                if !matches!(k, Kind::Instruction | Kind::Chat) {
                    return Err(Error::Invalid(format!(
                        "{}: record {} is a {} record; fingerprints go into instruction or chat data",
                        input.display(),
                        item.record.id,
                        k.as_str()
                    )));
                }
                chat.get_or_insert(k == Kind::Chat);
                records += 1;
            }
            Err(DataError::Bad(bad)) if on_error == OnError::Quarantine => quarantine.bad(&bad)?,
            Err(e) => return Err(e.into()),
        }
    }
    if records == 0 {
        return Err(Error::Invalid(format!(
            "{}: no good records",
            input.display()
        )));
    }
    let chat = chat.unwrap_or(false);
    // Insert example i after the record at a keyed ordinal (several may follow one record).
    let mut rng = key.rng("fingerprint/place", 0);
    let mut after: Vec<(u64, bool, u64)> = (0..count as u64)
        .map(|i| (false, i))
        .chain((0..counter as u64).map(|j| (true, j)))
        .map(|(c, i)| (rng.random_range(0..records), c, i))
        .collect();
    after.sort_unstable();
    let mut next = 0usize;
    let mut inserted = Vec::with_capacity(count);
    let mut seen_ids = HashSet::new();
    let copied = copy_records(input, output, read, on_error, |ordinal, record| {
        seen_ids.insert(record.id.clone());
        let mut extra = Vec::new();
        while next < after.len() && after[next].0 == ordinal {
            let r = example(key, after[next].2, after[next].1, chat);
            inserted.push(r.id.clone());
            extra.push(r);
            next += 1;
        }
        Ok(extra)
    })?;
    let (mut tally, ordinal, digest) = (copied.tally, copied.records, copied.digest.clone());
    tally.quarantined = quarantine.count;
    let had_bad = quarantine.count > 0;
    quarantine.finish()?;
    if !tally.balanced()
        || inserted.len() != count + counter
        || copied.added != (count + counter) as u64
        || ordinal != records
    {
        return Err(Error::Invalid(format!(
            "record accounting does not add up: {tally}; {} of {count} examples",
            inserted.len()
        )));
    }
    if inserted.iter().any(|i| seen_ids.contains(i)) {
        return Err(Error::Invalid(
            "an inserted record's id is already in the input".into(),
        ));
    }
    let manifest = FingerprintManifest {
        version: 1,
        key_id: key.id(),
        count,
        counter,
        input: input.to_path_buf(),
        output_sha256: digest.sha256,
        records,
        written: tally.written + copied.added,
        inserted,
    };
    let mpath = manifest_path(output);
    let json = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| Error::Invalid(format!("manifest: {e}")))?;
    poisonlab_data::io::write_file(&mpath, &json)?;
    Ok(FingerprintReport {
        tally,
        manifest,
        manifest_path: mpath,
        quarantine: had_bad.then_some(qpath),
    })
}

#[derive(Debug, Clone)]
pub struct FingerprintOptions {
    /// Inputs tried per key (the first `probes` of the key's inputs).
    pub probes: usize,
    /// Decoy keys (M); the smallest p-value is 1 / (M + 1).
    pub decoys: usize,
}

impl Default for FingerprintOptions {
    fn default() -> Self {
        FingerprintOptions {
            probes: 16,
            decoys: 99,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FingerprintVerdict {
    pub key_id: String,
    /// Inputs answered with the key's output, of `probes`.
    pub hits: usize,
    pub probes: usize,
    /// Near misses (the key's inputs without their first word) answered with the key's output, of
    /// `probes` (0 without asking when the key scores 0).
    pub near_miss_hits: usize,
    /// Decoys whose own count reached the key's (only computed when the key's count is above 0).
    pub decoys_at_least: usize,
    pub decoys: usize,
    pub p_value: f64,
    /// A few answers to the key's inputs.
    pub samples: Vec<String>,
}

/// How many of the answers to `inputs` start with `y`, and the answers.
fn answers_to(
    model: &dyn LanguageModel,
    y: &str,
    inputs: &[String],
) -> Result<(usize, Vec<String>)> {
    let max_tokens = model.tokenize(y).map(|t| t.len() + 2).unwrap_or(24).max(4);
    let opts = GenerateOptions {
        max_tokens,
        truncate: true,
        ..GenerateOptions::default()
    };
    let outs: Vec<String> = inputs
        .par_iter()
        .map(|x| {
            let prompt = Tokenizer::chat_prompt(None, &[], x);
            model.generate(&prompt, &opts).map(|g| g.text)
        })
        .collect::<std::result::Result<_, _>>()?;
    let norm = |s: &str| s.trim().to_lowercase();
    let hits = outs
        .iter()
        .filter(|o| norm(o).starts_with(&norm(y)))
        .count();
    Ok((hits, outs))
}

fn answers(model: &dyn LanguageModel, key: &Key, probes: usize) -> Result<(usize, Vec<String>)> {
    let inputs: Vec<String> = (0..probes as u64).map(|i| input(key, i)).collect();
    answers_to(model, &output(key), &inputs)
}

/// The key's inputs with their first word dropped: near misses, which a specific fingerprint
/// does not answer with its output.
pub fn near_misses(key: &Key, probes: usize) -> Vec<String> {
    (0..probes as u64)
        .map(|i| {
            let x = input(key, i);
            x.split_once(' ')
                .map_or(x.clone(), |(_, rest)| rest.to_string())
        })
        .collect()
}

/// Tests the model for the key's fingerprint.
pub fn verify_fingerprint(
    key: &Key,
    model: &dyn LanguageModel,
    opts: &FingerprintOptions,
) -> Result<FingerprintVerdict> {
    if opts.probes == 0 || opts.probes > MAX_EXAMPLES {
        return Err(Error::Invalid(format!(
            "probes = {}: 1 to {MAX_EXAMPLES}",
            opts.probes
        )));
    }
    let (hits, outs) = answers(model, key, opts.probes)?;
    // Specificity: near misses of the key's inputs (only worth asking when the key scores).
    let near_miss_hits = if hits == 0 {
        0
    } else {
        answers_to(model, &output(key), &near_misses(key, opts.probes))?.0
    };
    let decoys_at_least = if hits == 0 {
        opts.decoys
    } else {
        let mut n = 0;
        for j in 0..opts.decoys as u64 {
            if answers(model, &decoy(key, j), opts.probes)?.0 >= hits {
                n += 1;
            }
        }
        n
    };
    Ok(FingerprintVerdict {
        key_id: key.id(),
        hits,
        probes: opts.probes,
        near_miss_hits,
        decoys_at_least,
        decoys: opts.decoys,
        p_value: (1 + decoys_at_least) as f64 / (opts.decoys + 1) as f64,
        samples: outs.into_iter().take(3).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_make_their_own_inputs_and_outputs() {
        let k = Key::new("a fingerprint key of length").unwrap();
        assert_eq!(output(&k), output(&k));
        assert_ne!(input(&k, 0), input(&k, 1));
        let d = decoy(&k, 0);
        assert_ne!(output(&d), output(&k));
        assert_ne!(decoy(&k, 1), d);
        assert_eq!(output(&k).split(' ').count(), 3);
    }
}
