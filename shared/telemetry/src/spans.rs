//! `tracing` spans as exported traces see them: their parent in another
//! process, their name and kind, and the `traceparent` that names them to the
//! next hop.
//!
//! Everything here does nothing unless [`init`](crate::init) turned export on,
//! so a process that exports nothing pays one relaxed load per call. What a
//! trace needs and a log line does not (a span's kind, its display name) is
//! recorded only when exporting, so logs read the same either way.

use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::trace::{
    SpanContext, SpanId, Status, TraceContextExt as _, TraceFlags, TraceId, TraceState,
};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::trace_context::TraceParent;

static EXPORTING: AtomicBool = AtomicBool::new(false);

/// Whether spans are exported over OTLP in this process.
pub fn exporting() -> bool {
    EXPORTING.load(Ordering::Relaxed)
}

pub(crate) fn start_exporting() {
    EXPORTING.store(true, Ordering::Relaxed);
}

/// What a span is to the trace: the server side of a call, or its client side.
/// Spans not described are internal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Server,
    Client,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Server => "server",
            Kind::Client => "client",
        }
    }
}

/// Names `span` in the exported trace and gives it its kind. The span must
/// declare `otel.name` and `otel.kind` as `tracing::field::Empty`, and be
/// described before it is first entered.
pub fn describe(span: &Span, name: &str, kind: Kind) {
    if exporting() {
        span.record("otel.name", name);
        span.record("otel.kind", kind.as_str());
    }
}

/// Makes `span` a child of `parent`, the caller's span in another process,
/// and returns the `traceparent` that names `span` itself. `None` when
/// nothing is exported (or the span is filtered out): the caller then keeps
/// its own ids. Call before the span is first entered.
pub fn continue_trace(span: &Span, parent: Option<TraceParent>) -> Option<TraceParent> {
    if !exporting() {
        return None;
    }
    if let Some(parent) = parent {
        set_parent(span, parent);
    }
    traceparent(span)
}

/// Makes `span` a child of `parent`, the caller's span in another process.
/// Call before the span is first entered.
pub fn set_parent(span: &Span, parent: TraceParent) {
    if exporting() {
        // Fails only for a span already started or filtered out: it then keeps
        // the parent it has, and the trace is cut here, as without a header.
        let _ = span.set_parent(remote_context(parent));
    }
}

/// The `traceparent` naming `span`, to send to the next hop; `None` when
/// nothing is exported. Starts the span if it has not started.
pub fn traceparent(span: &Span) -> Option<TraceParent> {
    if !exporting() {
        return None;
    }
    let context = span.context();
    let ids = context.span().span_context().clone();
    if !ids.is_valid() {
        return None;
    }
    TraceParent::new(
        u128::from_be_bytes(ids.trace_id().to_bytes()),
        u64::from_be_bytes(ids.span_id().to_bytes()),
        ids.trace_flags().to_u8(),
    )
}

/// Adds an attribute to the exported span only (not to log lines).
pub fn set_attribute(span: &Span, key: &'static str, value: impl Into<opentelemetry::Value>) {
    if exporting() {
        span.set_attribute(key, value);
    }
}

/// Marks the exported span as failed, with a short description (no customer data).
pub fn set_error(span: &Span, description: impl Into<String>) {
    if exporting() {
        span.set_status(Status::error(description.into()));
    }
}

/// A span in another process, as an OpenTelemetry parent.
fn remote_context(parent: TraceParent) -> opentelemetry::Context {
    let ids = SpanContext::new(
        TraceId::from_bytes(parent.trace_id().to_be_bytes()),
        SpanId::from_bytes(parent.parent_id().to_be_bytes()),
        TraceFlags::new(parent.flags()),
        true,
        TraceState::default(),
    );
    opentelemetry::Context::new().with_remote_span_context(ids)
}
