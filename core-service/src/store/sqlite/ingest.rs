//! How a delivery changes the store: claim its key, append each event whose
//! identity the log does not hold yet, and apply the new ones to messages and
//! conversations. Runs on the writer thread inside the request's savepoint, so a
//! failing delivery leaves no trace.
//!
//! De-duplication is enforced by unique keys (the delivery key, the log's
//! identities, see [`Identity`]): a delivery is a duplicate when inserting its
//! key changes no row, an event when the log already holds its identity.

use std::collections::BTreeMap;

use rusqlite::{Connection, OptionalExtension, params};

use super::{rows, unix_ms};
use crate::model::{Claim, Delivery, Direction, MetaError, NewEvent, Receipt};
use crate::status::MessageStatus;
use crate::store::StoreError;
use crate::store::reported_statuses::{
    SETTLE_WINDOW_SECS, advance, first_known, may_settle_a_send, moves_a_status, reported_statuses,
};

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

/// Whether storing `event` creates or changes a message row.
fn touches_message(event: &NewEvent) -> bool {
    event.is_inbound_message() || moves_a_status(event)
}

/// What a delivery's new events say of their conversations, written with one
/// upsert per conversation once the events are in: a batch is usually one
/// conversation's messages, and one upsert leaves what one per event would.
#[derive(Default)]
struct SeenConversations<'a>(BTreeMap<&'a str, SeenConversation<'a>>);

struct SeenConversation<'a> {
    phone_number_id: &'a str,
    contact_phone: &'a str,
    last_inbound_at: Option<i64>,
}

impl<'a> SeenConversations<'a> {
    /// Folds `event` in by the upsert's own rules: the first identity that is
    /// not blank wins, the last inbound time only moves forward.
    fn saw(&mut self, event: &'a NewEvent, inbound_at: Option<i64>) {
        let seen = self
            .0
            .entry(&event.conversation_id)
            .or_insert(SeenConversation {
                phone_number_id: "",
                contact_phone: "",
                last_inbound_at: None,
            });
        if seen.phone_number_id.is_empty() {
            seen.phone_number_id = &event.phone_number_id;
        }
        if seen.contact_phone.is_empty() {
            seen.contact_phone = &event.contact_phone;
        }
        seen.last_inbound_at = seen.last_inbound_at.max(inbound_at);
    }

    fn remember(&self, conn: &Connection) -> Result<(), StoreError> {
        for (id, seen) in &self.0 {
            // A new conversation, or one whose identity is still blank: the
            // upsert fills in what is known, never overwriting with a blank.
            let upserted = conn
                .prepare_cached(
                    "INSERT INTO conversations (id, phone_number_id, contact_phone, last_inbound_at) \
                     VALUES (?1, ?2, ?3, ?4) \
                     ON CONFLICT (id) DO UPDATE SET \
                       phone_number_id = CASE WHEN phone_number_id = '' \
                         THEN excluded.phone_number_id ELSE phone_number_id END, \
                       contact_phone = CASE WHEN contact_phone = '' \
                         THEN excluded.contact_phone ELSE contact_phone END, \
                       last_inbound_at = max(coalesce(last_inbound_at, excluded.last_inbound_at), \
                                             coalesce(excluded.last_inbound_at, last_inbound_at)) \
                     WHERE phone_number_id = '' OR contact_phone = ''",
                )?
                .execute(params![
                    id,
                    seen.phone_number_id,
                    seen.contact_phone,
                    seen.last_inbound_at
                ])?;
            // A known conversation (nearly always): only its last inbound time
            // may move, and only forward. It is set alone because SQLite
            // rewrites the entries of every index whose column an UPDATE sets,
            // even to the value they had: setting the identity too dirtied a
            // page of the by-contact index with every received message. A row
            // this would not change is left alone, so its page stays out of
            // the commit (every status of a busy conversation).
            if upserted == 0
                && let Some(at) = seen.last_inbound_at
            {
                conn.prepare_cached(
                    "UPDATE conversations SET last_inbound_at = ?2 \
                     WHERE id = ?1 AND (last_inbound_at IS NULL OR last_inbound_at < ?2)",
                )?
                .execute(params![id, at])?;
            }
        }
        Ok(())
    }
}

