//! Passes over data that account for every record: `read = written + quarantined`.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

use crate::convention::{Convention, to_object};

use crate::error::{BadRecord, Error, Pos, Result};
use crate::format::{ReadOptions, RecordReader, RecordWriter, WriteOptions};
use crate::io::{FileDigest, Output};

/// What to do with a bad record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnError {
    /// Stop at the first bad record with an error that names file, position and field.
    #[default]
    Fail,
    /// Write the bad record with its reason to the quarantine file and go on.
    Quarantine,
}

/// The record count of a pass. `read == written + quarantined` always holds at the end.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    pub read: u64,
    pub written: u64,
    pub quarantined: u64,
    /// Empty lines skipped; they are not records.
    pub blank_lines: u64,
}

impl Tally {
    pub fn balanced(&self) -> bool {
        self.read == self.written + self.quarantined
    }
}

impl std::fmt::Display for Tally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} read = {} written + {} quarantined",
            self.read, self.written, self.quarantined
        )?;
        if self.blank_lines > 0 {
            write!(f, " ({} blank lines skipped)", self.blank_lines)?;
        }
        Ok(())
    }
}

#[derive(Serialize)]
struct QuarantineLine<'a> {
    file: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    line: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    row_group: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    row: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    field: &'a str,
    reason: &'a str,
    raw: &'a str,
}

/// A JSONL side file of rejected records, each with where it was and why.
pub struct Quarantine {
    path: PathBuf,
    out: Option<Output>,
    pub count: u64,
}

impl Quarantine {
    /// The file is created on the first bad record only.
    pub fn new(path: &Path) -> Self {
        Quarantine {
            path: path.to_path_buf(),
            out: None,
            count: 0,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn line(&mut self, q: &QuarantineLine<'_>) -> Result<()> {
        if self.out.is_none() {
            self.out = Some(Output::create(&self.path)?);
        }
        let path = self.path.clone();
        let out = self
            .out
            .as_mut()
            .ok_or_else(|| Error::file(&path, "quarantine not open"))?;
        serde_json::to_writer(&mut *out, q).map_err(|e| Error::io(&path, e.into()))?;
        out.write_all(b"\n").map_err(|e| Error::io(&path, e))?;
        self.count += 1;
        Ok(())
    }

    pub fn bad(&mut self, b: &BadRecord) -> Result<()> {
        let (line, row_group, row) = match b.pos {
            Pos::Line(l) => (Some(l), None, None),
            Pos::Row { group, row } => (None, Some(group), Some(row)),
        };
        self.line(&QuarantineLine {
            file: b.path.display().to_string(),
            line,
            row_group,
            row,
            id: None,
            field: &b.field,
            reason: &b.reason,
            raw: &b.raw,
        })
    }

    /// A record that was read but cannot be written in the output format.
    pub fn unwritable(
        &mut self,
        input: &Path,
        pos: Pos,
        id: &str,
        reason: &str,
        raw: &str,
    ) -> Result<()> {
        let (line, row_group, row) = match pos {
            Pos::Line(l) => (Some(l), None, None),
            Pos::Row { group, row } => (None, Some(group), Some(row)),
        };
        self.line(&QuarantineLine {
            file: input.display().to_string(),
            line,
            row_group,
            row,
            id: Some(id),
            field: "(record)",
            reason,
            raw,
        })
    }

    pub fn finish(self) -> Result<Option<FileDigest>> {
        match self.out {
            Some(out) => out.finish().map(Some).map_err(|e| Error::io(&self.path, e)),
            None => Ok(None),
        }
    }
}

/// Default side file for bad records of `output`: `<output>.quarantine.jsonl`.
pub fn quarantine_path(output: &Path) -> PathBuf {
    crate::io::sibling(output, ".quarantine.jsonl")
}

/// Options of [`convert`].
#[derive(Debug, Clone, Default)]
pub struct ConvertOptions {
    pub read: ReadOptions,
    pub write: WriteOptions,
    pub on_error: OnError,
    /// Where bad records go; default [`quarantine_path`] of the output.
    pub quarantine: Option<PathBuf>,
}

/// Result of [`convert`].
#[derive(Debug, Clone, Serialize)]
pub struct ConvertReport {
    pub tally: Tally,
    pub output: FileDigest,
    pub quarantine: Option<PathBuf>,
}

/// Reads `input` and writes every good record to `output`, converting container and convention.
/// `on_progress` gets the raw bytes read so far and the file size.
pub fn convert(
    input: &Path,
    output: &Path,
    opts: &ConvertOptions,
    on_progress: &mut dyn FnMut(u64, u64),
) -> Result<ConvertReport> {
    if let (Ok(a), Ok(b)) = (input.canonicalize(), output.canonicalize())
        && a == b
    {
        return Err(Error::file(
            output,
            "the output is the input file; write to another path",
        ));
    }
    let mut reader = RecordReader::open(input, &opts.read)?;
    tracing::info!(input = %input.display(), format = reader.format().name(), "reading");
    let mut write_opts = opts.write.clone();
    let mut writer: Option<RecordWriter> = None;
    let qpath = opts
        .quarantine
        .clone()
        .unwrap_or_else(|| quarantine_path(output));
    let mut quarantine = Quarantine::new(&qpath);
    let mut tally = Tally::default();
    let mut last_report = 0u64;
    while let Some(item) = reader.next() {
        tally.read += 1;
        let item = match item {
            Ok(item) => item,
            Err(Error::Bad(bad)) if opts.on_error == OnError::Quarantine => {
                quarantine.bad(&bad)?;
                continue;
            }
            Err(e @ Error::Bad(_)) => return Err(e),
            Err(e) => return Err(e),
        };
        if writer.is_none() {
            // Keep the input's own convention unless another was asked for.
            if write_opts.convention.is_none() {
                write_opts.convention = reader.convention();
            }
            writer = Some(RecordWriter::create(output, &write_opts)?);
        }
        let w = writer
            .as_mut()
            .ok_or_else(|| Error::Invalid("writer not open".into()))?;
        match w.write(&item.record) {
            Ok(()) => tally.written += 1,
            Err(Error::Write { message, .. }) if opts.on_error == OnError::Quarantine => {
                let native = Convention::native(item.record.kind());
                let raw = to_object(&item.record, native)
                    .map(|o| Value::Object(o).to_string())
                    .unwrap_or_default();
                quarantine.unwritable(input, item.pos, &item.record.id, &message, &raw)?;
            }
            Err(e) => return Err(e),
        }
        let done = reader.progress.load(std::sync::atomic::Ordering::Relaxed);
        if done - last_report >= 1 << 20 {
            on_progress(done, reader.len);
            last_report = done;
        }
    }
    tally.blank_lines = reader.blank_lines;
    let writer = match writer {
        Some(w) => w,
        None => RecordWriter::create(output, &write_opts)?,
    };
    let digest = writer.finish()?;
    tally.quarantined = quarantine.count;
    let had_bad = quarantine.count > 0;
    quarantine.finish()?;
    tracing::info!(output = %output.display(), %tally, "pass done");
    if !tally.balanced() {
        return Err(Error::Invalid(format!(
            "record accounting does not add up: {tally}"
        )));
    }
    Ok(ConvertReport {
        tally,
        output: digest,
        quarantine: had_bad.then_some(qpath),
    })
}
