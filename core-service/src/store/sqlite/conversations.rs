//! What a delivery's new events say of their conversations, and how that is
//! written: once per conversation, after the events, changing only what moves.

use std::collections::BTreeMap;

use rusqlite::{Connection, params};

use crate::model::NewEvent;
use crate::store::StoreError;

/// What a delivery's new events say of their conversations, written once per
/// conversation when the events are in: a batch is usually one conversation's
/// messages, and one write leaves what one per event would.
#[derive(Default)]
pub(super) struct SeenConversations<'a>(BTreeMap<&'a str, SeenConversation<'a>>);

struct SeenConversation<'a> {
    phone_number_id: &'a str,
    contact_phone: &'a str,
    last_inbound_at: Option<i64>,
}

impl<'a> SeenConversations<'a> {
    /// Folds `event` in by the upsert's own rules: the first identity that is
    /// not blank wins, the last inbound time only moves forward.
    pub(super) fn saw(&mut self, event: &'a NewEvent, inbound_at: Option<i64>) {
        let seen = self
            .0
            .entry(&event.conversation_id)
            .or_insert(SeenConversation {
                phone_number_id: "",
                contact_phone: "",
                last_inbound_at: None,
            });
        if seen.phone_number_id.is_empty() {
            seen.phone_number_id = &event.phone_number_id;
        }
        if seen.contact_phone.is_empty() {
            seen.contact_phone = &event.contact_phone;
        }
        seen.last_inbound_at = seen.last_inbound_at.max(inbound_at);
    }

    pub(super) fn remember(&self, conn: &Connection) -> Result<(), StoreError> {
        for (id, seen) in &self.0 {
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
                    id,
                    seen.phone_number_id,
                    seen.contact_phone,
                    seen.last_inbound_at
                ])?;
            // A known conversation (nearly always): only its last inbound time
            // may move, and only forward. It is set alone because SQLite
            // rewrites the entries of every index whose column an UPDATE sets,
            // even to the value they had: setting the identity too dirtied a
            // page of the by-contact index with every received message. A row
            // this would not change is left alone, so its page stays out of
            // the commit (every status of a busy conversation).
            if upserted == 0
                && let Some(at) = seen.last_inbound_at
            {
                conn.prepare_cached(
                    "UPDATE conversations SET last_inbound_at = ?2 \
                     WHERE id = ?1 AND (last_inbound_at IS NULL OR last_inbound_at < ?2)",
                )?
                .execute(params![id, at])?;
            }
        }
        Ok(())
    }
}
