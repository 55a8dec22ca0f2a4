//! How a delivery changes the store: claim its key, claim each event's
//! identity, append new events to the log, and apply them to conversations and
//! messages. Runs on the writer connection inside the batch transaction, after
//! the batch took the log lock (see [`writer`](super::writer)).
//!
//! De-duplication relies on primary keys (`INSERT .. ON CONFLICT DO NOTHING`
//! and whether a row came back), never on a prior lookup: it holds against
//! another replica's transaction as well as within a batch. A received message
//! takes one statement ([`inbound`](super::inbound)); a status two round trips
//! ([`statuses`](super::statuses)).

use deadpool_postgres::ClientWrapper;
use futures::future::try_join_all;

use super::claim::Stored;
use super::{inbound, statuses, unix_ms};
use crate::model::{Delivery, NewEvent, Receipt};
use crate::store::StoreError;

/// Stores `delivery`; see [`Store::ingest`](crate::store::Store::ingest).
pub(super) async fn apply(
    conn: &ClientWrapper,
    delivery: &Delivery,
) -> Result<Receipt, StoreError> {
    let now_ms = unix_ms();
    let mut claims = Vec::with_capacity(delivery.events.len());
    let mut rest = delivery.events.as_slice();
    // The key decides whether anything is written, so its claim is awaited
    // first, in the first event's statement.
    if let Some(key) = delivery.key.as_deref() {
        match rest.split_first() {
            Some((first, after)) => match store_one(conn, first, Some(key), now_ms).await? {
                Stored::DuplicateDelivery => return Ok(Receipt::DuplicateDelivery),
                Stored::Event(claim) => {
                    claims.push(claim);
                    rest = after;
                }
            },
            None if !claim_delivery(conn, key, now_ms).await? => {
                return Ok(Receipt::DuplicateDelivery);
            }
            None => {}
        }
    }
    while let Some(first) = rest.first() {
        // Received messages in a row go out pipelined; any other event alone.
        let run = rest.iter().take_while(|e| e.is_inbound_message()).count();
        if run > 1 {
            let messages = rest[..run].iter().map(|event| (event, None));
            for stored in store_pipelined(conn, messages, now_ms).await? {
                claims.push(stored.claim()?);
            }
        } else {
            claims.push(store_one(conn, first, None, now_ms).await?.claim()?);
        }
        rest = &rest[run.max(1)..];
    }
    Ok(Receipt::Stored(claims))
}

/// Stores `event`, claiming `delivery_key` first when given.
async fn store_one(
    conn: &ClientWrapper,
    event: &NewEvent,
    delivery_key: Option<&str>,
    now_ms: i64,
) -> Result<Stored, StoreError> {
    if event.is_inbound_message() {
        let stmt = inbound::prepare(conn).await?;
        inbound::store(conn, &stmt, event, delivery_key, now_ms).await
    } else {
        statuses::store(conn, event, delivery_key, now_ms).await
    }
}

/// Stores received messages, each claiming the delivery key given with it,
/// sending every statement before reading the first answer. The server still
/// runs them one after another in this order, so the outcome is that of
/// storing them in turn, without a round trip each: a message repeated among
/// them is found by its second statement.
///
/// A query is sent when it is first polled, and `try_join_all` first polls
/// each future once in the order given (also past 30 futures, where it
/// collects through `FuturesOrdered`). The statement is prepared beforehand so
/// that no query waits before it is sent.
async fn store_pipelined<'a>(
    conn: &ClientWrapper,
    messages: impl Iterator<Item = (&'a NewEvent, Option<&'a str>)>,
    now_ms: i64,
) -> Result<Vec<Stored>, StoreError> {
    let stmt = inbound::prepare(conn).await?;
    try_join_all(messages.map(|(event, key)| inbound::store(conn, &stmt, event, key, now_ms))).await
}

/// A delivery that is one statement: a single received message, which
/// [`apply_pipelined`] can send along with others.
pub(super) struct ReceivedAlone<'a> {
    key: Option<&'a str>,
    event: &'a NewEvent,
}

/// `delivery` as one statement, when it is one.
pub(super) fn received_alone(delivery: &Delivery) -> Option<ReceivedAlone<'_>> {
    match delivery.events.as_slice() {
        [event] if event.is_inbound_message() => Some(ReceivedAlone {
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
    deliveries: &[ReceivedAlone<'_>],
) -> Result<Vec<Receipt>, StoreError> {
    let messages = deliveries.iter().map(|alone| (alone.event, alone.key));
    let stored = store_pipelined(conn, messages, unix_ms()).await?;
    Ok(stored
        .into_iter()
        .map(|stored| match stored {
            Stored::DuplicateDelivery => Receipt::DuplicateDelivery,
            Stored::Event(claim) => Receipt::Stored(vec![claim]),
        })
        .collect())
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
