//! The head every event's statement starts with: claim the delivery's key (when
//! the event is the delivery's first), claim the event's identity, append the
//! event to the log. Each is a data-modifying CTE fed by the `RETURNING` rows
//! of the one before it, so a key or an identity already claimed stops the
//! chain, and so do the steps an event's own statement adds after it (they
//! select `FROM claimed`). The steps write to different tables, so sharing one
//! snapshot, as the CTEs of a statement do, hides nothing from any of them.
//!
//! Parameters: `$1` the delivery key or NULL, `$2` the request time (ms), `$3`
//! the event's identity, `$4`..`$15` the log's columns ([`rows::LogValues`]);
//! an event's own steps number theirs from `$16`. The statement answers whether
//! the delivery key was new (or absent) and the appended sequence, NULL for an
//! event seen before: [`outcome`] reads that.

use deadpool_postgres::ClientWrapper;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Row, Statement};

use super::rows;
use crate::model::{Claim, NewEvent};
use crate::store::StoreError;
use crate::store::effect::Identity;

/// One statement: the claims and the append, then the CTEs given (each
/// `name AS (..)`, selecting `FROM claimed`), then the answer.
macro_rules! claim_and_append {
    ($($step:literal),* $(,)?) => {
        concat!(
            "WITH delivery AS ( \
               INSERT INTO deliveries (key, received_at_ms) \
               SELECT $1::text, $2::bigint WHERE $1::text IS NOT NULL \
               ON CONFLICT DO NOTHING RETURNING 1), \
             claimed AS ( \
               INSERT INTO event_keys (key, received_at_ms) \
               SELECT $3::text, $2::bigint \
               WHERE $1::text IS NULL OR EXISTS (SELECT 1 FROM delivery) \
               ON CONFLICT DO NOTHING RETURNING 1), \
             appended AS ( \
               INSERT INTO events (received_at_ms, event_type, message_id, conversation_id, \
                 phone_number_id, contact_phone, direction, message_type, text, reply_to, \
                 timestamp, statuses_json, payload_json) \
               SELECT $2, $4::text, $5::text, $6::text, $7::text, $8::text, $9::text, \
                 $10::text, $11::text, $12::text, $13::bigint, $14::text, $15::text \
               FROM claimed \
               RETURNING sequence)",
            $(", ", $step,)*
            " SELECT $1::text IS NULL OR EXISTS (SELECT 1 FROM delivery), \
               (SELECT sequence FROM appended)"
        )
    };
}
pub(super) use claim_and_append;

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
            identity: identity.to_string(),
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

/// Runs `stmt`, an event's statement made with [`claim_and_append!`]: the
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

/// Reads the answer of a statement made with [`claim_and_append!`].
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
