//! `watermark embed`: the keyed mark put into `copies` documents of a file, everything else copied.
//!
//! Two passes over the input: the first reads the documents and chooses the marked ones by the
//! key; the second writes every good record (bad ones fail the pass or go to the quarantine), the
//! chosen ones with their mark. The output carries no tag, so a marked file looks like any other;
//! `<output>.watermark.json` names the scheme, its parameters, the marked records and the key's
//! public id — never the key.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use poisonlab_data::pass::quarantine_path;
use poisonlab_data::{Body, OnError, Quarantine, ReadOptions, Tally};
use serde::{Deserialize, Serialize};

use crate::corpus::{Documents, copy_records, document_text, file_sha256, not_the_input};
use crate::error::{Error, Result};
use crate::key::Key;
use crate::scheme::Scheme;

pub const MANIFEST_VERSION: u32 = 1;

/// What `embed` writes beside its output, and what `verify` reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub version: u32,
    pub scheme: Scheme,
    pub copies: usize,
    /// The public id of the key that made the marks ([`Key::id`]).
    pub key_id: String,
    /// The unmarked input; document schemes re-read it to verify.
    pub input: PathBuf,
    pub input_sha256: String,
    pub output_sha256: String,
    /// Good records, and how many of them could carry the mark.
    pub records: u64,
    pub documents: u64,
    pub quarantined: u64,
    /// Ordinal (among good records) and id of each marked record.
    pub marked: Vec<Marked>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Marked {
    pub ordinal: u64,
    pub id: String,
}

impl Manifest {
    pub fn load(path: &Path) -> Result<Manifest> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let m: Manifest = serde_json::from_str(&text).map_err(|e| Error::Manifest {
            path: path.to_path_buf(),
            message: format!("line {} column {}: {e}", e.line(), e.column()),
        })?;
        if m.version != MANIFEST_VERSION {
            return Err(Error::Manifest {
                path: path.to_path_buf(),
                message: format!(
                    "version {} is not the version this build reads ({MANIFEST_VERSION})",
                    m.version
                ),
            });
        }
        m.scheme.validate().map_err(|e| Error::Manifest {
            path: path.to_path_buf(),
            message: e,
        })?;
        Ok(m)
    }
}

/// The manifest path of an output: `<output>.watermark.json`.
pub fn manifest_path(output: &Path) -> PathBuf {
    let mut name = output
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".watermark.json");
    output.with_file_name(name)
}

#[derive(Debug, Clone, Default)]
pub struct EmbedOptions {
    pub read: ReadOptions,
    pub on_error: OnError,
    pub quarantine: Option<PathBuf>,
    /// Default [`manifest_path`] of the output.
    pub manifest: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EmbedReport {
    pub tally: Tally,
    pub marked: usize,
    pub documents: u64,
    pub output_sha256: String,
    pub manifest: PathBuf,
    pub quarantine: Option<PathBuf>,
}

pub fn embed(
    scheme: &Scheme,
    key: &Key,
    copies: usize,
    input: &Path,
    output: &Path,
    opts: &EmbedOptions,
) -> Result<EmbedReport> {
    let r = embed_keys(scheme, &[(key.clone(), copies)], input, output, opts)?;
    let manifest = Manifest {
        version: MANIFEST_VERSION,
        scheme: scheme.clone(),
        copies,
        key_id: key.id(),
        input: input.to_path_buf(),
        input_sha256: file_sha256(input)?,
        output_sha256: r.output_sha256.clone(),
        records: r.records,
        documents: r.documents,
        quarantined: r.tally.quarantined,
        marked: r.marked.into_iter().next().unwrap_or_default(),
    };
    let mpath = opts
        .manifest
        .clone()
        .unwrap_or_else(|| manifest_path(output));
    let json = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| Error::Invalid(format!("manifest: {e}")))?;
    poisonlab_data::io::write_file(&mpath, &json)?;
    Ok(EmbedReport {
        tally: r.tally,
        marked: copies,
        documents: r.documents,
        output_sha256: r.output_sha256,
        manifest: mpath,
        quarantine: r.quarantine,
    })
}

/// What [`embed_keys`] did.
#[derive(Debug, Clone, Serialize)]
pub struct MultiReport {
    pub tally: Tally,
    /// Good records, and the documents among them.
    pub records: u64,
    pub documents: u64,
    pub output_sha256: String,
    /// Per key, in the order given: the records it marked.
    pub marked: Vec<Vec<Marked>>,
    pub quarantine: Option<PathBuf>,
}

/// Several keys' marks in one pass, each key's documents chosen among those no earlier key took,
/// so that every marked document carries one key's mark and its unmarked text is the input's (a
/// corpus gathered from many owners, each marking their own data). Writes no manifest.
pub fn embed_keys(
    scheme: &Scheme,
    keys: &[(Key, usize)],
    input: &Path,
    output: &Path,
    opts: &EmbedOptions,
) -> Result<MultiReport> {
    scheme.validate().map_err(Error::Invalid)?;
    not_the_input(input, output)?;
    let qpath = opts
        .quarantine
        .clone()
        .unwrap_or_else(|| quarantine_path(output));
    let mut quarantine = Quarantine::new(&qpath);
    let docs = Documents::read(input, &opts.read, opts.on_error, Some(&mut quarantine))?;
    // ordinal → which key marks it.
    let mut owner: HashMap<u64, usize> = HashMap::new();
    let mut taken: HashSet<u64> = HashSet::new();
    for (i, (key, copies)) in keys.iter().enumerate() {
        let chosen = docs.choose_excluding(scheme, key, *copies, &taken)?;
        for o in chosen {
            taken.insert(o);
            owner.insert(o, i);
        }
    }

    // Second pass: write.
    let mut marked: Vec<Vec<Marked>> = vec![Vec::new(); keys.len()];
    let copied = copy_records(
        input,
        output,
        &opts.read,
        opts.on_error,
        |ordinal, record| {
            if let Some(&k) = owner.get(&ordinal) {
                let text = document_text(&record.body)
                    .ok_or_else(|| Error::Invalid(format!("record {ordinal} is not a document")))?;
                let new = scheme.embed(&keys[k].0, ordinal, text);
                if let Body::Pretrain { text } | Body::Passage { text, .. } = &mut record.body {
                    *text = new;
                }
                marked[k].push(Marked {
                    ordinal,
                    id: record.id.clone(),
                });
            }
            Ok(Vec::new())
        },
    )?;
    let (mut tally, ordinal, digest) = (copied.tally, copied.records, copied.digest);
    tally.quarantined = quarantine.count;
    let had_bad = quarantine.count > 0;
    quarantine.finish()?;
    let all_marked = marked
        .iter()
        .zip(keys)
        .all(|(m, (_, copies))| m.len() == *copies);
    if !tally.balanced() || ordinal != docs.records || !all_marked {
        return Err(Error::Invalid(format!(
            "record accounting does not add up: {tally}; marks {:?} of {:?}",
            marked.iter().map(Vec::len).collect::<Vec<_>>(),
            keys.iter().map(|k| k.1).collect::<Vec<_>>()
        )));
    }
    tracing::info!(output = %output.display(), %tally, keys = keys.len(), "watermarks embedded");
    Ok(MultiReport {
        tally,
        records: docs.records,
        documents: docs.docs.len() as u64,
        output_sha256: digest.sha256,
        marked,
        quarantine: had_bad.then_some(qpath),
    })
}
