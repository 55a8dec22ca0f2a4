//! Conversions between the wire contract (`kapso.gateway.v1`) and the domain
//! model. This is the only module that knows both; everything behind it speaks
//! domain types.
//!
//! - `content`: the typed content of an event, read from its raw JSON

use kapso_gateway_proto::v1 as pb;
use prost::Message as _;

mod content;

use crate::model::{
    Claim, ConversationId, Direction, EncodedContent, EventType, Message, MetaError, NewEvent,
    Receipt, SendFailure, StatusRecord, StatusUpdate, StoredEvent, Wamid,
};
use crate::status::MessageStatus;

pub fn status_from_pb(value: i32) -> Option<MessageStatus> {
    Some(match pb::MessageStatus::try_from(value).ok()? {
        pb::MessageStatus::Unspecified => return None,
        pb::MessageStatus::Received => MessageStatus::Received,
        pb::MessageStatus::Accepted => MessageStatus::Accepted,
        pb::MessageStatus::Sent => MessageStatus::Sent,
        pb::MessageStatus::Delivered => MessageStatus::Delivered,
        pb::MessageStatus::Read => MessageStatus::Read,
        pb::MessageStatus::Failed => MessageStatus::Failed,
        pb::MessageStatus::OutcomeUnknown => MessageStatus::OutcomeUnknown,
    })
}

pub fn status_to_pb(status: MessageStatus) -> pb::MessageStatus {
    match status {
        MessageStatus::Received => pb::MessageStatus::Received,
        MessageStatus::Accepted => pb::MessageStatus::Accepted,
        MessageStatus::OutcomeUnknown => pb::MessageStatus::OutcomeUnknown,
        MessageStatus::Sent => pb::MessageStatus::Sent,
        MessageStatus::Delivered => pb::MessageStatus::Delivered,
        MessageStatus::Read => pb::MessageStatus::Read,
        MessageStatus::Failed => pb::MessageStatus::Failed,
    }
}

fn direction_from_pb(value: i32) -> Direction {
    match pb::Direction::try_from(value) {
        Ok(pb::Direction::Inbound) => Direction::Inbound,
        Ok(pb::Direction::Outbound) => Direction::Outbound,
        _ => Direction::Unknown,
    }
}

fn direction_to_pb(direction: Direction) -> pb::Direction {
    match direction {
        Direction::Unknown => pb::Direction::Unspecified,
        Direction::Inbound => pb::Direction::Inbound,
        Direction::Outbound => pb::Direction::Outbound,
    }
}

fn meta_error_from_pb(e: pb::MetaError) -> MetaError {
    MetaError {
        code: e.code,
        title: e.title,
        message: e.message,
        details: e.details,
    }
}

pub fn meta_error_to_pb(e: &MetaError) -> pb::MetaError {
    pb::MetaError {
        code: e.code,
        title: e.title.clone(),
        message: e.message.clone(),
        details: e.details.clone(),
    }
}

/// A message's content as the store keeps it: the contract's own `Content`,
/// protobuf-encoded. Protobuf's rules for field numbers let rows written by
/// one build be read by any other (new fields read as empty, unknown ones are
/// skipped), and GetMessage answers with the type without a second mapping.
pub fn encode_content(content: &pb::Content) -> EncodedContent {
    EncodedContent::from_bytes(content.encode_to_vec())
}

/// A stored content back as the contract's type. Bytes that do not decode
/// (which only a damaged row could hold) read as no content, logged without
/// the bytes: the rest of the message is still worth returning.
pub fn decode_content(encoded: &EncodedContent) -> Option<pb::Content> {
    match pb::Content::decode(encoded.as_bytes()) {
        Ok(content) => Some(content),
        Err(error) => {
            tracing::error!(%error, len = encoded.as_bytes().len(), "stored content does not decode");
            None
        }
    }
}

