//! How a new event changes the message it is about: a received message
//! creates its row (or completes one a status created first); a status moves
//! the message forward, never back, and records each status it reports in the
//! history, keeping each one's earliest time. A status about a message the
//! store does not know by its wamid may settle a recent send still waiting for
//! its wamid (its response pending or lost: an `OutcomeUnknown` send).

use crate::model::{ConversationId, Direction, EncodedContent, MetaError, NewEvent, Wamid};
use crate::status::MessageStatus;

/// How long after its request an unsettled send can still be matched by a
/// status webhook, in seconds.
const SETTLE_WINDOW_SECS: i64 = 15 * 60;

/// What storing a new event changes in its message's row and history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MessageChange<'a> {
    /// The message: the row with this wamid, else the send [`Self::settles`]
    /// finds, else a new row ([`Self::created`]).
    pub(crate) wamid: &'a Wamid,
    /// What the event tells of the message. A new row starts from it; a stored
    /// row has its blanks filled in from it, never a value overwritten.
    pub(crate) fields: MessageFields<'a>,
    /// The status the message moves toward; see [`Self::status_from`].
    pub(crate) toward: Option<MessageStatus>,
    /// The errors of the failure that moved the message, replacing those
    /// stored; `None` keeps them.
    pub(crate) errors: Option<&'a [MetaError]>,
    /// The statuses recorded in the history, each once at its earliest time.
    pub(crate) history: Vec<HistoryEntry>,
    /// The row of a message first known from this event.
    pub(crate) created: NewMessage,
    /// Which send without a wamid yet may be the message, when no row holds it.
    pub(crate) settles: Option<PendingSend<'a>>,
    /// When the change is applied (Unix seconds): the row's `updated_at`.
    pub(crate) now: i64,
}

/// What an event tells of its message, each possibly blank or absent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MessageFields<'a> {
    pub(crate) conversation_id: Option<&'a ConversationId>,
    pub(crate) phone_number_id: &'a str,
    pub(crate) contact_phone: &'a str,
    pub(crate) message_type: &'a str,
    pub(crate) text: &'a str,
    pub(crate) reply_to: Option<&'a Wamid>,
    pub(crate) content: Option<&'a EncodedContent>,
}

/// A status the history records for the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HistoryEntry {
    pub(crate) status: MessageStatus,
    /// When the message reached it, Unix seconds.
    pub(crate) at: i64,
}

/// A message row created from an event, beside its [`MessageFields`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NewMessage {
    pub(crate) direction: Direction,
    pub(crate) status: MessageStatus,
    /// The message's time, Unix seconds.
    pub(crate) timestamp: i64,
}

/// The sends a status may settle: outbound, without a wamid, still
/// [waiting](Self::WAITING), claimed since `claimed_since`, from this number to this
/// contact, with this text when the event gives one. Of those, oldest first,
/// [`Self::pick`] says which the event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PendingSend<'a> {
    pub(crate) phone_number_id: &'a str,
    pub(crate) contact_phone: &'a str,
    /// Empty: any text.
    pub(crate) text: &'a str,
    /// Unix seconds.
    pub(crate) claimed_since: i64,
}

impl<'a> MessageChange<'a> {
    /// How `event`, stored at `now` and about a message at `at` (both Unix
    /// seconds), changes its message; `None` when it changes none.
    pub(crate) fn of(event: &'a NewEvent, at: i64, now: i64) -> Option<MessageChange<'a>> {
        let wamid = event.message_id.as_ref()?;
        let fields = MessageFields {
            conversation_id: event.conversation_id.as_ref(),
            phone_number_id: &event.phone_number_id,
            contact_phone: &event.contact_phone,
            message_type: &event.message_type,
            text: &event.text,
            reply_to: event.reply_to_message_id.as_ref(),
            content: event.content.as_ref(),
        };
        let change = if event.is_inbound_message() {
            MessageChange {
                wamid,
                fields,
                toward: None,
                errors: None,
                history: vec![HistoryEntry {
                    status: MessageStatus::Received,
                    at,
                }],
                created: NewMessage {
                    direction: Direction::Inbound,
                    status: MessageStatus::Received,
                    timestamp: at,
                },
                settles: None,
                now,
            }
        } else if moves_a_status(event) {
            let reported = reported_statuses(event, at);
            let toward = strongest(&reported);
            let (direction, base) = first_known(event);
            MessageChange {
                wamid,
                fields,
                toward,
                errors: failure_errors(&reported),
                history: reported.iter().map(|r| r.entry).collect(),
                created: NewMessage {
                    direction,
                    status: toward.map_or(base, |toward| base.advance(toward)),
                    timestamp: at,
                },
                settles: may_settle_a_send(event).then_some(PendingSend {
                    phone_number_id: &event.phone_number_id,
                    contact_phone: &event.contact_phone,
                    text: &event.text,
                    claimed_since: now - SETTLE_WINDOW_SECS,
                }),
                now,
            }
        } else {
            return None;
        };
        Some(change)
    }

    /// The status a stored message holding `current` ends at: never
    /// backwards, whatever order the statuses came in.
    pub(crate) fn status_from(&self, current: MessageStatus) -> MessageStatus {
        self.toward
            .map_or(current, |toward| current.advance(toward))
    }

    /// The statuses a stored message may hold for this change to move it
    /// (to [`Self::toward`]); it leaves any other as it is. For a store that
    /// applies the change without reading the message first.
    pub(crate) fn moves_from(&self) -> Vec<MessageStatus> {
        MessageStatus::ALL
            .into_iter()
            .filter(|&current| self.status_from(current) != current)
            .collect()
    }
}

impl PendingSend<'_> {
    /// The statuses of a send still waiting to be settled.
    pub(crate) const WAITING: [MessageStatus; 2] =
        [MessageStatus::Accepted, MessageStatus::OutcomeUnknown];

