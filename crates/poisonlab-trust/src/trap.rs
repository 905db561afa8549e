//! Copyright traps (after Meeus et al. 2024): synthetic sequences of a chosen length and
//! perplexity, each repeated in a chosen number of documents, and as many sequences drawn the same
//! way and never inserted — the non-members a membership test compares against.
//!
//! Traps are drawn word by word from a reference language model (a Kneser–Ney word bigram of the
//! corpus itself, or of a file you give), at a temperature, and kept only when their perplexity
//! under that reference falls in the asked bucket. Members and non-members of a group are drawn
//! alternately from one stream, so they share every property but having been inserted.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use poisonlab_clean::ngram::NgramLm;
use poisonlab_data::pass::quarantine_path;
use poisonlab_data::{
    Body, OnError, Quarantine, ReadOptions, Record, RecordWriter, Tally, WriteOptions,
};
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::corpus::{Documents, copy_records, not_the_input};
use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq)]
pub struct TrapSpec {
    /// Words per trap.
    pub lengths: Vec<usize>,
    /// Documents each member trap is inserted into.
    pub copies: Vec<usize>,
    /// Member traps per (length, copies) group; as many non-members are drawn beside them.
    pub per_group: usize,
    /// Keep traps whose perplexity under the reference is in [low, high).
    pub perplexity: Option<[f64; 2]>,
    pub temperature: f64,
    pub seed: u64,
}

impl TrapSpec {
    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.lengths.is_empty() || self.lengths.iter().any(|&l| l < 4) {
            return Err("lengths: give one or more, each at least 4 words".into());
        }
        if self.copies.is_empty() || self.copies.contains(&0) {
            return Err("copies: give one or more, each at least 1".into());
        }
        if self.per_group == 0 {
            return Err("per_group must be at least 1".into());
        }
        if !(self.temperature > 0.0 && self.temperature.is_finite()) {
            return Err(format!("temperature = {} must be > 0", self.temperature));
        }
        if let Some([lo, hi]) = self.perplexity
            && !(lo >= 1.0 && hi > lo)
        {
            return Err(format!("perplexity = [{lo}, {hi}]: need 1 <= low < high"));
        }
        Ok(())
    }
}

/// One trap sequence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trap {
    pub id: String,
    pub text: String,
    pub words: usize,
    /// The group's copy count (non-members carry their group's count too).
    pub copies: usize,
    pub member: bool,
    /// Under the reference model.
    pub perplexity: f64,
}

const TRIES: usize = 1000;

/// Draws every group's members and non-members.
pub fn make_traps(reference: &NgramLm, spec: &TrapSpec) -> Result<Vec<Trap>> {
    spec.validate().map_err(Error::Invalid)?;
    let mut out = Vec::new();
    for &words in &spec.lengths {
        for &copies in &spec.copies {
            let mut rng =
                poisonlab_poison::record_rng(spec.seed, &format!("trap/{words}/{copies}"), 0);
            for i in 0..2 * spec.per_group {
                let member = i % 2 == 0;
                let mut made = None;
                let mut last = f64::NAN;
                for _ in 0..TRIES {
                    let raw = reference.sample(words, spec.temperature, &mut rng);
                    let text = sentence(&raw);
                    let ppl = reference.perplexity(&text);
                    last = ppl;
                    if spec.perplexity.is_none_or(|[lo, hi]| ppl >= lo && ppl < hi) {
                        made = Some((text, ppl));
                        break;
                    }
                }
                let (text, perplexity) = made.ok_or_else(|| {
                    Error::Invalid(format!(
                        "no trap of {words} words with reference perplexity in {:?} in {TRIES} draws at temperature {} (the last had {last:.1}); widen the bucket or change the temperature",
                        spec.perplexity, spec.temperature
                    ))
                })?;
                out.push(Trap {
                    id: format!(
                        "trap-{words}w-{copies}x-{}{}",
                        if member { "m" } else { "n" },
                        i / 2
                    ),
                    text,
                    words,
                    copies,
                    member,
                    perplexity,
                });
            }
        }
    }
    Ok(out)
}