/// An event as the adapter parsed it. Statuses the contract does not know are
/// dropped (the raw payload keeps them). A received message's typed content
/// is read from its payload here, once, for its message row.
pub fn event_from_pb(e: pb::InboundEvent) -> NewEvent {
    let statuses = e
        .statuses
        .into_iter()
        .filter_map(|s| {
            Some(StatusUpdate {
                status: status_from_pb(s.status)?,
                timestamp: s.timestamp,
                errors: s.errors.into_iter().map(meta_error_from_pb).collect(),
            })
        })
        .collect();
    let mut event = NewEvent {
        event_type: EventType::parse(&e.event_type),
        message_id: Wamid::from_stored(e.message_id),
        conversation_id: ConversationId::from_stored(e.conversation_id),
        phone_number_id: e.phone_number_id,
        contact_phone: e.contact_phone,
        direction: direction_from_pb(e.direction),
        message_type: e.message_type,
        text: e.text,
        reply_to_message_id: Wamid::from_stored(e.reply_to_message_id),
        statuses,
        timestamp: e.timestamp,
        payload_json: e.payload_json,
        content: None,
    };
    if event.is_inbound_message() {
        event.content = content::message(&event.payload_json)
            .content
            .map(|c| encode_content(&c));
    }
    event
}

pub fn receipt_to_pb(receipt: Receipt, event_count: usize) -> pb::IngestEventsResponse {
    match receipt {
        Receipt::DuplicateDelivery => pb::IngestEventsResponse {
            outcomes: vec![
                pb::EventOutcome {
                    disposition: pb::Disposition::Duplicate.into(),
                    sequence: 0
                };
                event_count
            ],
            duplicate_delivery: true,
        },
        Receipt::Stored(claims) => pb::IngestEventsResponse {
            outcomes: claims
                .into_iter()
                .map(|claim| match claim {
                    Claim::New { sequence } => pb::EventOutcome {
                        disposition: pb::Disposition::New.into(),
                        sequence,
                    },
                    Claim::Duplicate => pb::EventOutcome {
                        disposition: pb::Disposition::Duplicate.into(),
                        sequence: 0,
                    },
                })
                .collect(),
            duplicate_delivery: false,
        },
    }
}

pub fn message_to_pb(m: Message) -> pb::Message {
    let not_taken_reason = match m.send_failure() {
        SendFailure::NotTaken { reason } => reason,
        SendFailure::Refused(_) => String::new(),
    };
    pb::Message {
        id: m.id,
        direction: direction_to_pb(m.direction).into(),
        conversation_id: m.conversation_id.map(String::from).unwrap_or_default(),
        phone_number_id: m.phone_number_id,
        contact_phone: m.contact_phone,
        r#type: m.message_type,
        text: m.text,
        status: status_to_pb(m.status).into(),
        errors: m.errors.iter().map(meta_error_to_pb).collect(),
        status_history: m.status_history.iter().map(status_record_to_pb).collect(),
        gateway_id: m.gateway_id.map(String::from).unwrap_or_default(),
        idempotency_key: m.idempotency_key.map(String::from).unwrap_or_default(),
        timestamp: m.timestamp,
        reply_to_message_id: m.reply_to_message_id.map(String::from).unwrap_or_default(),
        content: m.content.as_ref().and_then(decode_content),
        origin: String::new(),
        not_taken_reason,
    }
}

/// A send request's content as the stored message's typed content.
pub fn send_content_to_pb(content: pb::send_message_request::Content) -> pb::Content {
    use pb::content::Kind;
    use pb::send_message_request::Content as C;
    let kind = match content {
        C::Text(c) => Kind::Text(c),
        C::Template(c) => Kind::Template(c),
        C::Media(c) => Kind::Media(c),
        C::Interactive(c) => Kind::Interactive(c),
        C::Reaction(c) => Kind::Reaction(c),
        C::Location(c) => Kind::Location(c),
        C::Contacts(c) => Kind::Contacts(c),
    };
    pb::Content { kind: Some(kind) }
}

fn status_record_to_pb(r: &StatusRecord) -> pb::StatusRecord {
    pb::StatusRecord {
        status: status_to_pb(r.status).into(),
        timestamp: r.timestamp,
    }
}

