//! Outbound sends: recorded before the upstream call, finished after it.
//!
//! A send is recorded (claiming its idempotency key) before any upstream call,
//! then finished with how that call ended. A status webhook can beat the send
//! response; the row it created for the wamid is merged into the send's row,
//! whose key stays stable (the message's `id` reports the wamid once known).

use rusqlite::{Connection, OptionalExtension, params};

use super::messages::record_history;
use super::{rows, unix_ms};
use crate::model::{
    ConversationId, EncodedContent, GatewayId, IdempotencyKey, Message, SendClaim, SendIntent,
    SendResult, Wamid,
};
use crate::status::MessageStatus;
use crate::store::StoreError;

/// See [`Store::begin_send`](crate::store::Store::begin_send).
pub(super) fn begin_send(conn: &Connection, intent: &SendIntent) -> Result<SendClaim, StoreError> {
    // The unique index on idempotency_key is the claim: of concurrent identical
    // requests exactly one inserts, the others see its row.
    let inserted: Option<i64> = conn
        .prepare_cached(
            "INSERT INTO messages (gateway_id, idempotency_key, fingerprint, direction, \
             conversation_id, phone_number_id, contact_phone, type, text, reply_to, status, \
             timestamp, created_at, updated_at, content) \
             VALUES (?1, ?2, ?3, 'outbound', ?4, ?5, ?6, ?10, ?7, ?8, 'accepted', ?9, ?9, ?9, ?11) \
             ON CONFLICT DO NOTHING RETURNING id",
        )?
        .query_row(
            params![
                intent.gateway_id.as_str(),
                intent.idempotency_key.as_ref().map(IdempotencyKey::as_str),
                intent.fingerprint,
                // A send outside any conversation is stored with an empty one.
                intent
                    .conversation_id
                    .as_ref()
                    .map_or("", ConversationId::as_str),
                intent.phone_number_id.as_str(),
                intent.to.as_str(),
                intent.text,
                intent
                    .reply_to_message_id
                    .as_ref()
                    .map_or("", Wamid::as_str),
                intent.created_at,
                intent.message_type,
                intent.content.as_ref().map(EncodedContent::as_bytes)
            ],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(id) = inserted {
        record_history(conn, id, MessageStatus::Accepted, intent.created_at)?;
        return rows::load_message(conn, id).map(SendClaim::Started);
    }
    let Some(key) = &intent.idempotency_key else {
        return Err(StoreError::Internal(format!(
            "gateway id {} used twice",
            intent.gateway_id
        )));
    };
    let earlier: Option<(i64, Option<String>)> = conn
        .prepare_cached("SELECT id, fingerprint FROM messages WHERE idempotency_key = ?1")?
        .query_row([key.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    match earlier {
        Some((id, fingerprint)) if fingerprint.as_deref() == Some(intent.fingerprint.as_str()) => {
            rows::load_message(conn, id).map(SendClaim::Existing)
        }
        Some(_) => Ok(SendClaim::KeyReused),
        None => Err(StoreError::Internal(format!(
            "gateway id {} used twice",
            intent.gateway_id
        ))),
    }
}

/// See [`Store::release_send`](crate::store::Store::release_send).
pub(super) fn release_send(conn: &Connection, gateway_id: &GatewayId) -> Result<bool, StoreError> {
    let unsent: Option<i64> = conn
        .prepare_cached(
            "SELECT id FROM messages \
             WHERE gateway_id = ?1 AND wamid IS NULL AND status = 'accepted'",
        )?
        .query_row([gateway_id.as_str()], |r| r.get(0))
        .optional()?;
    let Some(id) = unsent else {
        return Ok(false);
    };
    conn.prepare_cached("DELETE FROM status_history WHERE message_id = ?1")?
        .execute([id])?;
    conn.prepare_cached("DELETE FROM messages WHERE id = ?1")?
        .execute([id])?;
    Ok(true)
}

/// See [`Store::settle_abandoned_sends`](crate::store::Store::settle_abandoned_sends).
pub(super) fn settle_abandoned_sends(
    conn: &Connection,
    claimed_before: i64,
) -> Result<u64, StoreError> {
    let now = unix_ms() / 1000;
    // Through the partial index of sends without a wamid: never a scan of
    // every message on the writer's thread.
    let ids: Vec<i64> = conn
        .prepare_cached(
            "SELECT id FROM messages INDEXED BY messages_awaiting_wamid \
             WHERE wamid IS NULL AND status = 'accepted' AND gateway_id IS NOT NULL \
             AND created_at < ?1",
        )?
        .query_map([claimed_before], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for &id in &ids {
        conn.prepare_cached(
            "UPDATE messages SET status = 'outcome_unknown', updated_at = ?2 WHERE id = ?1",
        )?
        .execute(params![id, now])?;
        record_history(conn, id, MessageStatus::OutcomeUnknown, now)?;
    }
    Ok(ids.len() as u64)
}

/// See [`Store::finish_send`](crate::store::Store::finish_send).
pub(super) fn finish_send(
    conn: &Connection,
    gateway_id: &GatewayId,
    result: &SendResult,
) -> Result<Message, StoreError> {
    let now = unix_ms() / 1000;
    let (id, current, held): (i64, MessageStatus, Option<String>) = conn
        .prepare_cached("SELECT id, status, wamid FROM messages WHERE gateway_id = ?1")?
        .query_row([gateway_id.as_str()], |r| {
            Ok((r.get(0)?, rows::status_column(r, 1)?, r.get(2)?))
        })
        .optional()?
        .ok_or_else(|| StoreError::NotFound(format!("unknown gateway id {gateway_id}")))?;
    match result {
        SendResult::Sent { wamid } => {
            if let Some(guessed) = held.filter(|held| held != wamid) {
                give_the_guess_a_row(conn, id, &guessed, now)?;
            }
            let status =
                merge_webhook_row(conn, id, wamid)?.map_or(current, |s| current.advance(s));
            conn.prepare_cached(
                "UPDATE messages SET wamid = ?2, status = ?3, updated_at = ?4 WHERE id = ?1",
            )?
            .execute(params![
                id,
                wamid,
                status.advance(MessageStatus::Sent).as_str(),
                now
            ])?;
            record_history(conn, id, MessageStatus::Sent, now)?;
        }
        SendResult::Failed(failure) => {
            let (errors, not_taken) = rows::failure_columns(failure)?;
            conn.prepare_cached(
                "UPDATE messages SET status = 'failed', errors_json = ?2, not_taken = ?3, \
                 updated_at = ?4 WHERE id = ?1",
            )?
            .execute(params![id, errors, not_taken, now])?;
            record_history(conn, id, MessageStatus::Failed, now)?;
        }
        // Only a send still in flight becomes unknown: a webhook may have settled it already.
        SendResult::Unknown if current == MessageStatus::Accepted => {
            conn.prepare_cached(
                "UPDATE messages SET status = 'outcome_unknown', updated_at = ?2 WHERE id = ?1",
            )?
            .execute(params![id, now])?;
            record_history(conn, id, MessageStatus::OutcomeUnknown, now)?;
        }
        SendResult::Unknown => {}
    }
    rows::load_message(conn, id)
}

/// Folds a row a status webhook created for `wamid` (before the send response
/// arrived) into the send's row `id`: history, errors, conversation. Returns
/// that row's status, `None` when there was no such row.
fn merge_webhook_row(
    conn: &Connection,
    id: i64,
    wamid: &str,
) -> Result<Option<MessageStatus>, StoreError> {
    let other: Option<(i64, MessageStatus, bool)> = conn
        .prepare_cached(
            "SELECT id, status, gateway_id IS NOT NULL FROM messages WHERE wamid = ?1 AND id <> ?2",
        )?
        .query_row(params![wamid, id], |r| {
            Ok((r.get(0)?, rows::status_column(r, 1)?, r.get(2)?))
        })
        .optional()?;
    let Some((other, status, is_send)) = other else {
        return Ok(None);
    };
    if is_send {
        // Another send was settled with this wamid by a webhook that matched it
        // on number, contact and text: a guess, which Kapso's answer overrules.
        // That send keeps its own row and goes back to waiting for its wamid.
        tracing::warn!(wamid, "wamid claimed by another send; detaching it");
        move_message_events(conn, other, id)?;
        conn.prepare_cached("UPDATE messages SET wamid = NULL WHERE id = ?1")?
            .execute([other])?;
        return Ok(None);
    }
    conn.prepare_cached(
        "INSERT INTO status_history (message_id, status, timestamp) \
         SELECT ?1, status, timestamp FROM status_history WHERE message_id = ?2 \
         ON CONFLICT (message_id, status) DO UPDATE SET timestamp = excluded.timestamp \
         WHERE excluded.timestamp < status_history.timestamp",
    )?
    .execute([id, other])?;
    conn.prepare_cached(
        "UPDATE messages SET \
           errors_json = coalesce((SELECT errors_json FROM messages WHERE id = ?2), errors_json), \
           conversation_id = CASE WHEN conversation_id = '' \
             THEN (SELECT conversation_id FROM messages WHERE id = ?2) ELSE conversation_id END \
         WHERE id = ?1",
    )?
    .execute([id, other])?;
    conn.prepare_cached("DELETE FROM status_history WHERE message_id = ?1")?
        .execute([other])?;
    move_message_events(conn, other, id)?;
    // Deleted before the caller sets the wamid on the send's row (it is unique).
    conn.prepare_cached("DELETE FROM messages WHERE id = ?1")?
        .execute([other])?;
    Ok(Some(status))
}

/// The send `id` holds `guessed`, a webhook's guess (same number, contact
/// and text), and Kapso answered with another wamid: the guess was wrong. The
/// events about `guessed` move to a row of its own, so that they stay known
/// under it (their re-delivery is a duplicate, and the send Kapso later
/// answers with `guessed` absorbs that row). The statuses the guess applied
/// stay with the send, as when another send's answer takes a guess back.
fn give_the_guess_a_row(
    conn: &Connection,
    id: i64,
    guessed: &str,
    now: i64,
) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE messages SET wamid = NULL WHERE id = ?1")?
        .execute([id])?;
    conn.prepare_cached(
        "INSERT INTO messages (wamid, direction, status, timestamp, created_at, updated_at) \
         VALUES (?1, 'outbound', 'accepted', ?2, ?2, ?2)",
    )?
    .execute(params![guessed, now])?;
    move_message_events(conn, id, conn.last_insert_rowid())
}

/// Hands the identities of the events about a wamid (see `ingest::Identity`)
/// from the row that held it to the row that holds it now. Before a row is
/// deleted: a message row's number can be given out again, and a new message
/// must not inherit them.
fn move_message_events(conn: &Connection, from: i64, to: i64) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE events SET message_row = ?2 WHERE message_row = ?1")?
        .execute([from, to])?;
    Ok(())
}
