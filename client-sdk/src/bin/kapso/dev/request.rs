//! What a call to `{phone_number_id}/messages` asks for, checked as Meta checks
//! the envelope (docs/kapso-contract.md, 2): a read receipt, or a message of a
//! kind Meta knows with the object named after that kind. Each kind's inner
//! limits are the core's to check; here every kind is taken as text is.

use serde_json::Value;

use super::conversation::Contact;
use super::meta_error::MetaError;

/// The message types Meta's send endpoint takes.
const KINDS: [&str; 11] = [
    "text",
    "template",
    "image",
    "video",
    "audio",
    "document",
    "sticker",
    "interactive",
    "reaction",
    "location",
    "contacts",
];

/// Kinds whose message carries a media file.
const MEDIA_KINDS: [&str; 5] = ["image", "video", "audio", "document", "sticker"];

/// WhatsApp's limit on a text body, in characters.
const MAX_TEXT_CHARS: usize = 4096;

/// One accepted call.
#[derive(Debug, Clone, PartialEq)]
pub enum ApiCall {
    /// `{"status":"read","message_id":...}`: blue ticks for an inbound message.
    MarkRead,
    Send(Send),
}

/// A message to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Send {
    /// `to` (phone digits) or `recipient` (a business-scoped user id).
    pub contact: Contact,
    /// `type`.
    pub kind: String,
    /// The object named after the kind, as sent (an array for `contacts`).
    pub object: Value,
}

impl Send {
    pub fn has_media(&self) -> bool {
        MEDIA_KINDS.contains(&self.kind.as_str())
    }
}

pub fn parse(body: &[u8]) -> Result<ApiCall, MetaError> {
    let body: Value = serde_json::from_slice(body)
        .map_err(|e| MetaError::InvalidParameter(format!("the body is not JSON: {e}")))?;
    if !body.is_object() {
        return Err(MetaError::InvalidParameter(
            "the body must be a JSON object".into(),
        ));
    }
    match body.get("messaging_product").and_then(Value::as_str) {
        Some("whatsapp") => {}
        Some(other) => {
            return Err(MetaError::InvalidParameter(format!(
                "messaging_product must be \"whatsapp\", not {other:?}"
            )));
        }
        None => return Err(MetaError::MissingParameter("messaging_product".into())),
    }
    if body.get("status").is_some() {
        return mark_read(&body);
    }
    send(&body).map(ApiCall::Send)
}

fn mark_read(body: &Value) -> Result<ApiCall, MetaError> {
    if body["status"] != "read" {
        return Err(MetaError::InvalidParameter(
            "status must be \"read\"".into(),
        ));
    }
    match non_empty(body, "message_id") {
        Some(_) => Ok(ApiCall::MarkRead),
        None => Err(MetaError::MissingParameter("message_id".into())),
    }
}

fn send(body: &Value) -> Result<Send, MetaError> {
    let contact = match (non_empty(body, "to"), non_empty(body, "recipient")) {
        (Some(to), _) => Contact::phone(to).ok_or_else(|| {
            MetaError::InvalidParameter(format!("to {to:?} is not a phone number"))
        })?,
        (None, Some(recipient)) => Contact::UserId(recipient.to_owned()),
        (None, None) => return Err(MetaError::MissingParameter("to".into())),
    };
    let kind = non_empty(body, "type").unwrap_or("text");
    if !KINDS.contains(&kind) {
        return Err(MetaError::InvalidParameter(format!(
            "type {kind:?} is not one of {}",
            KINDS.join(", ")
        )));
    }
    let object = body.get(kind).cloned().unwrap_or(Value::Null);
    let shaped = match kind {
        "contacts" => object.as_array().is_some_and(|a| !a.is_empty()),
        _ => object.is_object(),
    };
    if !shaped {
        return Err(MetaError::MissingParameter(format!(
            "a message of type {kind} needs the object {kind:?}"
        )));
    }
    if kind == "text" {
        check_text(&object)?;
    }
    Ok(Send {
        contact,
        kind: kind.to_owned(),
        object,
    })
}

fn check_text(text: &Value) -> Result<(), MetaError> {
    let body =
        non_empty(text, "body").ok_or_else(|| MetaError::MissingParameter("text.body".into()))?;
    if body.chars().count() > MAX_TEXT_CHARS {
        return Err(MetaError::InvalidParameter(format!(
            "text.body is longer than {MAX_TEXT_CHARS} characters"
        )));
    }
    Ok(())
}

