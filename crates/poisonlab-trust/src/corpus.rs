//! Reading the documents a watermark goes into, and choosing which of them carry it.

use std::io::Read;
use std::path::Path;

use poisonlab_data::io::FileDigest;
use poisonlab_data::{
    Body, Error as DataError, OnError, Quarantine, ReadOptions, Record, RecordReader, RecordWriter,
    Tally, WriteOptions,
};
use rand::seq::SliceRandom;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::key::Key;
use crate::scheme::Scheme;

/// The text of a record a watermark can go into: a pre-training document or a retrieval passage.
pub fn document_text(body: &Body) -> Option<&str> {
    match body {
        Body::Pretrain { text } | Body::Passage { text, .. } => Some(text),
        _ => None,
    }
}

/// The good records of a file, in order: `ordinal` counts good records only.
#[derive(Debug, Clone, Default)]
pub struct Documents {
    /// (ordinal, text) of every document-kind record.
    pub docs: Vec<(u64, String)>,
    /// Good records of any kind.
    pub records: u64,
    pub quarantined: u64,
    pub blank_lines: u64,
    /// Records of other kinds (instructions, pairs, …): kept, never marked.
    pub other_kinds: u64,
}

impl Documents {
    /// Reads `path`. Bad records stop the read, or with `on_error = quarantine` go to `quarantine`
    /// (when given) and are not counted as records.
    pub fn read(
        path: &Path,
        read: &ReadOptions,
        on_error: OnError,
        mut quarantine: Option<&mut Quarantine>,
    ) -> Result<Documents> {
        let mut reader = RecordReader::open(path, read)?;
        let mut out = Documents::default();
        for item in reader.by_ref() {
            let item = match item {
                Ok(item) => item,
                Err(DataError::Bad(bad)) if on_error == OnError::Quarantine => {
                    out.quarantined += 1;
                    if let Some(q) = quarantine.as_deref_mut() {
                        q.bad(&bad)?;
                    }
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            match document_text(&item.record.body) {
                Some(text) => out.docs.push((out.records, text.to_string())),
                None => out.other_kinds += 1,
            }
            out.records += 1;
        }
        out.blank_lines = reader.blank_lines;
        Ok(out)
    }

    /// The ordinals that carry the watermark of `key`: `copies` of the eligible documents, chosen
    /// uniformly by the key, in file order.
    pub fn choose(&self, scheme: &Scheme, key: &Key, copies: usize) -> Result<Vec<u64>> {
        self.choose_excluding(scheme, key, copies, &Default::default())
    }

    /// [`Documents::choose`] among the documents not in `taken` (marked by other keys already).
    pub fn choose_excluding(
        &self,
        scheme: &Scheme,
        key: &Key,
        copies: usize,
        taken: &std::collections::HashSet<u64>,
    ) -> Result<Vec<u64>> {
        if copies == 0 {
            return Err(Error::Invalid("copies must be at least 1".into()));
        }
        // A keyed uniform order of all documents, walked until `copies` eligible ones are found:
        // a uniform choice among the eligible documents that tests eligibility (for rewrites, a
        // costly test) only as far as it must.
        let mut order: Vec<usize> = (0..self.docs.len()).collect();
        order.shuffle(&mut key.rng("select", 0));
        let mut chosen = Vec::with_capacity(copies);
        for i in order {
            let (o, t) = &self.docs[i];
            if !taken.contains(o) && scheme.eligible(key, *o, t) {
                chosen.push(*o);
                if chosen.len() == copies {
                    break;
                }
            }
        }
        if chosen.len() < copies {
            return Err(Error::Invalid(format!(
                "{copies} copies asked for, but only {} of the {} documents can carry a {} mark ({} records in all{})",
                chosen.len(),
                self.docs.len(),
                scheme.name(),
                self.records,
                if taken.is_empty() {
                    String::new()
                } else {
                    format!(", {} taken by other keys", taken.len())
                }
            )));
        }
        chosen.sort_unstable();
        Ok(chosen)
    }

    /// (ordinal, text) of each ordinal in `ordinals`; an ordinal that is not a document is an
    /// error.
    pub fn marked(&self, ordinals: &[u64]) -> Result<Vec<(u64, String)>> {
        ordinals
            .iter()
            .map(|o| {
                self.docs
                    .binary_search_by_key(o, |(x, _)| *x)
                    .map(|i| (*o, self.docs[i].1.clone()))
                    .map_err(|_| {
                        Error::Invalid(format!(
                            "record {o} is not a document of this file ({} records)",
                            self.records
                        ))
                    })
            })
            .collect()
    }
}

/// What [`copy_records`] did.
#[derive(Debug, Clone)]
pub(crate) struct Copied {
    /// `read` and `written` of the input's records (so `read = written + quarantined` once the
    /// caller sets `quarantined` from its first pass).
    pub tally: Tally,
    /// Good input records (the ordinals `edit` saw).
    pub records: u64,
    /// Records `edit` added (written too, not in `tally`).
    pub added: u64,
    pub digest: FileDigest,
}

/// The second pass every trust writer shares: streams `input` to `output` in its own format and
/// convention, skipping bad records (already quarantined by the first pass) or failing on them.
/// `edit` gets each good record's ordinal and the record (to change it in place) and returns
/// records to write right after it.
pub(crate) fn copy_records(
    input: &Path,
    output: &Path,
    read: &ReadOptions,
    on_error: OnError,
    mut edit: impl FnMut(u64, &mut Record) -> Result<Vec<Record>>,
) -> Result<Copied> {
    let mut reader = RecordReader::open(input, read)?;
    let mut writer: Option<RecordWriter> = None;
    let mut tally = Tally::default();
    let (mut ordinal, mut added) = (0u64, 0u64);
    while let Some(item) = reader.next() {
        tally.read += 1;
        let mut item = match item {
            Ok(item) => item,
            Err(DataError::Bad(_)) if on_error == OnError::Quarantine => continue,
            Err(e) => return Err(e.into()),
        };
        let extra = edit(ordinal, &mut item.record)?;
        if writer.is_none() {
            let wopts = WriteOptions {
                format: None,
                convention: reader.convention(),
            };
            writer = Some(RecordWriter::create(output, &wopts)?);
        }
        if let Some(w) = writer.as_mut() {
            w.write_with(&item.record, !item.own_id)?;
            for r in &extra {
                w.write(r)?;
            }
        }
        tally.written += 1;
        added += extra.len() as u64;
        ordinal += 1;
    }
    tally.blank_lines = reader.blank_lines;
    let writer = match writer {
        Some(w) => w,
        None => RecordWriter::create(output, &WriteOptions::default())?,
    };
    Ok(Copied {
        tally,
        records: ordinal,
        added,
        digest: writer.finish()?,
    })
}

/// Refuses to write over the input.
pub(crate) fn not_the_input(input: &Path, output: &Path) -> Result<()> {
    if let (Ok(a), Ok(b)) = (input.canonicalize(), output.canonicalize())
        && a == b
    {
        return Err(Error::Invalid(format!(
            "{}: the output is the input file; write to another path",
            output.display()
        )));
    }
    Ok(())
}

/// Hex SHA-256 of a file's bytes.
pub fn file_sha256(path: &Path) -> Result<String> {
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}
