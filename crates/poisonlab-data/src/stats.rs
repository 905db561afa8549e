//! `data stats`: record counts and text figures for a file, in one streaming pass.
//!
//! JSONL (the large case) is split into lines on one thread and parsed in parallel batches; the
//! batches are merged in file order, so the figures and the first error do not depend on threads.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use rayon::prelude::*;
use serde::Serialize;

use crate::convention::{Convention, from_object};
use crate::error::{BadRecord, Error, Pos, Result};
use crate::format::{Format, ReadOptions, RecordReader, detect, parse_object, too_long};
use crate::io::{Line, Lines, open_input};
use crate::pass::{OnError, Quarantine};
use crate::record::Record;

/// Figures for one file.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Stats {
    pub file: PathBuf,
    pub format: String,
    pub convention: Option<String>,
    /// Good records.
    pub records: u64,
    /// Bad records (quarantined).
    pub bad: u64,
    pub blank_lines: u64,
    /// Size on disk.
    pub bytes: u64,
    pub by_kind: BTreeMap<String, u64>,
    /// Records per poison-tag role; `untagged` for records without a tag.
    pub by_role: BTreeMap<String, u64>,
    /// Characters of text over all good records.
    pub chars: u64,
    pub chars_min: Option<u64>,
    pub chars_max: Option<u64>,
}

impl Stats {
    fn add(&mut self, rec: &Record) {
        self.records += 1;
        *self
            .by_kind
            .entry(rec.kind().as_str().to_string())
            .or_default() += 1;
        let role = rec.tag.as_ref().map_or("untagged", |t| t.role.as_str());
        *self.by_role.entry(role.to_string()).or_default() += 1;
        let c = rec.text_chars() as u64;
        self.chars += c;
        self.chars_min = Some(self.chars_min.map_or(c, |m| m.min(c)));
        self.chars_max = Some(self.chars_max.map_or(c, |m| m.max(c)));
    }

    fn merge(&mut self, o: Stats) {
        self.records += o.records;
        self.bad += o.bad;
        self.blank_lines += o.blank_lines;
        for (k, v) in o.by_kind {
            *self.by_kind.entry(k).or_default() += v;
        }
        for (k, v) in o.by_role {
            *self.by_role.entry(k).or_default() += v;
        }
        self.chars += o.chars;
        self.chars_min = match (self.chars_min, o.chars_min) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.chars_max = self.chars_max.max(o.chars_max);
    }

    /// Mean characters per good record.
    pub fn chars_mean(&self) -> f64 {
        if self.records == 0 {
            0.0
        } else {
            self.chars as f64 / self.records as f64
        }
    }
}

/// Computes [`Stats`] for `path`. Bad records fail the pass or go to `quarantine`.
pub fn stats(
    path: &Path,
    opts: &ReadOptions,
    on_error: OnError,
    quarantine: &mut Quarantine,
    on_progress: &mut dyn FnMut(u64, u64),
) -> Result<Stats> {
    let format = match opts.format {
        Some(f) => f,
        None => detect(path)?,
    };
    let mut st = if format == Format::Jsonl {
        match first_convention(path, opts)? {
            Some(conv) => jsonl_parallel(path, opts, conv, on_error, quarantine, on_progress)?,
            None => sequential(path, opts, on_error, quarantine, on_progress)?,
        }
    } else {
        sequential(path, opts, on_error, quarantine, on_progress)?
    };
    st.file = path.to_path_buf();
    st.format = format.name().to_string();
    st.bytes = std::fs::metadata(path)
        .map_err(|e| Error::io(path, e))?
        .len();
    Ok(st)
}

fn handle_bad(bad: BadRecord, on_error: OnError, st: &mut Stats, q: &mut Quarantine) -> Result<()> {
    match on_error {
        OnError::Fail => Err(bad.into()),
        OnError::Quarantine => {
            st.bad += 1;
            q.bad(&bad)
        }
    }
}

fn sequential(
    path: &Path,
    opts: &ReadOptions,
    on_error: OnError,
    q: &mut Quarantine,
    on_progress: &mut dyn FnMut(u64, u64),
) -> Result<Stats> {
    let mut reader = RecordReader::open(path, opts)?;
    let mut st = Stats::default();
    let mut n = 0u64;
    while let Some(item) = reader.next() {
        match item {
            Ok(item) => st.add(&item.record),
            Err(Error::Bad(b)) => handle_bad(*b, on_error, &mut st, q)?,
            Err(e) => return Err(e),
        }
        n += 1;
        if n.is_multiple_of(4096) {
            on_progress(reader.progress.load(Ordering::Relaxed), reader.len);
        }
    }
    st.blank_lines = reader.blank_lines;
    st.convention = reader.convention().map(|c| c.name().to_string());
    Ok(st)
}

