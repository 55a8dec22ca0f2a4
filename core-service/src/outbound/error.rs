//! The outbound boundary's one error type, mapped to `tonic::Status` once.
//!
//! Every error about a send the store recorded names the gateway's message id,
//! in the text and in the `x-message-id` trailer, so the caller can look the
//! message up later; Meta's error code, when there is one, is in `x-meta-error-code`.

use tonic::metadata::MetadataMap;
use tonic::{Code, Status};

use crate::kapso_api::{CODE_BAD_CREDENTIALS, CODE_WINDOW_CLOSED, THROTTLING_CODES};
use crate::model::{MetaError, SendFailure};
use crate::store::StoreError;

/// Meta codes that mean the request's parameters were wrong, not the state of the world.
const INVALID_PARAMETER_CODES: [i64; 3] = [100, 131008, 131009];

/// Why a send or mark-read did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    /// `INVALID_ARGUMENT`: the request is wrong; says which field.
    #[error("invalid {field}: {reason}")]
    Invalid { field: &'static str, reason: String },

    /// `FAILED_PRECONDITION`: no Kapso API key is configured; nothing was sent.
    #[error("the Kapso API key is not configured (set KAPSO_API_TOKEN); nothing was sent")]
    NotConfigured,

    /// `NOT_FOUND`: `conversation_id` names no conversation the gateway has seen.
    #[error("conversation {0} is unknown to the gateway")]
    ConversationNotFound(String),

    /// `ALREADY_EXISTS`: the idempotency key was used for a different request.
    #[error("idempotency key {key:?} was already used for a different request")]
    KeyReused { key: String },

    /// `FAILED_PRECONDITION`: the 24-hour customer service window is closed: by
    /// the gateway's own check (`error` is `None`; nothing left, nothing kept
    /// under the key) or by Meta (131047).
    #[error(
        "{}{}the 24-hour customer service window is closed (the contact's last message is over 24 hours old); send a template message{}",
        not_sent(gateway_id), refused_by(error.as_ref()), meta(error.as_ref())
    )]
    WindowClosed {
        gateway_id: Option<String>,
        error: Option<MetaError>,
    },

    /// `UNAUTHENTICATED`: Kapso refused the API key (HTTP 401/403, Meta 190). Not retried.
    #[error(
        "{}Kapso refused the API key, KAPSO_API_TOKEN is wrong or revoked{}",
        not_sent(gateway_id), meta(error.as_ref())
    )]
    BadCredentials {
        gateway_id: Option<String>,
        error: Option<MetaError>,
    },

    /// `RESOURCE_EXHAUSTED`: still rate limited when retries or the deadline ran out.
    #[error(
        "{}Kapso's rate limit was still reached after retrying; retry later{}",
        not_sent(gateway_id), meta(error.as_ref())
    )]
    RateLimited {
        gateway_id: Option<String>,
        error: Option<MetaError>,
    },

    /// `UNAVAILABLE`: Kapso did not take the request (unreachable, another message in
    /// flight) and retries ran out; it certainly was not sent.
    #[error("{}{reason}; retry later", not_sent(gateway_id))]
    Unavailable {
        gateway_id: Option<String>,
        reason: String,
    },

    /// `UNAVAILABLE`: the request may have reached WhatsApp (timeout, 5xx). Resending
    /// could deliver twice: a status webhook settles it.
    #[error(
        "outcome unknown for message {gateway_id}: {reason}; it may have been sent, check message {gateway_id} later instead of resending"
    )]
    OutcomeUnknown { gateway_id: String, reason: String },

    /// `UNAVAILABLE`: another call with the same idempotency key is still sending.
    #[error(
        "message {gateway_id} is still being sent by an earlier call with the same idempotency key; check it later"
    )]
    StillInFlight { gateway_id: String },

    /// `INVALID_ARGUMENT` for Meta's parameter errors (100, 131008, 131009),
    /// `FAILED_PRECONDITION` otherwise (131049, 131050, 131031, 368, 130497, ...).
    #[error("{}refused by {}: {} (code {}): {}", not_sent(gateway_id), refuser(error), error.title, error.code, error.message)]
    Rejected {
        gateway_id: Option<String>,
        error: MetaError,
    },

    /// `UNAVAILABLE` or `INTERNAL`, from the store.
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn not_sent(gateway_id: &Option<String>) -> String {
    gateway_id
        .as_deref()
        .map_or_else(String::new, |id| format!("message {id} not sent: "))
}

