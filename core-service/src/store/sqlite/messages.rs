//! Applies a new event's [`MessageChange`] to its message's row and history:
//! the row with its wamid, else the pending send the change may settle, else a
//! new row. Runs inside the delivery's transaction, after the event's identity
//! was found new (see [`ingest`](super::ingest)). What changes is decided by
//! the change; this only writes it.

use rusqlite::{Connection, OptionalExtension, params};

use super::rows;
use crate::model::{ConversationId, EncodedContent, Wamid};
use crate::status::MessageStatus;
use crate::store::StoreError;
use crate::store::effect::{MessageChange, PendingSend};

/// Applies `change`; `found` is the row holding its wamid, if any. Returns
/// the row of the message it changed.
pub(super) fn apply(
    conn: &Connection,
    change: &MessageChange<'_>,
    found: Option<KnownMessage>,
) -> Result<i64, StoreError> {
    let known = match (found, &change.settles) {
        (Some(found), _) => Some(found),
        (None, Some(pending)) => find_pending_send(conn, pending)?,
        (None, None) => None,
    };
    let row = match known {
        Some(KnownMessage { row, status }) => {
            update_message(conn, row, change, change.status_from(status))?;
            row
        }
        None => insert_message(conn, change)?,
    };
    for entry in &change.history {
        record_history(conn, row, entry.status, entry.at)?;
    }
    Ok(row)
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

/// The send `pending` describes, picked as it says among the oldest.
fn find_pending_send(
    conn: &Connection,
    pending: &PendingSend<'_>,
) -> Result<Option<KnownMessage>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, status FROM messages \
         WHERE wamid IS NULL AND phone_number_id = ?1 AND contact_phone = ?2 \
           AND direction = 'outbound' AND status IN (?6, ?7) \
           AND created_at >= ?3 AND (?4 = '' OR text = ?4) \
         ORDER BY created_at, id LIMIT ?5",
    )?;
    let candidates = stmt
        .query_map(
            params![
                pending.phone_number_id,
                pending.contact_phone,
                pending.claimed_since,
                pending.text,
                PendingSend::CANDIDATES,
                PendingSend::WAITING[0].as_str(),
                PendingSend::WAITING[1].as_str()
            ],
            known_message,
        )?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(pending.pick(&candidates))
}

fn update_message(
    conn: &Connection,
    id: i64,
    change: &MessageChange<'_>,
    status: MessageStatus,
) -> Result<(), StoreError> {
    let fields = &change.fields;
    conn.prepare_cached(
        "UPDATE messages SET status = ?2, errors_json = coalesce(?3, errors_json), \
           type = CASE WHEN type = '' THEN ?4 ELSE type END, \
           text = CASE WHEN text = '' THEN ?5 ELSE text END, \
           reply_to = CASE WHEN reply_to = '' THEN ?6 ELSE reply_to END, \
           content = coalesce(content, ?7), \
           updated_at = ?8 \
         WHERE id = ?1",
    )?
    .execute(params![
        id,
        status.as_str(),
        change
            .errors
            .map(rows::encode_errors)
            .transpose()?
            .flatten(),
        fields.message_type,
        fields.text,
        fields.reply_to.map_or("", Wamid::as_str),
        fields.content.map(EncodedContent::as_bytes),
        change.now
    ])?;
    fill_in_identity(conn, id, change)
}

/// Fills in the indexed columns a message row lacks (a row a status created
/// first has no conversation; a send waiting for its response has no wamid).
///
/// A statement of its own, which leaves a complete row alone by its `WHERE`:
/// SQLite rewrites the entries of every index whose column an UPDATE sets, even
/// to the value it had, so folding these into the status update would dirty a
/// page of the wamid and by-conversation indexes on every receipt.
fn fill_in_identity(
    conn: &Connection,
    id: i64,
    change: &MessageChange<'_>,
) -> Result<(), StoreError> {
    let fields = &change.fields;
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
        change.wamid.as_str(),
        fields.conversation_id.map_or("", ConversationId::as_str),
        fields.phone_number_id,
        fields.contact_phone
    ])?;
    Ok(())
}

fn insert_message(conn: &Connection, change: &MessageChange<'_>) -> Result<i64, StoreError> {
    let (fields, created) = (&change.fields, &change.created);
    conn.prepare_cached(
        "INSERT INTO messages (wamid, direction, conversation_id, phone_number_id, \
         contact_phone, type, text, reply_to, status, errors_json, timestamp, created_at, \
         updated_at, content) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12, ?13)",
    )?
    .execute(params![
        change.wamid.as_str(),
        created.direction.as_str(),
        fields.conversation_id.map_or("", ConversationId::as_str),
        fields.phone_number_id,
        fields.contact_phone,
        fields.message_type,
        fields.text,
        fields.reply_to.map_or("", Wamid::as_str),
        created.status.as_str(),
        change
            .errors
            .map(rows::encode_errors)
            .transpose()?
            .flatten(),
        created.timestamp,
        change.now,
        fields.content.map(EncodedContent::as_bytes)
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
