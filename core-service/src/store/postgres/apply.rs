//! Applies a new event's [`Effect`] in one statement per event: after the
//! claims and the append ([`claim`]), the general statement upserts the
//! conversation the effect describes, finds the message (by wamid, else the
//! pending send the effect may settle), changes or creates its row, and
//! records its history. Every value and every decision comes from the effect;
//! the statement only writes them. A message change that settles no send and
//! moves no status (a received message) only fills in its row's blanks, so it
//! takes a leaner statement of the same steps, one upsert by wamid
//! ([`STORE_FILLING`]).
//!
//! Nothing is decided between round trips, so statements sent one after
//! another (pipelined, see [`ingest`](super::ingest)) have the outcome of
//! storing their events in turn: each sees what the ones before it wrote.
//! The status moves without a prior read: the effect names the statuses it
//! moves a message from ([`MessageChange::moves_from`]), and a row holding
//! any other keeps it.

use deadpool_postgres::ClientWrapper;
use tokio_postgres::Statement;
use tokio_postgres::types::ToSql;

use super::claim::{self, Stored, append, claim_head};
use super::rows::encode_errors;
use crate::model::{ConversationId, EncodedContent, NewEvent, Wamid};
use crate::store::StoreError;
use crate::store::effect::{ConversationChange, Effect, MessageChange, PendingSend};

/// The statements an effect is applied with, prepared before any event goes
/// out so that no query waits behind a preparation.
pub(super) struct Statements {
    /// [`STORE_EVENT`]: any effect.
    any: Statement,
    /// [`STORE_FILLING`]: an effect whose message change only fills blanks.
    filling: Statement,
}

impl Statements {
    /// Prepared once per connection; later calls find them cached.
    pub(super) async fn prepare(conn: &ClientWrapper) -> Result<Self, StoreError> {
        Ok(Self {
            any: conn.prepare_cached(STORE_EVENT).await?,
            filling: conn.prepare_cached(STORE_FILLING).await?,
        })
    }
}

/// Stores `event`, claiming `delivery_key` first when given, with the
/// statement of `statements` its effect needs. Goes out at the first poll.
pub(super) async fn store(
    conn: &ClientWrapper,
    statements: &Statements,
    event: &NewEvent,
    delivery_key: Option<&str>,
    now_ms: i64,
) -> Result<Stored, StoreError> {
    let effect = Effect::of(event, now_ms / 1000);
    // The head finds the identity's message by the change's wamid (`$20`).
    debug_assert_eq!(
        effect.identity.message(),
        effect.message.as_ref().map(|m| m.wamid)
    );
    let conversation = ConversationValues::new(effect.conversation.as_ref());
    let mut own = conversation.params().to_vec();
    let (stmt, any, filling);
    match effect.message.as_ref().and_then(FillingValues::new) {
        Some(values) => {
            filling = values?;
            own.extend(filling.params());
            stmt = &statements.filling;
        }
        None => {
            any = MessageValues::new(effect.message.as_ref())?;
            own.extend(any.params());
            stmt = &statements.any;
        }
    }
    claim::run(
        conn,
        stmt,
        event,
        &effect.identity,
        delivery_key,
        now_ms,
        &own,
    )
    .await
}

/// `$16`..`$19`: the conversation change, all NULL when there is none.
struct ConversationValues<'a> {
    id: Option<&'a str>,
    phone_number_id: Option<&'a str>,
    contact_phone: Option<&'a str>,
    last_inbound_at: Option<i64>,
}

impl<'a> ConversationValues<'a> {
    fn new(change: Option<&ConversationChange<'a>>) -> Self {
        Self {
            id: change.map(|c| c.id.as_str()),
            phone_number_id: change.map(|c| c.phone_number_id),
            contact_phone: change.map(|c| c.contact_phone),
            last_inbound_at: change.and_then(|c| c.last_inbound_at),
        }
    }

    fn params(&self) -> [&(dyn ToSql + Sync); 4] {
        [
            &self.id,
            &self.phone_number_id,
            &self.contact_phone,
            &self.last_inbound_at,
        ]
    }
}

