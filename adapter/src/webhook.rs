//! Webhook bodies to [`InboundEvent`]s.
//!
//! Five shapes arrive on the same URL (CONTRACT §3): a Kapso v2 single event (the
//! body is the event), a v2 batch envelope `{type, batch: true, data: [...]}`, a
//! Kapso v1 event (`message.content`, `message.message_type`, `whatsapp_config`;
//! docs/kapso-contract.md §8), the original service's legacy event
//! `{event_type, conversation_id, message_id, payload}`, and a legacy batch (a
//! top-level array). The fields of every shape are read whatever
//! `X-Webhook-Payload-Version` says: they do not overlap, and v1's full body is
//! not published, so guessing by the body is safer than trusting a header. Each event keeps its exact bytes in
//! `payload_json`: batch items are sliced out with `RawValue`, never re-serialised.
//!
//! - `shape`: the JSON structs, borrowed from the body.
//! - `lenient`: field types that read a mistyped value as absent.
//! - `extract`: which field wins for each fact of an event.
//! - `agreement`: whether an item is the event its (possibly unsigned) type says.

mod agreement;
mod extract;
mod lenient;
mod shape;

use kapso_gateway_proto::v1::InboundEvent;
use serde_json::value::RawValue;

pub use agreement::Refusal;
use extract::Surroundings;
use lenient::{Obj, RawList};
use shape::Body;

/// What the headers say about the body, for facts the body leaves out.
#[derive(Debug, Clone, Copy, Default)]
pub struct Hints<'h> {
    /// `X-Webhook-Event`.
    pub event_type: Option<&'h str>,
    /// `X-Webhook-Batch: true` (any case).
    pub batch: bool,
}

/// A body's events in the order they were sent.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Parsed {
    pub events: Vec<InboundEvent>,
    /// Whether the body was a batch (v2 envelope or legacy array), even of one or zero.
    pub batch: bool,
    /// `X-Webhook-Batch: true` on an object with no `data` key: no events, as
    /// in Kapso's own adapters; worth a warning, not a refusal Kapso would retry.
    pub without_data: bool,
}

/// Why a body cannot be read as events. HTTP 400, but a [`Refusal::Mismatch`] is 422.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("body is not valid UTF-8")]
    NotUtf8,
    #[error("body is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("body must be a JSON object or array")]
    NotObjectOrArray,
    #[error("batch delivery without a `data` array")]
    BatchWithoutData,
    #[error(transparent)]
    Refused(#[from] Refusal),
}

/// Reads a webhook body, already authenticated, as events.
///
/// Malformed JSON, a `data` that is not an array (or absent without the batch
/// header) and an item that is not the event its type says (see `agreement`)
/// fail: unknown fields, message types and event types are forwarded as they are.
pub fn parse(body: &[u8], hints: Hints<'_>) -> Result<Parsed, ParseError> {
    // Validating UTF-8 up front lets every slice of the body be a `&str`, including
    // parts serde_json skips without checking.
    let text = std::str::from_utf8(body).map_err(|_| ParseError::NotUtf8)?;
    match text.as_bytes().trim_ascii_start().first() {
        Some(b'{') => parse_object(text, hints),
        Some(b'[') => {
            let items: Vec<&RawValue> = serde_json::from_str(text)?;
            let around = Surroundings {
                header_type: hints.event_type,
                ..Surroundings::default()
            };
            Ok(Parsed {
                events: parse_items(&items, around)?,
                batch: true,
                without_data: false,
            })
        }
        _ => {
            serde_json::from_str::<serde::de::IgnoredAny>(text)?;
            Err(ParseError::NotObjectOrArray)
        }
    }
}

fn parse_object(text: &str, hints: Hints<'_>) -> Result<Parsed, ParseError> {
    let body: Body<'_> = serde_json::from_str(text)?;
    let around = Surroundings {
        body_type: body.kind.get(),
        header_type: hints.event_type,
        batch_conversation_id: body
            .batch_info
            .get()
            .and_then(|info| info.conversation_id.get()),
    };
    if !(body.batch.0 || hints.batch) {
        return Ok(Parsed {
            events: vec![checked_event(&body, text, around)?],
            batch: false,
            without_data: false,
        });
    }
    match &body.data {
        RawList::Items(items) => Ok(Parsed {
            events: parse_items(items, around)?,
            batch: true,
            without_data: false,
        }),
        RawList::Absent if hints.batch => Ok(Parsed {
            events: Vec::new(),
            batch: true,
            without_data: true,
        }),
        RawList::Absent | RawList::NotArray => Err(ParseError::BatchWithoutData),
    }
}

fn parse_items(
    items: &[&RawValue],
    around: Surroundings<'_>,
) -> Result<Vec<InboundEvent>, ParseError> {
    items
        .iter()
        .map(|raw| {
            // A non-object item is still forwarded (with its bytes) rather than refusing the batch.
            let Obj(item) = serde_json::from_str::<Obj<Body<'_>>>(raw.get())?;
            checked_event(&item.unwrap_or_default(), raw.get(), around)
        })
        .collect()
}

fn checked_event(
    item: &Body<'_>,
    payload_json: &str,
    around: Surroundings<'_>,
) -> Result<InboundEvent, ParseError> {
    agreement::check(
        item,
        extract::event_type(item, around),
        extract::names_own_type(item),
    )?;
    Ok(extract::event(item, payload_json, around))
}

#[cfg(test)]
mod tests;