fn record_inbound(
    conn: &Connection,
    event: &NewEvent,
    message: Option<KnownMessage>,
    at: i64,
    now: i64,
) -> Result<i64, StoreError> {
    let id = match message {
        // Known already (a status webhook came first): fill in what it lacked.
        Some(KnownMessage { row, .. }) => {
            conn.prepare_cached(
                "UPDATE messages SET \
                   type = CASE WHEN type = '' THEN ?2 ELSE type END, \
                   text = CASE WHEN text = '' THEN ?3 ELSE text END, \
                   reply_to = CASE WHEN reply_to = '' THEN ?4 ELSE reply_to END, \
                   updated_at = ?5 \
                 WHERE id = ?1",
            )?
            .execute(params![
                row,
                event.message_type,
                event.text,
                event.reply_to_message_id,
                now
            ])?;
            fill_in_identity(conn, row, event)?;
            row
        }
        // Seen for the first time (nearly always): a plain insert.
        None => {
            conn.prepare_cached(
                "INSERT INTO messages (wamid, direction, conversation_id, phone_number_id, \
                 contact_phone, type, text, reply_to, status, timestamp, created_at, updated_at) \
                 VALUES (?1, 'inbound', ?2, ?3, ?4, ?5, ?6, ?7, 'received', ?8, ?9, ?9)",
            )?
            .execute(params![
                event.message_id,
                event.conversation_id,
                event.phone_number_id,
                event.contact_phone,
                event.message_type,
                event.text,
                event.reply_to_message_id,
                at,
                now
            ])?;
            conn.last_insert_rowid()
        }
    };
    record_history(conn, id, MessageStatus::Received, at)?;
    Ok(id)
}

/// A status (or other outbound) event: move the message forward.
fn record_statuses(
    conn: &Connection,
    event: &NewEvent,
    message: Option<KnownMessage>,
    at: i64,
    now: i64,
) -> Result<i64, StoreError> {
    let updates = reported_statuses(event, at);
    let known = match message {
        Some(found) => Some(found),
        None => find_unsettled_send(conn, event, now)?,
    };
    let id = match known {
        Some(KnownMessage {
            row: id,
            status: current,
        }) => {
            let (status, errors) = advance(current, &updates);
            update_message(conn, id, event, status, errors, now)?;
            id
        }
        None => {
            let (direction, base) = first_known(event);
            let (status, errors) = advance(base, &updates);
            insert_message(conn, event, direction, status, errors, at, now)?
        }
    };
    for update in &updates {
        record_history(conn, id, update.status, update.at)?;
    }
    Ok(id)
}

/// A stored message as an event about it needs it: its row and its status now.
#[derive(Debug, Clone, Copy)]
pub(super) struct KnownMessage {
    row: i64,
    status: MessageStatus,
}

fn find_by_wamid(conn: &Connection, wamid: &str) -> Result<Option<KnownMessage>, StoreError> {
    let found = conn
        .prepare_cached("SELECT id, status FROM messages WHERE wamid = ?1")?
        .query_row([wamid], known_message)
        .optional()?;
    Ok(found)
}

fn known_message(row: &rusqlite::Row<'_>) -> rusqlite::Result<KnownMessage> {
    Ok(KnownMessage {
        row: row.get(0)?,
        status: rows::status_column(row, 1)?,
    })
}

