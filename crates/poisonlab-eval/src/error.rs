//! Errors of the evaluation layer.

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Data(#[from] poisonlab_data::Error),
    #[error(transparent)]
    Poison(#[from] poisonlab_poison::Error),
    #[error(transparent)]
    Model(#[from] poisonlab_model::Error),
    #[error(transparent)]
    Train(#[from] poisonlab_train::Error),
    #[error("{0}")]
    Invalid(String),
}
