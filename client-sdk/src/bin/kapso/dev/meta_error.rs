//! Every refusal of `kapso dev`'s API, answered in Meta's error envelope
//! (`{"error":{"message","type","code","error_data":{"messaging_product","details"},"fbtrace_id"}}`),
//! which Kapso's proxy passes through and clients classify by `code`.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Meta's code for a wrong or missing API key (through Kapso: HTTP 401).
pub const CODE_BAD_KEY: i64 = 190;
/// Invalid parameter: a value Meta does not take.
pub const CODE_INVALID_PARAMETER: i64 = 100;
/// A required parameter is missing.
pub const CODE_MISSING_PARAMETER: i64 = 131008;
/// Cloud API throughput reached: retry after a delay.
pub const CODE_RATE_LIMIT: i64 = 130429;
/// Service temporarily unavailable: the request may or may not have gone through.
pub const CODE_UNAVAILABLE: i64 = 131016;
/// A path the API does not serve.
pub const CODE_UNKNOWN_PATH: i64 = 2500;

/// How long a rate-limited caller is told to wait, in seconds.
const RETRY_AFTER_SECS: &str = "1";

/// Why a call was refused; each variant's doc names its HTTP status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetaError {
    /// 401: the API key is missing or is not the configured one.
    BadKey,
    /// 400: a parameter's value is not acceptable; says which and why.
    InvalidParameter(String),
    /// 400: a required parameter is missing; says which.
    MissingParameter(String),
    /// 429 with `Retry-After`: the rate limit (here: `--burst-429`).
    RateLimited,
    /// 503: Meta had trouble (here: `--fail-rate`); nothing is known to be sent.
    Unavailable,
    /// 404: not an endpoint of the proxy.
    UnknownPath(String),
}

impl MetaError {
    pub fn status(&self) -> StatusCode {
        match self {
            MetaError::BadKey => StatusCode::UNAUTHORIZED,
            MetaError::InvalidParameter(_) | MetaError::MissingParameter(_) => {
                StatusCode::BAD_REQUEST
            }
            MetaError::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            MetaError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            MetaError::UnknownPath(_) => StatusCode::NOT_FOUND,
        }
    }

    pub fn code(&self) -> i64 {
        match self {
            MetaError::BadKey => CODE_BAD_KEY,
            MetaError::InvalidParameter(_) => CODE_INVALID_PARAMETER,
            MetaError::MissingParameter(_) => CODE_MISSING_PARAMETER,
            MetaError::RateLimited => CODE_RATE_LIMIT,
            MetaError::Unavailable => CODE_UNAVAILABLE,
            MetaError::UnknownPath(_) => CODE_UNKNOWN_PATH,
        }
    }

    /// Meta's title (inside `message`, after the code) and the details.
    fn title_and_details(&self) -> (&'static str, String) {
        match self {
            MetaError::BadKey => (
                "Invalid API key",
                "The X-API-Key header is missing or is not this project's key.".into(),
            ),
            MetaError::InvalidParameter(details) => ("Invalid parameter", details.clone()),
            MetaError::MissingParameter(details) => {
                ("Required parameter is missing", details.clone())
            }
            MetaError::RateLimited => (
                "Rate limit hit",
                "Cloud API message throughput has been reached.".into(),
            ),
            MetaError::Unavailable => (
                "Service unavailable",
                "A service is temporarily unavailable.".into(),
            ),
            MetaError::UnknownPath(path) => (
                "Unknown path components",
                format!("{path} is not an endpoint of this API."),
            ),
        }
    }

    /// The envelope's JSON.
    pub fn body(&self) -> serde_json::Value {
        let (title, details) = self.title_and_details();
        let code = self.code();
        json!({"error": {
            "message": format!("(#{code}) {title}"),
            "type": "OAuthException",
            "code": code,
            "error_data": {"messaging_product": "whatsapp", "details": details},
            "fbtrace_id": format!("Dev{}", uuid::Uuid::new_v4().simple()),
        }})
    }
}

impl IntoResponse for MetaError {
    fn into_response(self) -> Response {
        let mut response = (self.status(), Json(self.body())).into_response();
        if self == MetaError::RateLimited {
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from_static(RETRY_AFTER_SECS),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_envelope_is_metas() {
        let body = MetaError::MissingParameter("to".into()).body();
        let error = &body["error"];
        assert_eq!(error["code"], CODE_MISSING_PARAMETER);
        assert_eq!(error["message"], "(#131008) Required parameter is missing");
        assert_eq!(error["type"], "OAuthException");
        assert_eq!(error["error_data"]["details"], "to");
        assert_eq!(error["error_data"]["messaging_product"], "whatsapp");
        assert!(
            error["fbtrace_id"]
                .as_str()
                .is_some_and(|id| !id.is_empty())
        );
    }

    #[test]
    fn a_rate_limit_says_when_to_retry() {
        let response = MetaError::RateLimited.into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
        let response = MetaError::Unavailable.into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(response.headers().get(header::RETRY_AFTER).is_none());
    }
}
