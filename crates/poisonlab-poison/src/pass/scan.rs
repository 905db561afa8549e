//! Pass 1: parse every record (in parallel for JSONL), count the good ones, and mark the ordinals
//! the selection allows.

use std::path::Path;

use poisonlab_data::convention::from_object;
use poisonlab_data::format::{parse_object, too_long};
use poisonlab_data::io::{Line, Lines, open_input};
use poisonlab_data::{
    BadRecord, Convention, Error as DataError, Kind, OnError, Pos, Quarantine, Record, RecordReader,
};
use rayon::prelude::*;

use super::PoisonOptions;
use crate::error::{Error, Result};
use crate::spec::{Selector, Spec, StageKind};

/// The eligible ordinals as a bitmap: one bit per input record, so that a scan of millions of
/// records keeps its memory flat.
#[derive(Default)]
pub(super) struct Eligible {
    words: Vec<u64>,
    count: u64,
}

impl Eligible {
    pub(super) fn set(&mut self, ordinal: u64) {
        let w = (ordinal / 64) as usize;
        if self.words.len() <= w {
            self.words.resize(w + 1, 0);
        }
        self.words[w] |= 1 << (ordinal % 64);
        self.count += 1;
    }

    pub(super) fn len(&self) -> usize {
        self.count as usize
    }

    /// The ordinals of the given eligible indices (sorted ascending), in one walk over the bits.
    pub(super) fn ordinals(&self, sorted_indices: &[usize]) -> Vec<u64> {
        let mut out = Vec::with_capacity(sorted_indices.len());
        let mut want = sorted_indices.iter().peekable();
        let mut seen = 0usize;
        for (w, &word) in self.words.iter().enumerate() {
            let n = word.count_ones() as usize;
            while let Some(&&i) = want.peek() {
                if i >= seen + n {
                    break;
                }
                // The (i - seen)-th set bit of this word.
                let mut x = word;
                for _ in 0..(i - seen) {
                    x &= x - 1;
                }
                out.push(w as u64 * 64 + x.trailing_zeros() as u64);
                want.next();
            }
            seen += n;
        }
        out
    }
}

/// Result of the scan.
pub(super) struct Scan {
    pub(super) convention: Option<Convention>,
    /// Good records.
    pub(super) records: u64,
    /// Ordinals (0-based, over every non-blank entry) the selection allows.
    pub(super) eligible: Eligible,
    /// Ordinals of bad entries (quarantined).
    pub(super) bad: Vec<u64>,
    pub(super) blank_lines: u64,
    pub(super) quarantined: u64,
}

pub(super) fn handle_bad(bad: BadRecord, on_error: OnError, q: &mut Quarantine) -> Result<()> {
    match on_error {
        OnError::Fail => Err(DataError::from(bad).into()),
        OnError::Quarantine => Ok(q.bad(&bad)?),
    }
}

pub(super) fn selector_allows(sel: &Selector, spec: &Spec, rec: &Record) -> bool {
    if spec.stage.kind == StageKind::Rag {
        // Rag anchors: any untagged passage; the selection applies to the target queries.
        return rec.kind() == Kind::Passage && (rec.tag.is_none() || spec.selection.include_tagged);
    }
    sel.eligible(rec) && crate::stage::adaptable(rec, spec)
}

pub(super) const BATCH_BYTES: usize = 16 << 20;

/// A batch of raw JSONL lines.
pub(super) struct Batch {
    data: Vec<u8>,
    /// (start, end, line number, full length when too long)
    lines: Vec<(usize, usize, u64, Option<usize>)>,
}

