//! The HTTP boundary's one error type, mapped to a response in one place.
//!
//! 4xx answers say what was wrong with the request; a 503 says little to the
//! caller (the cause is logged by the handler) but carries `Retry-After` so
//! Kapso retries the delivery.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::core_client::CoreError;
use crate::metrics::Outcome;
use crate::webhook::{ParseError, Refusal};
use kapso_signature::SignatureError;

/// Why a webhook delivery was not stored.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// 401: the signature header is missing or does not verify. Nothing forwarded.
    #[error("unauthorized: {0}")]
    Unauthorized(#[from] SignatureError),
    /// 400: the body is not a webhook body the adapter can read, or not a Kapso
    /// event (a message event without a message). Nothing forwarded.
    #[error("bad request: {0}")]
    BadRequest(ParseError),
    /// 422: the signed body is a different event from what its type (the
    /// unsigned `X-Webhook-Event`) says. Nothing forwarded.
    #[error("event type does not match the body: {0}")]
    EventMismatch(Refusal),
    /// 400: the body could not be read to its end (the client went away).
    #[error("request body could not be read")]
    UnreadableBody,
    /// 408: the body did not arrive within `ADAPTER_BODY_READ_TIMEOUT_MS`.
    #[error("body not received within {0:?}")]
    BodyTimeout(std::time::Duration),
    /// 413: the body is larger than `ADAPTER_BODY_LIMIT_BYTES`.
    #[error("body larger than {limit} bytes")]
    TooLarge { limit: usize },
    /// 413: the core cannot store the delivery as it is (an event over its gRPC
    /// message limit, or a refusal of the delivery itself); a retry would get
    /// the same answer, so no `Retry-After`.
    #[error("the delivery cannot be stored as it is: {0}")]
    Unstorable(String),
    /// 503 with `Retry-After`: `ADAPTER_MAX_IN_FLIGHT` requests are already being
    /// handled, or `ADAPTER_UNVERIFIED_BODY_BUDGET_BYTES` of bodies are buffered
    /// unauthenticated; shed at once, so a burst cannot queue without bound.
    #[error("too many webhook requests in flight")]
    Overloaded { retry_after_secs: u64 },
    /// 503 with `Retry-After`: the core is unreachable, timed out or refused; not stored.
    #[error("core unavailable: {source}")]
    CoreUnavailable {
        source: CoreError,
        retry_after_secs: u64,
    },
}

impl From<ParseError> for WebhookError {
    fn from(error: ParseError) -> Self {
        match error {
            ParseError::Refused(refusal @ Refusal::Mismatch { .. }) => Self::EventMismatch(refusal),
            other => Self::BadRequest(other),
        }
    }
}

impl WebhookError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::BadRequest(_) | Self::UnreadableBody => StatusCode::BAD_REQUEST,
            Self::EventMismatch(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            Self::TooLarge { .. } | Self::Unstorable(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Overloaded { .. } | Self::CoreUnavailable { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
        }
    }

    pub fn outcome(&self) -> Outcome {
        match self {
            Self::Unauthorized(_) => Outcome::Unauthorized,
            Self::BadRequest(_) | Self::UnreadableBody => Outcome::BadRequest,
            Self::EventMismatch(_) => Outcome::EventMismatch,
            Self::BodyTimeout(_) => Outcome::BodyTimeout,
            Self::TooLarge { .. } | Self::Unstorable(_) => Outcome::TooLarge,
            Self::Overloaded { .. } => Outcome::Shed,
            Self::CoreUnavailable { .. } => Outcome::Unavailable,
        }
    }
}

impl IntoResponse for WebhookError {
    fn into_response(self) -> Response {
        let message = match &self {
            Self::Unauthorized(SignatureError::Missing) => {
                "missing X-Webhook-Signature header".to_owned()
            }
            Self::Unauthorized(_) => "invalid signature".to_owned(),
            Self::CoreUnavailable { .. } => {
                "temporarily unable to store the event; retry later".to_owned()
            }
            Self::Overloaded { .. } => "too many requests in flight; retry later".to_owned(),
            other => other.to_string(),
        };
        let body = Json(json!({ "status": "error", "error": message }));
        let mut response = (self.status(), body).into_response();
        if let Self::CoreUnavailable {
            retry_after_secs, ..
        }
        | Self::Overloaded { retry_after_secs } = self
        {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
        }
        response
    }
}