/// Who refused: the gateway itself when Meta gave no error.
fn refused_by(error: Option<&MetaError>) -> &'static str {
    match error {
        None => "refused by the gateway: ",
        Some(_) => "refused by WhatsApp: ",
    }
}

/// Meta's errors carry a code; an answer without one is Kapso's own.
fn refuser(error: &MetaError) -> &'static str {
    match error.code {
        0 => "Kapso",
        _ => "WhatsApp",
    }
}

fn meta(error: Option<&MetaError>) -> String {
    error.map_or_else(String::new, |e| {
        format!(" (Meta {}: {})", e.code, e.message)
    })
}

impl OutboundError {
    pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> OutboundError {
        OutboundError::Invalid {
            field,
            reason: reason.into(),
        }
    }

    /// The error for a failed send from how it failed, so that a replay by
    /// idempotency key raises the same class as the first call did.
    pub(crate) fn from_failure(gateway_id: Option<&str>, failure: &SendFailure) -> OutboundError {
        let gateway_id = gateway_id.map(str::to_owned);
        let error = match failure {
            SendFailure::NotTaken { reason } => {
                return OutboundError::Unavailable {
                    gateway_id,
                    reason: reason.clone(),
                };
            }
            SendFailure::Refused(errors) => match errors.first() {
                Some(error) => error.clone(),
                None => {
                    return OutboundError::Unavailable {
                        gateway_id,
                        reason: "the send failed without an error from Kapso".into(),
                    };
                }
            },
        };
        match error.code {
            CODE_WINDOW_CLOSED => OutboundError::WindowClosed {
                gateway_id,
                error: Some(error),
            },
            CODE_BAD_CREDENTIALS => OutboundError::BadCredentials {
                gateway_id,
                error: Some(error),
            },
            code if THROTTLING_CODES.contains(&code) => OutboundError::RateLimited {
                gateway_id,
                error: Some(error),
            },
            _ => OutboundError::Rejected { gateway_id, error },
        }
    }

    fn code(&self) -> Code {
        match self {
            OutboundError::Invalid { .. } => Code::InvalidArgument,
            OutboundError::NotConfigured | OutboundError::WindowClosed { .. } => {
                Code::FailedPrecondition
            }
            OutboundError::ConversationNotFound(_) => Code::NotFound,
            OutboundError::KeyReused { .. } => Code::AlreadyExists,
            OutboundError::BadCredentials { .. } => Code::Unauthenticated,
            OutboundError::RateLimited { .. } => Code::ResourceExhausted,
            OutboundError::Unavailable { .. }
            | OutboundError::OutcomeUnknown { .. }
            | OutboundError::StillInFlight { .. } => Code::Unavailable,
            OutboundError::Rejected { error, .. }
                if INVALID_PARAMETER_CODES.contains(&error.code) =>
            {
                Code::InvalidArgument
            }
            OutboundError::Rejected { .. } => Code::FailedPrecondition,
            OutboundError::Store(StoreError::Unavailable(_)) => Code::Unavailable,
            OutboundError::Store(_) => Code::Internal,
        }
    }

    /// The gateway's id of the recorded send this error is about.
    pub fn gateway_id(&self) -> Option<&str> {
        match self {
            OutboundError::WindowClosed { gateway_id, .. }
            | OutboundError::BadCredentials { gateway_id, .. }
            | OutboundError::RateLimited { gateway_id, .. }
            | OutboundError::Unavailable { gateway_id, .. }
            | OutboundError::Rejected { gateway_id, .. } => gateway_id.as_deref(),
            OutboundError::OutcomeUnknown { gateway_id, .. }
            | OutboundError::StillInFlight { gateway_id } => Some(gateway_id),
            _ => None,
        }
    }

