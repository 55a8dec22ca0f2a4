//! How a delivery changes the store: claim its key, append each event whose
//! identity the log does not hold yet, and apply the [`Effect`] of the new
//! ones to messages ([`messages`](super::messages)) and conversations
//! ([`conversations`](super::conversations)). Runs on the writer thread inside
//! the batch's transaction; a failing delivery rolls the batch back, which then
//! runs again with a savepoint per request, so it leaves no trace.
//!
//! De-duplication is enforced by unique keys (the delivery key, the log's
//! identities, see [`Identity`]): a delivery is a duplicate when inserting its
//! key changes no row, an event when the log already holds its identity.

use rusqlite::{Connection, params};

use super::conversations;
use super::messages::{self, KnownMessage, find_by_wamid};
use super::{rows, unix_ms};
use crate::model::{Claim, ConversationId, Delivery, NewEvent, Receipt, Wamid};
use crate::store::StoreError;
use crate::store::effect::{Conversations, Effect, Identity};

/// Stores `delivery`; see [`Store::ingest`](crate::store::Store::ingest).
pub(super) fn apply(conn: &Connection, delivery: &Delivery) -> Result<Receipt, StoreError> {
    let now_ms = unix_ms();
    if let Some(key) = &delivery.key {
        let claimed = conn
            .prepare_cached(
                "INSERT INTO deliveries (key, received_at_ms) VALUES (?1, ?2) \
                 ON CONFLICT DO NOTHING",
            )?
            .execute(params![key, now_ms])?;
        if claimed == 0 {
            return Ok(Receipt::DuplicateDelivery);
        }
    }
    let mut claims = Vec::with_capacity(delivery.events.len());
    let mut conversations = Conversations::default();
    for event in &delivery.events {
        claims.push(claim_event(conn, event, now_ms, &mut conversations)?);
    }
    conversations::remember(conn, &conversations)?;
    Ok(Receipt::Stored(claims))
}

fn claim_event<'a>(
    conn: &Connection,
    event: &'a NewEvent,
    now_ms: i64,
    conversations: &mut Conversations<'a>,
) -> Result<Claim, StoreError> {
    let effect = Effect::of(event, now_ms / 1000);
    // Found once: the identity of a message event and its change both need it.
    let message = match effect.identity.message() {
        Some(wamid) => find_by_wamid(conn, wamid.as_str())?,
        None => None,
    };
    // Looked up first rather than left to ON CONFLICT: a conflicting insert
    // would still use up a sequence number. A unique index backs each lookup,
    // and with one writer nothing can slip in between.
    if is_known(conn, &effect.identity, message)? {
        return Ok(Claim::Duplicate);
    }
    let message_row = match &effect.message {
        Some(change) => Some(messages::apply(conn, change, message)?),
        None => None,
    };
    if let Some(conversation) = effect.conversation {
        conversations.add(conversation);
    }
    conn.prepare_cached(
        "INSERT INTO events (received_at_ms, event_type, message_id, conversation_id, \
         phone_number_id, contact_phone, direction, message_type, text, reply_to, timestamp, \
         statuses_json, payload_json, dedup_key, message_row) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
    )?
    .execute(params![
        now_ms,
        event.event_type.as_str(),
        event.message_id.as_ref().map_or("", Wamid::as_str),
        event
            .conversation_id
            .as_ref()
            .map_or("", ConversationId::as_str),
        event.phone_number_id,
        event.contact_phone,
        event.direction.as_str(),
        event.message_type,
        event.text,
        event.reply_to_message_id.as_ref().map_or("", Wamid::as_str),
        event.timestamp,
        rows::encode_statuses(&event.statuses)?,
        event.payload_json,
        effect.identity.key(),
        message_row,
    ])?;
    let sequence = u64::try_from(conn.last_insert_rowid())
        .map_err(|_| StoreError::Internal("negative event sequence".into()))?;
    Ok(Claim::New { sequence })
}

/// Whether the log holds `identity` (migration 0004 stores it in two forms:
/// a message event's kind beside its message's row, any other's whole);
/// `message` is the row holding its wamid, if any.
pub(super) fn is_known(
    conn: &Connection,
    identity: &Identity<'_>,
    message: Option<KnownMessage>,
) -> Result<bool, StoreError> {
    let known = match (identity, message) {
        // No row yet, so no event about the message either.
        (Identity::OfMessage { .. }, None) => false,
        (Identity::OfMessage { kind, .. }, Some(found)) => conn
            .prepare_cached("SELECT 1 FROM events WHERE message_row = ?1 AND dedup_key = ?2")?
            .exists(params![found.row, kind.as_str()])?,
        (own, _) => conn
            .prepare_cached("SELECT 1 FROM events WHERE dedup_key = ?1 AND message_row IS NULL")?
            .exists([own.key()])?,
    };
    Ok(known)
}
