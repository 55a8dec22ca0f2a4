//! How the conversation changes of a delivery's new events are written: once
//! per conversation ([`Conversations`]), after the events, changing only what moves.

use rusqlite::{Connection, params};

use crate::store::StoreError;
use crate::store::effect::Conversations;

/// Writes the changes of a delivery's new events, once per conversation.
pub(super) fn remember(conn: &Connection, seen: &Conversations<'_>) -> Result<(), StoreError> {
    for change in seen.changes() {
        // A new conversation, or one whose identity is still blank: the
        // upsert fills in what is known, never overwriting with a blank.
        let upserted = conn
            .prepare_cached(
                "INSERT INTO conversations (id, phone_number_id, contact_phone, last_inbound_at) \
                     VALUES (?1, ?2, ?3, ?4) \
                     ON CONFLICT (id) DO UPDATE SET \
                       phone_number_id = CASE WHEN phone_number_id = '' \
                         THEN excluded.phone_number_id ELSE phone_number_id END, \
                       contact_phone = CASE WHEN contact_phone = '' \
                         THEN excluded.contact_phone ELSE contact_phone END, \
                       last_inbound_at = max(coalesce(last_inbound_at, excluded.last_inbound_at), \
                                             coalesce(excluded.last_inbound_at, last_inbound_at)) \
                     WHERE phone_number_id = '' OR contact_phone = ''",
            )?
            .execute(params![
                change.id.as_str(),
                change.phone_number_id,
                change.contact_phone,
                change.last_inbound_at
            ])?;
        // A known conversation (nearly always): only its last inbound time
        // may move, and only forward. It is set alone because SQLite
        // rewrites the entries of every index whose column an UPDATE sets,
        // even to the value they had: setting the identity too dirtied a
        // page of the by-contact index with every received message. A row
        // this would not change is left alone, so its page stays out of
        // the commit (every status of a busy conversation).
        if upserted == 0
            && let Some(at) = change.last_inbound_at
        {
            conn.prepare_cached(
                "UPDATE conversations SET last_inbound_at = ?2 \
                     WHERE id = ?1 AND (last_inbound_at IS NULL OR last_inbound_at < ?2)",
            )?
            .execute(params![change.id.as_str(), at])?;
        }
    }
    Ok(())
}
