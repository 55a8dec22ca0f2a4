//! Outbound sends: recorded before the upstream call, finished after it, and
//! consumers' acknowledged positions (the other small writes).
//!
//! The idempotency claim is the unique index on `idempotency_key`: of two
//! replicas inserting the same key at once, PostgreSQL makes the second wait for
//! the first's commit and then skip the row, so exactly one send starts.

use deadpool_postgres::ClientWrapper;

use super::{rows, unix_ms};
use crate::model::{
    ConversationId, EncodedContent, GatewayId, IdempotencyKey, Message, SendClaim, SendIntent,
    SendResult, Wamid,
};
use crate::status::MessageStatus;
use crate::store::{Move, StoreError};

/// See [`Store::begin_send`](crate::store::Store::begin_send).
pub(super) async fn begin_send(
    conn: &ClientWrapper,
    intent: &SendIntent,
) -> Result<SendClaim, StoreError> {
    let stmt = conn
        .prepare_cached(
            "INSERT INTO messages (gateway_id, idempotency_key, fingerprint, direction, \
             conversation_id, phone_number_id, contact_phone, type, text, reply_to, status, \
             timestamp, created_at, updated_at, content) \
             VALUES ($1, $2, $3, 'outbound', $4, $5, $6, $10, $7, $8, 'accepted', $9, $9, $9, $11) \
             ON CONFLICT DO NOTHING RETURNING id",
        )
        .await?;
    let inserted = conn
        .query_opt(
            &stmt,
            &[
                &intent.gateway_id.as_str(),
                &intent.idempotency_key.as_ref().map(IdempotencyKey::as_str),
                &intent.fingerprint,
                // A send outside any conversation is stored with an empty one.
                &intent
                    .conversation_id
                    .as_ref()
                    .map_or("", ConversationId::as_str),
                &intent.phone_number_id.as_str(),
                &intent.to.as_str(),
                &intent.text,
                &intent
                    .reply_to_message_id
                    .as_ref()
                    .map_or("", Wamid::as_str),
                &intent.created_at,
                &intent.message_type,
                &intent.content.as_ref().map(EncodedContent::as_bytes),
            ],
        )
        .await?;
    if let Some(row) = inserted {
        let id: i64 = row.try_get(0)?;
        record_history(conn, id, MessageStatus::Accepted, intent.created_at).await?;
        return rows::load_message(conn, id).await.map(SendClaim::Started);
    }
    let used_twice =
        || StoreError::Internal(format!("gateway id {} used twice", intent.gateway_id));
    let Some(key) = &intent.idempotency_key else {
        return Err(used_twice());
    };
    let stmt = conn
        .prepare_cached("SELECT id, fingerprint FROM messages WHERE idempotency_key = $1")
        .await?;
    let Some(row) = conn.query_opt(&stmt, &[&key.as_str()]).await? else {
        return Err(used_twice());
    };
    let (id, fingerprint): (i64, Option<String>) = (row.try_get(0)?, row.try_get(1)?);
    if fingerprint.as_deref() == Some(intent.fingerprint.as_str()) {
        rows::load_message(conn, id).await.map(SendClaim::Existing)
    } else {
        Ok(SendClaim::KeyReused)
    }
}

/// See [`Store::release_send`](crate::store::Store::release_send).
pub(super) async fn release_send(
    conn: &ClientWrapper,
    gateway_id: &GatewayId,
) -> Result<bool, StoreError> {
    // A data-modifying WITH runs to completion whether or not the query reads it.
    let stmt = conn
        .prepare_cached(
            "WITH unsent AS ( \
               DELETE FROM messages \
               WHERE gateway_id = $1 AND wamid IS NULL AND status = 'accepted' \
               RETURNING id), \
             history AS ( \
               DELETE FROM status_history WHERE message_id IN (SELECT id FROM unsent)) \
             SELECT count(*) FROM unsent",
        )
        .await?;
    let released: i64 = conn.query_one(&stmt, &[&gateway_id.as_str()]).await?.get(0);
    Ok(released > 0)
}

/// See [`Store::settle_abandoned_sends`](crate::store::Store::settle_abandoned_sends).
pub(super) async fn settle_abandoned_sends(
    conn: &ClientWrapper,
    claimed_before: i64,
) -> Result<u64, StoreError> {
    let now = unix_ms() / 1000;
    // One statement: a send `finish_send` holds locked is re-checked once it
    // commits, and skipped if that settled it.
    let stmt = conn
        .prepare_cached(
            "WITH settled AS ( \
               UPDATE messages SET status = 'outcome_unknown', updated_at = $2 \
               WHERE wamid IS NULL AND status = 'accepted' AND gateway_id IS NOT NULL \
                 AND created_at < $1 \
               RETURNING id), \
             history AS ( \
               INSERT INTO status_history (message_id, status, timestamp) \
               SELECT id, 'outcome_unknown', $2 FROM settled \
               ON CONFLICT (message_id, status) DO NOTHING) \
             SELECT count(*) FROM settled",
        )
        .await?;
    let settled: i64 = conn
        .query_one(&stmt, &[&claimed_before, &now])
        .await?
        .try_get(0)?;
    Ok(u64::try_from(settled).unwrap_or(0))
}

