//! Durable storage behind one small trait, so SQLite (the embedded default) and
//! PostgreSQL (to scale out) are interchangeable and pass one test suite.
//!
//! Every write method returns only once its effect is durable (committed and
//! fsynced): callers may acknowledge upstream as soon as it returns.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use tokio::sync::watch;

use crate::model::{
    Conversation, Delivery, EventFilter, GatewayId, Message, MessageLookup, MessagePage, Receipt,
    SendClaim, SendIntent, SendResult, StoredEvent,
};

mod command;
mod effect;
mod json_columns;
mod message_pages;
pub mod postgres;
pub mod sqlite;

/// Failure of the storage backend. Maps to gRPC `UNAVAILABLE` (retryable) or `INTERNAL`.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend cannot take requests now (writer gone, database locked, disk full): retry later.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// A bug or corrupted data: retrying will not help.
    #[error("store failure: {0}")]
    Internal(String),
    /// The caller's arguments cannot be applied (e.g. an unknown gateway id).
    #[error("{0}")]
    NotFound(String),
    /// `OUT_OF_RANGE`: a log position beyond the last durable event, or one
    /// whose following events retention has pruned; the message says which.
    #[error("{0}")]
    OutOfRange(String),
    /// `RESOURCE_EXHAUSTED`: a bounded set (named consumers) is full.
    #[error("{0}")]
    LimitReached(String),
}

/// Named consumers one store keeps at most: each is a row and a metric
/// series, so names must not grow without bound. A new name beyond is refused.
pub const MAX_CONSUMERS: usize = 1_000;

