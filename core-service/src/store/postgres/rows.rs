//! Mapping between PostgreSQL rows and domain types, shared by the read and
//! write paths (writes return the message they changed).
//!
//! A message is always read in ONE statement together with its status history
//! (as two aligned arrays), so a reader on a pooled connection outside any
//! transaction still gets one consistent snapshot of it.

use deadpool_postgres::ClientWrapper;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use crate::model::{
    ConversationId, Direction, EncodedContent, EventType, GatewayId, IdempotencyKey, Message,
    MessageLookup, NewEvent, StatusRecord, StoredEvent, Wamid,
};
use crate::status::MessageStatus;
use crate::store::StoreError;
use crate::store::json_columns;
pub(super) use crate::store::json_columns::{encode_errors, encode_statuses, failure_columns};

/// Columns read by [`message_from_row`], in its order; the table is aliased `m`.
macro_rules! message_columns {
    () => {
        "m.id, m.wamid, m.gateway_id, m.idempotency_key, m.direction, m.conversation_id, \
         m.phone_number_id, m.contact_phone, m.type, m.text, m.reply_to, m.status, \
         m.errors_json, m.timestamp, \
         ARRAY(SELECT h.status FROM status_history h WHERE h.message_id = m.id ORDER BY h.status), \
         ARRAY(SELECT h.timestamp FROM status_history h WHERE h.message_id = m.id ORDER BY h.status), \
         m.content, m.not_taken"
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

/// A new event's values for the log's columns from `event_type` to
/// `payload_json`, in [`event_columns!`] order, as statement parameters.
pub(super) struct LogValues<'a> {
    event: &'a NewEvent,
    // The columns the event does not hold as stored.
    event_type: &'a str,
    message_id: &'a str,
    conversation_id: &'a str,
    direction: &'static str,
    reply_to_message_id: &'a str,
    statuses: Option<String>,
}

impl<'a> LogValues<'a> {
    pub(super) fn new(event: &'a NewEvent) -> Result<Self, StoreError> {
        Ok(Self {
            event,
            event_type: event.event_type.as_str(),
            message_id: event.message_id.as_ref().map_or("", Wamid::as_str),
            conversation_id: event
                .conversation_id
                .as_ref()
                .map_or("", ConversationId::as_str),
            direction: event.direction.as_str(),
            reply_to_message_id: event.reply_to_message_id.as_ref().map_or("", Wamid::as_str),
            statuses: encode_statuses(&event.statuses)?,
        })
    }

    pub(super) fn params(&self) -> [&(dyn ToSql + Sync); 12] {
        let event = self.event;
        [
            &self.event_type,
            &self.message_id,
            &self.conversation_id,
            &event.phone_number_id,
            &event.contact_phone,
            &self.direction,
            &event.message_type,
            &event.text,
            &self.reply_to_message_id,
            &event.timestamp,
            &self.statuses,
            &event.payload_json,
        ]
    }
}

/// Highest sequence in the log; 0 when empty.
pub(super) async fn committed_sequence(conn: &ClientWrapper) -> Result<u64, StoreError> {
    let stmt = conn
        .prepare_cached("SELECT coalesce(max(sequence), 0) FROM events")
        .await?;
    let sequence: i64 = conn.query_one(&stmt, &[]).await?.try_get(0)?;
    Ok(u64::try_from(sequence).unwrap_or(0))
}

/// A message row (selected with [`message_columns!`]), its key and its history.
pub(super) fn message_from_row(row: &Row) -> Result<(i64, Message), StoreError> {
    let wamid: Option<String> = row.try_get(1)?;
    let gateway_id: Option<String> = row.try_get(2)?;
    let errors: Option<String> = row.try_get(12)?;
    let statuses: Vec<String> = row.try_get(14)?;
    let times: Vec<i64> = row.try_get(15)?;
    let mut status_history = statuses
        .iter()
        .zip(times)
        .map(|(status, timestamp)| {
            Ok(StatusRecord {
                status: parse_status(status)?,
                timestamp,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    // By rank, then time: the order the statuses were reached, whatever the arrival order.
    status_history.sort_by_key(|h| (h.status.rank(), h.timestamp));
    let message = Message {
        // wamid when known: it is what WhatsApp, Kapso and the webhooks call the message.
        id: wamid
            .clone()
            .or_else(|| gateway_id.clone())
            .unwrap_or_default(),
        direction: Direction::parse(row.try_get(4)?),
        conversation_id: ConversationId::from_stored(row.try_get(5)?),
        phone_number_id: row.try_get(6)?,
        contact_phone: row.try_get(7)?,
        message_type: row.try_get(8)?,
        text: row.try_get(9)?,
        reply_to_message_id: Wamid::from_stored(row.try_get(10)?),
        status: parse_status(row.try_get(11)?)?,
        errors: errors
            .map(|json| json_columns::decode_errors(&json).map_err(StoreError::Internal))
            .transpose()?
            .unwrap_or_default(),
        not_taken: row.try_get(17)?,
        status_history,
        gateway_id: gateway_id.and_then(GatewayId::from_stored),
        idempotency_key: row
            .try_get::<_, Option<String>>(3)?
            .and_then(IdempotencyKey::from_stored),
        timestamp: row.try_get(13)?,
        content: row
            .try_get::<_, Option<Vec<u8>>>(16)?
            .map(EncodedContent::from_bytes),
    };
    Ok((row.try_get(0)?, message))
}

/// The message stored under `id`, with its history.
pub(super) async fn load_message(conn: &ClientWrapper, id: i64) -> Result<Message, StoreError> {
    let stmt = conn
        .prepare_cached(concat!(
            "SELECT ",
            message_columns!(),
            " FROM messages m WHERE m.id = $1"
        ))
        .await?;
    let row = conn.query_one(&stmt, &[&id]).await?;
    message_from_row(&row).map(|(_, message)| message)
}

/// A message by wamid, gateway id or idempotency key, in that order of precedence.
pub(super) async fn find_message(
    conn: &ClientWrapper,
    lookup: &MessageLookup,
) -> Result<Option<Message>, StoreError> {
    // One statement: each condition uses its own unique index (a bitmap OR),
    // and the ORDER BY applies the precedence (`MessageLookup::ORDER`) when
    // two rows match.
    let stmt = conn
        .prepare_cached(concat!(
            "SELECT ",
            message_columns!(),
            " FROM messages m WHERE m.wamid = $1 OR m.gateway_id = $1 OR m.idempotency_key = $1",
            " ORDER BY CASE WHEN m.wamid = $1 THEN 0 WHEN m.gateway_id = $1 THEN 1 ELSE 2 END",
            " LIMIT 1"
        ))
        .await?;
    match conn.query_opt(&stmt, &[&lookup.as_str()]).await? {
        Some(row) => message_from_row(&row).map(|(_, message)| Some(message)),
        None => Ok(None),
    }
}

/// A log entry (selected with [`event_columns!`]).
pub(super) fn event_from_row(row: &Row) -> Result<StoredEvent, StoreError> {
    let statuses: Option<String> = row.try_get(12)?;
    let statuses = match statuses {
        Some(json) => json_columns::decode_statuses(&json).map_err(StoreError::Internal)?,
        None => Vec::new(),
    };
    Ok(StoredEvent {
        sequence: u64::try_from(row.try_get::<_, i64>(0)?).unwrap_or(0),
        received_at_ms: row.try_get(1)?,
        event: NewEvent {
            event_type: EventType::parse(row.try_get(2)?),
            message_id: Wamid::from_stored(row.try_get(3)?),
            conversation_id: ConversationId::from_stored(row.try_get(4)?),
            phone_number_id: row.try_get(5)?,
            contact_phone: row.try_get(6)?,
            direction: Direction::parse(row.try_get(7)?),
            message_type: row.try_get(8)?,
            text: row.try_get(9)?,
            reply_to_message_id: Wamid::from_stored(row.try_get(10)?),
            timestamp: row.try_get(11)?,
            statuses,
            payload_json: row.try_get(13)?,
            content: None,
        },
    })
}

/// A stored status name.
pub(super) fn parse_status(name: &str) -> Result<MessageStatus, StoreError> {
    MessageStatus::parse(name)
        .ok_or_else(|| StoreError::Internal(format!("unknown message status {name:?}")))
}
