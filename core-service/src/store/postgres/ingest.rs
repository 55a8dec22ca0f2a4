//! How a delivery changes the store: claim its key, claim each event's
//! identity, append new events to the log, and apply them to conversations and
//! messages. Runs on the writer connection inside the batch transaction, after
//! the batch took the log lock (see [`writer`](super::writer)).
//!
//! De-duplication relies on primary keys (`INSERT .. ON CONFLICT DO NOTHING`
//! and whether a row came back), never on a prior lookup: it holds against
//! another replica's transaction as well as within a batch.

use deadpool_postgres::ClientWrapper;

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
    if let Some(key) = &delivery.key {
        let stmt = conn
            .prepare_cached(
                "INSERT INTO deliveries (key, received_at_ms) VALUES ($1, $2) \
                 ON CONFLICT DO NOTHING",
            )
            .await?;
        if conn.execute(&stmt, &[key, &now_ms]).await? == 0 {
            return Ok(Receipt::DuplicateDelivery);
        }
    }
    let mut claims = Vec::with_capacity(delivery.events.len());
    for event in &delivery.events {
        claims.push(claim_event(conn, event, now_ms).await?);
    }
    Ok(Receipt::Stored(claims))
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
    let appended = conn
        .query_opt(
            &stmt,
            &[
                &event.dedup_key(),
                &now_ms,
                &event.event_type,
                &event.message_id,
                &event.conversation_id,
                &event.phone_number_id,
                &event.contact_phone,
                &event.direction.as_str(),
                &event.message_type,
                &event.text,
                &event.reply_to_message_id,
                &event.timestamp,
                &rows::encode_statuses(&event.statuses)?,
                &event.payload_json,
            ],
        )
        .await?;
    let Some(row) = appended else {
        return Ok(Claim::Duplicate);
    };
    let sequence = u64::try_from(row.try_get::<_, i64>(0)?)
        .map_err(|_| StoreError::Internal("negative event sequence".into()))?;
    apply_event(conn, event, now_ms / 1000).await?;
    Ok(Claim::New { sequence })
}

/// Applies a new event to conversations and messages.
async fn apply_event(conn: &ClientWrapper, event: &NewEvent, now: i64) -> Result<(), StoreError> {
    let at = if event.timestamp > 0 {
        event.timestamp
    } else {
        now
    };
    let inbound = is_inbound_message(event);
    if !event.conversation_id.is_empty() {
        remember_conversation(conn, event, inbound.then_some(at)).await?;
    }
    if event.message_id.is_empty() {
        Ok(())
    } else if inbound {
        record_inbound(conn, event, at, now).await
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

async fn remember_conversation(
    conn: &ClientWrapper,
    event: &NewEvent,
    inbound_at: Option<i64>,
) -> Result<(), StoreError> {
    // Identity is filled in when first known, never overwritten by a blank;
    // the last inbound time only moves forward (GREATEST ignores NULLs).
    let stmt = conn
        .prepare_cached(
            "INSERT INTO conversations AS c (id, phone_number_id, contact_phone, last_inbound_at) \
             VALUES ($1, $2, $3, $4) \
             ON CONFLICT (id) DO UPDATE SET \
               phone_number_id = CASE WHEN c.phone_number_id = '' \
                 THEN excluded.phone_number_id ELSE c.phone_number_id END, \
               contact_phone = CASE WHEN c.contact_phone = '' \
                 THEN excluded.contact_phone ELSE c.contact_phone END, \
               last_inbound_at = GREATEST(c.last_inbound_at, excluded.last_inbound_at)",
        )
        .await?;
    conn.execute(
        &stmt,
        &[
            &event.conversation_id,
            &event.phone_number_id,
            &event.contact_phone,
            &inbound_at,
        ],
    )
    .await?;
    Ok(())
}

async fn record_inbound(
    conn: &ClientWrapper,
    event: &NewEvent,
    at: i64,
    now: i64,
) -> Result<(), StoreError> {
    // The row and its `received` history entry in one round trip.
    let stmt = conn
        .prepare_cached(
            "WITH m AS ( \
               INSERT INTO messages AS m (wamid, direction, conversation_id, phone_number_id, \
                 contact_phone, type, text, reply_to, status, timestamp, created_at, updated_at) \
               VALUES ($1, 'inbound', $2, $3, $4, $5, $6, $7, 'received', $8, $9, $9) \
               ON CONFLICT (wamid) DO UPDATE SET \
                 conversation_id = CASE WHEN m.conversation_id = '' \
                   THEN excluded.conversation_id ELSE m.conversation_id END, \
                 phone_number_id = CASE WHEN m.phone_number_id = '' \
                   THEN excluded.phone_number_id ELSE m.phone_number_id END, \
                 contact_phone = CASE WHEN m.contact_phone = '' \
                   THEN excluded.contact_phone ELSE m.contact_phone END, \
                 type = CASE WHEN m.type = '' THEN excluded.type ELSE m.type END, \
                 text = CASE WHEN m.text = '' THEN excluded.text ELSE m.text END, \
                 reply_to = CASE WHEN m.reply_to = '' THEN excluded.reply_to ELSE m.reply_to END, \
                 updated_at = excluded.updated_at \
               RETURNING id) \
             INSERT INTO status_history AS h (message_id, status, timestamp) \
             SELECT id, 'received', $8 FROM m \
             ON CONFLICT (message_id, status) DO UPDATE SET timestamp = excluded.timestamp \
             WHERE excluded.timestamp < h.timestamp",
        )
        .await?;
    conn.execute(
        &stmt,
        &[
            &event.message_id,
            &event.conversation_id,
            &event.phone_number_id,
            &event.contact_phone,
            &event.message_type,
            &event.text,
            &event.reply_to_message_id,
            &at,
            &now,
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