/// `$20`..`$43`: the message change; `$20` (its wamid) NULL when there is
/// none, and then nothing else is read.
#[derive(Default)]
struct MessageValues<'a> {
    wamid: Option<&'a str>,
    // The pending send it may settle: `$21` NULL when it may settle none.
    pending_phone_number_id: Option<&'a str>,
    pending_contact_phone: &'a str,
    pending_text: &'a str,
    pending_since: i64,
    pending_statuses: Vec<&'static str>,
    pending_candidates: i64,
    pending_sole_only: bool,
    // How the row changes.
    moves_from: Vec<&'static str>,
    toward: Option<&'static str>,
    errors: Option<String>,
    now: i64,
    conversation_id: &'a str,
    phone_number_id: &'a str,
    contact_phone: &'a str,
    message_type: &'a str,
    text: &'a str,
    reply_to: &'a str,
    content: Option<&'a [u8]>,
    // A row created for it.
    direction: &'static str,
    status: &'static str,
    timestamp: i64,
    history_statuses: Vec<&'static str>,
    history_times: Vec<i64>,
}

impl<'a> MessageValues<'a> {
    fn new(change: Option<&MessageChange<'a>>) -> Result<Self, StoreError> {
        let Some(change) = change else {
            return Ok(Self::default());
        };
        let pending = change.settles.as_ref();
        let fields = &change.fields;
        Ok(Self {
            wamid: Some(change.wamid.as_str()),
            pending_phone_number_id: pending.map(|p| p.phone_number_id),
            pending_contact_phone: pending.map_or("", |p| p.contact_phone),
            pending_text: pending.map_or("", |p| p.text),
            pending_since: pending.map_or(0, |p| p.claimed_since),
            pending_statuses: PendingSend::WAITING.iter().map(|s| s.as_str()).collect(),
            pending_candidates: PendingSend::CANDIDATES as i64,
            pending_sole_only: pending.is_some_and(PendingSend::sole_only),
            moves_from: change.moves_from().iter().map(|s| s.as_str()).collect(),
            toward: change.toward.map(|s| s.as_str()),
            errors: change.errors.map(encode_errors).transpose()?.flatten(),
            now: change.now,
            conversation_id: fields.conversation_id.map_or("", ConversationId::as_str),
            phone_number_id: fields.phone_number_id,
            contact_phone: fields.contact_phone,
            message_type: fields.message_type,
            text: fields.text,
            reply_to: fields.reply_to.map_or("", Wamid::as_str),
            content: fields.content.map(EncodedContent::as_bytes),
            direction: change.created.direction.as_str(),
            status: change.created.status.as_str(),
            timestamp: change.created.timestamp,
            history_statuses: change.history.iter().map(|h| h.status.as_str()).collect(),
            history_times: change.history.iter().map(|h| h.at).collect(),
        })
    }

    fn params(&self) -> [&(dyn ToSql + Sync); 24] {
        [
            &self.wamid,
            &self.pending_phone_number_id,
            &self.pending_contact_phone,
            &self.pending_text,
            &self.pending_since,
            &self.pending_statuses,
            &self.pending_candidates,
            &self.pending_sole_only,
            &self.moves_from,
            &self.toward,
            &self.errors,
            &self.now,
            &self.conversation_id,
            &self.phone_number_id,
            &self.contact_phone,
            &self.message_type,
            &self.text,
            &self.reply_to,
            &self.content,
            &self.direction,
            &self.status,
            &self.timestamp,
            &self.history_statuses,
            &self.history_times,
        ]
    }
}

/// The conversation the effect describes (`$16`..`$19`, `$16` NULL when
/// none), upserted: blanks filled in, the last inbound time only moved
/// forward (GREATEST ignores NULLs).
macro_rules! upsert_conversation {
    () => {
        "conversation AS ( \
          INSERT INTO conversations AS c (id, phone_number_id, contact_phone, last_inbound_at) \
          SELECT $16::text, $17::text, $18::text, $19::bigint FROM claimed WHERE $16 IS NOT NULL \
          ON CONFLICT (id) DO UPDATE SET \
            phone_number_id = CASE WHEN c.phone_number_id = '' \
              THEN excluded.phone_number_id ELSE c.phone_number_id END, \
            contact_phone = CASE WHEN c.contact_phone = '' \
              THEN excluded.contact_phone ELSE c.contact_phone END, \
            last_inbound_at = GREATEST(c.last_inbound_at, excluded.last_inbound_at))"
    };
}

