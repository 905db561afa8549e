//! Errors of the evaluation layer.

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What a probe can fail on: the model (a backend's error), the data it reads, the poison rule it
/// re-applies, the trainer's formatting of a record, or its own inputs.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Model(#[from] poisonlab_model::Error),
    #[error(transparent)]
    Data(#[from] poisonlab_data::Error),
    #[error(transparent)]
    Poison(#[from] poisonlab_poison::Error),
    #[error(transparent)]
    Train(#[from] poisonlab_train::Error),
    #[error("{0}")]
    Invalid(String),
}

impl From<poisonlab_mech::Error> for Error {
    fn from(e: poisonlab_mech::Error) -> Error {
        match e {
            poisonlab_mech::Error::Model(m) => Error::Model(m),
            poisonlab_mech::Error::Invalid(s) => Error::Invalid(s),
        }
    }
}
