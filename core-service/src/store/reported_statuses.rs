//! What a status event says of its message, the same for both backends: each
//! status it reports with its time and errors, and how far they move a message
//! from the status it holds.

use crate::model::{Direction, MetaError, NewEvent};
use crate::status::MessageStatus;

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
    let mut status = from;
    let mut errors: &[MetaError] = &[];
    for update in updates {
        status = status.advance(update.status);
        if update.status == MessageStatus::Failed && !update.errors.is_empty() {
            errors = update.errors;
        }
    }
    (status, errors)
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