/// "w1 w2 … wn" → "W1 w2 … wn."
fn sentence(raw: &str) -> String {
    let mut c = raw.chars();
    match c.next() {
        Some(f) => format!("{}{}.", f.to_uppercase(), c.as_str()),
        None => String::new(),
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct TrapReport {
    pub tally: Tally,
    pub traps: usize,
    pub members: usize,
    /// Documents that received a trap.
    pub documents: usize,
    pub output_sha256: String,
    pub members_file: PathBuf,
    pub nonmembers_file: PathBuf,
    pub quarantine: Option<PathBuf>,
}

/// `<output>.trap-members.jsonl` and `<output>.trap-nonmembers.jsonl`.
pub fn trap_files(output: &Path) -> (PathBuf, PathBuf) {
    let name = output
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    (
        output.with_file_name(format!("{name}.trap-members.jsonl")),
        output.with_file_name(format!("{name}.trap-nonmembers.jsonl")),
    )
}

/// Inserts each member trap at the end of `copies` documents of `input` (distinct documents,
/// chosen uniformly with `seed`), copies everything else, and writes the member and non-member
/// trap files beside the output.
pub fn insert_traps(
    traps: &[Trap],
    input: &Path,
    output: &Path,
    read: &ReadOptions,
    on_error: OnError,
    seed: u64,
) -> Result<TrapReport> {
    not_the_input(input, output)?;
    let qpath = quarantine_path(output);
    let mut quarantine = Quarantine::new(&qpath);
    let docs = Documents::read(input, read, on_error, Some(&mut quarantine))?;
    let members: Vec<&Trap> = traps.iter().filter(|t| t.member).collect();
    let need: usize = members.iter().map(|t| t.copies).sum();
    let mut ordinals: Vec<u64> = docs
        .docs
        .iter()
        .filter(|(_, t)| !t.trim().is_empty())
        .map(|(o, _)| *o)
        .collect();
    if ordinals.len() < need {
        return Err(Error::Invalid(format!(
            "the traps need {need} documents (one trap each), but {} has {} non-empty documents",
            input.display(),
            ordinals.len()
        )));
    }
    ordinals.shuffle(&mut poisonlab_poison::record_rng(seed, "trap/documents", 0));
    let mut host: HashMap<u64, usize> = HashMap::with_capacity(need);
    let mut next = ordinals.into_iter();
    for (ti, t) in members.iter().enumerate() {
        for _ in 0..t.copies {
            if let Some(o) = next.next() {
                host.insert(o, ti);
            }
        }
    }

    let mut inserted = 0usize;
    let copied = copy_records(input, output, read, on_error, |ordinal, record| {
        if let Some(&ti) = host.get(&ordinal)
            && let Body::Pretrain { text } | Body::Passage { text, .. } = &mut record.body
        {
            let sep = if text.ends_with(char::is_whitespace) {
                ""
            } else {
                " "
            };
            text.push_str(sep);
            text.push_str(&members[ti].text);
            inserted += 1;
        }
        Ok(Vec::new())
    })?;
    let (mut tally, digest) = (copied.tally, copied.digest);
    tally.quarantined = quarantine.count;
    let had_bad = quarantine.count > 0;
    quarantine.finish()?;
    if !tally.balanced() || inserted != need {
        return Err(Error::Invalid(format!(
            "record accounting does not add up: {tally}; {inserted} trap copies of {need}"
        )));
    }
    let (mpath, npath) = trap_files(output);
    for (path, member) in [(&mpath, true), (&npath, false)] {
        let mut w = RecordWriter::create(path, &WriteOptions::default())?;
        for t in traps.iter().filter(|t| t.member == member) {
            let mut r = Record::new(
                t.id.clone(),
                Body::Pretrain {
                    text: t.text.clone(),
                },
            );
            for (k, v) in [
                ("words", json!(t.words)),
                ("copies", json!(t.copies)),
                ("member", json!(t.member)),
                ("perplexity", json!(t.perplexity)),
            ] {
                r.extra.insert(k.into(), v);
            }
            w.write(&r)?;
        }
        w.finish()?;
    }
    Ok(TrapReport {
        tally,
        traps: traps.len(),
        members: members.len(),
        documents: host.len(),
        output_sha256: digest.sha256,
        members_file: mpath,
        nonmembers_file: npath,
        quarantine: had_bad.then_some(qpath),
    })
}
