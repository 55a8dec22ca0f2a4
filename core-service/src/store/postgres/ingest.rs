//! How a delivery changes the store: claim its key, claim each event's
//! identity, append new events to the log, and apply them to conversations and
//! messages. Runs on the writer connection inside the batch transaction, after
//! the batch took the log lock (see [`writer`](super::writer)).
//!
//! De-duplication relies on primary keys (`INSERT .. ON CONFLICT DO NOTHING`
//! and whether a row came back), never on a prior lookup: it holds against
//! another replica's transaction as well as within a batch. A received message
//! takes one statement ([`inbound`](super::inbound)); other events take a few.

use deadpool_postgres::ClientWrapper;
use futures::future::try_join_all;
use tokio_postgres::types::ToSql;

use super::inbound::{self, Stored};
use super::{rows, unix_ms};
use crate::model::{Claim, Delivery, Direction, MetaError, NewEvent, Receipt};
use crate::status::MessageStatus;
use crate::store::StoreError;

/// How long after its request an unsettled send can still be matched by a status webhook.
const SETTLE_WINDOW_SECS: i64 = 15 * 60;

/// Stores `delivery`; see [`Store::ingest`](crate::store::Store::ingest).
pub(super) async fn apply(
    conn: &ClientWrapper,
    delivery: &Delivery,
) -> Result<Receipt, StoreError> {
    let now_ms = unix_ms();
    let mut claims = Vec::with_capacity(delivery.events.len());
    let mut rest = delivery.events.as_slice();
    // The key decides whether anything is written, so its claim is awaited
    // first: in the first event's statement when that is a received message.
    if let Some(key) = delivery.key.as_deref() {
        match rest {
            [first, ..] if is_inbound_message(first) => {
                let stmt = inbound::prepare(conn).await?;
                let at = event_time(first, now_ms / 1000);
                match inbound::store(conn, &stmt, first, Some(key), now_ms, at).await? {
                    Stored::DuplicateDelivery => return Ok(Receipt::DuplicateDelivery),
                    Stored::Event(claim) => claims.push(claim),
                }
                rest = &rest[1..];
            }
            _ => {
                if !claim_delivery(conn, key, now_ms).await? {
                    return Ok(Receipt::DuplicateDelivery);
                }
            }
        }
    }
    while let Some(event) = rest.first() {
        let received = rest.iter().take_while(|e| is_inbound_message(e)).count();
        if received == 0 {
            claims.push(claim_event(conn, event, now_ms).await?);
            rest = &rest[1..];
        } else {
            claims.extend(store_received(conn, &rest[..received], now_ms).await?);
            rest = &rest[received..];
        }
    }
    Ok(Receipt::Stored(claims))
}

/// Stores received messages of a delivery whose key is claimed, pipelined:
/// each is one statement, the server runs them in the order sent, so a
/// message repeated within them is still found by its second statement.
async fn store_received(
    conn: &ClientWrapper,
    events: &[NewEvent],
    now_ms: i64,
) -> Result<Vec<Claim>, StoreError> {
    let stmt = inbound::prepare(conn).await?;
    let stmt = &stmt;
    try_join_all(events.iter().map(|event| async move {
        let at = event_time(event, now_ms / 1000);
        match inbound::store(conn, stmt, event, None, now_ms, at).await? {
            Stored::Event(claim) => Ok(claim),
            Stored::DuplicateDelivery => Err(StoreError::Internal(
                "a duplicate delivery without a delivery key".into(),
            )),
        }
    }))
    .await
}

/// A delivery that is one statement: a single received message, which
/// [`apply_pipelined`] can send along with others.
pub(super) struct ReceivedAlone<'a> {
    key: Option<&'a str>,
    event: &'a NewEvent,
}

/// `delivery` as one statement, when it is one.
pub(super) fn received_alone(delivery: &Delivery) -> Option<ReceivedAlone<'_>> {
    match delivery.events.as_slice() {
        [event] if is_inbound_message(event) => Some(ReceivedAlone {
            key: delivery.key.as_deref(),
            event,
        }),
        _ => None,
    }
}

