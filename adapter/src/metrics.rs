//! Prometheus metrics, served as text on `GET /metrics`.

use std::fmt::Write as _;
use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use kapso_signature::SignatureError;

/// How a webhook request ended; the `outcome` label of `kapso_webhook_requests_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Stored (or nothing to store): 200.
    Ok,
    /// The whole delivery had been stored before: 200 "Already processed".
    Duplicate,
    Unauthorized,
    BadRequest,
    /// The signed body is not the event `X-Webhook-Event` says: 422.
    EventMismatch,
    TooLarge,
    /// The body did not arrive in time: 408.
    BodyTimeout,
    /// Over `ADAPTER_MAX_IN_FLIGHT`: 503 at once.
    Shed,
    /// The core could not take it: 503.
    Unavailable,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Duplicate => "duplicate",
            Self::Unauthorized => "unauthorized",
            Self::BadRequest => "bad_request",
            Self::EventMismatch => "event_mismatch",
            Self::TooLarge => "too_large",
            Self::BodyTimeout => "body_timeout",
            Self::Shed => "shed",
            Self::Unavailable => "unavailable",
        }
    }
}

impl EncodeLabelValue for Outcome {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> std::fmt::Result {
        encoder.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: Outcome,
}

/// Why the server closed a connection itself; the `reason` label of `kapso_webhook_connections_closed_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnectionClosed {
    /// Refused on accept: `ADAPTER_MAX_CONNECTIONS` were open.
    OverLimit,
    /// No request begun within `ADAPTER_HEADER_READ_TIMEOUT_MS`: a slow or silent
    /// client (HTTP/1, HTTP/2 or neither), or a connection left idle that long.
    HeaderTimeout,
}

impl EncodeLabelValue for ConnectionClosed {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> std::fmt::Result {
        encoder.write_str(match self {
            Self::OverLimit => "over_limit",
            Self::HeaderTimeout => "header_timeout",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ClosedLabels {
    reason: ConnectionClosed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Reason(SignatureError);

impl EncodeLabelValue for Reason {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> std::fmt::Result {
        encoder.write_str(self.0.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ReasonLabels {
    reason: Reason,
}

/// The adapter's metrics and the registry that exposes them.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<OutcomeLabels, Counter>,
    signature_failures: Family<ReasonLabels, Counter>,
    duplicate_events: Counter,
    batch_size_mismatches: Counter,
    empty_batches: Counter,
    events_forwarded: Counter,
    connections_closed: Family<ClosedLabels, Counter>,
    latency: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = kapso_telemetry::metrics::registry(Some("kapso_webhook"));
        let requests = Family::<OutcomeLabels, Counter>::default();
        registry.register("requests", "Webhook requests by outcome", requests.clone());
        let signature_failures = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "signature_failures",
            "Requests refused for their signature, by reason",
            signature_failures.clone(),
        );
        let duplicate_events = Counter::default();
        registry.register(
            "duplicate_events",
            "Events the core had already stored",
            duplicate_events.clone(),
        );
        let batch_size_mismatches = Counter::default();
        registry.register(
            "batch_size_mismatches",
            "Deliveries whose X-Batch-Size differs from their item count",
            batch_size_mismatches.clone(),
        );
        let empty_batches = Counter::default();
        registry.register(
            "empty_batches",
            "Deliveries under X-Webhook-Batch: true with no `data` key: acknowledged, nothing stored",
            empty_batches.clone(),
        );
        let events_forwarded = Counter::default();
        registry.register(
            "events_forwarded",
            "Events the core acknowledged as stored (new or duplicate)",
            events_forwarded.clone(),
        );
        let connections_closed = Family::<ClosedLabels, Counter>::default();
        registry.register(
            "connections_closed",
            "Connections the server closed itself, by reason",
            connections_closed.clone(),
        );
        // From 1 ms to 10 s: Kapso gives up on a request after 10 s.
        let latency = Histogram::new([
            0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
        ]);
        registry.register(
            "request_duration_seconds",
            "Time from request to answer",
            latency.clone(),
        );
        Self {
            registry,
            requests,
            signature_failures,
            duplicate_events,
            batch_size_mismatches,
            empty_batches,
            events_forwarded,
            connections_closed,
            latency,
        }
    }

    pub fn request_finished(&self, outcome: Outcome, elapsed: Duration) {
        self.requests
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
        self.latency.observe(elapsed.as_secs_f64());
    }

    pub fn signature_failed(&self, error: SignatureError) {
        self.signature_failures
            .get_or_create(&ReasonLabels {
                reason: Reason(error),
            })
            .inc();
    }

    pub fn connection_closed(&self, reason: ConnectionClosed) {
        self.connections_closed
            .get_or_create(&ClosedLabels { reason })
            .inc();
    }

    pub fn batch_size_mismatch(&self) {
        self.batch_size_mismatches.inc();
    }

    pub fn empty_batch(&self) {
        self.empty_batches.inc();
    }

    pub fn events_stored(&self, forwarded: u64, duplicates: u64) {
        self.events_forwarded.inc_by(forwarded);
        self.duplicate_events.inc_by(duplicates);
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        kapso_telemetry::metrics::encode(&self.registry)
    }

    /// The answer to `GET /metrics`.
    pub fn response(&self) -> http::Response<String> {
        kapso_telemetry::metrics::response(&self.registry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_names_every_metric_and_label() {
        let metrics = Metrics::new();
        metrics.request_finished(Outcome::BadRequest, Duration::from_millis(3));
        metrics.signature_failed(SignatureError::Mismatch);
        metrics.batch_size_mismatch();
        metrics.events_stored(3, 1);
        metrics.request_finished(Outcome::Shed, Duration::ZERO);
        metrics.request_finished(Outcome::BodyTimeout, Duration::ZERO);
        metrics.connection_closed(ConnectionClosed::HeaderTimeout);
        metrics.connection_closed(ConnectionClosed::OverLimit);
        let text = metrics.encode();
        for expected in [
            r#"kapso_webhook_requests_total{outcome="bad_request"} 1"#,
            r#"kapso_webhook_signature_failures_total{reason="mismatch"} 1"#,
            "kapso_webhook_duplicate_events_total 1",
            "kapso_webhook_batch_size_mismatches_total 1",
            "kapso_webhook_events_forwarded_total 3",
            r#"kapso_webhook_requests_total{outcome="shed"} 1"#,
            r#"kapso_webhook_requests_total{outcome="body_timeout"} 1"#,
            r#"kapso_webhook_connections_closed_total{reason="header_timeout"} 1"#,
            r#"kapso_webhook_connections_closed_total{reason="over_limit"} 1"#,
            "kapso_webhook_request_duration_seconds_count 3",
        ] {
            assert!(text.contains(expected), "{expected} missing from:\n{text}");
        }
    }
}
