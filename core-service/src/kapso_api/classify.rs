//! From an HTTP response (or a transport error) to a [`CallOutcome`], pure.
//!
//! The question each rule answers is "could this request have taken effect?":
//! only answers that prove it did not are retryable; anything after the request
//! left without a clear answer is unknown.

use std::time::Duration;

use super::{
    CODE_BAD_CREDENTIALS, CODE_WINDOW_CLOSED, CallOutcome, Rejection, Retry, RetryCause,
    THROTTLING_CODES, wire,
};
use crate::model::MetaError;

/// Longest `Retry-After` honoured; longer asks are capped (the caller's deadline bounds it anyway).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// Classifies a non-2xx response.
pub(super) fn failure<T>(status: u16, retry_after: Option<&str>, body: &[u8]) -> CallOutcome<T> {
    let error = wire::meta_error(body);
    let code = error.as_ref().map(|e| e.code);
    let after = retry_after.and_then(parse_retry_after);

    if (300..400).contains(&status) {
        // Redirects are not followed (the API key would go along): the base
        // URL is wrong or something between the gateway and Kapso rewrites it.
        return CallOutcome::Permanent(Rejection::Refused {
            http_status: status,
            error: MetaError {
                code: 0,
                title: format!("HTTP {status} redirect"),
                message: "Kapso's API answered with a redirect, which the gateway does not follow \
                          (it would carry the API key elsewhere); check KAPSO_API_BASE_URL"
                    .into(),
                details: String::new(),
            },
        });
    }
    if status == 401 || code == Some(CODE_BAD_CREDENTIALS) || (status == 403 && error.is_none()) {
        return CallOutcome::Permanent(Rejection::BadCredentials(error));
    }
    if status == 429 || code.is_some_and(|c| THROTTLING_CODES.contains(&c)) {
        return CallOutcome::Retryable(Retry {
            after,
            cause: RetryCause::Throttled(error),
        });
    }
    if status == 409 {
        return CallOutcome::Retryable(Retry {
            after,
            cause: RetryCause::InFlight(error),
        });
    }
    if let Some(error) = error.as_ref().filter(|e| e.code == CODE_WINDOW_CLOSED) {
        return CallOutcome::Permanent(Rejection::WindowClosed(error.clone()));
    }
    if (400..500).contains(&status) {
        let error = error.unwrap_or_else(|| MetaError {
            code: 0,
            title: format!("HTTP {status}"),
            message: snippet(body),
            details: String::new(),
        });
        return CallOutcome::Permanent(Rejection::Refused {
            http_status: status,
            error,
        });
    }
    // 5xx (and anything stranger): Kapso may have forwarded the request before failing.
    let reason = match error {
        Some(e) => format!("HTTP {status} from Kapso: {} (code {})", e.message, e.code),
        None => format!("HTTP {status} from Kapso"),
    };
    CallOutcome::Unknown(reason)
}

/// Classifies a transport error: only failures before the request left are retryable.
pub(super) fn transport<T>(error: &reqwest::Error) -> CallOutcome<T> {
    if error.is_connect() {
        return CallOutcome::Retryable(Retry {
            after: None,
            cause: RetryCause::Unreachable(format!("cannot connect to Kapso: {}", chain(error))),
        });
    }
    let what = if error.is_timeout() {
        "timed out waiting for Kapso"
    } else {
        "connection to Kapso failed mid-request"
    };
    CallOutcome::Unknown(format!("{what}: {}", chain(error)))
}

/// `Retry-After` in seconds. HTTP dates are not used by Kapso; they fall back to backoff.
fn parse_retry_after(value: &str) -> Option<Duration> {
    let seconds: u64 = value.trim().parse().ok()?;
    Some(Duration::from_secs(seconds).min(MAX_RETRY_AFTER))
}

/// The error and its sources on one line (reqwest's Display hides the cause).
pub(super) fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The start of a non-JSON error body, for the error message.
fn snippet(body: &[u8]) -> String {
    String::from_utf8_lossy(body).chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(code: i64) -> Vec<u8> {
        format!(r#"{{"error":{{"message":"m{code}","type":"OAuthException","code":{code},"fbtrace_id":"x"}}}}"#)
            .into_bytes()
    }

    fn classify(status: u16, retry_after: Option<&str>, body: &[u8]) -> CallOutcome<()> {
        failure(status, retry_after, body)
    }

    #[test]
    fn throttling_is_retryable_and_honours_retry_after() {
        let CallOutcome::Retryable(retry) = classify(429, Some("3"), b"") else {
            panic!("429 must be retryable");
        };
        assert_eq!(retry.after, Some(Duration::from_secs(3)));
        assert!(matches!(retry.cause, RetryCause::Throttled(None)));
        for code in THROTTLING_CODES {
            assert!(matches!(
                classify(400, None, &envelope(code)),
                CallOutcome::Retryable(Retry {
                    cause: RetryCause::Throttled(Some(_)),
                    ..
                })
            ));
        }
    }

    #[test]
    fn a_redirect_is_a_permanent_refusal_naming_the_base_url() {
        for status in [301, 302, 307, 308] {
            let CallOutcome::Permanent(Rejection::Refused { http_status, error }) =
                classify(status, None, b"")
            else {
                panic!("{status} must be permanent");
            };
            assert_eq!(http_status, status);
            assert!(error.message.contains("KAPSO_API_BASE_URL"));
        }
    }

    #[test]
    fn conflict_is_retryable() {
        assert!(matches!(
            classify(409, None, b"{}"),
            CallOutcome::Retryable(Retry {
                cause: RetryCause::InFlight(None),
                ..
            })
        ));
    }

    #[test]
    fn bad_credentials_are_permanent() {
        for (status, body) in [(401, Vec::new()), (400, envelope(190)), (403, Vec::new())] {
            assert!(matches!(
                classify(status, None, &body),
                CallOutcome::Permanent(Rejection::BadCredentials(_))
            ));
        }
    }

    #[test]
    fn closed_window_is_its_own_rejection() {
        assert!(matches!(
            classify(400, None, &envelope(131047)),
            CallOutcome::Permanent(Rejection::WindowClosed(e)) if e.code == 131047
        ));
    }

    #[test]
    fn other_client_errors_are_permanent_with_meta_code() {
        for code in [131049, 131050, 131031, 368, 130497, 100] {
            assert!(matches!(
                classify(400, None, &envelope(code)),
                CallOutcome::Permanent(Rejection::Refused { http_status: 400, error }) if error.code == code
            ));
        }
        assert!(matches!(
            classify(404, None, b"not found"),
            CallOutcome::Permanent(Rejection::Refused { http_status: 404, error }) if error.message == "not found"
        ));
    }

    #[test]
    fn server_errors_are_unknown() {
        for status in [500, 502, 503, 504] {
            assert!(matches!(
                classify(status, Some("1"), &envelope(131000)),
                CallOutcome::Unknown(_)
            ));
        }
    }

    #[test]
    fn retry_after_is_capped_and_dates_ignored() {
        assert_eq!(parse_retry_after("3600"), Some(MAX_RETRY_AFTER));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }
}