/// A log entry for consumers. Its `message` is what this event says about the
/// message, not the message's current state (that is `GetMessage`).
pub fn stored_event_to_pb(stored: StoredEvent) -> pb::Event {
    let e = stored.event;
    let conversation_id = e
        .conversation_id
        .as_ref()
        .map(|id| id.as_str().to_owned())
        .unwrap_or_default();
    let message = if let Some(message_id) = &e.message_id {
        let history: Vec<StatusRecord> = e
            .statuses
            .iter()
            .map(|s| StatusRecord {
                status: s.status,
                timestamp: s.timestamp,
            })
            .collect();
        let status = e
            .reported_status()
            .or_else(|| {
                history
                    .iter()
                    .map(|r| r.status)
                    .reduce(MessageStatus::advance)
            })
            .unwrap_or(MessageStatus::Received);
        let typed = content::message(&e.payload_json);
        let mut errors: Vec<pb::MetaError> = e
            .statuses
            .iter()
            .flat_map(|s| s.errors.iter().map(meta_error_to_pb))
            .collect();
        if errors.is_empty() {
            errors = typed.errors;
        }
        Some(pb::Message {
            id: message_id.as_str().to_owned(),
            direction: direction_to_pb(e.direction).into(),
            conversation_id: conversation_id.clone(),
            phone_number_id: e.phone_number_id.clone(),
            contact_phone: e.contact_phone,
            r#type: e.message_type,
            text: e.text,
            status: status_to_pb(status).into(),
            errors,
            status_history: history.iter().map(status_record_to_pb).collect(),
            timestamp: e.timestamp,
            reply_to_message_id: e.reply_to_message_id.map(String::from).unwrap_or_default(),
            content: typed.content,
            origin: typed.origin,
            ..Default::default()
        })
    } else {
        None
    };
    let conversation = content::conversation_facts(&e.event_type, &e.payload_json);
    pb::Event {
        sequence: stored.sequence,
        event_type: e.event_type.to_string(),
        conversation_id,
        message,
        payload_json: e.payload_json,
        phone_number_id: e.phone_number_id,
        received_at_ms: stored.received_at_ms,
        conversation,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::GatewayId;

    #[test]
    fn every_domain_status_round_trips_through_the_wire() {
        for s in MessageStatus::ALL {
            assert_eq!(status_from_pb(status_to_pb(s).into()), Some(s));
        }
        assert_eq!(status_from_pb(0), None);
        assert_eq!(status_from_pb(99), None);
    }

    #[test]
    fn a_received_message_gets_its_content_at_ingest_and_a_status_none() {
        let received = pb::InboundEvent {
            event_type: "whatsapp.message.received".into(),
            message_id: "wamid.I".into(),
            direction: pb::Direction::Inbound.into(),
            message_type: "image".into(),
            payload_json: r#"{"message":{"id":"wamid.I","type":"image",
                "image":{"id":"1037543291543636","caption":"la boleta"}}}"#
                .into(),
            ..Default::default()
        };
        let event = event_from_pb(received);
        let stored = event.content.clone().expect("a received image has content");
        let message = message_to_pb(Message {
            id: "wamid.I".into(),
            direction: Direction::Inbound,
            conversation_id: None,
            phone_number_id: String::new(),
            contact_phone: String::new(),
            message_type: "image".into(),
            text: String::new(),
            status: MessageStatus::Received,
            errors: Vec::new(),
            not_taken: None,
            status_history: Vec::new(),
            gateway_id: None,
            idempotency_key: None,
            timestamp: 0,
            reply_to_message_id: None,
            content: Some(stored),
        });
        assert!(matches!(
            message.content.and_then(|c| c.kind),
            Some(pb::content::Kind::Media(m)) if m.id == "1037543291543636" && m.caption == "la boleta"
        ));

        let status = pb::InboundEvent {
            event_type: "whatsapp.message.delivered".into(),
            message_id: "wamid.O".into(),
            direction: pb::Direction::Outbound.into(),
            payload_json: r#"{"message":{"id":"wamid.O","type":"text","text":{"body":"x"}}}"#
                .into(),
            ..Default::default()
        };
        assert_eq!(event_from_pb(status).content, None);
    }

    fn failed_send(errors: Vec<MetaError>, not_taken: Option<&str>) -> Message {
        Message {
            id: "gw-1".into(),
            direction: Direction::Outbound,
            conversation_id: None,
            phone_number_id: "pn".into(),
            contact_phone: "5491100".into(),
            message_type: "text".into(),
            text: String::new(),
            status: MessageStatus::Failed,
            errors,
            not_taken: not_taken.map(str::to_owned),
            status_history: Vec::new(),
            gateway_id: GatewayId::parse("gw-1"),
            idempotency_key: None,
            timestamp: 0,
            reply_to_message_id: None,
            content: None,
        }
    }

    #[test]
    fn a_send_kapso_never_took_says_why_and_a_refused_one_carries_metas_errors() {
        let not_taken = message_to_pb(failed_send(Vec::new(), Some("Kapso unreachable")));
        assert_eq!(not_taken.not_taken_reason, "Kapso unreachable");
        assert!(not_taken.errors.is_empty());

        let refused = MetaError {
            code: 131047,
            title: "Re-engagement message".into(),
            ..Default::default()
        };
        let refused = message_to_pb(failed_send(vec![refused], None));
        assert_eq!(refused.not_taken_reason, "");
        assert_eq!(refused.errors[0].code, 131047);
    }

    #[test]
    fn content_that_does_not_decode_reads_as_none() {
        let damaged = EncodedContent::from_bytes(vec![0xff, 0xff]);
        assert_eq!(decode_content(&damaged), None);
        let text = pb::Content {
            kind: Some(pb::content::Kind::Text(pb::TextContent {
                body: "hola".into(),
                preview_url: true,
            })),
        };
        assert_eq!(decode_content(&encode_content(&text)), Some(text));
    }

    #[test]
    fn duplicate_delivery_reports_every_event_as_duplicate() {
        let response = receipt_to_pb(Receipt::DuplicateDelivery, 3);
        assert!(response.duplicate_delivery);
        assert_eq!(response.outcomes.len(), 3);
        assert!(
            response
                .outcomes
                .iter()
                .all(|o| o.disposition == pb::Disposition::Duplicate as i32)
        );
    }

    #[test]
    fn status_event_carries_its_reported_status_and_errors() {
        let event = NewEvent {
            event_type: EventType::MessageFailed,
            message_id: Wamid::parse("wamid.1"),
            statuses: vec![
                StatusUpdate {
                    status: MessageStatus::Sent,
                    timestamp: 10,
                    errors: vec![],
                },
                StatusUpdate {
                    status: MessageStatus::Failed,
                    timestamp: 20,
                    errors: vec![MetaError {
                        code: 131047,
                        title: "Re-engagement message".into(),
                        ..Default::default()
                    }],
                },
            ],
            ..Default::default()
        };
        let pb = stored_event_to_pb(StoredEvent {
            sequence: 7,
            received_at_ms: 1,
            event,
        });
        let message = pb.message.unwrap();
        assert_eq!(message.status, pb::MessageStatus::Failed as i32);
        assert_eq!(message.status_history.len(), 2);
        assert_eq!(message.errors[0].code, 131047);
    }

    #[test]
    fn events_carry_typed_content_and_conversation_facts() {
        let received = NewEvent {
            event_type: EventType::MessageReceived,
            message_id: Wamid::parse("wamid.H"),
            payload_json: r#"{"message":{"id":"wamid.H","type":"text","text":{"body":"hola"},
                "kapso":{"origin":"history_sync"}}}"#
                .into(),
            ..Default::default()
        };
        let message = stored_event_to_pb(StoredEvent {
            sequence: 1,
            received_at_ms: 1,
            event: received,
        })
        .message
        .unwrap();
        assert_eq!(message.origin, "history_sync");
        assert!(matches!(
            message.content.and_then(|c| c.kind),
            Some(pb::content::Kind::Text(t)) if t.body == "hola"
        ));

        let inactive = NewEvent {
            event_type: EventType::ConversationInactive,
            payload_json: r#"{"conversation":{"id":"c1","status":"active"},
                "inactivity":{"minutes":30}}"#
                .into(),
            ..Default::default()
        };
        let event = stored_event_to_pb(StoredEvent {
            sequence: 2,
            received_at_ms: 1,
            event: inactive,
        });
        assert_eq!(event.message, None);
        let facts = event.conversation.unwrap();
        assert_eq!(
            (facts.status.as_str(), facts.inactivity_minutes),
            ("active", 30)
        );
    }
}
