//! The claims and the append every event's statement is made of: claim the
//! delivery's key (when the event is the delivery's first), claim the event's
//! [`Identity`], and append the event to the log with it. A key or an identity
//! already claimed leaves `claimed` empty, which stops the event's own steps
//! (they select `FROM claimed`) and the append.
//!
//! The identity is laid out as SQLite's: a message event's kind beside its
//! message's row (`message_row`), any other's whole. It is looked up, not left
//! to `ON CONFLICT` (a conflicting insert would still use up a sequence
//! number); the lookup is safe because every batch that ingests holds the log
//! lock (see [`writer`](super::writer)) and so sees every earlier append
//! committed, and the unique indexes on the log back it.
//!
//! Parameters: `$1` the delivery key or NULL, `$2` the request time (ms), `$3`
//! the identity's [key](Identity::key), `$4`..`$15` the log's columns
//! ([`rows::LogValues`]); the event's own steps number theirs from `$16`, and
//! `$20` is the wamid of the message the identity is about. The statement
//! answers whether the delivery key was new (or absent) and the appended
//! sequence, NULL for an event seen before: [`outcome`] reads that.

use deadpool_postgres::ClientWrapper;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Row, Statement};

use super::rows;
use crate::model::{Claim, NewEvent};
use crate::store::StoreError;
use crate::store::effect::Identity;

/// The statement's head: claim the delivery key (`delivery`), find the row of
/// the message the identity is about (`named`, by the wamid `$20` the event's
/// [`MessageChange`](crate::store::effect::MessageChange) names; NULL for an
/// identity that is whole), and claim the identity (`claimed`, a row when
/// the delivery is new or keyless and the log holds no such identity yet).
macro_rules! claim_head {
    () => {
        "WITH delivery AS ( \
           INSERT INTO deliveries (key, received_at_ms) \
           SELECT $1::text, $2::bigint WHERE $1::text IS NOT NULL \
           ON CONFLICT DO NOTHING RETURNING 1), \
         named AS (SELECT id FROM messages WHERE wamid = $20::text), \
         known AS ( \
           SELECT 1 FROM events \
           WHERE $20::text IS NOT NULL AND message_row = (SELECT id FROM named) \
             AND dedup_key = $3::text \
           UNION ALL \
           SELECT 1 FROM events \
           WHERE $20::text IS NULL AND message_row IS NULL AND dedup_key = $3::text), \
         claimed AS ( \
           SELECT 1 WHERE ($1::text IS NULL OR EXISTS (SELECT 1 FROM delivery)) \
             AND NOT EXISTS (SELECT 1 FROM known))"
    };
}
pub(super) use claim_head;

/// The statement's tail: append the event with its identity, beside the row
/// of the message it changed (`message`, a CTE of the event's own steps),
/// and answer whether the delivery key was new (or absent) and the sequence.
macro_rules! append {
    () => {
        "appended AS ( \
           INSERT INTO events (received_at_ms, event_type, message_id, conversation_id, \
             phone_number_id, contact_phone, direction, message_type, text, reply_to, \
             timestamp, statuses_json, payload_json, dedup_key, message_row) \
           SELECT $2, $4::text, $5::text, $6::text, $7::text, $8::text, $9::text, \
             $10::text, $11::text, $12::text, $13::bigint, $14::text, $15::text, $3, \
             (SELECT id FROM message) \
           FROM claimed \
           RETURNING sequence) \
         SELECT $1::text IS NULL OR EXISTS (SELECT 1 FROM delivery), \
           (SELECT sequence FROM appended)"
    };
}
pub(super) use append;

/// What an event's statement amounted to.
pub(super) enum Stored {
    /// The delivery key was claimed before: nothing written.
    DuplicateDelivery,
    Event(Claim),
}

impl Stored {
    /// The event's claim, from a statement given no delivery key (which
    /// therefore cannot find the delivery a duplicate).
    pub(super) fn claim(self) -> Result<Claim, StoreError> {
        match self {
            Stored::Event(claim) => Ok(claim),
            Stored::DuplicateDelivery => Err(StoreError::Internal(
                "a duplicate delivery without a delivery key".into(),
            )),
        }
    }
}

/// The values for `$1`..`$15`, owned where the event does not hold them.
struct ClaimValues<'a> {
    delivery_key: Option<&'a str>,
    now_ms: i64,
    identity: String,
    log: rows::LogValues<'a>,
}

impl<'a> ClaimValues<'a> {
    fn new(
        event: &'a NewEvent,
        identity: &Identity<'_>,
        delivery_key: Option<&'a str>,
        now_ms: i64,
    ) -> Result<Self, StoreError> {
        Ok(Self {
            delivery_key,
            now_ms,
            identity: identity.key(),
            log: rows::LogValues::new(event)?,
        })
    }

    /// `$1`..`$15`; the caller appends its own steps' parameters.
    fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
        let mut params: Vec<&(dyn ToSql + Sync)> =
            vec![&self.delivery_key, &self.now_ms, &self.identity];
        params.extend(self.log.params());
        params
    }
}

/// Runs `stmt`, an event's statement made with [`claim_head!`] and [`append!`]: the
/// claim's parameters for `event` known by `identity`, then `own` from `$16`. The request goes out
/// at the first poll, before anything is awaited, so callers pipeline several
/// by polling them in order (see [`ingest`](super::ingest)).
pub(super) async fn run(
    conn: &ClientWrapper,
    stmt: &Statement,
    event: &NewEvent,
    identity: &Identity<'_>,
    delivery_key: Option<&str>,
    now_ms: i64,
    own: &[&(dyn ToSql + Sync)],
) -> Result<Stored, StoreError> {
    let values = ClaimValues::new(event, identity, delivery_key, now_ms)?;
    let mut params = values.params();
    params.extend_from_slice(own);
    outcome(&conn.query_one(stmt, &params).await?)
}

/// Reads the answer of a statement made with [`append!`].
fn outcome(row: &Row) -> Result<Stored, StoreError> {
    if !row.try_get::<_, bool>(0)? {
        return Ok(Stored::DuplicateDelivery);
    }
    Ok(Stored::Event(match row.try_get::<_, Option<i64>>(1)? {
        Some(sequence) => Claim::New {
            sequence: u64::try_from(sequence)
                .map_err(|_| StoreError::Internal("negative event sequence".into()))?,
        },
        None => Claim::Duplicate,
    }))
}
