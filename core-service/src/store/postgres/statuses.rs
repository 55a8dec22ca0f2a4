//! Every event other than a received message: statuses above all (three to
//! each message a business sends), outbound message events, and kinds only
//! logged. Two round trips for a status of a known message: the claims, the
//! append and the conversation in one statement ([`claim`](super::claim)) sent
//! together with the lookup of the message; then the message's new status
//! together with its history entries.
//!
//! How far a status moves its message is decided here, from the status the
//! lookup read ([`advance`]), and the update's rank comparison keeps it
//! forward-only in SQL as well, whatever another replica wrote since.

use deadpool_postgres::ClientWrapper;
use futures::future::{try_join, try_join_all};
use tokio_postgres::Statement;

use super::claim::{ClaimValues, Stored, claim_and_append, outcome};
use super::rows;
use crate::model::{Claim, Direction, MetaError, NewEvent};
use crate::status::MessageStatus;
use crate::store::StoreError;
use crate::store::reported_statuses::{advance, first_known, reported_statuses};

/// How long after its request an unsettled send can still be matched by a status webhook.
const SETTLE_WINDOW_SECS: i64 = 15 * 60;

/// Stores `event`, claiming `delivery_key` first when given.
pub(super) async fn store(
    conn: &ClientWrapper,
    event: &NewEvent,
    delivery_key: Option<&str>,
    now_ms: i64,
) -> Result<Stored, StoreError> {
    let stmt = conn.prepare_cached(STORE_EVENT).await?;
    let values = ClaimValues::new(event, delivery_key, now_ms)?;
    let params = values.params();
    let claim = async { outcome(&conn.query_one(&stmt, &params).await?) };
    if !tracks_status(event) {
        return claim.await;
    }
    // The claim does not touch messages, so the lookup reads the same whether
    // it runs before or after it: both go out at once.
    let find = conn.prepare_cached(FIND_BY_WAMID).await?;
    let (stored, known) = try_join(claim, find_by_wamid(conn, &find, &event.message_id)).await?;
    if let Stored::Event(Claim::New { .. }) = stored {
        record_statuses(conn, event, known, now_ms / 1000).await?;
    }
    Ok(stored)
}

/// Whether `event` moves a message's status; other kinds are only logged
/// (a new kind of message event Kapso added, say).
fn tracks_status(event: &NewEvent) -> bool {
    !event.message_id.is_empty()
        && (event.reported_status().is_some()
            || !event.statuses.is_empty()
            || event.direction == Direction::Outbound)
}

/// The claims, the append and the conversation: its identity is filled in
/// when first known, never overwritten by a blank. Only a received message
/// moves the last inbound time ([`inbound`](super::inbound)).
const STORE_EVENT: &str = claim_and_append!(
    "conversation AS ( \
      INSERT INTO conversations AS c (id, phone_number_id, contact_phone) \
      SELECT $6, $7, $8 FROM claimed WHERE $6::text <> '' \
      ON CONFLICT (id) DO UPDATE SET \
        phone_number_id = CASE WHEN c.phone_number_id = '' \
          THEN excluded.phone_number_id ELSE c.phone_number_id END, \
        contact_phone = CASE WHEN c.contact_phone = '' \
          THEN excluded.contact_phone ELSE c.contact_phone END)",
);

const FIND_BY_WAMID: &str = "SELECT id, status FROM messages WHERE wamid = $1";

/// Moves the message of a new status (or other outbound) event forward;
/// `known` is what [`find_by_wamid`] found for it alongside the event's claim.
async fn record_statuses(
    conn: &ClientWrapper,
    event: &NewEvent,
    known: Option<(i64, MessageStatus)>,
    now: i64,
) -> Result<(), StoreError> {
    let at = event.time_or(now);
    let updates = reported_statuses(event, at);
    let known = match known {
        Some(found) => Some(found),
        None => find_unsettled_send(conn, event, now).await?,
    };
    let record_all = |id| {
        try_join_all(
            updates
                .iter()
                .map(move |update| record_history(conn, id, update.status, update.at)),
        )
    };
    match known {
        Some((id, current)) => {
            let (status, errors) = advance(current, &updates);
            // They write different rows, so in whatever order the server gets
            // them, one round trip serves all.
            try_join(
                update_message(conn, id, event, status, errors, now),
                record_all(id),
            )
            .await?;
        }
        None => {
            let (direction, base) = first_known(event);
            let (status, errors) = advance(base, &updates);
            let id = insert_message(conn, event, direction, status, errors, at, now).await?;
            record_all(id).await?;
        }
    }
    Ok(())
}

/// The message `wamid` names, and its status; `stmt` is [`FIND_BY_WAMID`] prepared.
async fn find_by_wamid(
    conn: &ClientWrapper,
    stmt: &Statement,
    wamid: &str,
) -> Result<Option<(i64, MessageStatus)>, StoreError> {
    match conn.query_opt(stmt, &[&wamid]).await? {
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
