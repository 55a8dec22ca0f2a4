//! A per-call `tracing` span carrying the caller's trace context, so the
//! adapter's and the core's logs of one delivery can be joined.
//!
//! The adapter (and any SDK) may send W3C `traceparent` and `x-request-id` as
//! gRPC metadata. Both are untrusted input headed for log pipelines, so each is
//! recorded only when well-formed; anything else is left out, not escaped.

use std::task::{Context, Poll};

use tonic::codegen::http;
use tower::{Layer, Service};
use tracing::Instrument as _;
use tracing::instrument::Instrumented;

/// Paths whose calls get a span: the gateway's own services, not health or reflection.
const TRACED_PREFIX: &str = "/kapso.gateway.v1.";
/// Longest `x-request-id` recorded.
const MAX_REQUEST_ID: usize = 128;

/// Wraps every call to the gateway's services in a `grpc` span.
#[derive(Debug, Clone, Copy, Default)]
pub struct TraceContextLayer;

impl<S> Layer<S> for TraceContextLayer {
    type Service = TraceContext<S>;

    fn layer(&self, inner: S) -> TraceContext<S> {
        TraceContext { inner }
    }
}

#[derive(Debug, Clone)]
pub struct TraceContext<S> {
    inner: S,
}

impl<S, B> Service<http::Request<B>> for TraceContext<S>
where
    S: Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Instrumented<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let span = span_for(request.uri().path(), request.headers());
        let future = span.in_scope(|| self.inner.call(request));
        future.instrument(span)
    }
}

/// The span of one call: `rpc`, and the caller's `traceparent` and `request_id` when valid.
fn span_for(path: &str, headers: &http::HeaderMap) -> tracing::Span {
    if !path.starts_with(TRACED_PREFIX) {
        return tracing::Span::none();
    }
    let span = tracing::info_span!(
        "grpc",
        rpc = path.trim_start_matches('/'),
        traceparent = tracing::field::Empty,
        request_id = tracing::field::Empty,
    );
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(traceparent) = header("traceparent").filter(|v| valid_traceparent(v)) {
        span.record("traceparent", traceparent);
    }
    if let Some(id) = header("x-request-id").filter(|v| valid_request_id(v)) {
        span.record("request_id", id);
    }
    span
}

/// `version-traceid-parentid-flags` in lowercase hex, per W3C Trace Context.
/// Later versions may append fields after a `-`; version `ff` and all-zero ids are invalid.
fn valid_traceparent(value: &str) -> bool {
    let hex = |s: &str| s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    let nonzero = |s: &str| s.bytes().any(|b| b != b'0');
    let (Some(head), rest) = (value.get(..55), value.get(55..).unwrap_or("")) else {
        return false;
    };
    let parts: Vec<&str> = head.split('-').collect();
    let [version, trace_id, parent_id, flags] = parts[..] else {
        return false;
    };
    version.len() == 2
        && trace_id.len() == 32
        && parent_id.len() == 16
        && flags.len() == 2
        && parts.iter().all(|p| hex(p))
        && version != "ff"
        && nonzero(trace_id)
        && nonzero(parent_id)
        && (rest.is_empty() || (version != "00" && rest.starts_with('-')))
}

/// Short and printable ASCII without spaces: safe in any log format.
fn valid_request_id(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= MAX_REQUEST_ID
        && value.bytes().all(|b| b.is_ascii_graphic())
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn traceparent_is_recorded_only_when_well_formed() {
        assert!(valid_traceparent(VALID));
        assert!(valid_traceparent(
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra"
        ));
        assert!(!valid_traceparent(&VALID.to_uppercase()));
        assert!(!valid_traceparent(&format!("{VALID}-extra")));
        assert!(!valid_traceparent(
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01"
        ));
        assert!(!valid_traceparent(
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        ));
        assert!(!valid_traceparent("00-4bf9-00f0-01"));
        assert!(!valid_traceparent(""));
    }

    #[test]
    fn request_ids_are_short_and_printable() {
        assert!(valid_request_id("req-123_abc"));
        assert!(!valid_request_id(""));
        assert!(!valid_request_id("has space"));
        assert!(!valid_request_id("line\nbreak"));
        assert!(!valid_request_id(&"x".repeat(MAX_REQUEST_ID + 1)));
    }

    #[test]
    fn health_and_reflection_get_no_span() {
        let headers = http::HeaderMap::new();
        assert!(span_for("/grpc.health.v1.Health/Check", &headers).is_none());
        let reflection = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo";
        assert!(span_for(reflection, &headers).is_none());
    }
}