/// See [`Store::finish_send`](crate::store::Store::finish_send).
pub(super) async fn finish_send(
    conn: &ClientWrapper,
    gateway_id: &GatewayId,
    result: &SendResult,
) -> Result<Message, StoreError> {
    let now = unix_ms() / 1000;
    let stmt = conn
        .prepare_cached("SELECT id, status, wamid FROM messages WHERE gateway_id = $1 FOR UPDATE")
        .await?;
    let row = conn
        .query_opt(&stmt, &[&gateway_id.as_str()])
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("unknown gateway id {gateway_id}")))?;
    let (id, current, held): (i64, MessageStatus, Option<String>) = (
        row.try_get(0)?,
        rows::parse_status(row.try_get(1)?)?,
        row.try_get(2)?,
    );
    match result {
        SendResult::Sent { wamid } => {
            if let Some(guessed) = held.filter(|held| held != wamid) {
                give_the_guess_a_row(conn, id, &guessed, now).await?;
            }
            let status = merge_webhook_row(conn, id, wamid)
                .await?
                .map_or(current, |s| current.advance(s))
                .advance(MessageStatus::Sent);
            let stmt = conn
                .prepare_cached(
                    // The row is locked since its status was read: set, not compared.
                    "UPDATE messages SET wamid = $2, status = $3, updated_at = $4 WHERE id = $1",
                )
                .await?;
            conn.execute(&stmt, &[&id, wamid, &status.as_str(), &now])
                .await?;
            record_history(conn, id, MessageStatus::Sent, now).await?;
        }
        SendResult::Failed(failure) => {
            let (errors, not_taken) = rows::failure_columns(failure)?;
            let stmt = conn
                .prepare_cached(
                    "UPDATE messages SET status = 'failed', errors_json = $2, not_taken = $3, \
                     updated_at = $4 WHERE id = $1",
                )
                .await?;
            conn.execute(&stmt, &[&id, &errors, &not_taken, &now])
                .await?;
            record_history(conn, id, MessageStatus::Failed, now).await?;
        }
        // Only a send still in flight becomes unknown: a webhook may have settled it already.
        SendResult::Unknown if current == MessageStatus::Accepted => {
            let stmt = conn
                .prepare_cached(
                    "UPDATE messages SET status = 'outcome_unknown', updated_at = $2 \
                     WHERE id = $1 AND status = 'accepted'",
                )
                .await?;
            conn.execute(&stmt, &[&id, &now]).await?;
            record_history(conn, id, MessageStatus::OutcomeUnknown, now).await?;
        }
        SendResult::Unknown => {}
    }
    rows::load_message(conn, id).await
}

/// The send `id` holds `guessed`, a webhook's guess (same number, contact
/// and text), and Kapso answered with another wamid: the guess was wrong, and
/// `guessed` gets a row of its own, which the send Kapso later answers with
/// it absorbs; the events about `guessed` move to it, so that they stay known
/// under it. The statuses the guess applied stay with the send, as when
/// another send's answer takes a guess back.
async fn give_the_guess_a_row(
    conn: &ClientWrapper,
    id: i64,
    guessed: &str,
    now: i64,
) -> Result<(), StoreError> {
    // Two statements: the wamid is unique, and the CTEs of one statement
    // run in no set order.
    let release = conn
        .prepare_cached("UPDATE messages SET wamid = NULL WHERE id = $1")
        .await?;
    conn.execute(&release, &[&id]).await?;
    let own_row = conn
        .prepare_cached(
            "INSERT INTO messages (wamid, direction, status, timestamp, created_at, updated_at) \
             VALUES ($1, 'outbound', 'accepted', $2, $2, $2) RETURNING id",
        )
        .await?;
    let row: i64 = conn
        .query_one(&own_row, &[&guessed, &now])
        .await?
        .try_get(0)?;
    move_message_events(conn, id, row).await
}

/// Hands the identities of the events about a wamid (see [`claim`](super::claim))
/// from the row that held it to the row that holds it now. Before a row is
/// deleted: a new message must not inherit them.
async fn move_message_events(conn: &ClientWrapper, from: i64, to: i64) -> Result<(), StoreError> {
    let stmt = conn
        .prepare_cached("UPDATE events SET message_row = $2 WHERE message_row = $1")
        .await?;
    conn.execute(&stmt, &[&from, &to]).await?;
    Ok(())
}

