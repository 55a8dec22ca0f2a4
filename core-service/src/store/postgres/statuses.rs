//! Every event other than a received message, in ONE statement: statuses
//! above all (three to each message a business sends), outbound message
//! events, and kinds only logged. After the claims and the append
//! ([`claim`]), the statement remembers the conversation, finds
//! the message the event is about, moves it forward and records its history.
//!
//! Nothing is decided between round trips, so statements sent one after
//! another (pipelined, see [`ingest`](super::ingest)) have the outcome of
//! storing their events in turn: each sees what the ones before it wrote.
//! Applying a status needs no prior read: the strongest status the event
//! reports ([`strongest`]) moves the message only when its rank is higher, so
//! the message ends where applying each status in turn would leave it.

use deadpool_postgres::ClientWrapper;
use tokio_postgres::Statement;
use tokio_postgres::types::ToSql;

use super::claim::{self, Stored, claim_and_append};
use super::rows::encode_errors;
use crate::model::NewEvent;
use crate::status::MessageStatus;
use crate::store::StoreError;
use crate::store::reported_statuses::{
    ReportedStatus, SETTLE_WINDOW_SECS, advance, failure_errors, first_known, may_settle_a_send,
    moves_a_status, reported_statuses, strongest,
};

/// Stores `event`, claiming `delivery_key` first when given; `stmt` is
/// [`STORE_EVENT`] prepared. Goes out at the first poll.
pub(super) async fn store(
    conn: &ClientWrapper,
    stmt: &Statement,
    event: &NewEvent,
    delivery_key: Option<&str>,
    now_ms: i64,
) -> Result<Stored, StoreError> {
    let message = MessageValues::new(event, now_ms / 1000)?;
    claim::run(conn, stmt, event, delivery_key, now_ms, &message.params()).await
}

/// `$16`..`$26`: what the statement's message steps need, worked out from the
/// event alone.
struct MessageValues<'a> {
    /// The wamid of the message whose status the event moves; NULL for an
    /// event that moves none, which then only reaches the log.
    wamid: Option<&'a str>,
    /// Whether an unsettled send may be the message ([`may_settle_a_send`]).
    may_settle: bool,
    strongest: Option<&'static str>,
    errors: Option<String>,
    now: i64,
    settle_after: i64,
    /// A message first known from this event: its direction and status.
    new_direction: &'static str,
    new_status: &'static str,
    at: i64,
    history_statuses: Vec<&'static str>,
    history_times: Vec<i64>,
}

impl<'a> MessageValues<'a> {
    fn new(event: &'a NewEvent, now: i64) -> Result<Self, StoreError> {
        let at = event.time_or(now);
        let updates: Vec<ReportedStatus<'a>> = reported_statuses(event, at);
        let (direction, base) = first_known(event);
        let wamid = moves_a_status(event).then_some(event.message_id.as_str());
        Ok(Self {
            wamid,
            may_settle: wamid.is_some() && may_settle_a_send(event),
            strongest: strongest(&updates).map(MessageStatus::as_str),
            errors: encode_errors(failure_errors(&updates))?,
            now,
            settle_after: now - SETTLE_WINDOW_SECS,
            new_direction: direction.as_str(),
            new_status: advance(base, &updates).0.as_str(),
            at,
            history_statuses: updates.iter().map(|u| u.status.as_str()).collect(),
            history_times: updates.iter().map(|u| u.at).collect(),
        })
    }

    fn params(&self) -> [&(dyn ToSql + Sync); 11] {
        [
            &self.wamid,
            &self.may_settle,
            &self.strongest,
            &self.errors,
            &self.now,
            &self.settle_after,
            &self.new_direction,
            &self.new_status,
            &self.at,
            &self.history_statuses,
            &self.history_times,
        ]
    }
}

