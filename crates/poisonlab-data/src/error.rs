//! Errors that name the file, the position and the field.

use std::fmt;
use std::path::{Path, PathBuf};

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Where a record sits in its file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pos {
    /// 1-based line (JSONL, TSV, text; for JSON arrays the line the element starts on).
    Line(u64),
    /// Parquet: 0-based row group and row within it.
    Row { group: usize, row: usize },
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pos::Line(l) => write!(f, "line {l}"),
            Pos::Row { group, row } => write!(f, "row group {group}, row {row}"),
        }
    }
}

/// A record that could not be read. Recoverable: `--on-error quarantine` sets it aside and goes on.
#[derive(Debug, Clone, PartialEq)]
pub struct BadRecord {
    pub path: PathBuf,
    pub pos: Pos,
    /// The offending field (`output`, `messages[2].role`), or `(record)` when the record as a whole
    /// is malformed (truncated JSON, invalid UTF-8, too long).
    pub field: String,
    pub reason: String,
    /// The raw input, lossily decoded and cut to at most [`BadRecord::RAW_LIMIT`] bytes.
    pub raw: String,
}

impl BadRecord {
    pub const RAW_LIMIT: usize = 64 * 1024;

    pub fn new(
        path: &Path,
        pos: Pos,
        field: impl Into<String>,
        reason: impl Into<String>,
        raw: &[u8],
    ) -> Self {
        let cut = &raw[..raw.len().min(Self::RAW_LIMIT)];
        let bad = BadRecord {
            path: path.to_path_buf(),
            pos,
            field: field.into(),
            reason: reason.into(),
            raw: String::from_utf8_lossy(cut).into_owned(),
        };
        bad.with_raw_len(raw.len())
    }

    /// Notes the full size of a raw record that was cut before it reached us.
    pub fn with_raw_len(mut self, total: usize) -> Self {
        if total > Self::RAW_LIMIT {
            self.raw.push_str(&format!(" … [{total} bytes in all]"));
        }
        self
    }
}

impl fmt::Display for BadRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {}: field `{}`: {}",
            self.path.display(),
            self.pos,
            self.field,
            self.reason
        )
    }
}

/// An I/O error and the path it happened on: the one I/O error every layer's errors carry.
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", path.display())]
pub struct IoError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

impl IoError {
    pub fn new(path: &Path, source: std::io::Error) -> Self {
        IoError {
            path: path.to_path_buf(),
            source,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Io(#[from] IoError),
    #[error("{0}")]
    Bad(Box<BadRecord>),
    /// The file as a whole is unusable (empty, unknown format, wrong header…).
    #[error("{}: {message}", path.display())]
    File { path: PathBuf, message: String },
    /// A record cannot be written in the requested output format without losing content.
    #[error("{}: record `{id}`: {message}", path.display())]
    Write {
        path: PathBuf,
        id: String,
        message: String,
    },
    #[error("{}: parquet: {message}", path.display())]
    Parquet { path: PathBuf, message: String },
    #[error("invalid argument: {0}")]
    Invalid(String),
}

impl Error {
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        Error::Io(IoError::new(path, source))
    }

    pub fn file(path: &Path, message: impl Into<String>) -> Self {
        Error::File {
            path: path.to_path_buf(),
            message: message.into(),
        }
    }

    pub fn parquet(path: &Path, message: impl fmt::Display) -> Self {
        Error::Parquet {
            path: path.to_path_buf(),
            message: message.to_string(),
        }
    }

    /// The bad record inside, if this error is recoverable by quarantine.
    pub fn as_bad(&self) -> Option<&BadRecord> {
        match self {
            Error::Bad(b) => Some(b),
            _ => None,
        }
    }
}

impl From<BadRecord> for Error {
    fn from(b: BadRecord) -> Self {
        Error::Bad(Box::new(b))
    }
}
