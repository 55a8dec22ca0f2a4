//! The exact JSON bodies Kapso's Meta proxy takes and returns.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{OutboundMessage, ReadReceipt};
use crate::model::MetaError;
use crate::model::Recipient;

/// The body of a send: the envelope, `type`, the object named after it, and
/// `context` for a reply (docs/kapso-contract.md, 2). A contact known only by
/// its business-scoped user id is addressed with `recipient` alone, `to`
/// left out (the contract's reading, 11).
pub(super) fn send_body(message: &OutboundMessage) -> Value {
    let kind = message.content.kind();
    let (field, contact) = match &message.to {
        Recipient::Phone(phone) => ("to", phone.as_str()),
        Recipient::UserId(id) => ("recipient", id.as_str()),
    };
    let mut body = json!({
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "type": kind,
    });
    body[field] = json!(contact);
    body[kind] = message.content.wire_object();
    if let Some(message_id) = &message.reply_to {
        body["context"] = json!({"message_id": message_id.as_str()});
    }
    body
}

#[derive(Debug, Serialize)]
pub(super) struct ReadBody<'a> {
    messaging_product: &'static str,
    status: &'static str,
    message_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    typing_indicator: Option<TypingIndicator>,
}

#[derive(Debug, Serialize)]
struct TypingIndicator {
    #[serde(rename = "type")]
    kind: &'static str,
}

impl<'a> ReadBody<'a> {
    pub(super) fn new(receipt: &'a ReadReceipt) -> ReadBody<'a> {
        ReadBody {
            messaging_product: "whatsapp",
            status: "read",
            message_id: &receipt.message_id,
            typing_indicator: receipt
                .typing_indicator
                .then_some(TypingIndicator { kind: "text" }),
        }
    }
}

/// The wamid of a successful send (`messages[0].id`).
pub(super) fn sent_wamid(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Sent {
        #[serde(default)]
        messages: Vec<SentMessage>,
    }
    #[derive(Deserialize)]
    struct SentMessage {
        #[serde(default)]
        id: String,
    }
    let sent: Sent = serde_json::from_slice(body).ok()?;
    let id = sent.messages.into_iter().next()?.id;
    (!id.is_empty()).then_some(id)
}

/// Whether a mark-read response says `{"success":true}`.
pub(super) fn read_succeeded(body: &[u8]) -> bool {
    #[derive(Deserialize)]
    struct Success {
        #[serde(default)]
        success: bool,
    }
    serde_json::from_slice::<Success>(body).is_ok_and(|s| s.success)
}

/// Meta's error envelope `{"error":{"message","type","code","error_subcode","error_data":{"details"},"fbtrace_id"}}`.
pub(super) fn meta_error(body: &[u8]) -> Option<MetaError> {
    #[derive(Deserialize)]
    struct Envelope {
        error: ErrorObject,
    }
    #[derive(Deserialize)]
    struct ErrorObject {
        #[serde(default)]
        message: String,
        #[serde(default, rename = "type")]
        kind: String,
        #[serde(default)]
        code: i64,
        #[serde(default)]
        error_user_title: String,
        #[serde(default)]
        error_data: Option<ErrorData>,
    }
    #[derive(Deserialize)]
    struct ErrorData {
        #[serde(default)]
        details: String,
    }
    let envelope: Envelope = serde_json::from_slice(body).ok()?;
    let e = envelope.error;
    // Meta's API errors have no `title`; the user title or the exception type is the closest.
    let title = if e.error_user_title.is_empty() {
        e.kind
    } else {
        e.error_user_title
    };
    Some(MetaError {
        code: e.code,
        title,
        message: e.message,
        details: e.error_data.map(|d| d.details).unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::super::content::{Content, Text};
    use super::*;
    use crate::model::{PhoneNumber, PhoneNumberId, Wamid};

    fn text(reply_to: Option<&str>) -> OutboundMessage {
        OutboundMessage {
            phone_number_id: PhoneNumberId::parse("111").unwrap(),
            to: Recipient::Phone(PhoneNumber::parse("15551234567").unwrap()),
            content: Content::Text(Text {
                body: "hola".into(),
                preview_url: false,
            }),
            reply_to: reply_to.and_then(Wamid::parse),
        }
    }

    #[test]
    fn send_body_is_exact() {
        let body = send_body(&text(None));
        assert_eq!(
            body,
            json!({"messaging_product":"whatsapp","recipient_type":"individual","to":"15551234567",
                   "type":"text","text":{"body":"hola","preview_url":false}})
        );
        let body = send_body(&text(Some("wamid.A")));
        assert_eq!(body["context"], json!({"message_id":"wamid.A"}));
    }

    #[test]
    fn read_body_is_exact() {
        let mut receipt = ReadReceipt {
            phone_number_id: "111".into(),
            message_id: "wamid.B".into(),
            typing_indicator: false,
        };
        let body = serde_json::to_value(ReadBody::new(&receipt)).unwrap();
        assert_eq!(
            body,
            json!({"messaging_product":"whatsapp","status":"read","message_id":"wamid.B"})
        );
        receipt.typing_indicator = true;
        let body = serde_json::to_value(ReadBody::new(&receipt)).unwrap();
        assert_eq!(body["typing_indicator"], json!({"type":"text"}));
    }

    #[test]
    fn parses_success_and_errors() {
        let ok = br#"{"messaging_product":"whatsapp","contacts":[{"input":"1","wa_id":"1"}],"messages":[{"id":"wamid.X"}]}"#;
        assert_eq!(sent_wamid(ok).as_deref(), Some("wamid.X"));
        assert_eq!(sent_wamid(br#"{"messages":[]}"#), None);
        assert!(read_succeeded(br#"{"success":true}"#));
        assert!(!read_succeeded(b"nope"));
        let err = br#"{"error":{"message":"Re-engagement message","type":"OAuthException","code":131047,
            "error_subcode":2494010,"error_data":{"details":"More than 24 hours"},"fbtrace_id":"A"}}"#;
        let e = meta_error(err).unwrap();
        assert_eq!(e.code, 131047);
        assert_eq!(e.title, "OAuthException");
        assert_eq!(e.details, "More than 24 hours");
        assert_eq!(meta_error(b"<html>bad gateway</html>"), None);
    }
}