/// Parameters after the claim's: `$16` the wamid (NULL: no message moves),
/// `$17` whether an unsettled send may match, `$18` the strongest reported
/// status, `$19` the failure's errors, `$20` the request time (s), `$21` the
/// oldest send time that may still be settled, `$22`..`$24` the direction,
/// status and time of a message first known from this event, `$25`/`$26` the
/// history's statuses and times.
///
/// The message is the one with the wamid, else an unsettled send to the same
/// recipient with the same text (without text to compare, only a sole
/// candidate), else a new row. Its identity is filled in where blank, never
/// overwritten; the history keeps each status's earliest time.
///
/// The update picks its row by `id = (SELECT id FROM target)`: written as a
/// join with that CTE, it was planned as a scan of `messages`.
pub(super) const STORE_EVENT: &str = claim_and_append!(
    "conversation AS ( \
      INSERT INTO conversations AS c (id, phone_number_id, contact_phone) \
      SELECT $6, $7, $8 FROM claimed WHERE $6::text <> '' \
      ON CONFLICT (id) DO UPDATE SET \
        phone_number_id = CASE WHEN c.phone_number_id = '' \
          THEN excluded.phone_number_id ELSE c.phone_number_id END, \
        contact_phone = CASE WHEN c.contact_phone = '' \
          THEN excluded.contact_phone ELSE c.contact_phone END)",
    "named AS ( \
      SELECT id FROM messages WHERE wamid = $16::text AND EXISTS (SELECT 1 FROM claimed))",
    "unsettled AS ( \
      SELECT id, created_at FROM messages \
      WHERE $17::bool AND NOT EXISTS (SELECT 1 FROM named) AND EXISTS (SELECT 1 FROM claimed) \
        AND wamid IS NULL AND phone_number_id = $7 AND contact_phone = $8 \
        AND direction = 'outbound' AND status IN ('accepted', 'outcome_unknown') \
        AND created_at >= $21::bigint AND ($11 = '' OR text = $11) \
      ORDER BY created_at, id LIMIT 2)",
    "target AS ( \
      SELECT id FROM named \
      UNION ALL \
      (SELECT id FROM unsettled \
       WHERE $11 <> '' OR (SELECT count(*) FROM unsettled) = 1 \
       ORDER BY created_at, id LIMIT 1))",
    "moved AS ( \
      UPDATE messages AS m SET \
        status = CASE WHEN kapso_status_rank($18::text) > kapso_status_rank(m.status) \
          THEN $18 ELSE m.status END, \
        errors_json = coalesce($19::text, m.errors_json), \
        wamid = coalesce(m.wamid, $16), \
        conversation_id = CASE WHEN m.conversation_id = '' THEN $6 ELSE m.conversation_id END, \
        phone_number_id = CASE WHEN m.phone_number_id = '' THEN $7 ELSE m.phone_number_id END, \
        contact_phone = CASE WHEN m.contact_phone = '' THEN $8 ELSE m.contact_phone END, \
        type = CASE WHEN m.type = '' THEN $10 ELSE m.type END, \
        text = CASE WHEN m.text = '' THEN $11 ELSE m.text END, \
        updated_at = $20::bigint \
      WHERE m.id = (SELECT id FROM target) \
      RETURNING m.id)",
    "created AS ( \
      INSERT INTO messages (wamid, direction, conversation_id, phone_number_id, contact_phone, \
        type, text, reply_to, status, errors_json, timestamp, created_at, updated_at) \
      SELECT $16, $22::text, $6, $7, $8, $10, $11, $12, $23::text, $19, $24::bigint, $20, $20 \
      FROM claimed WHERE $16 IS NOT NULL AND NOT EXISTS (SELECT 1 FROM target) \
      RETURNING id)",
    "history AS ( \
      INSERT INTO status_history AS h (message_id, status, timestamp) \
      SELECT message.id, reported.status, min(reported.at) \
      FROM (SELECT id FROM moved UNION ALL SELECT id FROM created) AS message, \
        unnest($25::text[], $26::bigint[]) AS reported (status, at) \
      GROUP BY message.id, reported.status \
      ON CONFLICT (message_id, status) DO UPDATE SET timestamp = excluded.timestamp \
      WHERE excluded.timestamp < h.timestamp)",
);
