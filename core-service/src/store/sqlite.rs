//! The embedded SQLite backend: one file, durable on return, fast enough for
//! one gateway node.
//!
//! - [`writer`]: the single writer thread that group-commits every write
//! - [`durable`]: the fsync thread that makes each commit durable and answers it
//! - [`checkpoint`]: copying the log back into the database off the writer
//! - [`ingest`]: how a delivery changes the store: its key, the log's identities, the append
//! - [`messages`]: how a new event changes its message's row and history
//! - [`conversations`]: what a delivery says of its conversations, written once each
//! - [`outbound`]: recording sends and how they ended
//! - [`consumers`]: consumers' acknowledged positions
//! - [`retention`]: pruning old log entries and keys in small batches
//! - [`reads`]: the read connection pool and the queries behind it
//! - [`rows`]: mapping rows to domain types, shared by reads and writes
//! - [`migrate`]: connection settings and the versioned schema
//! - [`lock`]: one core per database file
//!
//! Writes go through one thread so that SQLite's single-writer lock is never
//! contended and many requests share one fsync; reads use their own connections,
//! which WAL lets run beside the writer.

mod checkpoint;
mod consumers;
mod conversations;
mod durable;
mod ingest;
mod lock;
mod messages;
mod migrate;
mod outbound;
mod reads;
mod retention;
mod rows;
mod writer;

pub use checkpoint::DEFAULT_INTERVAL_MS as DEFAULT_CHECKPOINT_INTERVAL_MS;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::ErrorCode;
use tokio::sync::watch;

use super::command::Command;
use super::{CommitObserver, Move, Store, StoreError, message_pages, unix_ms};
use crate::model::{
    Conversation, Delivery, EventFilter, GatewayId, Message, MessageLookup, MessagePage, Receipt,
    SendClaim, SendIntent, SendResult, StoredEvent,
};
use reads::ReadPool;
use writer::Writer;

/// The SQLite store. Cheap to share as `Arc<dyn Store>`; dropping the last
/// reference flushes queued writes and stops the writer thread.
pub struct SqliteStore {
    path: PathBuf,
    writer: Writer,
    readers: Arc<ReadPool>,
    /// Set when a failed fsync stopped the store.
    failure: durable::Failure,
    /// Declared last: released once the threads above have stopped.
    _lock: lock::FileLock,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `url` and brings its schema
    /// up to date. Accepts `sqlite://relative.db`, `sqlite:///abs/path.db`,
    /// `sqlite:relative.db` or a plain path; a `?query` suffix is ignored.
    pub fn open(url: &str) -> Result<SqliteStore, StoreError> {
        Self::open_with(url, Duration::from_millis(DEFAULT_CHECKPOINT_INTERVAL_MS))
    }

    /// As [`open`](Self::open), with the pause the checkpoint thread takes
    /// between a commit and copying the log into the database
    /// (`SQLITE_CHECKPOINT_INTERVAL_MS`; see [`checkpoint`]).
    pub fn open_with(url: &str, checkpoint_interval: Duration) -> Result<SqliteStore, StoreError> {
        let path = database_path(url);
        // Every connection would get its own private in-memory database.
        if path.as_os_str().is_empty() || path == Path::new(":memory:") {
            return Err(StoreError::Internal(format!(
                "{url:?} is not a database file (in-memory databases are not supported)"
            )));
        }
        // Before anything touches the file: another core may be writing it.
        let lock = lock::acquire(&path)?;
        let conn = migrate::open_writer(&path)?;
        let sync = durable::open_log(&path);
        Self::start(path, lock, conn, checkpoint_interval, sync)
    }

