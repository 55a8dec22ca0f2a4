//! HTTP handlers: the webhook, health, readiness and metrics.
//!
//! The webhook handler is the delivery's whole life: authenticate the exact
//! bytes, parse, forward as one `IngestEvents` call, and answer 200 only once
//! the core says the delivery is durable.
//!
//! - `delivery_log`: the one line each delivery writes at INFO, and the DEBUG detail.

mod delivery_log;

use std::net::SocketAddr;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use http_body_util::BodyExt as _;
use kapso_gateway_proto::v1::Disposition;
use serde_json::json;
use tokio::sync::SemaphorePermit;
use tracing::{Instrument, debug, info_span, warn};

use crate::core_client::CoreError;
use crate::error::WebhookError;
use crate::metrics::Outcome;
use crate::parts;
use crate::state::{AppState, Shared};
use crate::telemetry::signature_prefix;
use crate::trace_context::TraceContext;
use crate::webhook::{self, Hints};

const SIGNATURE: &str = "x-webhook-signature";
const EVENT: &str = "x-webhook-event";
const IDEMPOTENCY_KEY: &str = "x-idempotency-key";
const PAYLOAD_VERSION: &str = "x-webhook-payload-version";
const BATCH: &str = "x-webhook-batch";
const BATCH_SIZE: &str = "x-batch-size";

/// How a delivery the adapter accepted ended. All of them are 200.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Accepted {
    /// The core stored it: `events` in the delivery, `duplicates` of them seen before.
    Stored { events: usize, duplicates: usize },
    /// The delivery key had been stored before: nothing written.
    DuplicateDelivery,
    /// An empty batch: nothing to store, nothing forwarded.
    Empty,
}

impl IntoResponse for Accepted {
    fn into_response(self) -> Response {
        let body = match self {
            Self::Stored { events, duplicates } => {
                json!({ "status": "ok", "events": events, "duplicates": duplicates })
            }
            Self::DuplicateDelivery => json!({ "status": "ok", "message": "Already processed" }),
            Self::Empty => json!({ "status": "ok", "events": 0, "duplicates": 0,
                                   "message": "Empty batch: nothing to store" }),
        };
        (StatusCode::OK, Json(body)).into_response()
    }
}

/// What the delivery's one log line reports, filled in as the handler learns it.
#[derive(Debug, Default)]
struct Summary {
    /// `X-Webhook-Event`, else the first event's type.
    event_type: String,
    events: usize,
    duplicates: usize,
}

/// `POST /api/whatsapp/webhook`.
pub async fn webhook(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    trace: Option<Extension<TraceContext>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let shared = state.shared();
    // Shed before reading the body: an overloaded adapter answers at once and
    // leaves the bytes unread, instead of queueing work it cannot finish in time.
    let Ok(_permit) = shared.in_flight.try_acquire() else {
        debug!(peer = %peer.ip(), "shedding a webhook request: too many in flight");
        shared
            .metrics
            .request_finished(Outcome::Shed, started.elapsed());
        return WebhookError::Overloaded {
            retry_after_secs: shared.retry_after_secs,
        }
        .into_response();
    };
    let trace = match trace {
        Some(Extension(trace)) => trace,
        // Served without the `trace_context` middleware (a bare handler in tests).
        None => TraceContext::from_headers(&headers),
    };
    let key = header_str(&headers, IDEMPOTENCY_KEY).unwrap_or_default();
    let span = info_span!("delivery", peer = %peer.ip(), idempotency_key = key);
    let mut summary = Summary::default();
    let result = handle(&state, &headers, body, &trace, &mut summary)
        .instrument(span.clone())
        .await;
    let outcome = match &result {
        Ok(Accepted::DuplicateDelivery) => Outcome::Duplicate,
        Ok(_) => Outcome::Ok,
        Err(failure) => failure.outcome(),
    };
    let elapsed = started.elapsed();
    shared.metrics.request_finished(outcome, elapsed);
    let _entered = span.enter();
    delivery_log::finished(shared, &result, outcome, &summary, elapsed);
    match result {
        Ok(accepted) => accepted.into_response(),
        Err(failure) => failure.into_response(),
    }
}