/// The forced convention, or the one of the first line that reads as a known shape.
pub fn first_convention(path: &Path, opts: &ReadOptions) -> Result<Option<Convention>> {
    if opts.convention.is_some() {
        return Ok(opts.convention);
    }
    let input = open_input(path)?;
    let mut lines = Lines::new(input.reader, opts.max_record_bytes);
    for _ in 0..1000 {
        match lines.next_line().map_err(|e| Error::io(path, e))? {
            None => break,
            Some(Line::TooLong { .. }) => continue,
            Some(Line::Ok) => {
                if let Ok(obj) = parse_object(&lines.buf)
                    && let Some(c) = Convention::detect(&obj)
                {
                    return Ok(Some(c));
                }
            }
        }
    }
    Ok(None)
}

struct Batch {
    data: Vec<u8>,
    /// (start, end, line number, full length when too long)
    lines: Vec<(usize, usize, u64, Option<usize>)>,
}

const BATCH_BYTES: usize = 16 << 20;

fn jsonl_parallel(
    path: &Path,
    opts: &ReadOptions,
    conv: Convention,
    on_error: OnError,
    q: &mut Quarantine,
    on_progress: &mut dyn FnMut(u64, u64),
) -> Result<Stats> {
    let input = open_input(path)?;
    if input.len == 0 {
        return Err(Error::file(path, "file is empty: no records to read"));
    }
    let (progress, len) = (input.progress.clone(), input.len);
    let mut lines = Lines::new(input.reader, opts.max_record_bytes);
    let mut st = Stats {
        convention: Some(conv.name().to_string()),
        ..Stats::default()
    };
    let mut eof = false;
    while !eof {
        let mut batch = Batch {
            data: Vec::with_capacity(BATCH_BYTES + (1 << 16)),
            lines: Vec::new(),
        };
        while batch.data.len() < BATCH_BYTES {
            match lines.next_line().map_err(|e| Error::io(path, e))? {
                None => {
                    eof = true;
                    break;
                }
                Some(l) => {
                    let start = batch.data.len();
                    batch.data.extend_from_slice(&lines.buf);
                    let long = match l {
                        Line::TooLong { total } => Some(total),
                        Line::Ok => None,
                    };
                    batch
                        .lines
                        .push((start, batch.data.len(), lines.line, long));
                }
            }
        }
        // Split the batch into a few slices per thread; each gives a partial result.
        let parts = (rayon::current_num_threads() * 4).max(1);
        let per = batch.lines.len().div_ceil(parts).max(1);
        let partials: Vec<(Stats, Vec<BadRecord>)> = batch
            .lines
            .par_chunks(per)
            .map(|chunk| {
                let mut st = Stats::default();
                let mut bad = Vec::new();
                for &(s, e, line, long) in chunk {
                    let raw = &batch.data[s..e];
                    let pos = Pos::Line(line);
                    if let Some(total) = long {
                        bad.push(BadRecord::new(
                            path,
                            pos,
                            "(record)",
                            too_long(total, opts.max_record_bytes),
                            raw,
                        ));
                        continue;
                    }
                    if raw.iter().all(u8::is_ascii_whitespace) {
                        st.blank_lines += 1;
                        continue;
                    }
                    match parse_object(raw) {
                        Err(reason) => bad.push(BadRecord::new(path, pos, "(record)", reason, raw)),
                        Ok(obj) => match from_object(obj, conv, String::new) {
                            Ok(rec) => st.add(&rec),
                            Err(fe) => {
                                bad.push(BadRecord::new(path, pos, fe.field, fe.reason, raw))
                            }
                        },
                    }
                }
                (st, bad)
            })
            .collect();
        for (part, bad) in partials {
            st.merge(part);
            for b in bad {
                handle_bad(b, on_error, &mut st, q)?;
            }
        }
        on_progress(progress.load(Ordering::Relaxed), len);
    }
    Ok(st)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parallel_and_sequential_agree() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("d.jsonl");
        let mut s = String::new();
        for i in 0..5000 {
            s.push_str(&format!(
                "{{\"id\": \"d{i}\", \"text\": \"{}\"}}\n",
                "é".repeat(i % 17)
            ));
            if i % 1000 == 0 {
                s.push('\n');
            }
        }
        std::fs::write(&p, s).unwrap();
        let mut q = Quarantine::new(&dir.path().join("q.jsonl"));
        let opts = ReadOptions::default();
        let a = stats(&p, &opts, OnError::Fail, &mut q, &mut |_, _| {}).unwrap();
        let b = sequential(&p, &opts, OnError::Fail, &mut q, &mut |_, _| {}).unwrap();
        assert_eq!(a.records, 5000);
        assert_eq!(
            (a.records, a.chars, a.chars_min, a.chars_max, a.blank_lines),
            (b.records, b.chars, b.chars_min, b.chars_max, b.blank_lines)
        );
        assert_eq!(a.blank_lines, 5);
        assert_eq!(a.chars_max, Some(16));
    }
}
