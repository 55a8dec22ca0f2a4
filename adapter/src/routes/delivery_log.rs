//! What a delivery writes to the log: one line at INFO when it ends, detail at DEBUG.
//!
//! At thousands of deliveries a second, every INFO line per delivery is
//! thousands of lines a second; so a delivery ends in exactly one line, the
//! access log's: status, outcome, event type, counts and latency, inside the
//! spans that carry the request id and the idempotency key. Refusals say why
//! at WARN instead; a failing core is logged as an outage, not per request.

use std::time::{Duration, Instant};

use kapso_gateway_proto::v1::InboundEvent;
use tracing::{debug, error, info, warn};

use super::{Accepted, Summary};
use crate::core_client::CoreError;
use crate::core_client::outage::Report;
use crate::error::WebhookError;
use crate::metrics::Outcome;
use crate::state::Shared;
use crate::telemetry::Masked;

/// The delivery's one line, or its refusal. Called inside its spans.
pub(super) fn finished(
    shared: &Shared,
    result: &Result<Accepted, WebhookError>,
    outcome: Outcome,
    summary: &Summary,
    elapsed: Duration,
) {
    let latency_ms = elapsed.as_secs_f64() * 1000.0;
    let failure = match result {
        Ok(_) => {
            if let Some(suppressed) = shared.core_outage.succeeded() {
                info!(
                    core = shared.core.target(),
                    suppressed, "core reachable again"
                );
            }
            info!(
                status = 200,
                outcome = outcome.as_str(),
                event_type = summary.event_type,
                events = summary.events,
                duplicates = summary.duplicates,
                latency_ms,
                "delivery"
            );
            return;
        }
        Err(failure) => failure,
    };
    let status = failure.status().as_u16();
    match failure {
        WebhookError::CoreUnavailable { source, .. } => {
            core_failed(shared, source, summary, status, latency_ms);
        }
        // Logged where they happen (a rejected signature), or counted only: a
        // shed request is load, and a line for each would add to it.
        WebhookError::Unauthorized(_) | WebhookError::Overloaded { .. } => {
            debug!(status, outcome = outcome.as_str(), latency_ms, "delivery")
        }
        other => warn!(
            status,
            outcome = outcome.as_str(),
            event_type = summary.event_type,
            events = summary.events,
            error = %other,
            latency_ms,
            "delivery refused"
        ),
    }
}

/// A 503 because of the core: one line naming the core, per outage and interval.
fn core_failed(
    shared: &Shared,
    source: &CoreError,
    summary: &Summary,
    status: u16,
    latency_ms: f64,
) {
    let core = shared.core.target();
    let Report::Log { suppressed } = shared.core_outage.failed(Instant::now()) else {
        debug!(status, core, error = %source, latency_ms, "delivery not stored");
        return;
    };
    match source {
        CoreError::Unauthenticated(_) => error!(
            status,
            core,
            error = %source,
            suppressed,
            hint = "GATEWAY_API_TOKEN must be one of the core's GATEWAY_API_TOKENS",
            "the core refused the adapter's token; delivery not stored"
        ),
        _ => warn!(
            status,
            core,
            error = %source,
            event_type = summary.event_type,
            events = summary.events,
            suppressed,
            latency_ms,
            "delivery not stored; asking Kapso to retry"
        ),
    }
}

/// Each event, at DEBUG: text only with `LOG_MESSAGE_CONTENT=true`, the contact masked otherwise.
pub(super) fn event(event: &InboundEvent, log_content: bool) {
    if !tracing::enabled!(tracing::Level::DEBUG) {
        return;
    }
    let text = (event.message_type == "text").then_some(event.text.as_str());
    if log_content {
        debug!(
            event_type = %event.event_type,
            conversation_id = %event.conversation_id,
            message_id = %event.message_id,
            contact = %event.contact_phone,
            text,
            "event"
        );
    } else {
        debug!(
            event_type = %event.event_type,
            conversation_id = %event.conversation_id,
            message_id = %event.message_id,
            contact = %Masked(&event.contact_phone),
            "event"
        );
    }
}