async fn handle(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
    trace: &TraceContext,
    summary: &mut Summary,
) -> Result<Accepted, WebhookError> {
    let shared = state.shared();
    let header_event = header_str(headers, EVENT);
    summary.event_type = header_event.unwrap_or_default().to_owned();
    let unverified = read_body(shared, headers, body).await?;
    let body = &unverified.body;
    debug!(bytes = body.len(), "webhook received");

    let received_signature = headers.get(SIGNATURE).map(|v| v.as_bytes());
    if let Err(error) = kapso_signature::verify(&shared.secrets, received_signature, body) {
        shared.metrics.signature_failed(error);
        warn!(
            reason = error.as_str(),
            received_signature = %signature_prefix(received_signature.unwrap_or_default()),
            "signature rejected"
        );
        return Err(error.into());
    }
    debug!("signature validated");
    // Authenticated: its bytes no longer count against the unverified budget.
    let Unverified { body, budget } = unverified;
    drop(budget);

    let hints = Hints {
        event_type: header_event,
        batch: header_str(headers, BATCH).is_some_and(|v| v.trim().eq_ignore_ascii_case("true")),
    };
    let parsed = webhook::parse(&body, hints)?;
    if parsed.without_data {
        shared.metrics.empty_batch();
        warn!("X-Webhook-Batch: true but the body has no `data`; acknowledged, nothing stored");
    }
    check_batch_size(state, headers, parsed.events.len());
    for event in &parsed.events {
        delivery_log::event(event, shared.log_message_content);
    }
    if let Some(first) = parsed.events.first()
        && summary.event_type.is_empty()
    {
        summary.event_type.clone_from(&first.event_type);
    }
    if parsed.events.is_empty() {
        return Ok(Accepted::Empty);
    }

    let events = parsed.events.len();
    summary.events = events;
    let parts = parts::split(
        header_str(headers, IDEMPOTENCY_KEY).unwrap_or_default(),
        header_str(headers, PAYLOAD_VERSION).unwrap_or_default(),
        parsed.events,
    )
    .map_err(|too_large| WebhookError::Unstorable(too_large.to_string()))?;
    // In order: a later part is only sent once every earlier one is stored, and
    // 200 only once all are. A failure leaves the stored parts to their keys.
    let mut duplicates = 0;
    let mut every_part_seen_before = true;
    for part in parts {
        let part_events = part.events.len();
        let response = shared
            .core
            .ingest(part, trace)
            .await
            .map_err(|source| match source {
                CoreError::Refused(status) => WebhookError::Unstorable(status.message().to_owned()),
                source => WebhookError::CoreUnavailable {
                    source,
                    retry_after_secs: shared.retry_after_secs,
                },
            })?;
        if response.duplicate_delivery {
            duplicates += part_events;
        } else {
            every_part_seen_before = false;
            duplicates += response
                .outcomes
                .iter()
                .filter(|o| o.disposition() == Disposition::Duplicate)
                .count();
        }
    }
    if every_part_seen_before {
        shared.metrics.events_stored(events as u64, events as u64);
        summary.duplicates = events;
        return Ok(Accepted::DuplicateDelivery);
    }
    shared
        .metrics
        .events_stored(events as u64, duplicates as u64);
    summary.duplicates = duplicates;
    Ok(Accepted::Stored { events, duplicates })
}

/// A body read whole, with its share of the unverified-bytes budget: held until
/// the signature is checked.
struct Unverified<'s> {
    body: Bytes,
    budget: Option<SemaphorePermit<'s>>,
}