/// Stores deliveries that are each one statement, sending every statement
/// before reading the first answer. The server still runs them one after
/// another in this order, so the outcome is that of [`apply`] in turn, without
/// a round trip each.
///
/// A query is sent when it is first polled, and `try_join_all` first polls
/// each future once in the order given (also past 30 futures, where it
/// collects through `FuturesOrdered`). The statement is prepared beforehand so
/// that no query waits before it is sent.
pub(super) async fn apply_pipelined(
    conn: &ClientWrapper,
    deliveries: &[ReceivedAlone<'_>],
) -> Result<Vec<Receipt>, StoreError> {
    let stmt = inbound::prepare(conn).await?;
    let now_ms = unix_ms();
    let stored = try_join_all(deliveries.iter().map(|alone| {
        let at = event_time(alone.event, now_ms / 1000);
        inbound::store(conn, &stmt, alone.event, alone.key, now_ms, at)
    }))
    .await?;
    Ok(stored
        .into_iter()
        .map(|stored| match stored {
            Stored::DuplicateDelivery => Receipt::DuplicateDelivery,
            Stored::Event(claim) => Receipt::Stored(vec![claim]),
        })
        .collect())
}

/// Whether `key` was new; a key seen before makes its delivery a duplicate.
async fn claim_delivery(conn: &ClientWrapper, key: &str, now_ms: i64) -> Result<bool, StoreError> {
    let stmt = conn
        .prepare_cached(
            "INSERT INTO deliveries (key, received_at_ms) VALUES ($1, $2) \
             ON CONFLICT DO NOTHING",
        )
        .await?;
    Ok(conn.execute(&stmt, &[&key, &now_ms]).await? == 1)
}

/// The message's own time, or `now` when the event carries none.
fn event_time(event: &NewEvent, now: i64) -> i64 {
    if event.timestamp > 0 {
        event.timestamp
    } else {
        now
    }
}

async fn claim_event(
    conn: &ClientWrapper,
    event: &NewEvent,
    now_ms: i64,
) -> Result<Claim, StoreError> {
    // The key claim and the append in one round trip: the CTE yields a row only
    // when the key was new, and the append selects from it.
    let stmt = conn
        .prepare_cached(
            "WITH claimed AS ( \
               INSERT INTO event_keys (key, received_at_ms) VALUES ($1, $2) \
               ON CONFLICT DO NOTHING RETURNING 1) \
             INSERT INTO events (received_at_ms, event_type, message_id, conversation_id, \
               phone_number_id, contact_phone, direction, message_type, text, reply_to, \
               timestamp, statuses_json, payload_json) \
             SELECT $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14 FROM claimed \
             RETURNING sequence",
        )
        .await?;
    let key = event.dedup_key();
    let values = rows::LogValues::new(event)?;
    let mut params: Vec<&(dyn ToSql + Sync)> = vec![&key, &now_ms];
    params.extend(values.params());
    let appended = conn.query_opt(&stmt, &params).await?;
    let Some(row) = appended else {
        return Ok(Claim::Duplicate);
    };
    let sequence = u64::try_from(row.try_get::<_, i64>(0)?)
        .map_err(|_| StoreError::Internal("negative event sequence".into()))?;
    apply_event(conn, event, now_ms / 1000).await?;
    Ok(Claim::New { sequence })
}

/// Applies a new event other than a received message to conversations and messages.
async fn apply_event(conn: &ClientWrapper, event: &NewEvent, now: i64) -> Result<(), StoreError> {
    let at = event_time(event, now);
    if !event.conversation_id.is_empty() {
        remember_conversation(conn, event).await?;
    }
    if event.message_id.is_empty() {
        Ok(())
    } else if event.reported_status().is_some()
        || !event.statuses.is_empty()
        || event.direction == Direction::Outbound
    {
        record_statuses(conn, event, at, now).await
    } else {
        // Another kind of message event (a new type Kapso added): logged only.
        Ok(())
    }
}

/// A message the contact sent to the business.
fn is_inbound_message(event: &NewEvent) -> bool {
    !event.message_id.is_empty()
        && event.reported_status().is_none()
        && (event.direction == Direction::Inbound
            || (event.direction == Direction::Unknown
                && event.event_type == "whatsapp.message.received"))
}

async fn remember_conversation(conn: &ClientWrapper, event: &NewEvent) -> Result<(), StoreError> {
    // Identity is filled in when first known, never overwritten by a blank;
    // only a received message moves the last inbound time ([`inbound`]).
    let stmt = conn
        .prepare_cached(
            "INSERT INTO conversations AS c (id, phone_number_id, contact_phone) \
             VALUES ($1, $2, $3) \
             ON CONFLICT (id) DO UPDATE SET \
               phone_number_id = CASE WHEN c.phone_number_id = '' \
                 THEN excluded.phone_number_id ELSE c.phone_number_id END, \
               contact_phone = CASE WHEN c.contact_phone = '' \
                 THEN excluded.contact_phone ELSE c.contact_phone END",
        )
        .await?;
    conn.execute(
        &stmt,
        &[
            &event.conversation_id,
            &event.phone_number_id,
            &event.contact_phone,
        ],
    )
    .await?;
    Ok(())
}

/// A status (or other outbound) event: move the message forward.
async fn record_statuses(
    conn: &ClientWrapper,
    event: &NewEvent,
    at: i64,
    now: i64,
) -> Result<(), StoreError> {
    let mut updates: Vec<(MessageStatus, i64, &[MetaError])> = event
        .statuses
        .iter()
        .map(|s| {
            let when = if s.timestamp > 0 { s.timestamp } else { at };
            (s.status, when, s.errors.as_slice())
        })
        .collect();
    if let Some(reported) = event.reported_status()
        && !event.statuses.iter().any(|s| s.status == reported)
    {
        updates.push((reported, at, &[]));
    }
    let advance = |from: MessageStatus| {
        let mut status = from;
        let mut errors: &[MetaError] = &[];
        for (update, _, update_errors) in &updates {
            status = status.advance(*update);
            if *update == MessageStatus::Failed && !update_errors.is_empty() {
                errors = update_errors;
            }
        }
        (status, errors)
    };

    let known = match find_by_wamid(conn, &event.message_id).await? {
        Some(found) => Some(found),
        None => find_unsettled_send(conn, event, now).await?,
    };
    let id = match known {
        Some((id, current)) => {
            let (status, errors) = advance(current);
            update_message(conn, id, event, status, errors, now).await?;
            id
        }
        None => {
            let direction = match event.direction {
                Direction::Unknown => Direction::Outbound,
                known => known,
            };
            let base = match direction {
                Direction::Inbound => MessageStatus::Received,
                _ => MessageStatus::Accepted,
            };
            let (status, errors) = advance(base);
            insert_message(conn, event, direction, status, errors, at, now).await?
        }
    };
    for (status, when, _) in &updates {
        record_history(conn, id, *status, *when).await?;
    }
    Ok(())
}

async fn find_by_wamid(
    conn: &ClientWrapper,
    wamid: &str,
) -> Result<Option<(i64, MessageStatus)>, StoreError> {
    let stmt = conn
        .prepare_cached("SELECT id, status FROM messages WHERE wamid = $1")
        .await?;
    match conn.query_opt(&stmt, &[&wamid]).await? {
        Some(row) => Ok(Some((
            row.try_get(0)?,
            rows::parse_status(row.try_get(1)?)?,
        ))),
        None => Ok(None),
    }
}

/// A recent send with no wamid yet (its response is pending or was lost) that the
/// status event describes: same number, same recipient, same text. This is how
/// an `OutcomeUnknown` send is settled by a later webhook.
async fn find_unsettled_send(
    conn: &ClientWrapper,
    event: &NewEvent,
    now: i64,
) -> Result<Option<(i64, MessageStatus)>, StoreError> {
    if event.direction == Direction::Inbound
        || event.phone_number_id.is_empty()
        || event.contact_phone.is_empty()
    {
        return Ok(None);
    }
    let stmt = conn
        .prepare_cached(
            "SELECT id, status FROM messages \
             WHERE wamid IS NULL AND phone_number_id = $1 AND contact_phone = $2 \
               AND direction = 'outbound' AND status IN ('accepted', 'outcome_unknown') \
               AND created_at >= $3 AND ($4 = '' OR text = $4) \
             ORDER BY created_at, id LIMIT 2",
        )
        .await?;
    let found = conn
        .query(
            &stmt,
            &[
                &event.phone_number_id,
                &event.contact_phone,
                &(now - SETTLE_WINDOW_SECS),
                &event.text,
            ],
        )
        .await?;
    let candidates = found
        .iter()
        .map(|row| Ok((row.try_get(0)?, rows::parse_status(row.try_get(1)?)?)))
        .collect::<Result<Vec<(i64, MessageStatus)>, StoreError>>()?;
    // Without text to compare, only an unambiguous match is safe to settle.
    Ok(match candidates.as_slice() {
        [only] => Some(*only),
        [oldest, ..] if !event.text.is_empty() => Some(*oldest),
        _ => None,
    })
}

async fn update_message(
    conn: &ClientWrapper,
    id: i64,
    event: &NewEvent,
    status: MessageStatus,
    errors: &[MetaError],
    now: i64,
) -> Result<(), StoreError> {
    // The rank comparison keeps the status forward-only in SQL as well, whatever
    // this replica read before.
    let stmt = conn
        .prepare_cached(
            "UPDATE messages SET \
               status = CASE WHEN kapso_status_rank($2) > kapso_status_rank(status) \
                 THEN $2 ELSE status END, \
               errors_json = coalesce($3, errors_json), \
               wamid = coalesce(wamid, $4), \
               conversation_id = CASE WHEN conversation_id = '' THEN $5 ELSE conversation_id END, \
               phone_number_id = CASE WHEN phone_number_id = '' THEN $6 ELSE phone_number_id END, \
               contact_phone = CASE WHEN contact_phone = '' THEN $7 ELSE contact_phone END, \
               type = CASE WHEN type = '' THEN $8 ELSE type END, \
               text = CASE WHEN text = '' THEN $9 ELSE text END, \
               updated_at = $10 \
             WHERE id = $1",
        )
        .await?;
    conn.execute(
        &stmt,
        &[
            &id,
            &status.as_str(),
            &rows::encode_errors(errors)?,
            &event.message_id,
            &event.conversation_id,
            &event.phone_number_id,
            &event.contact_phone,
            &event.message_type,
            &event.text,
            &now,
        ],
    )
    .await?;
    Ok(())
}

async fn insert_message(
    conn: &ClientWrapper,
    event: &NewEvent,
    direction: Direction,
    status: MessageStatus,
    errors: &[MetaError],
    at: i64,
    now: i64,
) -> Result<i64, StoreError> {
    let stmt = conn
        .prepare_cached(
            "INSERT INTO messages (wamid, direction, conversation_id, phone_number_id, \
             contact_phone, type, text, reply_to, status, errors_json, timestamp, created_at, \
             updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12) \
             RETURNING id",
        )
        .await?;
    let row = conn
        .query_one(
            &stmt,
            &[
                &event.message_id,
                &direction.as_str(),
                &event.conversation_id,
                &event.phone_number_id,
                &event.contact_phone,
                &event.message_type,
                &event.text,
                &event.reply_to_message_id,
                &status.as_str(),
                &rows::encode_errors(errors)?,
                &at,
                &now,
            ],
        )
        .await?;
    Ok(row.try_get(0)?)
}

/// Records that message `id` reached `status`, once, keeping the earliest time.
pub(super) async fn record_history(
    conn: &ClientWrapper,
    id: i64,
    status: MessageStatus,
    at: i64,
) -> Result<(), StoreError> {
    let stmt = conn
        .prepare_cached(
            "INSERT INTO status_history AS h (message_id, status, timestamp) VALUES ($1, $2, $3) \
             ON CONFLICT (message_id, status) DO UPDATE SET timestamp = excluded.timestamp \
             WHERE excluded.timestamp < h.timestamp",
        )
        .await?;
    conn.execute(&stmt, &[&id, &status.as_str(), &at]).await?;
    Ok(())
}
