//! How a delivery changes the store: claim its key, append each event whose
//! identity the log does not hold yet, and apply the new ones to messages
//! ([`messages`](super::messages)) and conversations
//! ([`conversations`](super::conversations)). Runs on the writer thread inside
//! the batch's transaction; a failing delivery rolls the batch back, which then
//! runs again with a savepoint per request, so it leaves no trace.
//!
//! De-duplication is enforced by unique keys (the delivery key, the log's
//! identities, see [`Identity`]): a delivery is a duplicate when inserting its
//! key changes no row, an event when the log already holds its identity.

use rusqlite::{Connection, params};

use super::conversations::SeenConversations;
use super::messages::{
    KnownMessage, find_by_wamid, record_inbound, record_statuses, touches_message,
};
use super::{rows, unix_ms};
use crate::model::{Claim, Delivery, NewEvent, Receipt};
use crate::store::StoreError;

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
    let mut conversations = SeenConversations::default();
    for event in &delivery.events {
        claims.push(claim_event(conn, event, now_ms, &mut conversations)?);
    }
    conversations.remember(conn)?;
    Ok(Receipt::Stored(claims))
}

fn claim_event<'a>(
    conn: &Connection,
    event: &'a NewEvent,
    now_ms: i64,
    conversations: &mut SeenConversations<'a>,
) -> Result<Claim, StoreError> {
    let identity = Identity::of(event);
    // Found once: the identity of a message event and its changes both need it.
    let message = identity.message(conn)?;
    // Looked up first rather than left to ON CONFLICT: a conflicting insert
    // would still use up a sequence number. A unique index backs each lookup,
    // and with one writer nothing can slip in between.
    if identity.is_known(conn, message)? {
        return Ok(Claim::Duplicate);
    }
    let message_row = apply_event(conn, event, message, now_ms / 1000, conversations)?;
    // Both follow `touches_message`: a message event always has its row.
    debug_assert_eq!(
        message_row.is_some(),
        matches!(identity, Identity::OfMessage { .. })
    );
    conn.prepare_cached(
        "INSERT INTO events (received_at_ms, event_type, message_id, conversation_id, \
         phone_number_id, contact_phone, direction, message_type, text, reply_to, timestamp, \
         statuses_json, payload_json, dedup_key, message_row) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
    )?
    .execute(params![
        now_ms,
        event.event_type,
        event.message_id,
        event.conversation_id,
        event.phone_number_id,
        event.contact_phone,
        event.direction.as_str(),
        event.message_type,
        event.text,
        event.reply_to_message_id,
        event.timestamp,
        rows::encode_statuses(&event.statuses)?,
        event.payload_json,
        identity.key(),
        message_row,
    ])?;
    let sequence = u64::try_from(conn.last_insert_rowid())
        .map_err(|_| StoreError::Internal("negative event sequence".into()))?;
    Ok(Claim::New { sequence })
}

/// How the log recognises an event that comes again (the same identity as
/// [`NewEvent::dedup_key`], stored in two forms; migration 0004).
pub(super) enum Identity<'a> {
    /// A received message or a status: its message's row and the kind of event.
    /// Message rows are numbered in arrival order, so this index grows at its
    /// end, where one keyed by the random wamid would take a page per event.
    OfMessage { wamid: &'a str, kind: &'a str },
    /// Any other event: the whole identity.
    Own(String),
}

impl<'a> Identity<'a> {
    pub(super) fn of(event: &'a NewEvent) -> Self {
        if !touches_message(event) {
            return Identity::Own(event.dedup_key());
        }
        let kind = match event.reported_status() {
            Some(status) => status.as_str(),
            None => &event.event_type,
        };
        Identity::OfMessage {
            wamid: &event.message_id,
            kind,
        }
    }

    /// What the log's `dedup_key` column holds for this identity.
    fn key(&self) -> &str {
        match self {
            Identity::OfMessage { kind, .. } => kind,
            Identity::Own(key) => key,
        }
    }

    /// The stored message a message event is about, if there is one yet.
    pub(super) fn message(&self, conn: &Connection) -> Result<Option<KnownMessage>, StoreError> {
        match self {
            Identity::OfMessage { wamid, .. } => find_by_wamid(conn, wamid),
            Identity::Own(_) => Ok(None),
        }
    }

    /// Whether the log holds this identity; `message` is what [`Self::message`] found.
    pub(super) fn is_known(
        &self,
        conn: &Connection,
        message: Option<KnownMessage>,
    ) -> Result<bool, StoreError> {
        let known = match self {
            Identity::OfMessage { kind, .. } => match message {
                // No row yet, so no event about the message either.
                None => false,
                Some(found) => conn
                    .prepare_cached(
                        "SELECT 1 FROM events WHERE message_row = ?1 AND dedup_key = ?2",
                    )?
                    .exists(params![found.row, kind])?,
            },
            Identity::Own(key) => conn
                .prepare_cached(
                    "SELECT 1 FROM events WHERE dedup_key = ?1 AND message_row IS NULL",
                )?
                .exists([key])?,
        };
        Ok(known)
    }
}

/// Applies a new event to messages, and notes what it says of its conversation.
/// Returns the row of the message it changed, `None` when it touches none.
fn apply_event<'a>(
    conn: &Connection,
    event: &'a NewEvent,
    message: Option<KnownMessage>,
    now: i64,
    conversations: &mut SeenConversations<'a>,
) -> Result<Option<i64>, StoreError> {
    let at = event.time_or(now);
    let inbound = event.is_inbound_message();
    if !event.conversation_id.is_empty() {
        conversations.saw(event, inbound.then_some(at));
    }
    if !touches_message(event) {
        // No message id, or another kind of message event (a new type Kapso added): logged only.
        Ok(None)
    } else if inbound {
        record_inbound(conn, event, message, at, now).map(Some)
    } else {
        record_statuses(conn, event, message, at, now).map(Some)
    }
}