/// The gateway's storage. Held as `Arc<dyn Store>`.
#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug + 'static {
    /// Stores a delivery all-or-nothing, de-duplicated by delivery key and by each
    /// event's identity (a status by its message and status, see `effect`), atomically under
    /// concurrency (unique constraints, not check-then-insert). New events are
    /// appended to the log; message rows, status history and conversations are
    /// updated in the same transaction. Statuses only move forward.
    async fn ingest(&self, delivery: Delivery) -> Result<Receipt, StoreError>;

    /// A message by wamid, gateway id or idempotency key, tried in
    /// [`MessageLookup::ORDER`].
    async fn message(&self, lookup: &MessageLookup) -> Result<Option<Message>, StoreError>;

    /// A conversation's messages, oldest first. `cursor` is a previous page's `next_cursor`.
    async fn conversation_messages(
        &self,
        conversation_id: &str,
        page_size: usize,
        cursor: Option<&str>,
    ) -> Result<MessagePage, StoreError>;

    /// Up to `limit` log entries with sequence greater than `after` that match `filter`,
    /// in sequence order. Every entry a later call could return has a higher sequence
    /// than every entry returned now (no late-committing gaps), and every entry
    /// returned is durable: no crash can take it back and give its sequence to
    /// another event (SQLite stops at the last fsynced sequence; in PostgreSQL,
    /// with `synchronous_commit = on`, a commit is flushed before it is visible).
    ///
    /// `OutOfRange` when `after` is non-zero and retention has pruned events
    /// after it: the caller would otherwise skip them without knowing. `after`
    /// 0 means "from the oldest retained entry" and never fails so.
    async fn events_after(
        &self,
        after: u64,
        filter: &EventFilter,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError>;

    /// Highest sequence committed and durable so far, updated after every commit
    /// that appended. Readers wait on it instead of polling.
    fn committed(&self) -> watch::Receiver<u64>;

    /// A remembered conversation.
    async fn conversation(&self, id: &str) -> Result<Option<Conversation>, StoreError>;

    /// Up to `limit` conversations with `contact` (phone digits or user id),
    /// on `phone_number_id` when given, else on any business number; by id.
    async fn contact_conversations(
        &self,
        contact: &str,
        phone_number_id: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Conversation>, StoreError>;

    /// Unix seconds of the last inbound message from `contact` to `phone_number_id`.
    async fn last_inbound_at(
        &self,
        phone_number_id: &str,
        contact: &str,
    ) -> Result<Option<i64>, StoreError>;

    /// Records an outbound send before any upstream call, claiming its idempotency key.
    async fn begin_send(&self, intent: SendIntent) -> Result<SendClaim, StoreError>;

    /// Records how the upstream call of a started send ended and returns the message.
    /// A status webhook that arrived before this (same wamid) is merged, not lost.
    async fn finish_send(
        &self,
        gateway_id: &GatewayId,
        result: SendResult,
    ) -> Result<Message, StoreError>;

    /// Forgets a started send that certainly never reached Kapso, with its
    /// history, so that a retry under the same idempotency key calls Kapso again.
    /// Only a send still `Accepted` and without a wamid is forgotten; returns
    /// whether it was.
    async fn release_send(&self, gateway_id: &GatewayId) -> Result<bool, StoreError>;

    /// Settles every send still `Accepted` that was claimed before `claimed_before`
    /// (Unix seconds) as `OutcomeUnknown`, with its history; returns how many.
    /// Such a send's owner is gone (crash, shutdown, a lost commit answer): its
    /// request may or may not have left, and a status webhook can still settle it.
    /// Backends override it; the default settles nothing.
    async fn settle_abandoned_sends(&self, claimed_before: i64) -> Result<u64, StoreError> {
        let _ = claimed_before;
        Ok(0)
    }

    /// Moves a named consumer's position forward (never back); returns the position.
    /// `OutOfRange` beyond the last durable sequence (a consumer acknowledging
    /// what does not exist yet would skip it when it comes); `LimitReached` for
    /// a new name when [`MAX_CONSUMERS`] are known already.
    async fn ack(&self, consumer: &str, sequence: u64) -> Result<u64, StoreError>;

    /// Sets a named consumer's position to `sequence`, backwards included (to
    /// replay); returns the position. Refused as [`ack`](Self::ack) is: beyond
    /// the last durable sequence, or for a new name beyond [`MAX_CONSUMERS`].
    async fn seek(&self, consumer: &str, sequence: u64) -> Result<u64, StoreError>;

    /// A named consumer's acknowledged position, if it ever acknowledged.
    async fn consumer_position(&self, consumer: &str) -> Result<Option<u64>, StoreError>;

    /// Succeeds when the store accepts writes.
    async fn check_writable(&self) -> Result<(), StoreError>;

    /// Deletes, oldest first, up to `batch` log events, up to `batch` event keys
    /// and up to `batch` delivery keys received before `older_than_ms` (Unix ms),
    /// in one short write; returns how many rows went. Callers repeat until it
    /// returns 0, so ingest never waits behind one long delete. Messages and
    /// status history are kept. Sequences are never reused afterwards.
    ///
    /// Pruning a key lets a re-delivery of that event be stored again, so the
    /// retention must exceed the sender's retry horizon.
    ///
    /// Backends override it; the default prunes nothing.
    async fn prune(&self, older_than_ms: i64, batch: usize) -> Result<u64, StoreError> {
        let _ = (older_than_ms, batch);
        Ok(0)
    }

    /// Every named consumer and its acknowledged position, for lag metrics.
    /// Backends override it; the default knows none.
    async fn consumer_positions(&self) -> Result<Vec<(String, u64)>, StoreError> {
        Ok(Vec::new())
    }

    /// Registers a callback told the number of write requests each commit
    /// carried (group-commit batch sizes, for metrics). Backends that batch
    /// override it; the default ignores it.
    fn observe_commits(&self, observer: CommitObserver) {
        let _ = observer;
    }

    /// Resolves, with the reason, once the store has stopped for good: a
    /// failed fsync means the disk may have lost writes already answered as
    /// durable, so the process must exit and recover on restart. Backends
    /// that cannot fail so override it; the default never resolves.
    async fn stopped(&self) -> String {
        std::future::pending().await
    }
}

/// Called after each commit with the number of write requests it carried. Kept
/// to a plain callback so backends know nothing of the metrics behind it.
pub type CommitObserver = std::sync::Arc<dyn Fn(usize) + Send + Sync>;

/// Opens the store a `DATABASE_URL` names: PostgreSQL (shared by several
/// cores; a server still starting is waited for up to `postgres_start`) or
/// the embedded SQLite default, whose checkpoint thread pauses
/// `sqlite_checkpoint_interval` after a commit.
pub async fn open(
    url: &crate::config::DatabaseUrl,
    sqlite_checkpoint_interval: Duration,
    postgres_start: Duration,
) -> Result<std::sync::Arc<dyn Store>, StoreError> {
    use crate::config::DatabaseUrl;
    Ok(match url {
        DatabaseUrl::Postgres(url) => {
            std::sync::Arc::new(postgres::PostgresStore::open_waiting(url, postgres_start).await?)
        }
        DatabaseUrl::Sqlite(url) => std::sync::Arc::new(sqlite::SqliteStore::open_with(
            url,
            sqlite_checkpoint_interval,
        )?),
    })
}

/// Whether retention pruned events after `after` (see [`Store::events_after`]).
fn pruned_after(after: u64, pruned_through: u64) -> bool {
    after != 0 && after < pruned_through
}

/// The `OutOfRange` of a position retention has pruned past.
fn pruned_past(after: u64, pruned_through: u64, oldest: Option<u64>) -> StoreError {
    let oldest = match oldest {
        Some(oldest) => format!("the oldest retained is {oldest}"),
        None => "none is retained".to_owned(),
    };
    StoreError::OutOfRange(format!(
        "events after {after} up to {pruned_through} were pruned; {oldest} \
         (resume after {pruned_through} to accept the gap)"
    ))
}

/// The `OutOfRange` of an acknowledgement of what the log does not hold (yet).
fn beyond_the_log(sequence: u64, last: u64) -> StoreError {
    StoreError::OutOfRange(format!(
        "cannot acknowledge {sequence}: the log's last event is {last}"
    ))
}

/// The `LimitReached` of a new consumer name when the store keeps as many as it may.
fn too_many_consumers() -> StoreError {
    StoreError::LimitReached(format!(
        "{MAX_CONSUMERS} consumers are known; reuse a name instead of making a new one"
    ))
}

/// How a write may move a consumer's position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Move {
    /// An acknowledgement: forward only, so a late or concurrent one never
    /// makes the consumer process events again.
    Forward,
    /// A seek: wherever the owner says.
    To,
}

/// Milliseconds since the Unix epoch: the stores' clock for receipt and send times.
fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
