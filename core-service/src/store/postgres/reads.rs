//! The read side: queries on pooled connections, each a single statement (one
//! consistent snapshot without an explicit transaction, one round trip).

use deadpool_postgres::ClientWrapper;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::rows::{self, event_columns, message_columns};
use crate::model::{
    Conversation, ConversationId, EventFilter, EventType, MessagePage, StoredEvent,
};
use crate::store::StoreError;
use crate::store::message_pages::{Cursor, PageQuery};

/// One page of a conversation, oldest first, by (timestamp, id) keyset.
pub(super) async fn conversation_messages(
    conn: &ClientWrapper,
    conversation_id: &str,
    page_size: usize,
    after: Option<Cursor>,
) -> Result<MessagePage, StoreError> {
    let page = PageQuery::new(page_size, after);
    let stmt = conn
        .prepare_cached(concat!(
            "SELECT ",
            message_columns!(),
            " FROM messages m WHERE m.conversation_id = $1 AND (m.timestamp, m.id) > ($2, $3)",
            " ORDER BY m.timestamp, m.id LIMIT $4"
        ))
        .await?;
    let after = page.after;
    let mut found = conn
        .query(
            &stmt,
            &[&conversation_id, &after.timestamp, &after.id, &page.limit()],
        )
        .await?
        .iter()
        .map(rows::message_from_row)
        .collect::<Result<Vec<_>, _>>()?;
    let next_cursor = page.cut(&mut found);
    Ok(MessagePage {
        messages: found.into_iter().map(|(_, m)| m).collect(),
        next_cursor,
    })
}

/// Log entries after `after` matching `filter`, in sequence order; filters run in SQL.
///
/// No gap can open behind the result: appends are serialized by the log lock
/// until commit, so every sequence below a visible one is committed (or was
/// rolled back and never will be).
pub(super) async fn events_after(
    conn: &ClientWrapper,
    after: u64,
    filter: &EventFilter,
    limit: usize,
) -> Result<Vec<StoredEvent>, StoreError> {
    let after = i64::try_from(after).unwrap_or(i64::MAX);
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut sql = String::from(concat!(
        "SELECT ",
        event_columns!(),
        " FROM events WHERE sequence > $1"
    ));
    let event_types: Vec<&str> = filter.event_types.iter().map(EventType::as_str).collect();
    let mut args: Vec<&(dyn ToSql + Sync)> = vec![&after];
    // Only the given filters become clauses, so each shape gets its own plan;
    // shapes are few, each prepared once per connection. A conversation filter
    // has no index: it is applied while reading the log in sequence order.
    if !filter.event_types.is_empty() {
        args.push(&event_types);
        sql.push_str(&format!(" AND event_type = ANY(${})", args.len()));
    }
    if !filter.conversation_id.is_empty() {
        args.push(&filter.conversation_id);
        sql.push_str(&format!(" AND conversation_id = ${}", args.len()));
    }
    if !filter.phone_number_id.is_empty() {
        args.push(&filter.phone_number_id);
        sql.push_str(&format!(" AND phone_number_id = ${}", args.len()));
    }
    args.push(&limit);
    sql.push_str(&format!(" ORDER BY sequence LIMIT ${}", args.len()));
    let stmt = conn.prepare_cached(&sql).await?;
    let horizon = conn
        .prepare_cached("SELECT pruned_through FROM log_horizon")
        .await?;
    // Pipelined, the horizon read after the query: a prune it reports that
    // committed after the query is flagged too (conservative), and one that
    // committed before is never missed.
    let (found, horizon) =
        futures::try_join!(conn.query(&stmt, &args), conn.query_one(&horizon, &[]))?;
    let pruned_through: i64 = horizon.try_get(0)?;
    let pruned_through = u64::try_from(pruned_through).unwrap_or(0);
    let requested = u64::try_from(after).unwrap_or(0);
    if crate::store::pruned_after(requested, pruned_through) {
        let oldest: Option<i64> = conn
            .query_one("SELECT min(sequence) FROM events", &[])
            .await?
            .try_get(0)?;
        let oldest = oldest.map(|o| u64::try_from(o).unwrap_or(0));
        return Err(crate::store::pruned_past(requested, pruned_through, oldest));
    }
    found.iter().map(rows::event_from_row).collect()
}

