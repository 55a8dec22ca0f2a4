//! How a new event changes its message's row: a received message creates it
//! (or completes a row a status created first), a status moves it forward and
//! records its history. Runs inside the delivery's transaction, after the
//! event's identity was claimed (see [`ingest`](super::ingest)).

use rusqlite::{Connection, OptionalExtension, params};

use super::rows;
use crate::model::{Direction, EncodedContent, MetaError, NewEvent};
use crate::status::MessageStatus;
use crate::store::StoreError;
use crate::store::reported_statuses::{
    SETTLE_WINDOW_SECS, advance, first_known, may_settle_a_send, moves_a_status, reported_statuses,
};

/// Whether storing `event` creates or changes a message row.
pub(super) fn touches_message(event: &NewEvent) -> bool {
    event.is_inbound_message() || moves_a_status(event)
}

pub(super) fn record_inbound(
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
                   content = coalesce(content, ?6), \
                   updated_at = ?5 \
                 WHERE id = ?1",
            )?
            .execute(params![
                row,
                event.message_type,
                event.text,
                event.reply_to_message_id,
                now,
                event.content.as_ref().map(EncodedContent::as_bytes)
            ])?;
            fill_in_identity(conn, row, event)?;
            row
        }
        // Seen for the first time (nearly always): a plain insert.
        None => {
            conn.prepare_cached(
                "INSERT INTO messages (wamid, direction, conversation_id, phone_number_id, \
                 contact_phone, type, text, reply_to, status, timestamp, created_at, updated_at, \
                 content) \
                 VALUES (?1, 'inbound', ?2, ?3, ?4, ?5, ?6, ?7, 'received', ?8, ?9, ?9, ?10)",
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
                now,
                event.content.as_ref().map(EncodedContent::as_bytes)
            ])?;
            conn.last_insert_rowid()
        }
    };
    record_history(conn, id, MessageStatus::Received, at)?;
    Ok(id)
}

/// A status (or other outbound) event: move the message forward.
pub(super) fn record_statuses(
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
    pub(super) row: i64,
    status: MessageStatus,
}

pub(super) fn find_by_wamid(
    conn: &Connection,
    wamid: &str,
) -> Result<Option<KnownMessage>, StoreError> {
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
