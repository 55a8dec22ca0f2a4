//! What callers ask the outbound side to do, and the checks that turn a request
//! into something safe to send (parse, don't validate).

use sha2::{Digest, Sha256};
use tokio::time::Instant;

use kapso_gateway_proto::v1 as pb;

use super::OutboundError;
use crate::kapso_api::content::Content;
use crate::model::{
    ConversationId, EncodedContent, IdempotencyKey, PhoneNumber, PhoneNumberId, Wamid,
};

/// WhatsApp's limit on a text body, in characters.
pub const MAX_TEXT_CHARS: usize = 4096;

/// Send a free-form text message (domain form of `SendTextRequest`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SendText {
    /// Recipient phone digits, a leading `+` accepted. Either this or `conversation_id`.
    pub to: String,
    /// Sending business number; defaults to the conversation's, then the configured one.
    pub phone_number_id: String,
    /// Resolved to its business number and contact when `to` is empty.
    pub conversation_id: String,
    pub text: String,
    pub preview_url: bool,
    /// The wamid to reply to.
    pub reply_to_message_id: String,
    /// A retry with the same key returns the first outcome without sending again.
    pub idempotency_key: String,
    /// When the caller stops waiting; `None`: [`DEFAULT_DEADLINE`](super::DEFAULT_DEADLINE) from now.
    pub deadline: Option<Instant>,
}

/// Send a message of any kind (domain form of `SendMessageRequest`); its
/// content is already checked ([`super::content::parse`]).
#[derive(Debug, Clone, PartialEq)]
pub struct SendMessage {
    /// Recipient phone digits, a leading `+` accepted. Either this or `conversation_id`.
    pub to: String,
    /// Sending business number; defaults to the conversation's, then the configured one.
    pub phone_number_id: String,
    /// Resolved to its business number and contact when `to` is empty.
    pub conversation_id: String,
    /// The wamid to reply to.
    pub reply_to_message_id: String,
    /// A retry with the same key returns the first outcome without sending again.
    pub idempotency_key: String,
    pub content: Content,
    /// The request's content as the message keeps it (`convert::encode_content`).
    pub stored_content: Option<EncodedContent>,
    /// When the caller stops waiting; `None`: [`DEFAULT_DEADLINE`](super::DEFAULT_DEADLINE) from now.
    pub deadline: Option<Instant>,
}

impl SendText {
    /// The same send as a [`SendMessage`] with text content: `SendText` has no path of its own.
    pub fn into_message(self) -> Result<SendMessage, OutboundError> {
        let stored = pb::Content {
            kind: Some(pb::content::Kind::Text(pb::TextContent {
                body: self.text.clone(),
                preview_url: self.preview_url,
            })),
        };
        Ok(SendMessage {
            content: Content::Text(super::content::text(self.text, self.preview_url)?),
            stored_content: Some(crate::convert::encode_content(&stored)),
            to: self.to,
            phone_number_id: self.phone_number_id,
            conversation_id: self.conversation_id,
            reply_to_message_id: self.reply_to_message_id,
            idempotency_key: self.idempotency_key,
            deadline: self.deadline,
        })
    }
}

/// Mark an inbound message read (domain form of `MarkReadRequest`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MarkRead {
    /// The inbound message's wamid.
    pub message_id: String,
    /// Defaults to the stored message's, then the configured one.
    pub phone_number_id: String,
    pub typing_indicator: bool,
    pub deadline: Option<Instant>,
}

/// A send request that passed every check that needs no lookup.
#[derive(Debug, Clone)]
pub(super) struct CheckedSend {
    pub to: Option<PhoneNumber>,
    pub phone_number_id: Option<PhoneNumberId>,
    pub conversation_id: Option<ConversationId>,
    pub content: Content,
    pub stored_content: Option<EncodedContent>,
    pub reply_to: Option<Wamid>,
    pub idempotency_key: Option<IdempotencyKey>,
    /// Digest of the request as the caller gave it, to detect a key reused for another request.
    pub fingerprint: String,
}

