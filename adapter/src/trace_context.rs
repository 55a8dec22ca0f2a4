//! Per-request identity: an `X-Request-Id` and a W3C `traceparent`, so the
//! adapter's and the core's log lines of one delivery can be joined, and, when
//! traces are exported, their spans form one trace.
//!
//! A caller's values are kept when well-formed (they are untrusted text headed
//! for log pipelines, so anything else is replaced, never escaped); missing ones
//! are generated. The request id goes back in the response; both go to the core
//! as gRPC metadata.

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use http::{HeaderMap, HeaderName, HeaderValue};
use kapso_telemetry::spans::{self, Kind};
use kapso_telemetry::trace_context::{self as w3c, TraceParent};
use tracing::Instrument as _;
use tracing::field::Empty;

/// The request id header, in both directions.
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static(w3c::X_REQUEST_ID);
/// The only path whose requests are traces of their own: probes and scrapes are not.
const WEBHOOK_ROUTE: &str = "/api/whatsapp/webhook";

/// One request's trace identity, stored in the request's extensions by [`layer`].
#[derive(Debug, Clone)]
pub struct TraceContext {
    request_id: HeaderValue,
    /// The traceparent this adapter sends on: the caller's trace id and flags,
    /// and the request span's id when traces are exported (else a new one).
    traceparent: HeaderValue,
}

impl TraceContext {
    /// Keeps the caller's valid `X-Request-Id` and trace id; generates what is missing or invalid.
    pub fn from_headers(headers: &HeaderMap) -> Self {
        Self::sent_on(headers, own_hop(caller(headers)))
    }

    /// As [`from_headers`](Self::from_headers), for the request's `span`: when
    /// traces are exported, the span continues the caller's trace (or starts
    /// one) and is the parent named to the core.
    pub fn for_span(headers: &HeaderMap, span: &tracing::Span) -> Self {
        let caller = caller(headers);
        let ours = spans::continue_trace(span, caller).unwrap_or_else(|| own_hop(caller));
        Self::sent_on(headers, ours)
    }

    fn sent_on(headers: &HeaderMap, ours: TraceParent) -> Self {
        let text = ours.encode();
        let traceparent = HeaderValue::from_bytes(&text).expect("lowercase hex and dashes");
        let request_id = match headers.get(&X_REQUEST_ID) {
            Some(given) if w3c::is_valid_request_id(given.as_bytes()) => given.clone(),
            // The trace id is as unique as a UUID and ties the two together in logs.
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

/// The caller's `traceparent`, when well-formed.
fn caller(headers: &HeaderMap) -> Option<TraceParent> {
    headers
        .get(w3c::TRACEPARENT)
        .and_then(|v| TraceParent::parse(v.as_bytes()))
}

/// What this hop sends on when it exports no span of its own.
fn own_hop(caller: Option<TraceParent>) -> TraceParent {
    caller.map_or_else(TraceParent::generate, TraceParent::next_hop)
}

/// Middleware: runs the request in its span (the access-log span, and the
/// server span of an exported trace), attaches a [`TraceContext`] to the
/// request and its `X-Request-Id` to the response.
pub async fn layer(mut request: Request, next: Next) -> Response {
    let span = request_span(&request);
    let context = TraceContext::for_span(request.headers(), &span);
    span.record("request_id", context.request_id_str());
    span.record("trace_id", context.trace_id());
    let request_id = context.request_id.clone();
    request.extensions_mut().insert(context);
    let mut response = next.run(request).instrument(span.clone()).await;
    let status = response.status();
    spans::set_attribute(
        &span,
        "http.response.status_code",
        i64::from(status.as_u16()),
    );
    if status.is_server_error() {
        spans::set_error(&span, status.as_str());
    }
    response.headers_mut().insert(X_REQUEST_ID, request_id);
    response
}

/// The request's span: method, path, and the ids that join adapter and core
/// logs (recorded once known). No headers, so signatures stay out of the logs.
///
/// A webhook's span is INFO, the level traces are exported at; probes and
/// scrapes get a DEBUG one, so they are neither exported nor cost a span at
/// the default level.
fn request_span(request: &Request) -> tracing::Span {
    let method = request.method();
    if request.uri().path() == WEBHOOK_ROUTE {
        let span = tracing::info_span!(
            "request",
            %method,
            path = request.uri().path(),
            request_id = Empty,
            trace_id = Empty,
            otel.name = Empty,
            otel.kind = Empty,
        );
        if spans::exporting() {
            spans::describe(&span, &format!("{method} {WEBHOOK_ROUTE}"), Kind::Server);
        }
        span
    } else {
        tracing::debug_span!(
            "request",
            %method,
            path = request.uri().path(),
            request_id = Empty,
            trace_id = Empty,
        )
    }
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
        TraceParent::parse(traceparent.as_bytes()).is_some()
    }

    #[test]
    fn a_valid_traceparent_keeps_its_trace_id_and_flags_with_a_new_span_id() {
        let ctx = context(&[(w3c::TRACEPARENT, VALID)]);
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
        ] {
            let ctx = context(&[(w3c::TRACEPARENT, bad)]);
            assert!(is_well_formed(ctx.traceparent()), "{bad:?}");
            assert_ne!(
                ctx.trace_id(),
                "4bf92f3577b34da6a3ce929d0e0e4736",
                "{bad:?}"
            );
        }
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

    #[test]
    fn without_export_a_span_changes_nothing() {
        let mut headers = HeaderMap::new();
        headers.insert(w3c::TRACEPARENT, HeaderValue::from_static(VALID));
        let ctx = TraceContext::for_span(&headers, &tracing::info_span!("request"));
        assert_eq!(ctx.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_ne!(ctx.traceparent(), VALID);
    }
}
