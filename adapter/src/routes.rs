//! HTTP handlers: the webhook, health, readiness and metrics.
//!
//! The webhook handler is the delivery's whole life: authenticate the exact
//! bytes, parse, forward as one `IngestEvents` call, and answer 200 only once
//! the core says the delivery is durable.

use std::net::SocketAddr;
use std::time::Instant;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use kapso_gateway_proto::v1::{Disposition, InboundEvent, IngestEventsRequest};
use serde_json::json;
use tracing::{Instrument, info, info_span, warn};

use crate::error::WebhookError;
use crate::metrics::Outcome;
use crate::signature;
use crate::state::AppState;
use crate::telemetry::{Masked, signature_prefix};
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

/// `POST /api/whatsapp/webhook`.
pub async fn webhook(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let started = Instant::now();
    let key = header_str(&headers, IDEMPOTENCY_KEY).unwrap_or_default();
    let span = info_span!("delivery", peer = %peer.ip(), idempotency_key = key);
    let result = handle(&state, &headers, body)
        .instrument(span.clone())
        .await;
    let outcome = match &result {
        Ok(Accepted::DuplicateDelivery) => Outcome::Duplicate,
        Ok(_) => Outcome::Ok,
        Err(error) => {
            let _entered = span.enter();
            match error {
                WebhookError::CoreUnavailable { source, .. } => {
                    warn!(error = %source, "delivery not stored; asking Kapso to retry");
                }
                WebhookError::Unauthorized(_) => {}
                other => warn!(error = %other, "delivery refused"),
            }
            error.outcome()
        }
    };
    state
        .shared()
        .metrics
        .request_finished(outcome, started.elapsed());
    match result {
        Ok(accepted) => accepted.into_response(),
        Err(error) => error.into_response(),
    }
}

async fn handle(
    state: &AppState,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Accepted, WebhookError> {
    let shared = state.shared();
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            WebhookError::TooLarge {
                limit: shared.body_limit_bytes,
            }
        } else {
            WebhookError::UnreadableBody
        }
    })?;
    let header_event = header_str(headers, EVENT);
    info!(
        event_type = header_event.unwrap_or_default(),
        bytes = body.len(),
        "webhook received"
    );

    let received_signature = headers.get(SIGNATURE).map(|v| v.as_bytes());
    if let Err(error) = signature::verify(&shared.secrets, received_signature, &body) {
        shared.metrics.signature_failed(error);
        warn!(
            reason = error.as_str(),
            received_signature = %signature_prefix(received_signature.unwrap_or_default()),
            "signature rejected"
        );
        return Err(error.into());
    }
    info!("signature validated");

    let hints = Hints {
        event_type: header_event,
        batch: header_str(headers, BATCH).is_some_and(|v| v.trim().eq_ignore_ascii_case("true")),
    };
    let parsed = webhook::parse(&body, hints)?;
    check_batch_size(state, headers, parsed.events.len());
    for event in &parsed.events {
        log_event(event, shared.log_message_content);
    }
    if parsed.events.is_empty() {
        info!("empty batch; nothing forwarded");
        return Ok(Accepted::Empty);
    }

    let events = parsed.events.len();
    let request = IngestEventsRequest {
        delivery_key: header_str(headers, IDEMPOTENCY_KEY)
            .unwrap_or_default()
            .to_owned(),
        events: parsed.events,
        payload_version: header_str(headers, PAYLOAD_VERSION)
            .unwrap_or_default()
            .to_owned(),
    };
    let response =
        shared
            .core
            .ingest(request)
            .await
            .map_err(|source| WebhookError::CoreUnavailable {
                source,
                retry_after_secs: shared.retry_after_secs,
            })?;
    if response.duplicate_delivery {
        shared.metrics.events_stored(events as u64, events as u64);
        info!(events, "delivery already processed");
        return Ok(Accepted::DuplicateDelivery);
    }
    let duplicates = response
        .outcomes
        .iter()
        .filter(|o| o.disposition() == Disposition::Duplicate)
        .count();
    shared
        .metrics
        .events_stored(events as u64, duplicates as u64);
    info!(events, duplicates, "delivery stored");
    Ok(Accepted::Stored { events, duplicates })
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

fn log_event(event: &InboundEvent, log_content: bool) {
    info!(
        event_type = %event.event_type,
        conversation_id = %event.conversation_id,
        message_id = %event.message_id,
        "processing event"
    );
    if event.message_type == "text" {
        if log_content {
            info!(contact = %event.contact_phone, text = %event.text, "text message");
        } else {
            info!(contact = %Masked(&event.contact_phone), "text message");
        }
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
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.shared().metrics.encode(),
    )
}
