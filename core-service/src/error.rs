//! The core's gRPC boundary error: every failure a handler can return, mapped
//! to a `tonic::Status` once, here. Callers get a precise code and a message
//! that says what to fix; internal details go to the log, not the wire.

use tonic::Status;

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// `INVALID_ARGUMENT`: the request itself is wrong; the message says which field.
    #[error("{0}")]
    InvalidArgument(String),
    /// `NOT_FOUND`: the message, conversation or consumer does not exist.
    #[error("{0}")]
    NotFound(String),
    /// From the store: `UNAVAILABLE`, `INTERNAL`, or the caller's own
    /// `NOT_FOUND`, `OUT_OF_RANGE` and `RESOURCE_EXHAUSTED`.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<CoreError> for Status {
    fn from(error: CoreError) -> Status {
        match error {
            CoreError::InvalidArgument(msg) => Status::invalid_argument(msg),
            CoreError::NotFound(msg) => Status::not_found(msg),
            CoreError::Store(StoreError::NotFound(msg)) => Status::not_found(msg),
            CoreError::Store(StoreError::OutOfRange(msg)) => Status::out_of_range(msg),
            CoreError::Store(StoreError::LimitReached(msg)) => Status::resource_exhausted(msg),
            CoreError::Store(StoreError::Unavailable(detail)) => {
                tracing::warn!(%detail, "store unavailable");
                Status::unavailable("store unavailable, retry later")
            }
            CoreError::Store(StoreError::Internal(detail)) => {
                tracing::error!(%detail, "store failure");
                Status::internal("internal store failure")
            }
        }
    }
}
