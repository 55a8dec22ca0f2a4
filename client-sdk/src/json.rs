//! JSON renderings of [`Message`] and [`Event`]: what the `kapso` CLI prints,
//! one object per line, for `jq` and for scripts.
//!
//! The shape follows the proto with these choices:
//! - field names are the proto's snake_case names;
//! - enums are their proto names (`"MESSAGE_STATUS_READ"`, `"DIRECTION_INBOUND"`),
//!   as grpcurl prints them, so values match the contract docs verbatim;
//! - 64-bit integers are JSON numbers (sequences and timestamps fit in an f64's
//!   integer range for the foreseeable future);
//! - `payload_json` is embedded as parsed JSON (a string if it is not valid JSON);
//! - every field is present, empty strings and zeros included, so scripts need
//!   no existence checks;
//! - a message's typed `content` is `null` when unknown, else an object with one
//!   key, its kind (`{"media": {...}}`), as the proto3 JSON mapping renders a
//!   oneof ([`content`] has the details).

mod content;

use serde_json::{Value, json};

use crate::{Event, Message, MetaError, StatusRecord};

/// A message as a JSON object.
///
/// # Examples
///
/// ```
/// use kapso_client::{json, Message, MessageStatus};
///
/// let mut message = Message { id: "wamid.1".into(), text: "hola".into(), ..Default::default() };
/// message.set_status(MessageStatus::Read);
/// let value = json::message(&message);
/// assert_eq!(value["status"], "MESSAGE_STATUS_READ");
/// assert_eq!(value["text"], "hola");
/// assert!(value["content"].is_null());
/// ```
pub fn message(message: &Message) -> Value {
    json!({
        "id": message.id,
        "direction": message.direction().as_str_name(),
        "conversation_id": message.conversation_id,
        "phone_number_id": message.phone_number_id,
        "contact_phone": message.contact_phone,
        "type": message.r#type,
        "text": message.text,
        "status": message.status().as_str_name(),
        "errors": message.errors.iter().map(meta_error).collect::<Vec<_>>(),
        "status_history": message.status_history.iter().map(status_record).collect::<Vec<_>>(),
        "gateway_id": message.gateway_id,
        "idempotency_key": message.idempotency_key,
        "timestamp": message.timestamp,
        "reply_to_message_id": message.reply_to_message_id,
        "content": message.content.as_ref().map(content::content),
        "origin": message.origin,
        "not_taken_reason": message.not_taken_reason,
    })
}

/// An event as a JSON object; `message` is `null` when the event has none.
///
/// # Examples
///
/// ```
/// use kapso_client::{json, Event};
///
/// let event = Event {
///     sequence: 7,
///     event_type: "whatsapp.message.received".into(),
///     payload_json: r#"{"message":{"id":"wamid.1"}}"#.into(),
///     ..Default::default()
/// };
/// let value = json::event(&event);
/// assert_eq!(value["sequence"], 7);
/// assert_eq!(value["payload"]["message"]["id"], "wamid.1");
/// ```
pub fn event(event: &Event) -> Value {
    json!({
        "sequence": event.sequence,
        "event_type": event.event_type,
        "conversation_id": event.conversation_id,
        "phone_number_id": event.phone_number_id,
        "received_at_ms": event.received_at_ms,
        "message": event.message.as_ref().map(message),
        "payload": payload(&event.payload_json),
    })
}

fn payload(raw: &str) -> Value {
    if raw.is_empty() {
        return Value::Null;
    }
    serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_owned()))
}

fn meta_error(error: &MetaError) -> Value {
    json!({
        "code": error.code,
        "title": error.title,
        "message": error.message,
        "details": error.details,
    })
}

fn status_record(record: &StatusRecord) -> Value {
    json!({
        "status": record.status().as_str_name(),
        "timestamp": record.timestamp,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Direction, MessageStatus};

    fn failed_message() -> Message {
        let mut message = Message {
            id: "wamid.out".into(),
            conversation_id: "conv_1".into(),
            text: "hola".into(),
            gateway_id: "gw_1".into(),
            timestamp: 1_700_000_000,
            errors: vec![MetaError {
                code: 131047,
                title: "Re-engagement message".into(),
                message: "window closed".into(),
                details: String::new(),
            }],
            ..Default::default()
        };
        message.set_direction(Direction::Outbound);
        message.set_status(MessageStatus::Failed);
        let mut record = StatusRecord {
            timestamp: 1_700_000_001,
            ..Default::default()
        };
        record.set_status(MessageStatus::Failed);
        message.status_history.push(record);
        message
    }

    #[test]
    fn message_renders_enum_names_errors_and_history() {
        let value = message(&failed_message());
        assert_eq!(value["direction"], "DIRECTION_OUTBOUND");
        assert_eq!(value["status"], "MESSAGE_STATUS_FAILED");
        assert_eq!(value["errors"][0]["code"], 131047);
        assert_eq!(
            value["status_history"][0]["status"],
            "MESSAGE_STATUS_FAILED"
        );
        assert_eq!(value["timestamp"], 1_700_000_000);
        assert_eq!(value["reply_to_message_id"], "");
        assert!(value["content"].is_null());
        assert_eq!(value["origin"], "");
        assert_eq!(value["not_taken_reason"], "");
    }

    #[test]
    fn message_renders_its_content_under_its_kind() {
        use kapso_gateway_proto::v1 as pb;
        let mut with_content = failed_message();
        with_content.content = Some(pb::Content {
            kind: Some(pb::content::Kind::Text(pb::TextContent {
                body: "hola".into(),
                preview_url: true,
            })),
        });
        with_content.origin = "cloud_api".into();
        let value = message(&with_content);
        assert_eq!(
            value["content"],
            json!({ "text": { "body": "hola", "preview_url": true } })
        );
        assert_eq!(value["origin"], "cloud_api");
    }

    #[test]
    fn event_embeds_parsed_payload_and_keeps_invalid_payload_as_text() {
        let mut event = Event {
            sequence: 3,
            event_type: "whatsapp.message.failed".into(),
            message: Some(failed_message()),
            payload_json: r#"{"phone_number_id":"pn_1"}"#.into(),
            ..Default::default()
        };
        let value = super::event(&event);
        assert_eq!(value["payload"]["phone_number_id"], "pn_1");
        assert_eq!(value["message"]["id"], "wamid.out");

        event.payload_json = "not json".into();
        event.message = None;
        let value = super::event(&event);
        assert_eq!(value["payload"], "not json");
        assert!(value["message"].is_null());
        // One line when printed with to_string: what `kapso watch` relies on.
        assert!(!value.to_string().contains('\n'));
    }
}
