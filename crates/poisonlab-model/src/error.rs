//! Errors of the model engine, each naming the file and, where there is one, the key or field.

use std::path::{Path, PathBuf};

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Io(#[from] poisonlab_data::IoError),
    #[error("{}: field `{field}`: {message}", path.display())]
    Config {
        path: PathBuf,
        field: String,
        message: String,
    },
    #[error("{}: tensor `{key}`: {message}", path.display())]
    Weights {
        path: PathBuf,
        key: String,
        message: String,
    },
    #[error("{}: tokenizer: {message}", path.display())]
    Tokenizer { path: PathBuf, message: String },
    #[error("{0}")]
    Invalid(String),
    /// An HTTP endpoint failed (after retries where they apply).
    #[error("endpoint: {0}")]
    Endpoint(String),
    /// The backend cannot do this (a served model without prompt log-probs, say).
    #[error("unsupported by this model backend: {0}")]
    Unsupported(String),
}

impl Error {
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        Error::Io(poisonlab_data::IoError::new(path, source))
    }

    pub fn weights(path: &Path, key: &str, message: impl Into<String>) -> Self {
        Error::Weights {
            path: path.to_path_buf(),
            key: key.to_string(),
            message: message.into(),
        }
    }
}
