//! Errors of the poison layer. Spec errors name the file, the line and the key.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A data error (bad record, I/O) from the data layer; it names file, position and field.
    #[error(transparent)]
    Data(#[from] poisonlab_data::Error),
    /// The spec file does not parse or names an unknown key.
    #[error("{path}: {message}")]
    Spec { path: PathBuf, message: String },
    /// The spec parses but cannot be applied to this input.
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Io(#[from] poisonlab_data::IoError),
}

impl Error {
    pub fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        Error::Io(poisonlab_data::IoError::new(path, source))
    }
}