    /// Candidates a store need fetch, oldest first, for [`Self::pick`].
    pub(crate) const CANDIDATES: usize = 2;

    /// Whether only a sole candidate may be picked: without text to compare,
    /// only an unambiguous match is safe to settle.
    pub(crate) fn sole_only(&self) -> bool {
        self.text.is_empty()
    }

    /// The send the event is about, of up to [`Self::CANDIDATES`] oldest first.
    pub(crate) fn pick<T: Copy>(&self, oldest_first: &[T]) -> Option<T> {
        match oldest_first {
            [only] => Some(*only),
            [oldest, ..] if !self.sole_only() => Some(*oldest),
            _ => None,
        }
    }
}

/// Whether `event` moves a message's status (a status, or an outbound message
/// event); other kinds that name a message are only logged (a new kind of
/// message event Kapso added, say).
fn moves_a_status(event: &NewEvent) -> bool {
    event.message_id.is_some()
        && (event.reported_status().is_some()
            || !event.statuses.is_empty()
            || event.direction == Direction::Outbound)
}

/// Whether a send with no wamid yet may be the message `event` is about: only
/// what the business sent, to a known recipient.
fn may_settle_a_send(event: &NewEvent) -> bool {
    event.direction != Direction::Inbound
        && !event.phone_number_id.is_empty()
        && !event.contact_phone.is_empty()
}

/// One status a status event reports, with the errors it carried.
struct Reported<'a> {
    entry: HistoryEntry,
    errors: &'a [MetaError],
}

/// The statuses `event` reports: its status history (Kapso's `statuses`),
/// then the status of its type when the history lacks it. `at` stands in for
/// a time the event does not give.
fn reported_statuses(event: &NewEvent, at: i64) -> Vec<Reported<'_>> {
    let mut reported: Vec<_> = event
        .statuses
        .iter()
        .map(|s| Reported {
            entry: HistoryEntry {
                status: s.status,
                at: if s.timestamp > 0 { s.timestamp } else { at },
            },
            errors: &s.errors,
        })
        .collect();
    if let Some(status) = event.reported_status()
        && !event.statuses.iter().any(|s| s.status == status)
    {
        reported.push(Reported {
            entry: HistoryEntry { status, at },
            errors: &[],
        });
    }
    reported
}

/// The status `reported` moves any message toward: the first of the highest
/// rank, so that `from.advance(it)` is where applying them one by one ends,
/// whatever `from` is.
fn strongest(reported: &[Reported<'_>]) -> Option<MessageStatus> {
    reported
        .iter()
        .map(|r| r.entry.status)
        .reduce(MessageStatus::advance)
}

/// The errors of the last failure reported that carried any.
fn failure_errors<'a>(reported: &[Reported<'a>]) -> Option<&'a [MetaError]> {
    reported
        .iter()
        .rev()
        .find(|r| r.entry.status == MessageStatus::Failed && !r.errors.is_empty())
        .map(|r| r.errors)
}

/// A message first known from a status event about it: its direction (an
/// unknown one is outbound: statuses are reported for what the business sent)
/// and the status it starts from, before the event's statuses.
fn first_known(event: &NewEvent) -> (Direction, MessageStatus) {
    let direction = match event.direction {
        Direction::Unknown => Direction::Outbound,
        known => known,
    };
    let base = match direction {
        Direction::Inbound => MessageStatus::Received,
        _ => MessageStatus::Accepted,
    };
    (direction, base)
}

#[cfg(test)]
#[path = "message/tests.rs"]
mod tests;
