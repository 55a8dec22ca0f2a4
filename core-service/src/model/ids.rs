//! The identifiers a send is made of, each checked once where it enters the
//! core (a request, a stored conversation) and spelled out as a string only
//! where it leaves (SQL binds, protobuf, Kapso's JSON).

use std::fmt;

use uuid::Uuid;

/// Why a raw identifier was refused; the text is the reason a caller reads.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidId(String);

/// The gateway's own id for a send, `gw_` and a time-ordered UUID: known
/// before Kapso answers, so a send can be found whatever becomes of it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GatewayId(String);

impl GatewayId {
    /// A fresh id for a new send.
    pub fn mint() -> GatewayId {
        GatewayId(format!("gw_{}", Uuid::now_v7().simple()))
    }

    /// An id as stored or as a caller gave it; `None` when blank.
    pub fn parse(raw: &str) -> Option<GatewayId> {
        let raw = raw.trim();
        (!raw.is_empty()).then(|| GatewayId(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A client's idempotency key: a retry with the same key returns the first
/// send's outcome instead of sending again.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// Longest key accepted, in bytes.
    pub const MAX_LEN: usize = 256;

    /// The key, trimmed; `Ok(None)` when blank (no key given).
    pub fn parse(raw: &str) -> Result<Option<IdempotencyKey>, InvalidId> {
        let raw = raw.trim();
        if raw.is_empty() {
            Ok(None)
        } else if raw.len() > Self::MAX_LEN {
            Err(InvalidId(format!("longer than {} bytes", Self::MAX_LEN)))
        } else {
            Ok(Some(IdempotencyKey(raw.to_owned())))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A Meta phone number id: the business number a send leaves from. It goes
/// into the URL path, so only plain id characters pass.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PhoneNumberId(String);

impl PhoneNumberId {
    /// Up to 64 letters, digits, `_` or `-`, after trimming; not blank.
    pub fn parse(raw: &str) -> Result<PhoneNumberId, InvalidId> {
        let raw = raw.trim();
        let plain = !raw.is_empty()
            && raw.len() <= 64
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if plain {
            Ok(PhoneNumberId(raw.to_owned()))
        } else {
            Err(InvalidId(
                "must be a Meta phone number id (letters, digits, _ or -)".into(),
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Kapso's id of a conversation. A send outside any known conversation has
/// none (`Option<ConversationId>`), not an empty one.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ConversationId(String);

impl ConversationId {
    /// The id, trimmed; `None` when blank.
    pub fn parse(raw: &str) -> Option<ConversationId> {
        let raw = raw.trim();
        (!raw.is_empty()).then(|| ConversationId(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// WhatsApp's id of a message (`wamid.…`), as Kapso and the webhooks name it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Wamid(String);

impl Wamid {
    /// The id, trimmed; `None` when blank.
    pub fn parse(raw: &str) -> Option<Wamid> {
        let raw = raw.trim();
        (!raw.is_empty()).then(|| Wamid(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Phone digits as WhatsApp wants them in `to` (E.164 without the `+`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PhoneNumber(String);

impl PhoneNumber {
    /// 7 to 15 digits, a leading `+` accepted.
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
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
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
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Recipient {
    Phone(PhoneNumber),
    UserId(BusinessUserId),
}

impl Recipient {
    /// A contact as stored (a conversation's, a message's): phone digits, or
    /// the business-scoped user id of a contact who shows no number. `None`
    /// when it is neither.
    pub fn parse(contact: &str) -> Option<Recipient> {
        PhoneNumber::parse(contact)
            .map(Recipient::Phone)
            .or_else(|| BusinessUserId::parse(contact).map(Recipient::UserId))
    }

    /// The contact as the store keys it (phone digits or the user id).
    pub fn as_str(&self) -> &str {
        match self {
            Recipient::Phone(phone) => phone.as_str(),
            Recipient::UserId(id) => id.as_str(),
        }
    }
}

/// One of the keys a message is stored under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKey {
    /// WhatsApp's id, once Kapso or a webhook named it.
    Wamid,
    /// The gateway's own id of a send.
    GatewayId,
    /// The client's idempotency key of a send.
    IdempotencyKey,
}

/// A message named by an id that may be any of its keys: `GetMessage`'s id
/// is ambiguous by contract (a wamid, a gateway id or an idempotency key), so
/// the store tries each key in [`MessageLookup::ORDER`] and the first match wins.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MessageLookup(String);

impl MessageLookup {
    /// The order the keys are tried in: a wamid is WhatsApp's own and
    /// outranks the gateway's id, which outranks a client's chosen key.
    pub const ORDER: [MessageKey; 3] = [
        MessageKey::Wamid,
        MessageKey::GatewayId,
        MessageKey::IdempotencyKey,
    ];

    /// Any id, verbatim; `None` when empty.
    pub fn any(id: &str) -> Option<MessageLookup> {
        (!id.is_empty()).then(|| MessageLookup(id.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A send looked up by its gateway id, under the same precedence as any id.
impl From<&GatewayId> for MessageLookup {
    fn from(id: &GatewayId) -> MessageLookup {
        MessageLookup(id.as_str().to_owned())
    }
}

/// `from_stored`: an id as a store row holds it, kept verbatim (it was
/// checked, or is a webhook's own, when it was written); `None` when the
/// column is empty, so a row never fails to read for a blank.
macro_rules! from_stored {
    ($($ty:ident),*) => {$(
        impl $ty {
            pub fn from_stored(raw: String) -> Option<$ty> {
                (!raw.is_empty()).then_some($ty(raw))
            }
        }
    )*};
}

from_stored!(GatewayId, IdempotencyKey, ConversationId, Wamid);

/// An id spelled out where it leaves the core, without copying it.
macro_rules! into_string {
    ($($ty:ident),*) => {$(
        impl From<$ty> for String {
            fn from(id: $ty) -> String {
                id.0
            }
        }
    )*};
}

into_string!(GatewayId, IdempotencyKey, ConversationId, Wamid);

macro_rules! display_as_str {
    ($($ty:ty),*) => {$(
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    )*};
}

display_as_str!(
    GatewayId,
    IdempotencyKey,
    PhoneNumberId,
    ConversationId,
    Wamid,
    PhoneNumber,
    BusinessUserId,
    Recipient,
    MessageLookup
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_gateway_ids_are_prefixed_and_distinct() {
        let (a, b) = (GatewayId::mint(), GatewayId::mint());
        assert!(a.as_str().starts_with("gw_"), "{a}");
        assert_ne!(a, b);
        assert_eq!(GatewayId::parse(a.as_str()), Some(a));
        assert_eq!(GatewayId::parse("  "), None);
    }

    #[test]
    fn idempotency_keys_are_trimmed_optional_and_bounded() {
        assert_eq!(IdempotencyKey::parse(""), Ok(None));
        assert_eq!(IdempotencyKey::parse(" \t"), Ok(None));
        let key = IdempotencyKey::parse(" k-1 ").unwrap().unwrap();
        assert_eq!(key.as_str(), "k-1");
        assert!(IdempotencyKey::parse(&"k".repeat(256)).unwrap().is_some());
        let err = IdempotencyKey::parse(&"k".repeat(257)).unwrap_err();
        assert_eq!(err.to_string(), "longer than 256 bytes");
    }

    #[test]
    fn phone_number_ids_are_plain_path_segments() {
        for id in ["647015955153740", "pn_test-1", " 42 "] {
            assert_eq!(PhoneNumberId::parse(id).unwrap().as_str(), id.trim());
        }
        for bad in ["", "  ", "../../admin", "a/b", "a b", "ñ", &"1".repeat(65)] {
            assert!(PhoneNumberId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_message_lookup_is_any_non_empty_id_kept_verbatim() {
        assert_eq!(MessageLookup::any(""), None);
        assert_eq!(
            MessageLookup::any(" wamid.X ").unwrap().as_str(),
            " wamid.X "
        );
        let sent = GatewayId::mint();
        assert_eq!(MessageLookup::from(&sent).as_str(), sent.as_str());
        assert_eq!(
            MessageLookup::ORDER,
            [
                MessageKey::Wamid,
                MessageKey::GatewayId,
                MessageKey::IdempotencyKey
            ]
        );
    }

    #[test]
    fn a_blank_conversation_id_is_none() {
        assert_eq!(ConversationId::parse(""), None);
        assert_eq!(ConversationId::parse(" "), None);
        assert_eq!(
            ConversationId::parse(" conv-1 ").unwrap().as_str(),
            "conv-1"
        );
    }

    #[test]
    fn a_blank_wamid_is_none() {
        assert_eq!(Wamid::parse(""), None);
        assert_eq!(Wamid::parse(" \t"), None);
        let wamid = Wamid::parse(" wamid.HBgL== ").unwrap();
        assert_eq!(wamid.as_str(), "wamid.HBgL==");
        assert_eq!(wamid.to_string(), "wamid.HBgL==");
    }

    #[test]
    fn a_stored_id_is_kept_verbatim_and_an_empty_column_is_none() {
        assert_eq!(Wamid::from_stored(String::new()), None);
        assert_eq!(GatewayId::from_stored(String::new()), None);
        assert_eq!(IdempotencyKey::from_stored(String::new()), None);
        assert_eq!(ConversationId::from_stored(String::new()), None);
        assert_eq!(
            Wamid::from_stored(" wamid.X ".into()).unwrap().as_str(),
            " wamid.X "
        );
        let long = "k".repeat(IdempotencyKey::MAX_LEN + 1);
        assert_eq!(
            IdempotencyKey::from_stored(long.clone()).unwrap().as_str(),
            long
        );
        assert_eq!(
            ConversationId::from_stored("conv-1".into()),
            ConversationId::parse("conv-1")
        );
        assert_eq!(String::from(Wamid::parse("wamid.X").unwrap()), "wamid.X");
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
    fn a_stored_contact_is_a_phone_first_then_a_user_id() {
        assert!(matches!(
            Recipient::parse("15551234567"),
            Some(Recipient::Phone(_))
        ));
        let user = Recipient::parse("US.13491208655302741918").unwrap();
        assert!(matches!(user, Recipient::UserId(_)));
        assert_eq!(user.to_string(), "US.13491208655302741918");
        assert_eq!(Recipient::parse(""), None);
        assert_eq!(Recipient::parse("ana@x.y"), None);
    }
}
