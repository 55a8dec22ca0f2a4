//! What a new event says of its conversation: who it is between (the first
//! identity given is kept, never overwritten with a blank) and, for a received
//! message, when the contact last wrote (which only moves forward).

use std::collections::BTreeMap;

use crate::model::{ConversationId, NewEvent};

/// How storing an event changes its conversation's row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ConversationChange<'a> {
    pub(crate) id: &'a ConversationId,
    /// Filled in where the row has it blank.
    pub(crate) phone_number_id: &'a str,
    /// Filled in where the row has it blank.
    pub(crate) contact_phone: &'a str,
    /// When the contact wrote (a received message), Unix seconds; the row
    /// keeps the latest.
    pub(crate) last_inbound_at: Option<i64>,
}

impl<'a> ConversationChange<'a> {
    /// What `event`, about a message at `at`, says of its conversation; `None`
    /// when it names none.
    pub(crate) fn of(event: &'a NewEvent, at: i64) -> Option<ConversationChange<'a>> {
        event.conversation_id.as_ref().map(|id| ConversationChange {
            id,
            phone_number_id: &event.phone_number_id,
            contact_phone: &event.contact_phone,
            last_inbound_at: event.is_inbound_message().then_some(at),
        })
    }

    /// This change followed by `later`, as one change: applying it leaves
    /// what applying both in turn would.
    fn then(self, later: ConversationChange<'a>) -> ConversationChange<'a> {
        let keep = |first: &'a str, then: &'a str| if first.is_empty() { then } else { first };
        ConversationChange {
            id: self.id,
            phone_number_id: keep(self.phone_number_id, later.phone_number_id),
            contact_phone: keep(self.contact_phone, later.contact_phone),
            last_inbound_at: self.last_inbound_at.max(later.last_inbound_at),
        }
    }
}

/// The changes of several events, one per conversation: a delivery is usually
/// one conversation's messages, and one write leaves what one per event would.
#[derive(Debug, Default)]
pub(crate) struct Conversations<'a>(BTreeMap<&'a str, ConversationChange<'a>>);

impl<'a> Conversations<'a> {
    /// Adds the change of an event that comes after those added before.
    pub(crate) fn add(&mut self, change: ConversationChange<'a>) {
        self.0
            .entry(change.id.as_str())
            .and_modify(|earlier| *earlier = earlier.then(change))
            .or_insert(change);
    }

    /// One change per conversation, by id.
    pub(crate) fn changes(&self) -> impl Iterator<Item = &ConversationChange<'a>> {
        self.0.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{EventType, Wamid};

    fn change<'a>(
        id: &'a ConversationId,
        phone: &'a str,
        contact: &'a str,
        at: Option<i64>,
    ) -> ConversationChange<'a> {
        ConversationChange {
            id,
            phone_number_id: phone,
            contact_phone: contact,
            last_inbound_at: at,
        }
    }

    #[test]
    fn the_first_identity_given_is_kept_and_the_last_inbound_only_moves_forward() {
        let (c1, c2) = (
            ConversationId::parse("c1").unwrap(),
            ConversationId::parse("c2").unwrap(),
        );
        let mut seen = Conversations::default();
        seen.add(change(&c1, "", "", Some(5)));
        seen.add(change(&c2, "222", "bob", None));
        seen.add(change(&c1, "111", "", Some(3)));
        seen.add(change(&c1, "999", "alice", None));
        let changes: Vec<_> = seen.changes().copied().collect();
        assert_eq!(
            changes,
            [
                change(&c1, "111", "alice", Some(5)),
                change(&c2, "222", "bob", None)
            ]
        );
    }

    #[test]
    fn only_a_received_message_says_when_the_contact_wrote() {
        let mut event = NewEvent {
            event_type: EventType::MessageRead,
            message_id: Wamid::parse("wamid.1"),
            conversation_id: ConversationId::parse("c1"),
            ..NewEvent::default()
        };
        assert_eq!(
            ConversationChange::of(&event, 7).unwrap().last_inbound_at,
            None
        );
        event.event_type = EventType::MessageReceived;
        assert_eq!(
            ConversationChange::of(&event, 7).unwrap().last_inbound_at,
            Some(7)
        );
        event.conversation_id = None;
        assert!(ConversationChange::of(&event, 7).is_none());
    }
}
