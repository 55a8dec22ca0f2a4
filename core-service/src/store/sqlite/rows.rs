//! Mapping between rows and domain types, shared by the read and write paths
//! (writes return the message they changed, read on the writer's connection).

use rusqlite::types::Type;
use rusqlite::{Connection, OptionalExtension, Row};

use crate::model::{
    ConversationId, Direction, EncodedContent, EventType, GatewayId, IdempotencyKey, Message,
    MessageKey, MessageLookup, NewEvent, StatusRecord, StoredEvent, Wamid,
};
use crate::status::MessageStatus;
use crate::store::StoreError;
use crate::store::json_columns;
pub(super) use crate::store::json_columns::{encode_errors, encode_statuses, failure_columns};

/// Columns read by [`message_from_row`], in its order.
macro_rules! message_columns {
    () => {
        "id, wamid, gateway_id, idempotency_key, direction, conversation_id, phone_number_id, \
         contact_phone, type, text, reply_to, status, errors_json, timestamp, content, not_taken"
    };
}
pub(super) use message_columns;

/// Columns read by [`event_from_row`], in its order.
macro_rules! event_columns {
    () => {
        "sequence, received_at_ms, event_type, message_id, conversation_id, phone_number_id, \
         contact_phone, direction, message_type, text, reply_to, timestamp, statuses_json, \
         payload_json"
    };
}
pub(super) use event_columns;

/// Highest sequence in the log, or the highest pruned when that is higher; 0 when empty.
pub(super) fn committed_sequence(conn: &Connection) -> Result<u64, StoreError> {
    let sequence: i64 = conn
        // Never below what retention pruned: an empty log still has a head.
        .prepare_cached(
            "SELECT max(coalesce(max(sequence), 0), \
             (SELECT pruned_through FROM log_horizon)) FROM events",
        )?
        .query_row([], |r| r.get(0))?;
    Ok(u64::try_from(sequence).unwrap_or(0))
}

/// A message row (selected with [`message_columns!`]) and its key; history not loaded.
pub(super) fn message_from_row(row: &Row<'_>) -> rusqlite::Result<(i64, Message)> {
    let wamid: Option<String> = row.get(1)?;
    let gateway_id: Option<String> = row.get(2)?;
    let errors: Option<String> = row.get(12)?;
    let message = Message {
        // wamid when known: it is what WhatsApp, Kapso and the webhooks call the message.
        id: wamid
            .clone()
            .or_else(|| gateway_id.clone())
            .unwrap_or_default(),
        direction: Direction::parse(&row.get::<_, String>(4)?),
        conversation_id: ConversationId::from_stored(row.get(5)?),
        phone_number_id: row.get(6)?,
        contact_phone: row.get(7)?,
        message_type: row.get(8)?,
        text: row.get(9)?,
        reply_to_message_id: Wamid::from_stored(row.get(10)?),
        status: status_column(row, 11)?,
        errors: errors
            .map(|json| decode_column(json_columns::decode_errors(&json), 12))
            .transpose()?
            .unwrap_or_default(),
        not_taken: row.get(15)?,
        status_history: Vec::new(),
        gateway_id: gateway_id.and_then(GatewayId::from_stored),
        idempotency_key: row
            .get::<_, Option<String>>(3)?
            .and_then(IdempotencyKey::from_stored),
        timestamp: row.get(13)?,
        content: row
            .get::<_, Option<Vec<u8>>>(14)?
            .map(EncodedContent::from_bytes),
    };
    Ok((row.get(0)?, message))
}

/// Every status the message reached: by rank, then time (the order they were
/// reached, even when webhooks arrived out of order).
pub(super) fn status_history(conn: &Connection, id: i64) -> Result<Vec<StatusRecord>, StoreError> {
    let mut stmt =
        conn.prepare_cached("SELECT status, timestamp FROM status_history WHERE message_id = ?1")?;
    let mut history = stmt
        .query_map([id], |r| {
            Ok(StatusRecord {
                status: status_column(r, 0)?,
                timestamp: r.get(1)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    history.sort_by_key(|h| (h.status.rank(), h.timestamp));
    Ok(history)
}

/// The message stored under `id`, with its history.
pub(super) fn load_message(conn: &Connection, id: i64) -> Result<Message, StoreError> {
    let (_, mut message) = conn
        .prepare_cached(concat!(
            "SELECT ",
            message_columns!(),
            " FROM messages WHERE id = ?1"
        ))?
        .query_row([id], message_from_row)?;
    message.status_history = status_history(conn, id)?;
    Ok(message)
}

/// A message by wamid, gateway id or idempotency key, in that order of precedence.
pub(super) fn find_message(
    conn: &Connection,
    lookup: &MessageLookup,
) -> Result<Option<Message>, StoreError> {
    // One indexed lookup per key rather than one OR: each uses its own unique index.
    for key in MessageLookup::ORDER {
        let sql = match key {
            MessageKey::Wamid => "SELECT id FROM messages WHERE wamid = ?1",
            MessageKey::GatewayId => "SELECT id FROM messages WHERE gateway_id = ?1",
            MessageKey::IdempotencyKey => "SELECT id FROM messages WHERE idempotency_key = ?1",
        };
        let id: Option<i64> = conn
            .prepare_cached(sql)?
            .query_row([lookup.as_str()], |r| r.get(0))
            .optional()?;
        if let Some(id) = id {
            return load_message(conn, id).map(Some);
        }
    }
    Ok(None)
}

/// A log entry (selected with [`event_columns!`]).
pub(super) fn event_from_row(row: &Row<'_>) -> rusqlite::Result<StoredEvent> {
    let statuses: Option<String> = row.get(12)?;
    let statuses = match statuses {
        Some(json) => decode_column(json_columns::decode_statuses(&json), 12)?,
        None => Vec::new(),
    };
    Ok(StoredEvent {
        sequence: u64::try_from(row.get::<_, i64>(0)?).unwrap_or(0),
        received_at_ms: row.get(1)?,
        event: NewEvent {
            event_type: EventType::parse(&row.get::<_, String>(2)?),
            message_id: Wamid::from_stored(row.get(3)?),
            conversation_id: ConversationId::from_stored(row.get(4)?),
            phone_number_id: row.get(5)?,
            contact_phone: row.get(6)?,
            direction: Direction::parse(&row.get::<_, String>(7)?),
            message_type: row.get(8)?,
            text: row.get(9)?,
            reply_to_message_id: Wamid::from_stored(row.get(10)?),
            timestamp: row.get(11)?,
            statuses,
            payload_json: row.get(13)?,
            content: None,
        },
    })
}

/// A JSON column's decoding outcome as rusqlite reports a bad column.
fn decode_column<T>(decoded: Result<T, String>, column: usize) -> rusqlite::Result<T> {
    decoded.map_err(|e| rusqlite::Error::FromSqlConversionFailure(column, Type::Text, e.into()))
}

/// A stored status name.
pub(super) fn status_column(row: &Row<'_>, column: usize) -> rusqlite::Result<MessageStatus> {
    parse_status(&row.get::<_, String>(column)?, column)
}

fn parse_status(name: &str, column: usize) -> rusqlite::Result<MessageStatus> {
    MessageStatus::parse(name).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            column,
            Type::Text,
            format!("unknown message status {name:?}").into(),
        )
    })
}