fn non_empty<'a>(value: &'a Value, field: &str) -> Option<&'a str> {
    value
        .get(field)
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse_json(value: Value) -> Result<ApiCall, MetaError> {
        parse(value.to_string().as_bytes())
    }

    fn sent(value: Value) -> Send {
        match parse_json(value) {
            Ok(ApiCall::Send(send)) => send,
            other => panic!("not a send: {other:?}"),
        }
    }

    #[test]
    fn a_text_send_names_its_contact_and_kind() {
        let send = sent(
            json!({"messaging_product": "whatsapp", "recipient_type": "individual",
            "to": "+15551234567", "type": "text", "text": {"body": "Hola", "preview_url": false}}),
        );
        assert_eq!(send.contact, Contact::Phone("15551234567".into()));
        assert_eq!(send.kind, "text");
        assert_eq!(send.object["body"], "Hola");
        assert!(!send.has_media());
    }

    #[test]
    fn every_kind_is_taken_like_text() {
        let bodies = [
            json!({"type": "interactive", "interactive": {"type": "button", "body": {"text": "¿Sí?"},
                "action": {"buttons": [{"type": "reply", "reply": {"id": "y", "title": "Sí"}}]}}}),
            json!({"type": "interactive", "interactive": {"type": "list", "body": {"text": "Pick"},
                "action": {"button": "Slots", "sections": [{"rows": [{"id": "t", "title": "18h"}]}]}}}),
            json!({"type": "image", "image": {"link": "https://example.com/p.jpg", "caption": "Tu pedido"}}),
            json!({"type": "document", "document": {"id": "224", "filename": "f.pdf"}}),
            json!({"type": "template", "template": {"name": "hello_world", "language": {"code": "en_US"}}}),
            json!({"type": "reaction", "reaction": {"message_id": "wamid.1", "emoji": "👍"}}),
            json!({"type": "location", "location": {"latitude": 19.4, "longitude": -99.1}}),
            json!({"type": "contacts", "contacts": [{"name": {"formatted_name": "Desk"}}]}),
        ];
        for mut body in bodies {
            body["messaging_product"] = json!("whatsapp");
            body["to"] = json!("15551234567");
            let kind = body["type"].as_str().unwrap().to_owned();
            let send = sent(body);
            assert_eq!(send.kind, kind);
            assert_eq!(
                send.has_media(),
                ["image", "document"].contains(&kind.as_str())
            );
        }
    }

    #[test]
    fn a_business_scoped_user_id_is_a_recipient() {
        let send = sent(
            json!({"messaging_product": "whatsapp", "recipient": "US.1349",
            "type": "text", "text": {"body": "Hola"}}),
        );
        assert_eq!(send.contact, Contact::UserId("US.1349".into()));
    }

    #[test]
    fn a_read_receipt_needs_the_message_id() {
        let read = json!({"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.1",
            "typing_indicator": {"type": "text"}});
        assert_eq!(parse_json(read), Ok(ApiCall::MarkRead));
        let missing = json!({"messaging_product": "whatsapp", "status": "read"});
        assert_eq!(
            parse_json(missing),
            Err(MetaError::MissingParameter("message_id".into()))
        );
    }

    #[test]
    fn envelope_mistakes_are_refused_with_metas_codes() {
        let cases = [
            (json!({"to": "15551234567", "text": {"body": "x"}}), 131008),
            (
                json!({"messaging_product": "sms", "to": "15551234567", "text": {"body": "x"}}),
                100,
            ),
            (
                json!({"messaging_product": "whatsapp", "text": {"body": "x"}}),
                131008,
            ),
            (
                json!({"messaging_product": "whatsapp", "to": "555-CALL", "text": {"body": "x"}}),
                100,
            ),
            (
                json!({"messaging_product": "whatsapp", "to": "15551234567", "type": "fax", "fax": {}}),
                100,
            ),
            (
                json!({"messaging_product": "whatsapp", "to": "15551234567", "type": "image"}),
                131008,
            ),
            (
                json!({"messaging_product": "whatsapp", "to": "15551234567", "text": {"body": " "}}),
                131008,
            ),
            (
                json!({"messaging_product": "whatsapp", "to": "15551234567", "text": {"body": "a".repeat(4097)}}),
                100,
            ),
            (
                json!({"messaging_product": "whatsapp", "status": "delivered", "message_id": "w"}),
                100,
            ),
            (json!([1, 2]), 100),
        ];
        for (body, code) in cases {
            let error = parse_json(body.clone()).expect_err(&body.to_string());
            assert_eq!(error.code(), code, "{body}");
        }
        assert_eq!(parse(b"{not json").unwrap_err().code(), 100);
        // 4096 two-byte characters are within the limit: it counts characters.
        let long = json!({"messaging_product": "whatsapp", "to": "15551234567",
            "text": {"body": "ñ".repeat(4096)}});
        assert!(parse_json(long).is_ok());
    }
}
