//! A delivery cut into `IngestEvents` calls the core accepts.
//!
//! The core takes at most 10,000 events per call and gRPC messages of at most
//! 4 MiB, while a delivery under `ADAPTER_BODY_LIMIT_BYTES` can hold more of
//! both. Refusing it would be permanent (Kapso would retry it until it pauses the
//! webhook), so it is stored in parts, in order, each a call of its own.
//!
//! Each part's delivery key is derived from the delivery's, `<key>#<i>/<n>`:
//! the cut is a pure function of the events, so a retry of the whole delivery
//! makes the same parts and each is de-duplicated by its key; events are
//! de-duplicated by their own identity anyway. A delivery that fits in one call
//! keeps its key as it is.

use kapso_gateway_proto::v1::{InboundEvent, IngestEventsRequest};
use prost::Message as _;

/// Most events per call: a tenth of the core's limit, so each call commits well
/// within `CORE_TIMEOUT_MS`. Kapso's own batches are far smaller and never cut.
pub const MAX_EVENTS_PER_PART: usize = 1_000;

/// Most encoded bytes per call, under tonic's default 4 MiB receive limit with
/// room for the rest of the message.
pub const MAX_PART_BYTES: usize = 3 * 1024 * 1024;

/// The core's gRPC receive limit (tonic's default): one event larger than this
/// can never be stored.
pub const CORE_MESSAGE_LIMIT: usize = 4 * 1024 * 1024;

/// Room kept in a call for its delivery key, payload version and framing.
const ENVELOPE_BYTES: usize = 1024;

/// One event is larger than any call the core accepts: 413.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("an event of {bytes} bytes is larger than the core accepts ({CORE_MESSAGE_LIMIT} bytes)")]
pub struct EventTooLarge {
    pub bytes: usize,
}

/// The calls that store `events`, in order.
pub fn split(
    delivery_key: &str,
    payload_version: &str,
    events: Vec<InboundEvent>,
) -> Result<Vec<IngestEventsRequest>, EventTooLarge> {
    let request = |key: String, events: Vec<InboundEvent>| IngestEventsRequest {
        delivery_key: key,
        events,
        payload_version: payload_version.to_owned(),
    };
    let whole = request(delivery_key.to_owned(), events);
    if whole.events.len() <= MAX_EVENTS_PER_PART && whole.encoded_len() <= MAX_PART_BYTES {
        return Ok(vec![whole]);
    }

    let mut groups: Vec<Vec<InboundEvent>> = Vec::new();
    let mut current: Vec<InboundEvent> = Vec::new();
    let mut current_bytes = 0;
    for event in whole.events {
        // As a repeated field: a tag byte, the length, the event.
        let len = event.encoded_len();
        let bytes = 1 + prost::length_delimiter_len(len) + len;
        if bytes + ENVELOPE_BYTES > CORE_MESSAGE_LIMIT {
            return Err(EventTooLarge { bytes });
        }
        if !current.is_empty()
            && (current.len() == MAX_EVENTS_PER_PART || current_bytes + bytes > MAX_PART_BYTES)
        {
            groups.push(std::mem::take(&mut current));
            current_bytes = 0;
        }
        current.push(event);
        current_bytes += bytes;
    }
    if !current.is_empty() {
        groups.push(current);
    }

    let count = groups.len();
    Ok(groups
        .into_iter()
        .enumerate()
        .map(|(i, events)| {
            // No key, no de-duplication by key: the parts keep none either.
            let key = if delivery_key.is_empty() {
                String::new()
            } else {
                format!("{delivery_key}#{}/{count}", i + 1)
            };
            request(key, events)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: usize, text_bytes: usize) -> InboundEvent {
        InboundEvent {
            message_id: format!("wamid.{id}"),
            text: "x".repeat(text_bytes),
            ..InboundEvent::default()
        }
    }

    fn ids(part: &IngestEventsRequest) -> Vec<&str> {
        part.events.iter().map(|e| e.message_id.as_str()).collect()
    }

    #[test]
    fn a_delivery_that_fits_is_one_call_under_its_own_key() {
        let parts = split("key", "v2", vec![event(1, 10), event(2, 10)]).unwrap();
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].delivery_key, "key");
        assert_eq!(parts[0].payload_version, "v2");
        assert_eq!(ids(&parts[0]), ["wamid.1", "wamid.2"]);
    }

    #[test]
    fn many_events_are_cut_by_count_in_order_with_derived_keys() {
        let events = (0..2_500).map(|i| event(i, 1)).collect();
        let parts = split("key", "v2", events).unwrap();
        let sizes: Vec<_> = parts.iter().map(|p| p.events.len()).collect();
        assert_eq!(sizes, [1_000, 1_000, 500]);
        let keys: Vec<_> = parts.iter().map(|p| p.delivery_key.as_str()).collect();
        assert_eq!(keys, ["key#1/3", "key#2/3", "key#3/3"]);
        assert_eq!(parts[1].events[0].message_id, "wamid.1000");
        assert!(parts.iter().all(|p| p.payload_version == "v2"));
    }

    #[test]
    fn large_events_are_cut_by_bytes() {
        let events = (0..5).map(|i| event(i, 1024 * 1024)).collect();
        let parts = split("key", "v2", events).unwrap();
        assert!(parts.len() > 1);
        for part in &parts {
            assert!(
                part.encoded_len() <= MAX_PART_BYTES,
                "{}",
                part.encoded_len()
            );
        }
        let all: Vec<_> = parts.iter().flat_map(ids).collect();
        assert_eq!(all, ["wamid.0", "wamid.1", "wamid.2", "wamid.3", "wamid.4"]);
    }

    #[test]
    fn the_same_events_are_cut_the_same_way() {
        let events = || (0..1_500).map(|i| event(i, i % 7)).collect::<Vec<_>>();
        assert_eq!(split("k", "", events()), split("k", "", events()));
    }

    #[test]
    fn an_event_beyond_the_core_limit_is_refused() {
        let events = vec![event(1, 10), event(2, CORE_MESSAGE_LIMIT)];
        let refused = split("key", "v2", events).unwrap_err();
        assert!(refused.bytes > CORE_MESSAGE_LIMIT);
    }

    #[test]
    fn without_a_key_the_parts_have_none() {
        let events = (0..1_001).map(|i| event(i, 1)).collect();
        let parts = split("", "v2", events).unwrap();
        assert!(parts.iter().all(|p| p.delivery_key.is_empty()));
    }
}
