//! Errors of the trust layer. Data errors name the file, the line and the field; keys never appear
//! in a message.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A data error (bad record, I/O) from the data layer; it names file, position and field.
    #[error(transparent)]
    Data(#[from] poisonlab_data::Error),
    #[error(transparent)]
    Model(#[from] poisonlab_model::Error),
    /// A watermark manifest that does not parse or does not fit the data or the key.
    #[error("{path}: {message}")]
    Manifest { path: PathBuf, message: String },
    /// Options or inputs that cannot be used.
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