    /// Starts the writer on an opened connection, making the log durable with
    /// `sync` (a seam: tests make it wait or fail).
    fn start(
        path: PathBuf,
        lock: lock::FileLock,
        conn: rusqlite::Connection,
        checkpoint_interval: Duration,
        sync: Option<durable::SyncLog>,
    ) -> Result<SqliteStore, StoreError> {
        let committed = rows::committed_sequence(&conn)?;
        let failure = Arc::new(watch::channel(None).0);
        let writer = Writer::spawn(
            conn,
            committed,
            checkpoint_interval,
            sync,
            Arc::clone(&failure),
        )?;
        let readers = Arc::new(ReadPool::new(path.clone()));
        Ok(SqliteStore {
            path,
            writer,
            readers,
            failure,
            _lock: lock,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Moves `consumer` to `sequence`, at most up to the last durable event.
    async fn set_position(
        &self,
        consumer: &str,
        sequence: u64,
        how: Move,
    ) -> Result<u64, StoreError> {
        let consumer = consumer.to_owned();
        self.writer
            .run(|reply| Command::Position {
                consumer,
                sequence,
                how,
                reply,
            })
            .await
    }
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .field("committed", &*self.writer.committed().borrow())
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn ingest(&self, delivery: Delivery) -> Result<Receipt, StoreError> {
        self.writer
            .run(|reply| Command::Ingest { delivery, reply })
            .await
    }

    async fn message(&self, lookup: &MessageLookup) -> Result<Option<Message>, StoreError> {
        let lookup = lookup.clone();
        self.readers
            .run(move |conn| rows::find_message(conn, &lookup))
            .await
    }

    async fn conversation_messages(
        &self,
        conversation_id: &str,
        page_size: usize,
        cursor: Option<&str>,
    ) -> Result<MessagePage, StoreError> {
        let conversation_id = conversation_id.to_owned();
        let cursor = cursor.map(message_pages::Cursor::parse).transpose()?;
        self.readers
            .run(move |conn| {
                reads::conversation_messages(conn, &conversation_id, page_size, cursor)
            })
            .await
    }

    async fn events_after(
        &self,
        after: u64,
        filter: &EventFilter,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let filter = filter.clone();
        // Only what an fsync has covered: a committed event not yet durable
        // could vanish in an OS crash and its sequence go to another event,
        // which a consumer that saw the first would then skip.
        let durable = *self.writer.committed().borrow();
        self.readers
            .run(move |conn| reads::events_after(conn, after, durable, &filter, limit))
            .await
    }

    fn committed(&self) -> watch::Receiver<u64> {
        self.writer.committed()
    }

    async fn conversation(&self, id: &str) -> Result<Option<Conversation>, StoreError> {
        let id = id.to_owned();
        self.readers
            .run(move |conn| reads::conversation(conn, &id))
            .await
    }

    async fn contact_conversations(
        &self,
        contact: &str,
        phone_number_id: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Conversation>, StoreError> {
        let (contact, phone_number_id) = (contact.to_owned(), phone_number_id.map(str::to_owned));
        self.readers
            .run(move |conn| {
                reads::contact_conversations(conn, &contact, phone_number_id.as_deref(), limit)
            })
            .await
    }

    async fn last_inbound_at(
        &self,
        phone_number_id: &str,
        contact: &str,
    ) -> Result<Option<i64>, StoreError> {
        let (phone_number_id, contact) = (phone_number_id.to_owned(), contact.to_owned());
        self.readers
            .run(move |conn| reads::last_inbound_at(conn, &phone_number_id, &contact))
            .await
    }

    async fn begin_send(&self, intent: SendIntent) -> Result<SendClaim, StoreError> {
        self.writer
            .run(|reply| Command::BeginSend {
                intent: Box::new(intent),
                reply,
            })
            .await
    }

    async fn finish_send(
        &self,
        gateway_id: &GatewayId,
        result: SendResult,
    ) -> Result<Message, StoreError> {
        let gateway_id = gateway_id.clone();
        self.writer
            .run(|reply| Command::FinishSend {
                gateway_id,
                result,
                reply,
            })
            .await
    }

    async fn release_send(&self, gateway_id: &GatewayId) -> Result<bool, StoreError> {
        let gateway_id = gateway_id.clone();
        self.writer
            .run(|reply| Command::ReleaseSend { gateway_id, reply })
            .await
    }

    async fn settle_abandoned_sends(&self, claimed_before: i64) -> Result<u64, StoreError> {
        self.writer
            .run(|reply| Command::SettleAbandonedSends {
                claimed_before,
                reply,
            })
            .await
    }

    async fn ack(&self, consumer: &str, sequence: u64) -> Result<u64, StoreError> {
        self.set_position(consumer, sequence, Move::Forward).await
    }

    async fn seek(&self, consumer: &str, sequence: u64) -> Result<u64, StoreError> {
        self.set_position(consumer, sequence, Move::To).await
    }

    async fn consumer_position(&self, consumer: &str) -> Result<Option<u64>, StoreError> {
        let consumer = consumer.to_owned();
        self.readers
            .run(move |conn| consumers::position(conn, &consumer))
            .await
    }

    async fn check_writable(&self) -> Result<(), StoreError> {
        self.writer.run(|reply| Command::Check { reply }).await
    }

    async fn prune(&self, older_than_ms: i64, batch: usize) -> Result<u64, StoreError> {
        self.writer
            .run(|reply| Command::Prune {
                older_than_ms,
                batch,
                reply,
            })
            .await
    }

    async fn consumer_positions(&self) -> Result<Vec<(String, u64)>, StoreError> {
        self.readers.run(consumers::all).await
    }

    fn observe_commits(&self, observer: CommitObserver) {
        self.writer.observe_commits(observer);
    }

    async fn stopped(&self) -> String {
        let mut failure = self.failure.subscribe();
        let reason = failure
            .wait_for(Option::is_some)
            .await
            .map(|reason| reason.clone().unwrap_or_default());
        match reason {
            Ok(reason) => reason,
            // The sender lives as long as `self`: unreachable while borrowed.
            Err(_) => std::future::pending().await,
        }
    }
}

/// The file path inside a database URL.
fn database_path(url: &str) -> PathBuf {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    let rest = rest.split_once('?').map_or(rest, |(path, _)| path);
    PathBuf::from(rest)
}

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> Self {
        // Conditions that go away on their own (a lock, a full disk, an I/O
        // hiccup) are retryable; anything else is a bug or corrupted data.
        match error.sqlite_error_code() {
            Some(
                ErrorCode::DatabaseBusy
                | ErrorCode::DatabaseLocked
                | ErrorCode::DiskFull
                | ErrorCode::SystemIoFailure
                | ErrorCode::CannotOpen
                | ErrorCode::ReadOnly
                | ErrorCode::OutOfMemory,
            ) => StoreError::Unavailable(error.to_string()),
            _ => StoreError::Internal(error.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_url_form_names_the_file() {
        assert_eq!(
            database_path("sqlite://data/gw.db"),
            Path::new("data/gw.db")
        );
        assert_eq!(
            database_path("sqlite:///var/lib/gw.db"),
            Path::new("/var/lib/gw.db")
        );
        assert_eq!(database_path("sqlite:gw.db"), Path::new("gw.db"));
        assert_eq!(database_path("sqlite://gw.db?mode=rwc"), Path::new("gw.db"));
        assert_eq!(database_path("/tmp/gw.db"), Path::new("/tmp/gw.db"));
        assert_eq!(database_path("gw.db"), Path::new("gw.db"));
    }
}