/// Folds a row a status webhook created for `wamid` (before the send response
/// arrived) into the send's row `id`: history, errors, conversation. Returns
/// that row's status, `None` when there was no such row.
async fn merge_webhook_row(
    conn: &ClientWrapper,
    id: i64,
    wamid: &str,
) -> Result<Option<MessageStatus>, StoreError> {
    let stmt = conn
        .prepare_cached(
            "SELECT id, status, gateway_id IS NOT NULL FROM messages \
             WHERE wamid = $1 AND id <> $2 FOR UPDATE",
        )
        .await?;
    let Some(row) = conn.query_opt(&stmt, &[&wamid, &id]).await? else {
        return Ok(None);
    };
    let (other, status, is_send): (i64, MessageStatus, bool) = (
        row.try_get(0)?,
        rows::parse_status(row.try_get(1)?)?,
        row.try_get(2)?,
    );
    if is_send {
        // Another send was settled with this wamid by a webhook that matched it
        // on number, contact and text: a guess, which Kapso's answer overrules.
        // That send keeps its own row and goes back to waiting for its wamid.
        tracing::warn!(wamid, "wamid claimed by another send; detaching it");
        move_message_events(conn, other, id).await?;
        let stmt = conn
            .prepare_cached("UPDATE messages SET wamid = NULL WHERE id = $1")
            .await?;
        conn.execute(&stmt, &[&other]).await?;
        return Ok(None);
    }
    let stmt = conn
        .prepare_cached(
            "INSERT INTO status_history AS h (message_id, status, timestamp) \
             SELECT $1, status, timestamp FROM status_history WHERE message_id = $2 \
             ON CONFLICT (message_id, status) DO UPDATE SET timestamp = excluded.timestamp \
             WHERE excluded.timestamp < h.timestamp",
        )
        .await?;
    conn.execute(&stmt, &[&id, &other]).await?;
    let stmt = conn
        .prepare_cached(
            "UPDATE messages AS m SET \
               errors_json = coalesce(o.errors_json, m.errors_json), \
               conversation_id = CASE WHEN m.conversation_id = '' \
                 THEN o.conversation_id ELSE m.conversation_id END \
             FROM messages o WHERE m.id = $1 AND o.id = $2",
        )
        .await?;
    conn.execute(&stmt, &[&id, &other]).await?;
    move_message_events(conn, other, id).await?;
    // Deleted before the caller sets the wamid on the send's row (it is unique).
    let stmt = conn
        .prepare_cached(
            "WITH gone AS (DELETE FROM status_history WHERE message_id = $1) \
             DELETE FROM messages WHERE id = $1",
        )
        .await?;
    conn.execute(&stmt, &[&other]).await?;
    Ok(Some(status))
}

/// Advisory lock key held while a new consumer name is counted ("kapso" + 3).
const CONSUMERS_LOCK: i64 = 0x6b61_7073_6f00_0003;

/// See [`Store::ack`](crate::store::Store::ack) and [`Store::seek`](crate::store::Store::seek).
pub(super) async fn set_position(
    conn: &ClientWrapper,
    consumer: &str,
    sequence: u64,
    how: Move,
) -> Result<u64, StoreError> {
    let requested = sequence;
    // The log's head, committed (and so durable) by any core; never below
    // what retention pruned, so an emptied log still has one.
    let stmt = conn
        .prepare_cached(
            "SELECT GREATEST(coalesce(max(sequence), 0), \
             (SELECT pruned_through FROM log_horizon)), \
             EXISTS (SELECT 1 FROM consumers WHERE name = $1) FROM events",
        )
        .await?;
    let row = conn.query_one(&stmt, &[&consumer]).await?;
    let (head, known): (i64, bool) = (row.try_get(0)?, row.try_get(1)?);
    let head = u64::try_from(head).unwrap_or(0);
    if requested > head {
        return Err(crate::store::beyond_the_log(requested, head));
    }
    if !known {
        // New names are counted under a lock, so replicas adding names at
        // once cannot together pass the bound. Two statements: the count's
        // snapshot must be taken once the lock is held.
        let lock = conn
            .prepare_cached("SELECT pg_advisory_xact_lock($1)")
            .await?;
        conn.execute(&lock, &[&CONSUMERS_LOCK]).await?;
        let count = conn
            .prepare_cached("SELECT count(*) FROM consumers")
            .await?;
        let count: i64 = conn.query_one(&count, &[]).await?.try_get(0)?;
        if usize::try_from(count).unwrap_or(usize::MAX) >= crate::store::MAX_CONSUMERS {
            return Err(crate::store::too_many_consumers());
        }
    }
    let sequence =
        i64::try_from(sequence).map_err(|_| crate::store::beyond_the_log(requested, head))?;
    let sql = match how {
        // GREATEST in the upsert: two replicas acknowledging at once never move it back.
        Move::Forward => {
            "INSERT INTO consumers AS c (name, sequence) VALUES ($1, $2) \
             ON CONFLICT (name) DO UPDATE SET sequence = GREATEST(c.sequence, excluded.sequence) \
             RETURNING sequence"
        }
        Move::To => {
            "INSERT INTO consumers AS c (name, sequence) VALUES ($1, $2) \
             ON CONFLICT (name) DO UPDATE SET sequence = excluded.sequence \
             RETURNING sequence"
        }
    };
    let stmt = conn.prepare_cached(sql).await?;
    let position: i64 = conn
        .query_one(&stmt, &[&consumer, &sequence])
        .await?
        .try_get(0)?;
    Ok(u64::try_from(position).unwrap_or(0))
}

/// Records that message `id` reached `status`, once, keeping the earliest time.
async fn record_history(
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
