//! The core's domain types: what a delivery is, what the store remembers, and
//! the explicit outcomes of storing. Protobuf types stay at the gRPC edge
//! (`convert`), these are what the store and the services speak.

mod event_type;
mod ids;

pub use event_type::EventType;
pub use ids::{
    BusinessUserId, ConversationId, GatewayId, IdempotencyKey, InvalidId, MessageKey,
    MessageLookup, PhoneNumber, PhoneNumberId, Recipient, Wamid,
};

use crate::status::MessageStatus;

/// Which way a message travelled, seen from the business.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    #[default]
    Unknown,
    Inbound,
    Outbound,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unknown => "",
            Self::Inbound => "inbound",
            Self::Outbound => "outbound",
        }
    }

    pub fn parse(name: &str) -> Direction {
        match name {
            "inbound" => Self::Inbound,
            "outbound" => Self::Outbound,
            _ => Self::Unknown,
        }
    }
}

/// One of Meta's error objects (`errors[]` of a failed status, or an API error).
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct MetaError {
    pub code: i64,
    pub title: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub details: String,
}

/// A status a webhook reports for a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusUpdate {
    pub status: MessageStatus,
    /// Unix seconds; 0 when Kapso did not say.
    pub timestamp: i64,
    pub errors: Vec<MetaError>,
}

/// One webhook event as the adapter parsed it. Every field may be empty (an
/// id absent is `None`); ids are kept exactly as Kapso sent them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NewEvent {
    pub event_type: EventType,
    pub message_id: Option<Wamid>,
    pub conversation_id: Option<ConversationId>,
    pub phone_number_id: String,
    pub contact_phone: String,
    pub direction: Direction,
    pub message_type: String,
    pub text: String,
    pub reply_to_message_id: Option<Wamid>,
    /// Oldest first. Empty for received messages.
    pub statuses: Vec<StatusUpdate>,
    /// WhatsApp's timestamp, unix seconds; 0 when absent.
    pub timestamp: i64,
    /// The event exactly as Kapso sent it.
    pub payload_json: String,
    /// A received message's typed content, for its message row. Not kept in
    /// the log: an event's content is read from its payload there.
    pub content: Option<EncodedContent>,
}

impl NewEvent {
    /// The status this event is about, from its type (`whatsapp.message.read` is `Read`).
    /// `None` for received messages and non-message events.
    pub fn reported_status(&self) -> Option<MessageStatus> {
        self.event_type.reported_status()
    }

    /// The event's own time (WhatsApp's), or `now` when it carries none.
    pub fn time_or(&self, now: i64) -> i64 {
        if self.timestamp > 0 {
            self.timestamp
        } else {
            now
        }
    }

    /// Whether this is a message the contact sent to the business.
    pub fn is_inbound_message(&self) -> bool {
        self.message_id.is_some()
            && self.reported_status().is_none()
            && (self.direction == Direction::Inbound
                || (self.direction == Direction::Unknown && self.event_type.is_message_received()))
    }
}

/// A webhook delivery: the unit Kapso retries, stored all-or-nothing.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Delivery {
    /// `X-Idempotency-Key`; `None` when the sender gave none.
    pub key: Option<String>,
    pub events: Vec<NewEvent>,
}

/// What storing one event amounted to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// First sighting: appended to the log at this sequence.
    New { sequence: u64 },
    /// Seen before under this or another delivery: nothing appended.
    Duplicate,
}

/// What storing a delivery amounted to. Returned only after the commit is durable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Receipt {
    /// The delivery key was new; one claim per event, in order.
    Stored(Vec<Claim>),
    /// The delivery key had been stored before: nothing was written.
    DuplicateDelivery,
}

/// A status reached, with WhatsApp's time for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusRecord {
    pub status: MessageStatus,
    pub timestamp: i64,
}

/// A message as the store knows it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// wamid when known, else the gateway's own id.
    pub id: String,
    pub direction: Direction,
    /// `None` when no event or send named one.
    pub conversation_id: Option<ConversationId>,
    pub phone_number_id: String,
    pub contact_phone: String,
    pub message_type: String,
    pub text: String,
    pub status: MessageStatus,
    pub errors: Vec<MetaError>,
    /// Why Kapso never took this send, when it failed so (then `errors` is
    /// empty unless a status webhook reported some).
    pub not_taken: Option<String>,
    /// Oldest first.
    pub status_history: Vec<StatusRecord>,
    /// Outbound only.
    pub gateway_id: Option<GatewayId>,
    /// Outbound only, when the client gave one.
    pub idempotency_key: Option<IdempotencyKey>,
    /// Unix seconds.
    pub timestamp: i64,
    /// The message this one replies to, when it is a reply.
    pub reply_to_message_id: Option<Wamid>,
    /// What the message holds, when known: from the payload of a received
    /// message, from the request of a send.
    pub content: Option<EncodedContent>,
}

