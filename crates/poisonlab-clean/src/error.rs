//! Errors of the cleaning layer. Config errors name the file, line and key.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Data(#[from] poisonlab_data::Error),
    #[error(transparent)]
    Model(#[from] poisonlab_model::Error),
    #[error("{path}: {message}")]
    Config { path: PathBuf, message: String },
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