/// Parameters after the claim's, as [`ConversationValues`] and
/// [`MessageValues`] list them: the conversation `$16`..`$19`; the message's
/// wamid `$20`; the pending send `$21`..`$27` (number, contact, text, claimed
/// since, the statuses it may hold, how many candidates, whether only a sole
/// one is picked); the change `$28`..`$38` (statuses it moves from, toward,
/// errors, now, then the fields filled in where blank); a created row's
/// direction, status and time `$39`..`$41`; the history `$42`/`$43`.
///
/// The update picks its row by `id = (SELECT id FROM target)`: written as a
/// join with that CTE, it was planned as a scan of `messages`.
pub(super) const STORE_EVENT: &str = concat!(
    claim_head!(),
    ", ",
    upsert_conversation!(),
    ", ",
    "pending AS ( \
      SELECT id, created_at FROM messages \
      WHERE $21::text IS NOT NULL AND NOT EXISTS (SELECT 1 FROM named) \
        AND EXISTS (SELECT 1 FROM claimed) \
        AND wamid IS NULL AND phone_number_id = $21 AND contact_phone = $22::text \
        AND direction = 'outbound' AND status = ANY($25::text[]) \
        AND created_at >= $24::bigint AND ($23::text = '' OR text = $23) \
      ORDER BY created_at, id LIMIT $26::bigint)",
    ", ",
    "target AS ( \
      SELECT id FROM named WHERE EXISTS (SELECT 1 FROM claimed) \
      UNION ALL \
      (SELECT id FROM pending \
       WHERE NOT $27::bool OR (SELECT count(*) FROM pending) = 1 \
       ORDER BY created_at, id LIMIT 1))",
    ", ",
    "moved AS ( \
      UPDATE messages AS m SET \
        status = CASE WHEN m.status = ANY($28::text[]) THEN $29::text ELSE m.status END, \
        errors_json = coalesce($30::text, m.errors_json), \
        wamid = coalesce(m.wamid, $20), \
        conversation_id = CASE WHEN m.conversation_id = '' THEN $32::text \
          ELSE m.conversation_id END, \
        phone_number_id = CASE WHEN m.phone_number_id = '' THEN $33::text \
          ELSE m.phone_number_id END, \
        contact_phone = CASE WHEN m.contact_phone = '' THEN $34::text \
          ELSE m.contact_phone END, \
        type = CASE WHEN m.type = '' THEN $35::text ELSE m.type END, \
        text = CASE WHEN m.text = '' THEN $36::text ELSE m.text END, \
        reply_to = CASE WHEN m.reply_to = '' THEN $37::text ELSE m.reply_to END, \
        content = coalesce(m.content, $38::bytea), \
        updated_at = $31::bigint \
      WHERE m.id = (SELECT id FROM target) \
      RETURNING m.id)",
    ", ",
    "created AS ( \
      INSERT INTO messages (wamid, direction, conversation_id, phone_number_id, contact_phone, \
        type, text, reply_to, status, errors_json, timestamp, created_at, updated_at, content) \
      SELECT $20, $39::text, $32, $33, $34, $35, $36, $37, $40::text, $30, $41::bigint, \
        $31, $31, $38 \
      FROM claimed WHERE $20 IS NOT NULL AND NOT EXISTS (SELECT 1 FROM target) \
      RETURNING id)",
    ", ",
    "message AS (SELECT id FROM moved UNION ALL SELECT id FROM created)",
    ", ",
    "history AS ( \
      INSERT INTO status_history AS h (message_id, status, timestamp) \
      SELECT message.id, reported.status, min(reported.at) \
      FROM message, \
        unnest($42::text[], $43::bigint[]) AS reported (status, at) \
      GROUP BY message.id, reported.status \
      ON CONFLICT (message_id, status) DO UPDATE SET timestamp = excluded.timestamp \
      WHERE excluded.timestamp < h.timestamp)",
    ", ",
    append!(),
);

/// `$20`..`$34` of [`STORE_FILLING`]: a message change that settles no send,
/// moves no status and records at most one history entry (a received
/// message), so that its row is found by its wamid alone and only has its
/// blanks filled in.
struct FillingValues<'a> {
    wamid: &'a str,
    errors: Option<String>,
    now: i64,
    conversation_id: &'a str,
    phone_number_id: &'a str,
    contact_phone: &'a str,
    message_type: &'a str,
    text: &'a str,
    reply_to: &'a str,
    content: Option<&'a [u8]>,
    direction: &'static str,
    status: &'static str,
    timestamp: i64,
    history_status: Option<&'static str>,
    history_time: Option<i64>,
}