/// A message's typed content, encoded as the contract's `Content` message
/// (protobuf). Opaque to the store, which keeps the bytes as they are;
/// `convert` alone encodes and decodes them. `Debug` shows the length only:
/// content must not reach a log.
#[derive(Clone, PartialEq, Eq)]
pub struct EncodedContent(Vec<u8>);

impl EncodedContent {
    pub fn from_bytes(bytes: Vec<u8>) -> EncodedContent {
        EncodedContent(bytes)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for EncodedContent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EncodedContent({} bytes)", self.0.len())
    }
}

/// An entry of the durable event log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    pub sequence: u64,
    pub received_at_ms: i64,
    pub event: NewEvent,
}

/// Which log entries a reader wants. Empty fields match everything.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EventFilter {
    pub event_types: Vec<EventType>,
    pub conversation_id: String,
    pub phone_number_id: String,
}

impl EventFilter {
    pub fn matches(&self, event: &NewEvent) -> bool {
        (self.event_types.is_empty() || self.event_types.contains(&event.event_type))
            && (self.conversation_id.is_empty()
                || event
                    .conversation_id
                    .as_ref()
                    .is_some_and(|id| id.as_str() == self.conversation_id))
            && (self.phone_number_id.is_empty() || self.phone_number_id == event.phone_number_id)
    }
}

/// A conversation the gateway has seen, remembered to address replies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversation {
    pub id: ConversationId,
    pub phone_number_id: String,
    /// Phone digits or business-scoped user id.
    pub contact_phone: String,
    /// Unix seconds of the last inbound message; `None` if none seen.
    pub last_inbound_at: Option<i64>,
}

/// A page of a conversation's messages, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessagePage {
    pub messages: Vec<Message>,
    /// Opaque cursor for the next page; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// An outbound send as the client asked for it, recorded before any upstream call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendIntent {
    /// The gateway's own id for this send.
    pub gateway_id: GatewayId,
    pub idempotency_key: Option<IdempotencyKey>,
    /// Digest of the request, to refuse the same key with a different request.
    pub fingerprint: String,
    pub phone_number_id: PhoneNumberId,
    pub to: Recipient,
    /// `None` for a send outside any known conversation.
    pub conversation_id: Option<ConversationId>,
    /// WhatsApp's message type: text, template, image, interactive, ...
    pub message_type: String,
    /// The text body, or a readable summary of other kinds.
    pub text: String,
    /// The message this one replies to, when it is a reply.
    pub reply_to_message_id: Option<Wamid>,
    /// Unix seconds.
    pub created_at: i64,
    /// The request's content, kept on the message.
    pub content: Option<EncodedContent>,
}

/// What recording a send intent found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendClaim {
    /// New: this caller owns the upstream call. The message is stored as `Accepted`.
    Started(Message),
    /// The key was used before with the same request; here is that send's current state
    /// (possibly still `Accepted` while another caller's upstream call is in flight).
    Existing(Message),
    /// The key was used before with a different request.
    KeyReused,
}

/// How an upstream send ended, to be recorded on the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendResult {
    /// Kapso accepted it: this is the wamid later status webhooks carry.
    Sent { wamid: String },
    /// It certainly was not sent, and is recorded as failed.
    Failed(SendFailure),
    /// The request may have reached WhatsApp; a status webhook will settle it.
    Unknown,
}

/// Why a send failed, certainly without reaching WhatsApp. (A send that
/// may have reached it is [`SendResult::Unknown`].)
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendFailure {
    /// Kapso never took the request (unreachable, busy with another message);
    /// `reason` says what happened instead.
    NotTaken { reason: String },
    /// Kapso or WhatsApp refused it, with Meta's errors (none when it gave none).
    Refused(Vec<MetaError>),
}

impl Message {
    /// Why this send failed, as recorded; meaningful for a `Failed` send.
    /// Meta's errors, when a status webhook reported some, come first.
    pub fn send_failure(&self) -> SendFailure {
        match &self.not_taken {
            Some(reason) if self.errors.is_empty() => SendFailure::NotTaken {
                reason: reason.clone(),
            },
            _ => SendFailure::Refused(self.errors.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(event_type: EventType, message_id: &str) -> NewEvent {
        NewEvent {
            event_type,
            message_id: Wamid::from_stored(message_id.into()),
            ..Default::default()
        }
    }

    #[test]
    fn filter_matches_on_every_given_field() {
        let mut e = event(EventType::MessageReceived, "m");
        e.conversation_id = ConversationId::from_stored("c1".into());
        e.phone_number_id = "p1".into();
        assert!(EventFilter::default().matches(&e));
        let f = EventFilter {
            event_types: vec![EventType::MessageRead],
            ..Default::default()
        };
        assert!(!f.matches(&e));
        let f = EventFilter {
            conversation_id: "c1".into(),
            phone_number_id: "p2".into(),
            ..Default::default()
        };
        assert!(!f.matches(&e));
    }
}
