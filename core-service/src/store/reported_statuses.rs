//! What a status event says of its message, the same for both backends: each
//! status it reports with its time and errors, and how far they move a message
//! from the status it holds.

use crate::model::{Direction, MetaError, NewEvent};
use crate::status::MessageStatus;

/// How long after its request an unsettled send can still be matched by a
/// status webhook, in seconds.
pub(crate) const SETTLE_WINDOW_SECS: i64 = 15 * 60;

/// Whether `event` moves a message's status (a status, or an outbound message
/// event); other kinds that name a message are only logged (a new kind of
/// message event Kapso added, say).
pub(crate) fn moves_a_status(event: &NewEvent) -> bool {
    !event.message_id.is_empty()
        && (event.reported_status().is_some()
            || !event.statuses.is_empty()
            || event.direction == Direction::Outbound)
}

/// Whether a send with no wamid yet (its response pending or lost) may be the
/// message `event` is about: only what the business sent, to a known recipient.
/// This is how an `OutcomeUnknown` send is settled by a later webhook.
pub(crate) fn may_settle_a_send(event: &NewEvent) -> bool {
    event.direction != Direction::Inbound
        && !event.phone_number_id.is_empty()
        && !event.contact_phone.is_empty()
}

/// One status a status event reports; the history records each. Unlike the
/// event's own [`StatusUpdate`](crate::model::StatusUpdate)s, its time is
/// always set, and the status of the event's type is one of them.
pub(crate) struct ReportedStatus<'a> {
    pub status: MessageStatus,
    /// When the message reached it, unix seconds.
    pub at: i64,
    pub errors: &'a [MetaError],
}

/// The statuses `event` reports: its status history (Kapso's `statuses`),
/// then the status of its type when the history lacks it. `at` stands in for
/// a time the event does not give.
pub(crate) fn reported_statuses(event: &NewEvent, at: i64) -> Vec<ReportedStatus<'_>> {
    let mut updates: Vec<_> = event
        .statuses
        .iter()
        .map(|s| ReportedStatus {
            status: s.status,
            at: if s.timestamp > 0 { s.timestamp } else { at },
            errors: &s.errors,
        })
        .collect();
    if let Some(reported) = event.reported_status()
        && !event.statuses.iter().any(|s| s.status == reported)
    {
        updates.push(ReportedStatus {
            status: reported,
            at,
            errors: &[],
        });
    }
    updates
}

/// The status a message holding `from` moves to, never backwards, and the
/// errors of the failure that moved it there, if one carried any.
pub(crate) fn advance<'a>(
    from: MessageStatus,
    updates: &[ReportedStatus<'a>],
) -> (MessageStatus, &'a [MetaError]) {
    let status = strongest(updates).map_or(from, |toward| from.advance(toward));
    (status, failure_errors(updates))
}

/// The status `updates` move any message toward: the first of the highest
/// rank, so that `from.advance(it)` is where applying them one by one ends,
/// whatever `from` is. A store can therefore apply them without reading the
/// message first.
pub(crate) fn strongest(updates: &[ReportedStatus<'_>]) -> Option<MessageStatus> {
    updates
        .iter()
        .map(|u| u.status)
        .reduce(MessageStatus::advance)
}

/// The errors of the last failure in `updates` that carried any.
pub(crate) fn failure_errors<'a>(updates: &[ReportedStatus<'a>]) -> &'a [MetaError] {
    updates
        .iter()
        .rev()
        .find(|u| u.status == MessageStatus::Failed && !u.errors.is_empty())
        .map_or(&[], |u| u.errors)
}

/// A message first known from a status event about it: its direction (an
/// unknown one is outbound: statuses are reported for what the business sent)
/// and the status it starts from, before the event's updates.
pub(crate) fn first_known(event: &NewEvent) -> (Direction, MessageStatus) {
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
mod tests {
    use super::*;
    use crate::status::MessageStatus::*;

    fn reported(statuses: &[MessageStatus]) -> Vec<ReportedStatus<'static>> {
        statuses
            .iter()
            .map(|&status| ReportedStatus {
                status,
                at: 1,
                errors: &[],
            })
            .collect()
    }

    #[test]
    fn advancing_to_the_strongest_is_applying_each_in_turn() {
        for from in MessageStatus::ALL {
            for a in MessageStatus::ALL {
                for b in MessageStatus::ALL {
                    let updates = reported(&[a, b]);
                    let in_turn = from.advance(a).advance(b);
                    assert_eq!(advance(from, &updates).0, in_turn, "{from:?} {a:?} {b:?}");
                }
            }
            assert_eq!(advance(from, &[]).0, from);
        }
    }

    #[test]
    fn the_errors_are_the_last_failure_that_carried_some() {
        let first = [MetaError {
            code: 1,
            ..Default::default()
        }];
        let last = [MetaError {
            code: 2,
            ..Default::default()
        }];
        let updates = [
            ReportedStatus {
                status: Failed,
                at: 1,
                errors: &first,
            },
            ReportedStatus {
                status: Failed,
                at: 2,
                errors: &last,
            },
            ReportedStatus {
                status: Failed,
                at: 3,
                errors: &[],
            },
            ReportedStatus {
                status: Read,
                at: 4,
                errors: &[],
            },
        ];
        assert_eq!(advance(Read, &updates), (Failed, &last[..]));
        assert!(failure_errors(&updates[2..]).is_empty());
    }
}
