//! How a delivery changes the store: claim its key, claim each event's
//! identity, append new events to the log, and apply them to conversations and
//! messages. Runs on the writer connection inside the batch transaction, after
//! the batch took the log lock (see [`writer`](super::writer)).
//!
//! De-duplication relies on primary keys (`INSERT .. ON CONFLICT DO NOTHING`
//! and whether a row came back), never on a prior lookup: it holds against
//! another replica's transaction as well as within a batch.
//!
//! Every event is ONE statement ([`apply`]). Nothing is decided in between, so statements are
//! sent together and their answers read afterwards: one round trip for many
//! events. The server still runs them one after another in the order sent, each
//! seeing what the ones before it wrote, so the outcome is that of storing the
//! events in turn: a repeated message is found by its second statement,
//! sequences follow the order given, and a status follows a message stored just
//! before it.

use deadpool_postgres::ClientWrapper;
use futures::future::try_join_all;

use super::claim::Stored;
use super::{apply, unix_ms};
use crate::model::{Delivery, NewEvent, Receipt};
use crate::store::StoreError;

/// Stores `delivery`; see [`Store::ingest`](crate::store::Store::ingest).
pub(super) async fn apply(
    conn: &ClientWrapper,
    delivery: &Delivery,
) -> Result<Receipt, StoreError> {
    let now_ms = unix_ms();
    let statements = Statements::prepare(conn).await?;
    let mut events = delivery.events.as_slice();
    let mut claims = Vec::with_capacity(events.len());
    // The key decides whether anything is written, so its claim, in the first
    // event's statement, is answered before the other events go out.
    if let Some(key) = delivery.key.as_deref() {
        match events.split_first() {
            Some((first, rest)) => match statements.store(conn, first, Some(key), now_ms).await? {
                Stored::DuplicateDelivery => return Ok(Receipt::DuplicateDelivery),
                Stored::Event(claim) => {
                    claims.push(claim);
                    events = rest;
                }
            },
            None if !claim_delivery(conn, key, now_ms).await? => {
                return Ok(Receipt::DuplicateDelivery);
            }
            None => {}
        }
    }
    let pipelined = events.iter().map(|event| (event, None));
    for stored in statements.store_pipelined(conn, pipelined, now_ms).await? {
        claims.push(stored.claim()?);
    }
    Ok(Receipt::Stored(claims))
}

/// A delivery that is one statement: a single event, which [`apply_pipelined`]
/// can send along with others.
pub(super) struct SingleEvent<'a> {
    key: Option<&'a str>,
    event: &'a NewEvent,
}

/// `delivery` as one statement, when it is one.
pub(super) fn single_event(delivery: &Delivery) -> Option<SingleEvent<'_>> {
    match delivery.events.as_slice() {
        [event] => Some(SingleEvent {
            key: delivery.key.as_deref(),
            event,
        }),
        _ => None,
    }
}

/// Stores deliveries that are each one statement, pipelined: the outcome is
/// that of [`apply`] on each in turn.
pub(super) async fn apply_pipelined(
    conn: &ClientWrapper,
    deliveries: &[SingleEvent<'_>],
) -> Result<Vec<Receipt>, StoreError> {
    let statements = Statements::prepare(conn).await?;
    let events = deliveries.iter().map(|single| (single.event, single.key));
    let stored = statements.store_pipelined(conn, events, unix_ms()).await?;
    Ok(stored
        .into_iter()
        .map(|stored| match stored {
            Stored::DuplicateDelivery => Receipt::DuplicateDelivery,
            Stored::Event(claim) => Receipt::Stored(vec![claim]),
        })
        .collect())
}

/// The statements events take, prepared before any goes out so that no
/// query waits behind a preparation.
struct Statements {
    apply: apply::Statements,
}

impl Statements {
    /// Prepared once per connection; later calls find them cached.
    async fn prepare(conn: &ClientWrapper) -> Result<Self, StoreError> {
        Ok(Self {
            apply: apply::Statements::prepare(conn).await?,
        })
    }

    /// Stores `event`, claiming `delivery_key` first when given. The request
    /// goes out at the first poll.
    async fn store(
        &self,
        conn: &ClientWrapper,
        event: &NewEvent,
        delivery_key: Option<&str>,
        now_ms: i64,
    ) -> Result<Stored, StoreError> {
        apply::store(conn, &self.apply, event, delivery_key, now_ms).await
    }

    /// Stores events, each claiming the delivery key given with it, sending
    /// every statement before reading the first answer (see the module docs).
    ///
    /// A query is sent when it is first polled, and `try_join_all` first polls
    /// each future once in the order given (also past 30 futures, where it
    /// collects through `FuturesOrdered`).
    async fn store_pipelined<'a>(
        &self,
        conn: &ClientWrapper,
        events: impl Iterator<Item = (&'a NewEvent, Option<&'a str>)>,
        now_ms: i64,
    ) -> Result<Vec<Stored>, StoreError> {
        try_join_all(events.map(|(event, key)| self.store(conn, event, key, now_ms))).await
    }
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