    /// Meta's error code, when Meta gave one.
    pub fn meta_code(&self) -> Option<i64> {
        match self {
            OutboundError::WindowClosed { error, .. }
            | OutboundError::BadCredentials { error, .. }
            | OutboundError::RateLimited { error, .. } => error.as_ref().map(|e| e.code),
            OutboundError::Rejected { error, .. } => Some(error.code),
            _ => None,
        }
        .filter(|code| *code != 0)
    }
}

impl From<OutboundError> for Status {
    fn from(error: OutboundError) -> Status {
        let code = error.code();
        let mut metadata = MetadataMap::new();
        if let Some(value) = error.gateway_id().and_then(|id| id.parse().ok()) {
            metadata.insert("x-message-id", value);
        }
        if let Some(value) = error.meta_code().and_then(|c| c.to_string().parse().ok()) {
            metadata.insert("x-meta-error-code", value);
        }
        // Store failures say little to the caller and everything to the log.
        let message = match &error {
            OutboundError::Store(detail) => {
                tracing::error!(%detail, "store failure during an outbound call");
                match code {
                    Code::Unavailable => "store unavailable, retry later".to_owned(),
                    _ => "internal store failure".to_owned(),
                }
            }
            other => other.to_string(),
        };
        Status::with_metadata(code, message, metadata)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta_error(code: i64) -> MetaError {
        MetaError {
            code,
            title: format!("title {code}"),
            message: format!("message {code}"),
            details: String::new(),
        }
    }

    #[test]
    fn recorded_failures_map_to_the_same_class() {
        let cases = [
            (131047, Code::FailedPrecondition),
            (190, Code::Unauthenticated),
            (130429, Code::ResourceExhausted),
            (0, Code::FailedPrecondition),
            (131049, Code::FailedPrecondition),
            (100, Code::InvalidArgument),
        ];
        for (meta_code, grpc) in cases {
            let status = Status::from(OutboundError::from_failure(
                Some("gw_1"),
                &SendFailure::Refused(vec![meta_error(meta_code)]),
            ));
            assert_eq!(status.code(), grpc, "meta code {meta_code}");
            assert_eq!(status.metadata().get("x-message-id").unwrap(), "gw_1");
            let trailer = status.metadata().get("x-meta-error-code");
            match meta_code {
                0 => assert!(trailer.is_none()),
                c => assert_eq!(trailer.unwrap().to_str().unwrap(), c.to_string()),
            }
        }
    }

    #[test]
    fn requests_kapso_never_took_replay_as_unavailable() {
        let failure = SendFailure::NotTaken {
            reason: "cannot connect to Kapso".into(),
        };
        let status = Status::from(OutboundError::from_failure(Some("gw_1"), &failure));
        assert_eq!(status.code(), Code::Unavailable);
        assert!(
            status.message().contains("not sent"),
            "{}",
            status.message()
        );
        assert!(status.metadata().get("x-meta-error-code").is_none());
    }

    #[test]
    fn window_error_asks_for_a_template() {
        let status = Status::from(OutboundError::from_failure(
            Some("gw_1"),
            &SendFailure::Refused(vec![meta_error(131047)]),
        ));
        assert!(
            status.message().contains("template"),
            "{}",
            status.message()
        );
    }

    #[test]
    fn unknown_outcome_names_the_message_to_check() {
        let status = Status::from(OutboundError::OutcomeUnknown {
            gateway_id: "gw_9".into(),
            reason: "HTTP 502 from Kapso".into(),
        });
        assert_eq!(status.code(), Code::Unavailable);
        assert!(status.message().contains("outcome unknown"));
        assert!(status.message().contains("gw_9"));
    }

    #[test]
    fn validation_names_the_field() {
        let status = Status::from(OutboundError::invalid("text", "must not be empty"));
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(status.message().contains("text"));
        assert!(status.metadata().get("x-message-id").is_none());
    }
}