pub(super) async fn conversation(
    conn: &ClientWrapper,
    id: &str,
) -> Result<Option<Conversation>, StoreError> {
    let stmt = conn
        .prepare_cached(
            "SELECT id, phone_number_id, contact_phone, last_inbound_at \
             FROM conversations WHERE id = $1",
        )
        .await?;
    match conn.query_opt(&stmt, &[&id]).await? {
        Some(row) => conversation_from_row(&row),
        None => Ok(None),
    }
}

pub(super) async fn contact_conversations(
    conn: &ClientWrapper,
    contact: &str,
    phone_number_id: Option<&str>,
    limit: usize,
) -> Result<Vec<Conversation>, StoreError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let stmt = conn
        .prepare_cached(
            "SELECT id, phone_number_id, contact_phone, last_inbound_at \
             FROM conversations \
             WHERE contact_phone = $1 AND ($2::TEXT IS NULL OR phone_number_id = $2) \
             ORDER BY id LIMIT $3",
        )
        .await?;
    conn.query(&stmt, &[&contact, &phone_number_id, &limit])
        .await?
        .iter()
        .filter_map(|row| conversation_from_row(row).transpose())
        .collect()
}

/// A conversation row (`id, phone_number_id, contact_phone, last_inbound_at`);
/// `None` for a blank id, which no conversation is written under.
fn conversation_from_row(row: &Row) -> Result<Option<Conversation>, StoreError> {
    let Some(id) = ConversationId::from_stored(row.try_get(0)?) else {
        return Ok(None);
    };
    Ok(Some(Conversation {
        id,
        phone_number_id: row.try_get(1)?,
        contact_phone: row.try_get(2)?,
        last_inbound_at: row.try_get(3)?,
    }))
}

pub(super) async fn last_inbound_at(
    conn: &ClientWrapper,
    phone_number_id: &str,
    contact: &str,
) -> Result<Option<i64>, StoreError> {
    // A contact can have several conversations with one number over time.
    let stmt = conn
        .prepare_cached(
            "SELECT max(last_inbound_at) FROM conversations \
             WHERE phone_number_id = $1 AND contact_phone = $2",
        )
        .await?;
    Ok(conn
        .query_one(&stmt, &[&phone_number_id, &contact])
        .await?
        .try_get(0)?)
}

/// See [`Store::consumer_position`](crate::store::Store::consumer_position).
pub(super) async fn consumer_position(
    conn: &ClientWrapper,
    consumer: &str,
) -> Result<Option<u64>, StoreError> {
    let stmt = conn
        .prepare_cached("SELECT sequence FROM consumers WHERE name = $1")
        .await?;
    let position: Option<i64> = match conn.query_opt(&stmt, &[&consumer]).await? {
        Some(row) => Some(row.try_get(0)?),
        None => None,
    };
    Ok(position.map(|p| u64::try_from(p).unwrap_or(0)))
}

/// See [`Store::consumer_positions`](crate::store::Store::consumer_positions).
pub(super) async fn consumer_positions(
    conn: &ClientWrapper,
) -> Result<Vec<(String, u64)>, StoreError> {
    let stmt = conn
        .prepare_cached("SELECT name, sequence FROM consumers ORDER BY name")
        .await?;
    conn.query(&stmt, &[])
        .await?
        .iter()
        .map(|row| {
            let sequence: i64 = row.try_get(1)?;
            Ok((row.try_get(0)?, u64::try_from(sequence).unwrap_or(0)))
        })
        .collect()
}
