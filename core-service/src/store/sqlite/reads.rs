//! The read side: a small pool of read-only connections used from
//! `spawn_blocking`, so queries never block the async runtime, and the queries
//! that are not shared with the write path.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};

use super::migrate;
use super::rows::{self, event_columns, message_columns};
use crate::model::{Conversation, ConversationId, EventFilter, MessagePage, StoredEvent};
use crate::store::StoreError;
use crate::store::message_pages::{Cursor, PageQuery};

/// Idle connections kept open; more are opened under load and closed after.
const IDLE_READERS: usize = 4;

/// Read-only connections, opened on demand and reused.
#[derive(Debug)]
pub(super) struct ReadPool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl ReadPool {
    pub(super) fn new(path: PathBuf) -> ReadPool {
        ReadPool {
            path,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Runs `work` on a blocking thread, in one read transaction (one consistent snapshot).
    pub(super) async fn run<T, F>(self: &Arc<Self>, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let pool = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let conn = pool.take()?;
            let result = conn
                .unchecked_transaction()
                .map_err(StoreError::from)
                .and_then(|tx| work(&tx));
            pool.put(conn);
            result
        })
        .await
        .map_err(|e| StoreError::Internal(format!("read task failed: {e}")))?
    }

    fn take(&self) -> Result<Connection, StoreError> {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        match idle {
            Some(conn) => Ok(conn),
            None => migrate::open_reader(&self.path),
        }
    }

    fn put(&self, conn: Connection) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < IDLE_READERS {
            idle.push(conn);
        }
    }
}

/// One page of a conversation, oldest first, by (timestamp, id) keyset.
pub(super) fn conversation_messages(
    conn: &Connection,
    conversation_id: &str,
    page_size: usize,
    after: Option<Cursor>,
) -> Result<MessagePage, StoreError> {
    let page = PageQuery::new(page_size, after);
    let mut stmt = conn.prepare_cached(concat!(
        "SELECT ",
        message_columns!(),
        " FROM messages WHERE conversation_id = ?1 AND (timestamp, id) > (?2, ?3)",
        " ORDER BY timestamp, id LIMIT ?4"
    ))?;
    let after = page.after;
    let mut found = stmt
        .query_map(
            params![conversation_id, after.timestamp, after.id, page.limit()],
            rows::message_from_row,
        )?
        .collect::<Result<Vec<_>, _>>()?;
    let next_cursor = page.cut(&mut found);
    let mut messages = Vec::with_capacity(found.len());
    for (id, mut message) in found {
        message.status_history = rows::status_history(conn, id)?;
        messages.push(message);
    }
    Ok(MessagePage {
        messages,
        next_cursor,
    })
}

/// Log entries after `after` and up to `durable` matching `filter`, in
/// sequence order; filters run in SQL. A conversation filter has no index of
/// its own: the log is read in order and other conversations' events skipped,
/// which costs a filtered replay from the start a read of the whole log
/// (docs/design/write-path.md#conversation-filter).
pub(super) fn events_after(
    conn: &Connection,
    after: u64,
    durable: u64,
    filter: &EventFilter,
    limit: usize,
) -> Result<Vec<StoredEvent>, StoreError> {
    let mut sql = String::from(concat!(
        "SELECT ",
        event_columns!(),
        " FROM events WHERE sequence > ? AND sequence <= ?"
    ));
    let mut args = vec![
        Value::Integer(i64::try_from(after).unwrap_or(i64::MAX)),
        Value::Integer(i64::try_from(durable).unwrap_or(i64::MAX)),
    ];
    if !filter.event_types.is_empty() {
        sql.push_str(" AND event_type IN (");
        for (i, event_type) in filter.event_types.iter().enumerate() {
            sql.push_str(if i == 0 { "?" } else { ", ?" });
            args.push(Value::Text(event_type.as_str().to_owned()));
        }
        sql.push(')');
    }
    if !filter.conversation_id.is_empty() {
        sql.push_str(" AND conversation_id = ?");
        args.push(Value::Text(filter.conversation_id.clone()));
    }
    if !filter.phone_number_id.is_empty() {
        sql.push_str(" AND phone_number_id = ?");
        args.push(Value::Text(filter.phone_number_id.clone()));
    }
    sql.push_str(" ORDER BY sequence LIMIT ?");
    args.push(Value::Integer(i64::try_from(limit).unwrap_or(i64::MAX)));
    // Cached per distinct filter shape: a handful per consumer kind.
    let mut stmt = conn.prepare_cached(&sql)?;
    let events = stmt
        .query_map(params_from_iter(args), rows::event_from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    // Same snapshot as the query: exactly the prunes that query could miss.
    let pruned_through: i64 = conn
        .prepare_cached("SELECT pruned_through FROM log_horizon")?
        .query_row([], |r| r.get(0))?;
    let pruned_through = u64::try_from(pruned_through).unwrap_or(0);
    if crate::store::pruned_after(after, pruned_through) {
        let oldest: Option<i64> = conn
            .prepare_cached("SELECT min(sequence) FROM events")?
            .query_row([], |r| r.get(0))?;
        let oldest = oldest.map(|o| u64::try_from(o).unwrap_or(0));
        return Err(crate::store::pruned_past(after, pruned_through, oldest));
    }
    Ok(events)
}

pub(super) fn conversation(
    conn: &Connection,
    id: &str,
) -> Result<Option<Conversation>, StoreError> {
    let conversation = conn
        .prepare_cached(
            "SELECT id, phone_number_id, contact_phone, last_inbound_at \
             FROM conversations WHERE id = ?1",
        )?
        .query_row([id], conversation_from_row)
        .optional()?;
    Ok(conversation.flatten())
}

pub(super) fn contact_conversations(
    conn: &Connection,
    contact: &str,
    phone_number_id: Option<&str>,
    limit: usize,
) -> Result<Vec<Conversation>, StoreError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let found = conn
        .prepare_cached(
            "SELECT id, phone_number_id, contact_phone, last_inbound_at \
             FROM conversations \
             WHERE contact_phone = ?1 AND (?2 IS NULL OR phone_number_id = ?2) \
             ORDER BY id LIMIT ?3",
        )?
        .query_map(
            params![contact, phone_number_id, limit],
            conversation_from_row,
        )?
        .filter_map(Result::transpose)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(found)
}

/// A conversation row (`id, phone_number_id, contact_phone, last_inbound_at`);
/// `None` for a blank id, which no conversation is written under.
fn conversation_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Option<Conversation>> {
    let Some(id) = ConversationId::from_stored(r.get(0)?) else {
        return Ok(None);
    };
    Ok(Some(Conversation {
        id,
        phone_number_id: r.get(1)?,
        contact_phone: r.get(2)?,
        last_inbound_at: r.get(3)?,
    }))
}

pub(super) fn last_inbound_at(
    conn: &Connection,
    phone_number_id: &str,
    contact: &str,
) -> Result<Option<i64>, StoreError> {
    // A contact can have several conversations with one number over time.
    let at = conn
        .prepare_cached(
            "SELECT max(last_inbound_at) FROM conversations \
             WHERE phone_number_id = ?1 AND contact_phone = ?2",
        )?
        .query_row([phone_number_id, contact], |r| r.get(0))?;
    Ok(at)
}
