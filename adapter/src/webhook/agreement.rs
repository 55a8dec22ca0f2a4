//! Whether an item is the event its type says it is.
//!
//! A Kapso v2 body does not name its event type: a single event's type is only
//! in `X-Webhook-Event`, which the signature does not cover. So the type must
//! not turn a signed body into something it is not (a captured `received` body
//! re-posted as `whatsapp.message.failed` would end the message). The rule, per
//! item, with `T` its event type (item `event_type`/`event`, then the body's
//! `type`, then the header):
//!
//! - `T = whatsapp.message.*`: unless the item names its own type (the original
//!   service's shape), it must carry a message: `message.id`, or `message_id`.
//!   Otherwise it is not a Kapso event: 400.
//! - `T = whatsapp.message.received`: `message.kapso.direction`, when present,
//!   must be `inbound`. Otherwise 422.
//! - `T = whatsapp.message.<status>` (sent, delivered, read, failed):
//!   `kapso.direction`, when present, must be `outbound`, and `kapso.status`, when
//!   present, must be `<status>`, a later status on `sent < delivered < read`
//!   (a body written after a later receipt), or `<status>` must appear in
//!   `kapso.statuses`. A `received` message status is inbound. Otherwise 422.
//! - `T = whatsapp.conversation.*`: unless the item names its own type, it
//!   must carry a `conversation` object. Otherwise 400.
//! - Any other type, or none, is not checked: new event types are kept.

use super::shape::{Body, Kapso};

/// Why an item cannot be the event its type says.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// 400: the type names a message or conversation event and the item carries none.
    #[error(
        "a `{event_type}` event must carry a `{carries}` object; this body is not a Kapso event"
    )]
    NotAnEvent {
        event_type: String,
        carries: &'static str,
    },
    /// 422: the item's own message says it is a different event.
    #[error("the body's message is {said} but the event type is `{event_type}`")]
    Mismatch { event_type: String, said: String },
}

/// Checks `item` against its event type; `self_named` when the item carries its own type.
pub fn check(item: &Body<'_>, event_type: Option<&str>, self_named: bool) -> Result<(), Refusal> {
    let Some(event_type) = event_type else {
        return Ok(());
    };
    if let Some(kind) = event_type.strip_prefix("whatsapp.message.") {
        let message = item.message.get();
        let identified = message
            .and_then(|m| m.id.get().or(m.whatsapp_message_id.get()))
            .is_some()
            || item.message_id.get().is_some();
        if !identified && !self_named {
            return Err(Refusal::NotAnEvent {
                event_type: event_type.to_owned(),
                carries: "message",
            });
        }
        let Some(kapso) = message.and_then(|m| m.kapso.get()) else {
            return Ok(());
        };
        return agrees(kind, kapso).map_err(|said| Refusal::Mismatch {
            event_type: event_type.to_owned(),
            said,
        });
    }
    if event_type.starts_with("whatsapp.conversation.")
        && item.conversation.get().is_none()
        && !self_named
    {
        return Err(Refusal::NotAnEvent {
            event_type: event_type.to_owned(),
            carries: "conversation",
        });
    }
    Ok(())
}

/// Whether a message's `kapso` block agrees with `whatsapp.message.<kind>`; if
/// not, what the block says instead.
fn agrees(kind: &str, kapso: &Kapso<'_>) -> Result<(), String> {
    let direction = kapso.direction.get();
    let status = kapso.status.get();
    if kind == "received" {
        return match direction {
            Some("outbound") => Err("an outbound message".to_owned()),
            _ => Ok(()),
        };
    }
    let Some(reported) = rank(kind) else {
        // A message event Kapso may add later (`deleted`, ...): nothing to compare.
        return Ok(());
    };
    if direction == Some("inbound") || status == Some("received") {
        return Err("an inbound message".to_owned());
    }
    let Some(current) = status else {
        return Ok(());
    };
    let in_history = kapso
        .statuses
        .0
        .iter()
        .any(|s| s.status.get() == Some(kind));
    let consistent = match (rank(current), reported) {
        (Some(current), reported) if current == reported => true,
        // `failed` is off the path: only a body that says so makes a `failed` event.
        (Some(Rank::Path(current)), Rank::Path(reported)) => reported < current,
        // A status this gateway does not know: nothing to compare.
        (None, _) => true,
        _ => false,
    };
    if consistent || in_history {
        Ok(())
    } else {
        Err(format!("in status `{current}`"))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rank {
    /// Position on `sent < delivered < read`.
    Path(u8),
    Failed,
}

fn rank(status: &str) -> Option<Rank> {
    match status {
        "sent" => Some(Rank::Path(0)),
        "delivered" => Some(Rank::Path(1)),
        "read" => Some(Rank::Path(2)),
        "failed" => Some(Rank::Failed),
        _ => None,
    }
}
