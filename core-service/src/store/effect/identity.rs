//! How the log recognises an event that comes again, whichever delivery
//! carries it.
//!
//! Kapso re-sends a batch message by message under new delivery keys once its
//! retries run out, so an event must de-duplicate on its own: a status by its
//! message and status, another message event by its message and type, an
//! event without a message id by a digest of its exact payload.

use std::fmt;

use sha2::{Digest, Sha256};

use crate::model::{EventType, NewEvent, Wamid};
use crate::status::MessageStatus;

/// An event's identity in the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Identity<'a> {
    /// A received message or a status: the message it changes and which
    /// event of that message it is. Stored as the message's row and the kind,
    /// so that the index grows at its end (rows are numbered in arrival
    /// order), where one keyed by the random wamid would take a page per event.
    OfMessage {
        wamid: &'a Wamid,
        kind: EventKind<'a>,
    },
    /// An event that names a message it does not change (a kind Kapso added,
    /// say): only logged, known by its type and message.
    Named {
        event_type: &'a EventType,
        wamid: &'a Wamid,
    },
    /// An event without a message id: its type and its payload's digest.
    Payload {
        event_type: &'a EventType,
        digest: [u8; 32],
    },
}

/// Which event of its message an [`Identity::OfMessage`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EventKind<'a> {
    /// A status event, by the status of its type: a message is `read` once.
    Status(MessageStatus),
    /// Any other event that changes its message (a received message), by type.
    Type(&'a EventType),
}

impl<'a> Identity<'a> {
    /// The identity of `event`; `changes_a_message` says whether storing it
    /// creates or changes a message row (its [`Effect`](super::Effect) has one).
    pub(crate) fn of(event: &'a NewEvent, changes_a_message: bool) -> Identity<'a> {
        let event_type = &event.event_type;
        let Some(wamid) = &event.message_id else {
            return Identity::Payload {
                event_type,
                digest: Sha256::digest(event.payload_json.as_bytes()).into(),
            };
        };
        if !changes_a_message {
            return Identity::Named { event_type, wamid };
        }
        let kind = match event.reported_status() {
            Some(status) => EventKind::Status(status),
            None => EventKind::Type(event_type),
        };
        Identity::OfMessage { wamid, kind }
    }

    /// The wamid of the message whose row holds this identity, if it is one.
    pub(crate) fn message(&self) -> Option<&'a Wamid> {
        match self {
            Identity::OfMessage { wamid, .. } => Some(wamid),
            Identity::Named { .. } | Identity::Payload { .. } => None,
        }
    }

    /// What the log's `dedup_key` column holds: the kind beside the message's
    /// row for [`Identity::OfMessage`], else the whole identity as written by
    /// [`Display`](fmt::Display).
    pub(crate) fn key(&self) -> String {
        match self {
            Identity::OfMessage { kind, .. } => kind.as_str().to_owned(),
            other => other.to_string(),
        }
    }
}

impl<'a> EventKind<'a> {
    pub(crate) fn as_str(self) -> &'a str {
        match self {
            EventKind::Status(status) => status.as_str(),
            EventKind::Type(event_type) => event_type.as_str(),
        }
    }
}

/// The identity as one string: `s|wamid|status`, `e|type|wamid` or
/// `p|type|digest`, the form stored before identities had a message's row.
impl fmt::Display for Identity<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Identity::OfMessage {
                wamid,
                kind: EventKind::Status(status),
            } => write!(f, "s|{wamid}|{status}"),
            Identity::OfMessage {
                wamid,
                kind: EventKind::Type(event_type),
            }
            | Identity::Named { event_type, wamid } => write!(f, "e|{event_type}|{wamid}"),
            Identity::Payload { event_type, digest } => {
                write!(f, "p|{event_type}|{}", hex::encode(digest))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(event_type: &str, message_id: &str) -> NewEvent {
        NewEvent {
            event_type: EventType::parse(event_type),
            message_id: Wamid::from_stored(message_id.into()),
            ..NewEvent::default()
        }
    }

    #[test]
    fn statuses_are_known_by_message_and_status() {
        let read = event("whatsapp.message.read", "wamid.1");
        let identity = Identity::of(&read, true);
        let wamid = Wamid::parse("wamid.1").unwrap();
        assert_eq!(
            identity,
            Identity::OfMessage {
                wamid: &wamid,
                kind: EventKind::Status(MessageStatus::Read)
            }
        );
        assert_eq!(identity.key(), "read");
        assert_eq!(identity.to_string(), "s|wamid.1|read");
        let delivered = event("whatsapp.message.delivered", "wamid.1");
        assert_ne!(identity, Identity::of(&delivered, true));
    }

    #[test]
    fn received_messages_are_known_by_message_and_type() {
        let received = event("whatsapp.message.received", "wamid.1");
        let identity = Identity::of(&received, true);
        assert_eq!(identity.key(), "whatsapp.message.received");
        assert_eq!(identity.message().map(Wamid::as_str), Some("wamid.1"));
        assert_eq!(identity.to_string(), "e|whatsapp.message.received|wamid.1");
    }

    #[test]
    fn events_only_logged_keep_their_whole_identity() {
        let deleted = event("whatsapp.message.deleted", "wamid.1");
        let identity = Identity::of(&deleted, false);
        assert_eq!(identity.message(), None);
        assert_eq!(identity.key(), "e|whatsapp.message.deleted|wamid.1");
    }

    #[test]
    fn events_without_a_message_id_are_known_by_their_exact_payload() {
        let mut a = event("whatsapp.conversation.created", "");
        a.payload_json = r#"{"conversation":{"id":"c1"}}"#.into();
        let mut b = a.clone();
        assert_eq!(Identity::of(&a, false), Identity::of(&b, false));
        assert!(
            Identity::of(&a, false)
                .key()
                .starts_with("p|whatsapp.conversation.created|")
        );
        b.payload_json.push(' ');
        assert_ne!(Identity::of(&a, false), Identity::of(&b, false));
    }
}
