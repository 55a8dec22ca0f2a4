//! A received message in ONE statement: after the claims and the append
//! ([`claim`]), its conversation, its message row and that row's
//! `received` entry.
//!
//! Received messages are most of what Kapso delivers, and the writer holds the
//! log lock over every round trip of its commit, so the round trips of a
//! delivery bound the rate of the whole store: a single-event delivery would
//! take four if each step were a statement of its own.

use deadpool_postgres::ClientWrapper;
use tokio_postgres::Statement;

use super::claim::{self, Stored, claim_and_append};
use crate::model::{EncodedContent, NewEvent};
use crate::store::StoreError;

/// Stores `event`, a received message, claiming `delivery_key` first when
/// given; `stmt` is [`STORE_RECEIVED`] prepared. Goes out at the first poll.
pub(super) async fn store(
    conn: &ClientWrapper,
    stmt: &Statement,
    event: &NewEvent,
    delivery_key: Option<&str>,
    now_ms: i64,
) -> Result<Stored, StoreError> {
    let now = now_ms / 1000;
    let at = event.time_or(now);
    let content = event.content.as_ref().map(EncodedContent::as_bytes);
    claim::run(
        conn,
        stmt,
        event,
        delivery_key,
        now_ms,
        &[&at, &now, &content],
    )
    .await
}

/// `$16` the message's time and `$17` the request's, in seconds; `$18` its content.
///
/// Merging into an existing row (a status webhook may have created it first)
/// fills in only what the row lacks; the conversation's last inbound time only
/// moves forward (GREATEST ignores NULLs) and the history keeps the earliest time.
pub(super) const STORE_RECEIVED: &str = claim_and_append!(
    "conversation AS ( \
      INSERT INTO conversations AS c (id, phone_number_id, contact_phone, last_inbound_at) \
      SELECT $6, $7, $8, $16::bigint FROM claimed WHERE $6::text <> '' \
      ON CONFLICT (id) DO UPDATE SET \
        phone_number_id = CASE WHEN c.phone_number_id = '' \
          THEN excluded.phone_number_id ELSE c.phone_number_id END, \
        contact_phone = CASE WHEN c.contact_phone = '' \
          THEN excluded.contact_phone ELSE c.contact_phone END, \
        last_inbound_at = GREATEST(c.last_inbound_at, excluded.last_inbound_at))",
    "message AS ( \
      INSERT INTO messages AS m (wamid, direction, conversation_id, phone_number_id, \
        contact_phone, type, text, reply_to, status, timestamp, created_at, updated_at, \
        content) \
      SELECT $5, 'inbound', $6, $7, $8, $10, $11, $12, 'received', $16, $17::bigint, $17, \
        $18::bytea \
      FROM claimed \
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
        content = coalesce(m.content, excluded.content), \
        updated_at = excluded.updated_at \
      RETURNING id)",
    "history AS ( \
      INSERT INTO status_history AS h (message_id, status, timestamp) \
      SELECT id, 'received', $16 FROM message \
      ON CONFLICT (message_id, status) DO UPDATE SET timestamp = excluded.timestamp \
      WHERE excluded.timestamp < h.timestamp)",
);
