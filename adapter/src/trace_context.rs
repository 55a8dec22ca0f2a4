//! Per-request identity: an `X-Request-Id` and a W3C `traceparent`, so the
//! adapter's and the core's log lines of one delivery can be joined.
//!
//! A caller's values are kept when well-formed (they are untrusted text headed
//! for log pipelines, so anything else is replaced, never escaped); missing ones
//! are generated. The request id goes back in the response; both go to the core
//! as gRPC metadata.

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use http::{HeaderMap, HeaderName, HeaderValue};

/// The request id header, in both directions.
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const TRACEPARENT: &str = "traceparent";
/// Longest caller-sent request id kept (the core records at most this many bytes too).
const MAX_REQUEST_ID: usize = 128;
/// `00-` + 32 + `-` + 16 + `-` + 2.
const TRACEPARENT_LEN: usize = 55;

/// One request's trace identity, stored in the request's extensions by [`layer`].
#[derive(Debug, Clone)]
pub struct TraceContext {
    request_id: HeaderValue,
    /// The traceparent this adapter sends on: the caller's trace id and flags, our own span id.
    traceparent: HeaderValue,
}

impl TraceContext {
    /// Keeps the caller's valid `X-Request-Id` and trace id; generates what is missing or invalid.
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let span_id = nonzero_u64();
        let (trace_id, flags) = headers
            .get(TRACEPARENT)
            .and_then(|v| parse_traceparent(v.as_bytes()))
            .unwrap_or_else(|| (nonzero_u128(), 1));
        let mut text = [0u8; TRACEPARENT_LEN];
        text[..3].copy_from_slice(b"00-");
        write_hex(&mut text[3..35], &trace_id.to_be_bytes());
        text[35] = b'-';
        write_hex(&mut text[36..52], &span_id.to_be_bytes());
        text[52] = b'-';
        write_hex(&mut text[53..], &[flags]);
        let traceparent = HeaderValue::from_bytes(&text).expect("lowercase hex and dashes");
        let request_id = match headers.get(&X_REQUEST_ID) {
            Some(given) if valid_request_id(given.as_bytes()) => given.clone(),
            // A fresh trace id is as unique as a UUID and ties the two together in logs.
            _ => HeaderValue::from_bytes(&text[3..35]).expect("lowercase hex"),
        };
        Self {
            request_id,
            traceparent,
        }
    }

    pub fn request_id(&self) -> &HeaderValue {
        &self.request_id
    }

    pub fn traceparent(&self) -> &HeaderValue {
        &self.traceparent
    }

    /// The request id as text (always printable ASCII by construction).
    pub fn request_id_str(&self) -> &str {
        self.request_id.to_str().unwrap_or_default()
    }

    /// The 32-hex-digit trace id.
    pub fn trace_id(&self) -> &str {
        self.traceparent.to_str().map_or("", |t| &t[3..35])
    }
}

/// Middleware: attaches a [`TraceContext`] to the request and its `X-Request-Id` to the response.
pub async fn layer(mut request: Request, next: Next) -> Response {
    let context = TraceContext::from_headers(request.headers());
    let request_id = context.request_id.clone();
    request.extensions_mut().insert(context);
    let mut response = next.run(request).await;
    response.headers_mut().insert(X_REQUEST_ID, request_id);
    response
}

/// `version-traceid-parentid-flags`, lowercase hex (W3C Trace Context). Returns the
/// trace id and flags. Later versions may append `-...`; version `ff` and zero ids are invalid.
fn parse_traceparent(value: &[u8]) -> Option<(u128, u8)> {
    let head = value.get(..TRACEPARENT_LEN)?;
    let rest = &value[TRACEPARENT_LEN..];
    if head[2] != b'-' || head[35] != b'-' || head[52] != b'-' {
        return None;
    }
    let version = hex_field(&head[..2])?;
    let trace_id = hex_field(&head[3..35])?;
    let parent_id = hex_field(&head[36..52])?;
    let flags = hex_field(&head[53..55])?;
    let extension_ok = rest.is_empty() || (version != 0 && rest.first() == Some(&b'-'));
    (version != 0xff && trace_id != 0 && parent_id != 0 && extension_ok)
        .then_some((trace_id, flags as u8))
}

/// A lowercase hex field of at most 32 digits.
fn hex_field(digits: &[u8]) -> Option<u128> {
    digits.iter().try_fold(0u128, |value, &digit| {
        let nibble = match digit {
            b'0'..=b'9' => digit - b'0',
            b'a'..=b'f' => digit - b'a' + 10,
            _ => return None,
        };
        Some(value << 4 | u128::from(nibble))
    })
}

/// Short printable ASCII without spaces: safe in any log format.
fn valid_request_id(value: &[u8]) -> bool {
    !value.is_empty() && value.len() <= MAX_REQUEST_ID && value.iter().all(u8::is_ascii_graphic)
}

fn write_hex(out: &mut [u8], bytes: &[u8]) {
    hex::encode_to_slice(bytes, out).expect("out is twice as long as bytes");
}

fn nonzero_u128() -> u128 {
    rand::random::<u128>().max(1)
}

fn nonzero_u64() -> u64 {
    rand::random::<u64>().max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn context(pairs: &[(&'static str, &str)]) -> TraceContext {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        TraceContext::from_headers(&headers)
    }

    fn is_well_formed(traceparent: &HeaderValue) -> bool {
        parse_traceparent(traceparent.as_bytes()).is_some()
    }

    #[test]
    fn a_valid_traceparent_keeps_its_trace_id_and_flags_with_a_new_span_id() {
        let ctx = context(&[(TRACEPARENT, VALID)]);
        let sent = ctx.traceparent().to_str().unwrap();
        assert!(
            sent.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"),
            "{sent}"
        );
        assert!(sent.ends_with("-01"), "{sent}");
        assert_ne!(sent, VALID, "the adapter is a new span");
        assert_eq!(ctx.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
    }

    #[test]
    fn invalid_traceparents_are_replaced_by_generated_ones() {
        for bad in [
            "",
            "00-4bf9-00f0-01",
            &VALID.to_uppercase(),
            &format!("{VALID}-extra"),
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            let ctx = context(&[(TRACEPARENT, bad)]);
            assert!(is_well_formed(ctx.traceparent()), "{bad:?}");
            assert_ne!(
                ctx.trace_id(),
                "4bf92f3577b34da6a3ce929d0e0e4736",
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_future_version_may_carry_extra_fields() {
        let future = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-more";
        let ctx = context(&[(TRACEPARENT, future)]);
        assert_eq!(ctx.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
    }

    #[test]
    fn a_sane_request_id_is_kept_and_others_are_replaced_by_the_trace_id() {
        assert_eq!(
            context(&[("x-request-id", "req-123")]).request_id(),
            "req-123"
        );
        for bad in ["", "has space", &"x".repeat(129)] {
            let ctx = context(&[("x-request-id", bad)]);
            assert_eq!(ctx.request_id_str(), ctx.trace_id(), "{bad:?}");
        }
    }

    #[test]
    fn generated_ids_differ_between_requests() {
        let (a, b) = (context(&[]), context(&[]));
        assert!(is_well_formed(a.traceparent()));
        assert_ne!(a.trace_id(), b.trace_id());
        assert_eq!(a.request_id_str().len(), 32);
    }
}
