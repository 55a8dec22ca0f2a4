//! A received message in ONE statement: the delivery's key (when the message is
//! the delivery's first event), the event's identity, its append to the log,
//! its conversation, its message row and that row's `received` entry.
//!
//! Received messages are most of what Kapso delivers, and the writer holds the
//! log lock over every round trip of its commit, so the round trips of a
//! delivery bound the rate of the whole store: a single-event delivery would
//! take four if each step were a statement of its own. Each step here is a
//! data-modifying CTE fed by the `RETURNING` rows of the step before it, so a
//! delivery key or an identity already claimed stops the chain and nothing
//! else changes. The steps write to different tables, so sharing one snapshot
//! (as the CTEs of a statement do) hides nothing from any of them.

use deadpool_postgres::ClientWrapper;
use tokio_postgres::Statement;
use tokio_postgres::types::ToSql;

use super::rows;
use crate::model::{Claim, NewEvent};
use crate::store::StoreError;

/// What storing a received message amounted to.
pub(super) enum Stored {
    /// The delivery key was claimed before: nothing written.
    DuplicateDelivery,
    Event(Claim),
}

/// The statement [`store`] runs, prepared once per connection.
pub(super) async fn prepare(conn: &ClientWrapper) -> Result<Statement, StoreError> {
    Ok(conn.prepare_cached(STORE_RECEIVED).await?)
}

/// Stores `event`, a received message, claiming `delivery_key` first when given;
/// `stmt` is what [`prepare`] gave. `at` is the message's time in Unix seconds.
///
/// The request goes out at the first poll, before anything is awaited: callers
/// pipeline several by polling them in order (see [`ingest`](super::ingest)).
pub(super) async fn store(
    conn: &ClientWrapper,
    stmt: &Statement,
    event: &NewEvent,
    delivery_key: Option<&str>,
    now_ms: i64,
    at: i64,
) -> Result<Stored, StoreError> {
    let key = event.dedup_key();
    let values = rows::LogValues::new(event)?;
    let now_s = now_ms / 1000;
    let mut params: Vec<&(dyn ToSql + Sync)> = vec![&delivery_key, &now_ms, &key];
    params.extend(values.params());
    params.extend([&at as &(dyn ToSql + Sync), &now_s]);
    let row = conn.query_one(stmt, &params).await?;
    if !row.try_get::<_, bool>(0)? {
        return Ok(Stored::DuplicateDelivery);
    }
    let claim = match row.try_get::<_, Option<i64>>(1)? {
        Some(sequence) => Claim::New {
            sequence: u64::try_from(sequence)
                .map_err(|_| StoreError::Internal("negative event sequence".into()))?,
        },
        None => Claim::Duplicate,
    };
    Ok(Stored::Event(claim))
}

/// `$1` delivery key or NULL, `$2` request time (ms), `$3` identity, `$4`..`$15`
/// the log's columns, `$16` the message's time and `$17` the request's (s).
/// Answers whether the delivery key was new (or absent) and the appended
/// sequence, NULL for an event seen before.
///
/// Merging into an existing row (a status webhook may have created it first)
/// fills in only what the row lacks; the conversation's last inbound time only
/// moves forward (GREATEST ignores NULLs) and the history keeps the earliest time.
const STORE_RECEIVED: &str = "\
WITH delivery AS ( \
  INSERT INTO deliveries (key, received_at_ms) \
  SELECT $1::text, $2::bigint WHERE $1::text IS NOT NULL \
  ON CONFLICT DO NOTHING RETURNING 1), \
claimed AS ( \
  INSERT INTO event_keys (key, received_at_ms) \
  SELECT $3::text, $2::bigint WHERE $1::text IS NULL OR EXISTS (SELECT 1 FROM delivery) \
  ON CONFLICT DO NOTHING RETURNING 1), \
appended AS ( \
  INSERT INTO events (received_at_ms, event_type, message_id, conversation_id, \
    phone_number_id, contact_phone, direction, message_type, text, reply_to, \
    timestamp, statuses_json, payload_json) \
  SELECT $2, $4::text, $5::text, $6::text, $7::text, $8::text, $9::text, $10::text, \
    $11::text, $12::text, $13::bigint, $14::text, $15::text FROM claimed \
  RETURNING sequence), \
conversation AS ( \
  INSERT INTO conversations AS c (id, phone_number_id, contact_phone, last_inbound_at) \
  SELECT $6, $7, $8, $16::bigint FROM claimed WHERE $6::text <> '' \
  ON CONFLICT (id) DO UPDATE SET \
    phone_number_id = CASE WHEN c.phone_number_id = '' \
      THEN excluded.phone_number_id ELSE c.phone_number_id END, \
    contact_phone = CASE WHEN c.contact_phone = '' \
      THEN excluded.contact_phone ELSE c.contact_phone END, \
    last_inbound_at = GREATEST(c.last_inbound_at, excluded.last_inbound_at)), \
message AS ( \
  INSERT INTO messages AS m (wamid, direction, conversation_id, phone_number_id, \
    contact_phone, type, text, reply_to, status, timestamp, created_at, updated_at) \
  SELECT $5, 'inbound', $6, $7, $8, $10, $11, $12, 'received', $16, $17::bigint, $17 FROM claimed \
  ON CONFLICT (wamid) DO UPDATE SET \
    conversation_id = CASE WHEN m.conversation_id = '' \
      THEN excluded.conversation_id ELSE m.conversation_id END, \
    phone_number_id = CASE WHEN m.phone_number_id = '' \
      THEN excluded.phone_number_id ELSE m.phone_number_id END, \
    contact_phone = CASE WHEN m.contact_phone = '' \
      THEN excluded.contact_phone ELSE m.contact_phone END, \
    type = CASE WHEN m.type = '' THEN excluded.type ELSE m.type END, \
    text = CASE WHEN m.text = '' THEN excluded.text ELSE m.text END, \
    reply_to = CASE WHEN m.reply_to = '' THEN excluded.reply_to ELSE m.reply_to END, \
    updated_at = excluded.updated_at \
  RETURNING id), \
history AS ( \
  INSERT INTO status_history AS h (message_id, status, timestamp) \
  SELECT id, 'received', $16 FROM message \
  ON CONFLICT (message_id, status) DO UPDATE SET timestamp = excluded.timestamp \
  WHERE excluded.timestamp < h.timestamp) \
SELECT $1::text IS NULL OR EXISTS (SELECT 1 FROM delivery), (SELECT sequence FROM appended)";
