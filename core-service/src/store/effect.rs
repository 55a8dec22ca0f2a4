//! What storing one new event changes, worked out once, in pure code, for both
//! backends: the rules of the business live here, and a store only applies the
//! description it is given (SQLite statement by statement, PostgreSQL in one
//! pipelined statement per event). Nothing here touches a database, so the
//! rules are tested on their own.
//!
//! - [`identity`]: how the log recognises the event when it comes again
//! - [`message`]: how the event changes the message it is about
//! - [`conversation`]: what the event says of its conversation
//!
//! An effect is worked out from the event alone. What depends on the stored
//! message (the status it holds now) is a method of the description
//! ([`MessageChange::status_from`]), so that a store may apply it without
//! reading the message first.

mod conversation;
mod identity;
mod message;

pub(crate) use conversation::{ConversationChange, Conversations};
pub(crate) use identity::Identity;
pub(crate) use message::{MessageChange, PendingSend};

use crate::model::NewEvent;

/// Everything storing a new event changes besides appending it to the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Effect<'a> {
    /// How the log recognises the event when it comes again.
    pub(crate) identity: Identity<'a>,
    /// The message the event creates or changes; `None` for an event only
    /// logged (no message id, or a kind of message event that moves nothing).
    pub(crate) message: Option<MessageChange<'a>>,
    /// What the event says of its conversation; `None` when it names none.
    pub(crate) conversation: Option<ConversationChange<'a>>,
}

impl<'a> Effect<'a> {
    /// The effect of `event`, new to the log, stored at `now` (Unix seconds).
    pub(crate) fn of(event: &'a NewEvent, now: i64) -> Effect<'a> {
        let at = event.time_or(now);
        let message = MessageChange::of(event, at, now);
        Effect {
            identity: Identity::of(event, message.is_some()),
            conversation: ConversationChange::of(event, at),
            message,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::identity::EventKind;
    use super::message::HistoryEntry;
    use super::*;
    use crate::model::{ConversationId, Direction, EventType, Wamid};
    use crate::status::MessageStatus;

    fn received() -> NewEvent {
        NewEvent {
            event_type: EventType::MessageReceived,
            message_id: Wamid::parse("wamid.1"),
            conversation_id: ConversationId::parse("conv-1"),
            phone_number_id: "111".into(),
            contact_phone: "15550001111".into(),
            direction: Direction::Inbound,
            timestamp: 1_700_000_000,
            ..NewEvent::default()
        }
    }

    #[test]
    fn a_received_message_is_recorded_with_its_conversation() {
        let event = received();
        let effect = Effect::of(&event, 1_800_000_000);
        assert_eq!(
            effect.identity,
            Identity::OfMessage {
                wamid: &Wamid::parse("wamid.1").unwrap(),
                kind: EventKind::Type(&EventType::MessageReceived),
            }
        );
        let message = effect.message.expect("a message change");
        assert_eq!(message.toward, None);
        assert_eq!(
            message.history,
            [HistoryEntry {
                status: MessageStatus::Received,
                at: 1_700_000_000
            }]
        );
        assert_eq!(
            effect.conversation.expect("a conversation").last_inbound_at,
            Some(1_700_000_000)
        );
    }

    #[test]
    fn an_event_without_a_message_is_only_logged() {
        let event = NewEvent {
            event_type: EventType::ConversationCreated,
            conversation_id: ConversationId::parse("conv-1"),
            payload_json: "{}".into(),
            ..NewEvent::default()
        };
        let effect = Effect::of(&event, 1);
        assert!(effect.message.is_none());
        assert!(matches!(effect.identity, Identity::Payload { .. }));
        assert_eq!(
            effect.conversation.expect("conversation").last_inbound_at,
            None
        );
    }

    #[test]
    fn a_message_event_that_moves_nothing_is_known_by_its_type() {
        let event = NewEvent {
            event_type: EventType::parse("whatsapp.message.deleted"),
            message_id: Wamid::parse("wamid.1"),
            // Neither received (its direction unknown) nor a status.
            direction: Direction::Unknown,
            ..NewEvent::default()
        };
        let effect = Effect::of(&event, 1);
        assert!(effect.message.is_none());
        assert_eq!(
            effect.identity,
            Identity::Named {
                event_type: &EventType::parse("whatsapp.message.deleted"),
                wamid: &Wamid::parse("wamid.1").unwrap()
            }
        );
    }
}