/// A recent send with no wamid yet (its response is pending or was lost) that the
/// status event describes: same number, same recipient, same text. This is how
/// an `OutcomeUnknown` send is settled by a later webhook.
fn find_unsettled_send(
    conn: &Connection,
    event: &NewEvent,
    now: i64,
) -> Result<Option<KnownMessage>, StoreError> {
    if !may_settle_a_send(event) {
        return Ok(None);
    }
    let mut stmt = conn.prepare_cached(
        "SELECT id, status FROM messages \
         WHERE wamid IS NULL AND phone_number_id = ?1 AND contact_phone = ?2 \
           AND direction = 'outbound' AND status IN ('accepted', 'outcome_unknown') \
           AND created_at >= ?3 AND (?4 = '' OR text = ?4) \
         ORDER BY created_at, id LIMIT 2",
    )?;
    let candidates = stmt
        .query_map(
            params![
                event.phone_number_id,
                event.contact_phone,
                now - SETTLE_WINDOW_SECS,
                event.text
            ],
            known_message,
        )?
        .collect::<Result<Vec<_>, _>>()?;
    // Without text to compare, only an unambiguous match is safe to settle.
    Ok(match candidates.as_slice() {
        [only] => Some(*only),
        [oldest, ..] if !event.text.is_empty() => Some(*oldest),
        _ => None,
    })
}

fn update_message(
    conn: &Connection,
    id: i64,
    event: &NewEvent,
    status: MessageStatus,
    errors: &[MetaError],
    now: i64,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE messages SET status = ?2, errors_json = coalesce(?3, errors_json), \
           type = CASE WHEN type = '' THEN ?4 ELSE type END, \
           text = CASE WHEN text = '' THEN ?5 ELSE text END, \
           updated_at = ?6 \
         WHERE id = ?1",
    )?
    .execute(params![
        id,
        status.as_str(),
        rows::encode_errors(errors)?,
        event.message_type,
        event.text,
        now
    ])?;
    fill_in_identity(conn, id, event)
}

/// Fills in the indexed columns a message row lacks (a row a status created
/// first has no conversation; a send waiting for its response has no wamid).
///
/// A statement of its own, which leaves a complete row alone by its `WHERE`:
/// SQLite rewrites the entries of every index whose column an UPDATE sets, even
/// to the value it had, so folding these into the status update would dirty a
/// page of the wamid and by-conversation indexes on every receipt.
fn fill_in_identity(conn: &Connection, id: i64, event: &NewEvent) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE messages SET wamid = coalesce(wamid, ?2), \
           conversation_id = CASE WHEN conversation_id = '' THEN ?3 ELSE conversation_id END, \
           phone_number_id = CASE WHEN phone_number_id = '' THEN ?4 ELSE phone_number_id END, \
           contact_phone = CASE WHEN contact_phone = '' THEN ?5 ELSE contact_phone END \
         WHERE id = ?1 AND (wamid IS NULL OR conversation_id = '' \
           OR phone_number_id = '' OR contact_phone = '')",
    )?
    .execute(params![
        id,
        event.message_id,
        event.conversation_id,
        event.phone_number_id,
        event.contact_phone
    ])?;
    Ok(())
}

fn insert_message(
    conn: &Connection,
    event: &NewEvent,
    direction: Direction,
    status: MessageStatus,
    errors: &[MetaError],
    at: i64,
    now: i64,
) -> Result<i64, StoreError> {
    conn.prepare_cached(
        "INSERT INTO messages (wamid, direction, conversation_id, phone_number_id, \
         contact_phone, type, text, reply_to, status, errors_json, timestamp, created_at, \
         updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12)",
    )?
    .execute(params![
        event.message_id,
        direction.as_str(),
        event.conversation_id,
        event.phone_number_id,
        event.contact_phone,
        event.message_type,
        event.text,
        event.reply_to_message_id,
        status.as_str(),
        rows::encode_errors(errors)?,
        at,
        now
    ])?;
    Ok(conn.last_insert_rowid())
}

/// Records that message `id` reached `status`, once, keeping the earliest time.
pub(super) fn record_history(
    conn: &Connection,
    id: i64,
    status: MessageStatus,
    at: i64,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO status_history (message_id, status, timestamp) VALUES (?1, ?2, ?3) \
         ON CONFLICT (message_id, status) DO UPDATE SET timestamp = excluded.timestamp \
         WHERE excluded.timestamp < status_history.timestamp",
    )?
    .execute(params![id, status.as_str(), at])?;
    Ok(())
}