impl<'a> FillingValues<'a> {
    /// The values of `change`, `None` when it needs [`STORE_EVENT`].
    fn new(change: &MessageChange<'a>) -> Option<Result<Self, StoreError>> {
        let history = match change.history.as_slice() {
            [] => None,
            [entry] => Some(entry),
            _ => return None,
        };
        if change.settles.is_some() || !change.moves_from().is_empty() {
            return None;
        }
        let errors = match change.errors.map(encode_errors).transpose() {
            Ok(errors) => errors.flatten(),
            Err(e) => return Some(Err(e)),
        };
        let fields = &change.fields;
        Some(Ok(Self {
            wamid: change.wamid.as_str(),
            errors,
            now: change.now,
            conversation_id: fields.conversation_id.map_or("", ConversationId::as_str),
            phone_number_id: fields.phone_number_id,
            contact_phone: fields.contact_phone,
            message_type: fields.message_type,
            text: fields.text,
            reply_to: fields.reply_to.map_or("", Wamid::as_str),
            content: fields.content.map(EncodedContent::as_bytes),
            direction: change.created.direction.as_str(),
            status: change.created.status.as_str(),
            timestamp: change.created.timestamp,
            history_status: history.map(|h| h.status.as_str()),
            history_time: history.map(|h| h.at),
        }))
    }

    fn params(&self) -> [&(dyn ToSql + Sync); 15] {
        [
            &self.wamid,
            &self.errors,
            &self.now,
            &self.conversation_id,
            &self.phone_number_id,
            &self.contact_phone,
            &self.message_type,
            &self.text,
            &self.reply_to,
            &self.content,
            &self.direction,
            &self.status,
            &self.timestamp,
            &self.history_status,
            &self.history_time,
        ]
    }
}

/// [`STORE_EVENT`] for a change [`FillingValues`] takes, as one upsert by
/// wamid: the conversation `$16`..`$19` as there; the wamid `$20`; errors
/// `$21` and now `$22`; the fields filled in where blank `$23`..`$29`; a
/// created row's direction, status and time `$30`..`$32`; the history entry
/// `$33`/`$34`, `$33` NULL when there is none. Received messages are most of
/// what is stored, and the general statement's lookups cost them a third of
/// their rate.
pub(super) const STORE_FILLING: &str = concat!(
    claim_head!(),
    ", ",
    upsert_conversation!(),
    ", ",
    "message AS ( \
      INSERT INTO messages AS m (wamid, direction, conversation_id, phone_number_id, \
        contact_phone, type, text, reply_to, status, errors_json, timestamp, created_at, \
        updated_at, content) \
      SELECT $20, $30::text, $23::text, $24::text, $25::text, $26::text, $27::text, \
        $28::text, $31::text, $21::text, $32::bigint, $22::bigint, $22, $29::bytea \
      FROM claimed \
      ON CONFLICT (wamid) DO UPDATE SET \
        errors_json = coalesce(excluded.errors_json, m.errors_json), \
        conversation_id = CASE WHEN m.conversation_id = '' \
          THEN excluded.conversation_id ELSE m.conversation_id END, \
        phone_number_id = CASE WHEN m.phone_number_id = '' \
          THEN excluded.phone_number_id ELSE m.phone_number_id END, \
        contact_phone = CASE WHEN m.contact_phone = '' \
          THEN excluded.contact_phone ELSE m.contact_phone END, \
        type = CASE WHEN m.type = '' THEN excluded.type ELSE m.type END, \
        text = CASE WHEN m.text = '' THEN excluded.text ELSE m.text END, \
        reply_to = CASE WHEN m.reply_to = '' THEN excluded.reply_to ELSE m.reply_to END, \
        content = coalesce(m.content, excluded.content), \
        updated_at = excluded.updated_at \
      RETURNING id)",
    ", ",
    "history AS ( \
      INSERT INTO status_history AS h (message_id, status, timestamp) \
      SELECT id, $33::text, $34::bigint FROM message WHERE $33 IS NOT NULL \
      ON CONFLICT (message_id, status) DO UPDATE SET timestamp = excluded.timestamp \
      WHERE excluded.timestamp < h.timestamp)",
    ", ",
    append!(),
);