pub(super) fn read_batch(
    lines: &mut Lines<Box<dyn std::io::BufRead + Send>>,
    path: &Path,
) -> Result<Option<Batch>> {
    let mut batch = Batch {
        data: Vec::with_capacity(BATCH_BYTES + (1 << 16)),
        lines: Vec::new(),
    };
    while batch.data.len() < BATCH_BYTES {
        match lines.next_line().map_err(|e| Error::io(path, e))? {
            None => break,
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
    Ok((!batch.lines.is_empty()).then_some(batch))
}

pub(super) enum Seen {
    Blank,
    Bad(BadRecord),
    Good { eligible: bool },
}

pub(super) fn scan_jsonl(
    path: &Path,
    opts: &PoisonOptions,
    conv: Convention,
    spec: &Spec,
    q: &mut Quarantine,
) -> Result<Scan> {
    let input = open_input(path)?;
    if input.len == 0 {
        return Err(DataError::file(path, "file is empty: no records to read").into());
    }
    let max = opts.read.max_record_bytes;
    let mut lines = Lines::new(input.reader, max);
    let sel = Selector::new(spec);
    let mut scan = Scan {
        convention: Some(conv),
        records: 0,
        eligible: Eligible::default(),
        bad: Vec::new(),
        blank_lines: 0,
        quarantined: 0,
    };
    let mut ordinal = 0u64;
    while let Some(batch) = read_batch(&mut lines, path)? {
        let seen: Vec<Seen> = batch
            .lines
            .par_iter()
            .map(|&(s, e, line, long)| {
                let raw = &batch.data[s..e];
                let pos = Pos::Line(line);
                if let Some(total) = long {
                    return Seen::Bad(BadRecord::new(
                        path,
                        pos,
                        "(record)",
                        too_long(total, max),
                        raw,
                    ));
                }
                if raw.iter().all(u8::is_ascii_whitespace) {
                    return Seen::Blank;
                }
                match parse_object(raw) {
                    Err(reason) => Seen::Bad(BadRecord::new(path, pos, "(record)", reason, raw)),
                    Ok(obj) => match from_object(obj, conv, String::new) {
                        Ok(rec) => Seen::Good {
                            eligible: selector_allows(&sel, spec, &rec),
                        },
                        Err(fe) => Seen::Bad(BadRecord::new(path, pos, fe.field, fe.reason, raw)),
                    },
                }
            })
            .collect();
        for s in seen {
            match s {
                Seen::Blank => scan.blank_lines += 1,
                Seen::Bad(b) => {
                    handle_bad(b, opts.on_error, q)?;
                    scan.bad.push(ordinal);
                    scan.quarantined += 1;
                    ordinal += 1;
                }
                Seen::Good { eligible } => {
                    if eligible {
                        scan.eligible.set(ordinal);
                    }
                    scan.records += 1;
                    ordinal += 1;
                }
            }
        }
    }
    Ok(scan)
}

pub(super) fn scan_records(
    path: &Path,
    opts: &PoisonOptions,
    spec: &Spec,
    q: &mut Quarantine,
) -> Result<Scan> {
    let mut reader = RecordReader::open(path, &opts.read)?;
    let sel = Selector::new(spec);
    let mut scan = Scan {
        convention: None,
        records: 0,
        eligible: Eligible::default(),
        bad: Vec::new(),
        blank_lines: 0,
        quarantined: 0,
    };
    for (ordinal, item) in reader.by_ref().enumerate() {
        let ordinal = ordinal as u64;
        match item {
            Ok(item) => {
                if selector_allows(&sel, spec, &item.record) {
                    scan.eligible.set(ordinal);
                }
                scan.records += 1;
            }
            Err(DataError::Bad(b)) => {
                handle_bad(*b, opts.on_error, q)?;
                scan.bad.push(ordinal);
                scan.quarantined += 1;
            }
            Err(e) => return Err(e.into()),
        }
    }
    scan.blank_lines = reader.blank_lines;
    scan.convention = reader.convention();
    Ok(scan)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitmap_select_maps_eligible_indices_to_ordinals() {
        let mut e = Eligible::default();
        let ords: Vec<u64> = (0..1000u64).filter(|o| o % 3 == 0 || o % 7 == 1).collect();
        for &o in &ords {
            e.set(o);
        }
        assert_eq!(e.len(), ords.len());
        let idx: Vec<usize> = (0..ords.len()).step_by(5).chain([ords.len() - 1]).collect();
        let mut idx = idx;
        idx.dedup();
        let got = e.ordinals(&idx);
        let want: Vec<u64> = idx.iter().map(|&i| ords[i]).collect();
        assert_eq!(got, want);
        let all: Vec<usize> = (0..ords.len()).collect();
        assert_eq!(e.ordinals(&all), ords);
    }
}
