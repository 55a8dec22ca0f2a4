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
use crate::model::{Claim, Delivery, NewEvent, Receipt};
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
            Some((first, after)) => {
                let stored = if first.is_inbound_message() {
                    let stmt = inbound::prepare(conn).await?;
                    let at = event_time(first, now_ms / 1000);
                    inbound::store(conn, &stmt, first, Some(key), now_ms, at).await?
                } else {
                    statuses::store(conn, first, Some(key), now_ms).await?
                };
                match stored {
                    Stored::DuplicateDelivery => return Ok(Receipt::DuplicateDelivery),
                    Stored::Event(claim) => claims.push(claim),
                }
                rest = after;
            }
            None => {
                if !claim_delivery(conn, key, now_ms).await? {
                    return Ok(Receipt::DuplicateDelivery);
                }
            }
        }
    }
    while let Some(event) = rest.first() {
        let received = rest.iter().take_while(|e| e.is_inbound_message()).count();
        if received == 0 {
            let stored = statuses::store(conn, event, None, now_ms).await?;
            claims.push(stored.claim()?);
            rest = &rest[1..];
        } else {
            claims.extend(store_received(conn, &rest[..received], now_ms).await?);
            rest = &rest[received..];
        }
    }
    Ok(Receipt::Stored(claims))
}

/// Stores received messages of a delivery whose key is claimed, pipelined:
/// each is one statement, the server runs them in the order sent, so a
/// message repeated within them is still found by its second statement.
async fn store_received(
    conn: &ClientWrapper,
    events: &[NewEvent],
    now_ms: i64,
) -> Result<Vec<Claim>, StoreError> {
    let stmt = inbound::prepare(conn).await?;
    let stmt = &stmt;
    try_join_all(events.iter().map(|event| async move {
        let at = event_time(event, now_ms / 1000);
        inbound::store(conn, stmt, event, None, now_ms, at)
            .await?
            .claim()
    }))
    .await
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

/// Stores deliveries that are each one statement, sending every statement
/// before reading the first answer. The server still runs them one after
/// another in this order, so the outcome is that of [`apply`] in turn, without
/// a round trip each.
///
/// A query is sent when it is first polled, and `try_join_all` first polls
/// each future once in the order given (also past 30 futures, where it
/// collects through `FuturesOrdered`). The statement is prepared beforehand so
/// that no query waits before it is sent.
pub(super) async fn apply_pipelined(
    conn: &ClientWrapper,
    deliveries: &[ReceivedAlone<'_>],
) -> Result<Vec<Receipt>, StoreError> {
    let stmt = inbound::prepare(conn).await?;
    let now_ms = unix_ms();
    let stored = try_join_all(deliveries.iter().map(|alone| {
        let at = event_time(alone.event, now_ms / 1000);
        inbound::store(conn, &stmt, alone.event, alone.key, now_ms, at)
    }))
    .await?;
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

/// The message's own time, or `now` when the event carries none.
pub(super) fn event_time(event: &NewEvent, now: i64) -> i64 {
    if event.timestamp > 0 {
        event.timestamp
    } else {
        now
    }
}
