//! The media boundary's one error type, mapped to `tonic::Status` once.
//!
//! A file over its kind's limit is `INVALID_ARGUMENT`, not
//! `RESOURCE_EXHAUSTED`: no retry can make it fit, and the gateway keeps
//! `RESOURCE_EXHAUSTED` for "retry later" (Kapso's rate limit), which clients
//! commonly retry with backoff. Upstream refusals take the classes of a send's
//! (see `outbound::error`), Meta's code in `x-meta-error-code`.

use tonic::Status;

use super::limits::OverLimit;
use crate::kapso_api::{CallOutcome, Rejection};
use crate::outbound::{OutboundError, failure_of};
use crate::store::StoreError;

/// Meta's code for a parameter it does not accept, which for `GET /{media_id}`
/// means an id it does not know ("Object with ID ... does not exist").
const CODE_UNKNOWN_OBJECT: i64 = 100;

/// Why an upload or a download did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// `INVALID_ARGUMENT`: the request is wrong; says which field.
    #[error("invalid {field}: {reason}")]
    Invalid { field: &'static str, reason: String },

    /// `INVALID_ARGUMENT`: the file is over its kind's limit (declared, or
    /// counted as its bytes passed). Retrying cannot help.
    #[error("{0}")]
    TooLarge(#[from] OverLimit),

    /// `NOT_FOUND`: no such message, or a media id WhatsApp does not know.
    #[error("{0}")]
    NotFound(String),

    /// `FAILED_PRECONDITION`: no Kapso API key is configured; nothing was called.
    #[error("the Kapso API key is not configured (set KAPSO_API_TOKEN); nothing was called")]
    NotConfigured,

    /// `UNAVAILABLE`: Kapso did not answer, or the bytes broke off; the whole
    /// call may be repeated (an upload nobody refers to yet is harmless).
    #[error("{0}; try again")]
    Unavailable(String),

    /// A refusal by Kapso or Meta, classed as a send's is.
    #[error(transparent)]
    Upstream(OutboundError),

    /// `CANCELLED`: the caller's upload stream broke off.
    #[error("the upload stream broke off: {0}")]
    CallerGone(String),

    /// `UNAVAILABLE` or `INTERNAL`, from the store.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl MediaError {
    pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> MediaError {
        MediaError::Invalid {
            field,
            reason: reason.into(),
        }
    }

    /// A failed upstream call as the caller should see it; `unknown_id` is
    /// the answer to a refusal that means "no such media".
    pub(crate) fn from_outcome<T>(
        outcome: &CallOutcome<T>,
        what: &str,
        unknown_id: Option<&dyn Fn() -> MediaError>,
    ) -> MediaError {
        match outcome {
            CallOutcome::Permanent(Rejection::NotConfigured) => MediaError::NotConfigured,
            CallOutcome::Permanent(Rejection::Refused { http_status, error })
                if *http_status == 404 || error.code == CODE_UNKNOWN_OBJECT =>
            {
                match unknown_id {
                    Some(unknown) => unknown(),
                    None => MediaError::Upstream(OutboundError::from_failure(
                        None,
                        &failure_of(outcome),
                    )),
                }
            }
            CallOutcome::Unknown(reason) => {
                MediaError::Unavailable(format!("Kapso did not complete {what} ({reason})"))
            }
            CallOutcome::Done(_) => {
                MediaError::Unavailable(format!("{what} ended without an answer"))
            }
            failed => MediaError::Upstream(OutboundError::from_failure(None, &failure_of(failed))),
        }
    }
}

impl From<OutboundError> for MediaError {
    fn from(error: OutboundError) -> MediaError {
        match error {
            OutboundError::Invalid { field, reason } => MediaError::Invalid { field, reason },
            other => MediaError::Upstream(other),
        }
    }
}

impl From<MediaError> for Status {
    fn from(error: MediaError) -> Status {
        match error {
            MediaError::Invalid { .. } | MediaError::TooLarge(_) => {
                Status::invalid_argument(error.to_string())
            }
            MediaError::NotFound(message) => Status::not_found(message),
            MediaError::NotConfigured => Status::failed_precondition(error.to_string()),
            MediaError::Unavailable(_) => Status::unavailable(error.to_string()),
            MediaError::CallerGone(_) => Status::cancelled(error.to_string()),
            MediaError::Upstream(error) => error.into(),
            MediaError::Store(error) => OutboundError::Store(error).into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use tonic::Code;

    use super::*;
    use crate::kapso_api::{Retry, RetryCause};
    use crate::media::limits::{Budget, Kind};
    use crate::model::MetaError;

    fn refused(http_status: u16, code: i64) -> CallOutcome<()> {
        CallOutcome::Permanent(Rejection::Refused {
            http_status,
            error: MetaError {
                code,
                title: format!("title {code}"),
                message: format!("message {code}"),
                details: String::new(),
            },
        })
    }

    fn status(error: MediaError) -> Status {
        error.into()
    }

    #[test]
    fn a_file_over_its_limit_is_invalid_not_exhausted() {
        let over = Budget::check_declared(Kind::Image, 6 << 20).unwrap_err();
        let status = status(over.into());
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(status.message().contains("5 MiB"), "{}", status.message());
    }

    #[test]
    fn an_unknown_media_id_is_not_found_and_other_refusals_keep_metas_code() {
        let unknown = || MediaError::NotFound("media 1 is unknown".into());
        for outcome in [refused(400, 100), refused(404, 0)] {
            let error = MediaError::from_outcome(&outcome, "the lookup", Some(&unknown));
            assert_eq!(status(error).code(), Code::NotFound);
        }
        let error = MediaError::from_outcome(&refused(400, 131053), "the upload", None);
        let status = status(error);
        assert_eq!(status.code(), Code::FailedPrecondition);
        assert_eq!(
            status.metadata().get("x-meta-error-code").unwrap(),
            "131053"
        );
    }

    #[test]
    fn unanswered_calls_are_unavailable_and_throttling_exhausted() {
        let unknown: CallOutcome<()> = CallOutcome::Unknown("HTTP 502 from Kapso".into());
        let status1 = status(MediaError::from_outcome(&unknown, "the upload", None));
        assert_eq!(status1.code(), Code::Unavailable);
        assert!(
            status1.message().contains("HTTP 502"),
            "{}",
            status1.message()
        );
        let throttled: CallOutcome<()> = CallOutcome::Retryable(Retry {
            after: None,
            cause: RetryCause::Throttled(None),
        });
        let status2 = status(MediaError::from_outcome(&throttled, "the upload", None));
        assert_eq!(status2.code(), Code::ResourceExhausted);
        let bad_key = status(MediaError::from_outcome(
            &CallOutcome::<()>::Permanent(Rejection::BadCredentials(None)),
            "the upload",
            None,
        ));
        assert_eq!(bad_key.code(), Code::Unauthenticated);
    }
}
