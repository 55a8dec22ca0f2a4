//! What callers ask the outbound side to do, and the checks that turn a request
//! into something safe to send (parse, don't validate).

use sha2::{Digest, Sha256};
use tokio::time::Instant;

use kapso_gateway_proto::v1 as pb;

use super::OutboundError;
use crate::kapso_api::content::Content;
use crate::model::EncodedContent;

/// WhatsApp's limit on a text body, in characters.
pub const MAX_TEXT_CHARS: usize = 4096;
/// Longest idempotency key accepted.
const MAX_KEY_LEN: usize = 256;

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

/// Phone digits as WhatsApp wants them in `to` (E.164 without the `+`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhoneNumber(String);

impl PhoneNumber {
    pub fn parse(raw: &str) -> Option<PhoneNumber> {
        let digits = raw.trim().strip_prefix('+').unwrap_or(raw.trim());
        let valid = (7..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit());
        valid.then(|| PhoneNumber(digits.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A business-scoped user id (BSUID): how Meta names a contact known by
/// username only, e.g. `US.13491208655302741918` (docs/kapso-contract.md, 11).
/// Kept verbatim: Meta refuses an altered one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusinessUserId(String);

impl BusinessUserId {
    /// Dot-separated alphanumeric parts (a country prefix, maybe `ENT.`, the
    /// id), up to 256 characters; phone digits are not one.
    pub fn parse(raw: &str) -> Option<BusinessUserId> {
        let raw = raw.trim();
        let valid = raw.len() <= 256
            && raw.split('.').count() >= 2
            && raw
                .split('.')
                .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_alphanumeric()));
        valid.then(|| BusinessUserId(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Who a send goes to: Meta's `to` for a phone number, `recipient` for a
/// contact known only by its business-scoped user id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Addressee {
    Phone(PhoneNumber),
    UserId(BusinessUserId),
}

impl Addressee {
    /// The contact as the store keys it (phone digits or the user id).
    pub fn as_str(&self) -> &str {
        match self {
            Addressee::Phone(phone) => phone.as_str(),
            Addressee::UserId(id) => id.as_str(),
        }
    }
}

/// A send request that passed every check that needs no lookup.
#[derive(Debug, Clone)]
pub(super) struct CheckedSend {
    pub to: Option<PhoneNumber>,
    pub phone_number_id: Option<String>,
    pub conversation_id: String,
    pub content: Content,
    pub stored_content: Option<EncodedContent>,
    pub reply_to: Option<String>,
    pub idempotency_key: Option<String>,
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
        let conversation_id = self.conversation_id.trim().to_owned();
        if to.is_none() && conversation_id.is_empty() {
            return Err(OutboundError::invalid(
                "to",
                "no recipient: give `to` or `conversation_id`",
            ));
        }
        let phone_number_id = non_empty(&self.phone_number_id)
            .map(|id| check_phone_number_id("phone_number_id", id))
            .transpose()?;
        let idempotency_key = non_empty(&self.idempotency_key);
        if idempotency_key
            .as_ref()
            .is_some_and(|k| k.len() > MAX_KEY_LEN)
        {
            return Err(OutboundError::invalid(
                "idempotency_key",
                format!("longer than {MAX_KEY_LEN} bytes"),
            ));
        }
        let reply_to = non_empty(&self.reply_to_message_id);
        let address = [
            to.as_ref().map_or("", PhoneNumber::as_str),
            phone_number_id.as_deref().unwrap_or(""),
            &conversation_id,
        ];
        let reply = reply_to.as_deref().unwrap_or("");
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

/// A Meta phone number id goes into the URL path: only plain id characters pass.
pub(crate) fn check_phone_number_id(
    field: &'static str,
    id: String,
) -> Result<String, OutboundError> {
    let plain = id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if plain {
        Ok(id)
    } else {
        Err(OutboundError::invalid(
            field,
            "must be a Meta phone number id (letters, digits, _ or -)",
        ))
    }
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
    fn phone_numbers_are_digits_with_an_optional_plus() {
        assert_eq!(
            PhoneNumber::parse("+15551234567").unwrap().as_str(),
            "15551234567"
        );
        assert_eq!(
            PhoneNumber::parse("15551234567").unwrap().as_str(),
            "15551234567"
        );
        for bad in [
            "",
            "+",
            "123",
            "1555-123-4567",
            "++15551234567",
            "1555123456789012",
        ] {
            assert!(PhoneNumber::parse(bad).is_none(), "{bad}");
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
    fn business_user_ids_are_told_from_phone_numbers() {
        for id in [
            "US.13491208655302741918",
            "US.ENT.506847293015824",
            "user.9373",
        ] {
            assert_eq!(BusinessUserId::parse(id).unwrap().as_str(), id);
        }
        for not_id in [
            "15551234567",
            "+15551234567",
            "",
            "US.",
            ".42",
            "US 42",
            "ana@x.y",
        ] {
            assert!(BusinessUserId::parse(not_id).is_none(), "{not_id}");
        }
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