impl SendMessage {
    pub(super) fn check(self) -> Result<CheckedSend, OutboundError> {
        let to = match self.to.trim() {
            "" => None,
            raw => Some(PhoneNumber::parse(raw).ok_or_else(|| {
                OutboundError::invalid("to", "must be 7 to 15 digits, optionally after a +")
            })?),
        };
        let conversation_id = ConversationId::parse(&self.conversation_id);
        if to.is_none() && conversation_id.is_none() {
            return Err(OutboundError::invalid(
                "to",
                "no recipient: give `to` or `conversation_id`",
            ));
        }
        let phone_number_id = non_empty(&self.phone_number_id)
            .map(|id| phone_number_id("phone_number_id", &id))
            .transpose()?;
        let idempotency_key = IdempotencyKey::parse(&self.idempotency_key)
            .map_err(|e| OutboundError::invalid("idempotency_key", e.to_string()))?;
        let reply_to = Wamid::parse(&self.reply_to_message_id);
        let address = [
            to.as_ref().map_or("", PhoneNumber::as_str),
            phone_number_id.as_ref().map_or("", PhoneNumberId::as_str),
            conversation_id.as_ref().map_or("", ConversationId::as_str),
        ];
        let reply = reply_to.as_ref().map_or("", Wamid::as_str);
        let fingerprint = match &self.content {
            // The fields text sends have always been fingerprinted with, so a
            // key used before this covers other kinds still replays.
            Content::Text(t) => fingerprint(&[
                address[0],
                address[1],
                address[2],
                &t.body,
                if t.preview_url { "1" } else { "0" },
                reply,
            ]),
            // The exact object sent (serde_json orders its keys), under its type.
            other => fingerprint(&[
                address[0],
                address[1],
                address[2],
                other.kind(),
                &other.wire_object().to_string(),
                reply,
            ]),
        };
        Ok(CheckedSend {
            to,
            phone_number_id,
            conversation_id,
            content: self.content,
            stored_content: self.stored_content,
            reply_to,
            idempotency_key,
            fingerprint,
        })
    }
}

/// A Meta phone number id the caller gave as `field`; it goes into the URL
/// path, so only plain id characters pass.
pub(crate) fn phone_number_id(
    field: &'static str,
    id: &str,
) -> Result<PhoneNumberId, OutboundError> {
    PhoneNumberId::parse(id).map_err(|e| OutboundError::invalid(field, e.to_string()))
}

pub(crate) fn non_empty(value: &str) -> Option<String> {
    let value = value.trim();
    (!value.is_empty()).then(|| value.to_owned())
}

/// sha256 over length-prefixed fields, so no two field lists share a digest.
fn fingerprint(fields: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for field in fields {
        hasher.update((field.len() as u64).to_be_bytes());
        hasher.update(field.as_bytes());
    }
    hex::encode(hasher.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(to: &str, text: &str) -> Checker {
        Checker(SendText {
            to: to.into(),
            text: text.into(),
            ..Default::default()
        })
    }

    /// A text request, checked as `send_text` checks it.
    struct Checker(SendText);

    impl Checker {
        fn check(&self) -> Result<CheckedSend, OutboundError> {
            self.0.clone().into_message()?.check()
        }
    }

    #[test]
    fn text_limit_counts_characters_not_bytes() {
        assert!(request("15551234567", &"ñ".repeat(4096)).check().is_ok());
        let err = request("15551234567", &"a".repeat(4097))
            .check()
            .unwrap_err();
        assert!(err.to_string().contains("text"), "{err}");
        assert!(request("15551234567", "  ").check().is_err());
    }

    #[test]
    fn a_recipient_is_required() {
        let err = request("", "hola").check().unwrap_err();
        assert!(err.to_string().contains("recipient"), "{err}");
    }

    #[test]
    fn phone_number_ids_cannot_escape_the_path() {
        let mut r = request("15551234567", "hola");
        r.0.phone_number_id = "../../admin".into();
        assert!(r.check().is_err());
    }

    #[test]
    fn fingerprint_tells_requests_apart() {
        let a = request("+15551234567", "hola").check().unwrap();
        let b = request("15551234567", "hola").check().unwrap();
        assert_eq!(a.fingerprint, b.fingerprint);
        let c = request("15551234567", "hola!").check().unwrap();
        assert_ne!(a.fingerprint, c.fingerprint);
        let mut d = request("15551234567", "hola");
        d.0.preview_url = true;
        assert_ne!(a.fingerprint, d.check().unwrap().fingerprint);
    }
}
