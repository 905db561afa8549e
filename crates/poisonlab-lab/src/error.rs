//! Errors of the experiment layer: one line naming the file and the key.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {message}")]
    Experiment { path: PathBuf, message: String },
    #[error(transparent)]
    Data(#[from] poisonlab_data::Error),
    #[error(transparent)]
    Poison(#[from] poisonlab_poison::Error),
    #[error(transparent)]
    Clean(#[from] poisonlab_clean::Error),
    #[error(transparent)]
    Model(#[from] poisonlab_model::Error),
    #[error(transparent)]
    Train(#[from] poisonlab_train::Error),
    #[error(transparent)]
    Eval(#[from] poisonlab_eval::Error),
    #[error(transparent)]
    Trust(#[from] poisonlab_trust::Error),
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
