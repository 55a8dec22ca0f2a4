//! A per-call `tracing` span carrying the caller's trace context, so the
//! adapter's and the core's logs of one delivery can be joined and, when
//! traces are exported, the call's span is a child of the caller's.
//!
//! The adapter (and any SDK) may send W3C `traceparent` and `x-request-id` as
//! gRPC metadata. Both are untrusted input headed for log pipelines, so each is
//! recorded only when well-formed; anything else is left out, not escaped.

use std::task::{Context, Poll};

use kapso_telemetry::spans::{self, Kind};
use kapso_telemetry::trace_context::{TRACEPARENT, TraceParent, X_REQUEST_ID, is_valid_request_id};
use tonic::codegen::http;
use tower::{Layer, Service};
use tracing::Instrument as _;
use tracing::field::Empty;
use tracing::instrument::Instrumented;

/// Paths whose calls get a span: the gateway's own services, not health or reflection.
const TRACED_PREFIX: &str = "/kapso.gateway.v1.";

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

/// The span of one call: `rpc`, and the caller's `traceparent` and
/// `request_id` when valid. When traces are exported it is the call's server
/// span, a child of the caller's span named by `traceparent`.
fn span_for(path: &str, headers: &http::HeaderMap) -> tracing::Span {
    if !path.starts_with(TRACED_PREFIX) {
        return tracing::Span::none();
    }
    let rpc = path.trim_start_matches('/');
    let span = tracing::info_span!(
        "grpc",
        rpc,
        traceparent = Empty,
        request_id = Empty,
        otel.name = Empty,
        otel.kind = Empty,
    );
    // Well-formed values are ASCII, so `to_str` cannot fail on them.
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let sent = header(TRACEPARENT).and_then(|v| Some((v, TraceParent::parse(v.as_bytes())?)));
    if let Some((text, _)) = sent {
        span.record("traceparent", text);
    }
    if let Some(id) = header(X_REQUEST_ID).filter(|v| is_valid_request_id(v.as_bytes())) {
        span.record("request_id", id);
    }
    spans::describe(&span, rpc, Kind::Server);
    if let Some((_, caller)) = sent {
        spans::set_parent(&span, caller);
    }
    span
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_and_reflection_get_no_span() {
        let headers = http::HeaderMap::new();
        assert!(span_for("/grpc.health.v1.Health/Check", &headers).is_none());
        let reflection = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo";
        assert!(span_for(reflection, &headers).is_none());
    }
}