/// Buffers the body, at most `body_limit_bytes`, all of it within
/// `body_read_timeout` (a total, not per chunk: a body trickling one byte at a
/// time must not hold a slot forever), taking one permit of `unverified_bytes`
/// per byte: for the declared `Content-Length` at once, else as chunks arrive.
async fn read_body<'s>(
    shared: &'s Shared,
    headers: &HeaderMap,
    body: Body,
) -> Result<Unverified<'s>, WebhookError> {
    let limit = shared.body_limit_bytes;
    let timeout = shared.body_read_timeout;
    let declared =
        header_str(headers, header::CONTENT_LENGTH.as_str()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(WebhookError::TooLarge { limit });
    }
    let mut budget = Budget {
        shared,
        permit: None,
        reserved: 0,
    };
    if let Some(len) = declared {
        // At most `limit`, checked above.
        budget.reserve(len as usize)?;
    }
    let collect = async {
        let mut body = body;
        let mut chunks: Vec<Bytes> = Vec::with_capacity(1);
        let mut total = 0usize;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|_| WebhookError::UnreadableBody)?;
            let Ok(data) = frame.into_data() else {
                continue; // trailers: not part of the signed bytes
            };
            total += data.len();
            if total > limit {
                return Err(WebhookError::TooLarge { limit });
            }
            budget.reserve(total)?;
            chunks.push(data);
        }
        Ok(match chunks.len() {
            1 => chunks.swap_remove(0),
            _ => chunks.concat().into(),
        })
    };
    match tokio::time::timeout(timeout, collect).await {
        Ok(Ok(body)) => Ok(Unverified {
            body,
            budget: budget.permit,
        }),
        Ok(Err(error)) => Err(error),
        Err(_elapsed) => Err(WebhookError::BodyTimeout(timeout)),
    }
}

/// The permits one request holds of the unverified-bytes budget.
struct Budget<'s> {
    shared: &'s Shared,
    permit: Option<SemaphorePermit<'s>>,
    reserved: usize,
}

impl Budget<'_> {
    /// Holds permits for `total` bytes, or refuses the request: never waits,
    /// a queue of unauthenticated bodies is what the budget exists to prevent.
    fn reserve(&mut self, total: usize) -> Result<(), WebhookError> {
        let Some(more) = total.checked_sub(self.reserved).filter(|&n| n > 0) else {
            return Ok(());
        };
        let permit = u32::try_from(more)
            .ok()
            .and_then(|n| self.shared.unverified_bytes.try_acquire_many(n).ok());
        let Some(permit) = permit else {
            debug!("shedding a webhook request: unverified body budget spent");
            return Err(WebhookError::Overloaded {
                retry_after_secs: self.shared.retry_after_secs,
            });
        };
        match &mut self.permit {
            Some(held) => held.merge(permit),
            None => self.permit = Some(permit),
        }
        self.reserved = total;
        Ok(())
    }
}

/// `X-Batch-Size` is advisory: a wrong count is worth knowing about, not worth a retry.
fn check_batch_size(state: &AppState, headers: &HeaderMap, items: usize) {
    let Some(declared) = header_str(headers, BATCH_SIZE) else {
        return;
    };
    if declared.trim().parse::<usize>().ok() != Some(items) {
        state.shared().metrics.batch_size_mismatch();
        warn!(
            declared,
            items, "X-Batch-Size does not match the items received"
        );
    }
}

fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// `GET /healthz`: the process is up. Says nothing about the core.
pub async fn healthz() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

/// `GET /readyz`: 200 only while the core reports `Ingest` SERVING, so a load
/// balancer stops sending deliveries that would only get 503.
pub async fn readyz(State(state): State<AppState>) -> Response {
    if state.shared().core.is_serving().await {
        Json(json!({ "status": "ready" })).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "unavailable", "error": "core is not serving" })),
        )
            .into_response()
    }
}

/// `GET /metrics`: Prometheus/OpenMetrics text.
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    state.shared().metrics.response()
}
