//! The PostgreSQL backend: one database shared by any number of core replicas.
//!
//! - [`writer`]: the writer task that group-commits every write, and the log
//!   lock that makes sequence order equal commit order across replicas
//! - [`ingest`]: how a delivery changes the log, messages and conversations
//! - [`claim`]: the claims and the append every event's statement starts with
//! - [`apply`]: an event's effect on messages and conversations, in that statement
//! - [`outbound`]: recording sends and how they ended; consumers' positions
//! - [`reads`]: the queries behind the read methods, on pooled connections
//! - [`committed`]: the commit mark, fed by own commits, `LISTEN/NOTIFY` and a poll
//! - [`retention`]: pruning old events and keys in small batches
//! - [`rows`]: mapping rows to domain types, shared by reads and writes
//! - [`migrate`]: the versioned schema, applied under an advisory lock
//! - [`tls`]: `sslmode` and `sslrootcert` as libpq means them, over rustls
//!
//! Semantics are the SQLite store's, made to hold across processes: de-duplication
//! and idempotency claims are unique constraints, an event's effect is worked
//! out once for both backends (`store::effect`), and appends to the log are serialized until commit.

mod apply;
mod claim;
mod committed;
mod ingest;
mod migrate;
mod outbound;
mod reads;
mod retention;
mod rows;
mod tls;
mod writer;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_postgres::error::SqlState;

use super::command::Command;
use super::{CommitObserver, Move, Store, StoreError, message_pages, unix_ms};
use crate::model::{
    Conversation, Delivery, EventFilter, GatewayId, Message, MessageLookup, MessagePage, Receipt,
    SendClaim, SendIntent, SendResult, StoredEvent,
};
use tls::MakeRustls;
use writer::Writer;

/// Pooled read connections per core. Reads are single statements and
/// tokio-postgres pipelines them, so a few connections carry many streams.
const READ_CONNECTIONS: usize = 8;

/// How long opening a connection may take before the store reports itself unavailable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The PostgreSQL store. Cheap to share as `Arc<dyn Store>`; dropping it stops
/// the listener and poller and lets the writer finish what is queued.
pub struct PostgresStore {
    /// `host:port/dbname`, for logs (the URL may carry a password).
    target: String,
    readers: Pool,
    writer: Writer,
    committed: watch::Receiver<u64>,
    background: Vec<JoinHandle<()>>,
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user@host:port/dbname`,
    /// with libpq's `sslmode` and `sslrootcert`) and brings its schema up to
    /// date; safe when several cores open it at once.
    pub async fn open(url: &str) -> Result<PostgresStore, StoreError> {
        Self::open_waiting(url, Duration::ZERO).await
    }

    /// As [`open`](Self::open), waiting up to `start` for a server that
    /// refuses connections (not up yet, as when both start together).
    pub async fn open_waiting(url: &str, start: Duration) -> Result<PostgresStore, StoreError> {
        let invalid = |e: &dyn fmt::Display| {
            StoreError::Internal(format!("invalid postgres DATABASE_URL: {e}"))
        };
        let secured = tls::secure(url).map_err(|e| invalid(&e))?;
        let mut config: tokio_postgres::Config = secured.url.parse().map_err(|e| invalid(&e))?;
        config.ssl_mode(secured.mode);
        let tls = secured.tls;
        let target = describe(&config);
        // Writes are answered as durable once committed: make sure a server
        // default of `synchronous_commit = off` cannot turn that into a lie.
        let options = match config.get_options() {
            Some(options) => format!("{options} -c synchronous_commit=on"),
            None => "-c synchronous_commit=on".to_owned(),
        };
        config
            .options(options)
            .application_name("kapso-core")
            .connect_timeout(CONNECT_TIMEOUT);

        let readers = pool(&config, &tls, READ_CONNECTIONS)?;
        // The writer's own pool of one: it never waits behind readers, and a
        // lost connection is replaced on the next batch.
        let writes = pool(&config, &tls, 1)?;
        let committed = {
            let conn = first_connection(&writes, &target, start).await?;
            migrate::migrate(&conn).await?;
            rows::committed_sequence(&conn).await?
        };
        let (mark, watch) = watch::channel(committed);
        let mark = Arc::new(mark);
        let background = vec![
            committed::spawn_listener(config, tls, Arc::clone(&mark)),
            committed::spawn_poller(readers.clone(), Arc::clone(&mark)),
        ];
        Ok(PostgresStore {
            target,
            readers,
            writer: Writer::spawn(writes, mark),
            committed: watch,
            background,
        })
    }

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

    async fn reader(&self) -> Result<deadpool_postgres::Object, StoreError> {
        Ok(self.readers.get().await?)
    }
}

fn pool(
    config: &tokio_postgres::Config,
    tls: &MakeRustls,
    size: usize,
) -> Result<Pool, StoreError> {
    let manager = Manager::from_config(
        config.clone(),
        tls.clone(),
        // Fast: a closed connection is dropped on return; no query per checkout.
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(size)
        .build()
        .map_err(|e| StoreError::Internal(format!("cannot build postgres pool: {e}")))
}

/// The first connection. A refused one (the server is not listening yet) is
/// retried with backoff for up to `start`; any other failure is final at
/// once, with the server's own reason when it gave one (an unknown role or
/// database), since waiting would not change it.
async fn first_connection(
    pool: &Pool,
    target: &str,
    start: Duration,
) -> Result<deadpool_postgres::Object, StoreError> {
    let deadline = tokio::time::Instant::now() + start;
    let mut pause = Duration::from_millis(100);
    loop {
        let error = match pool.get().await {
            Ok(conn) => return Ok(conn),
            Err(error) => error,
        };
        if !refused(&error) {
            return Err(StoreError::Unavailable(format!(
                "cannot connect to postgres at {target}: {}",
                server_reason(&error).unwrap_or_else(|| with_causes(&error))
            )));
        }
        if tokio::time::Instant::now() + pause > deadline {
            return Err(StoreError::Unavailable(format!(
                "postgres at {target} refused connections for {}s (DATABASE_START_TIMEOUT_SECS): \
                 is it running and listening there? {}",
                start.as_secs(),
                with_causes(&error)
            )));
        }
        tracing::warn!(
            %target,
            retry_in_ms = u64::try_from(pause.as_millis()).unwrap_or(u64::MAX),
            "postgres refused the connection; retrying until it is up"
        );
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(2));
    }
}

/// Whether the connection was refused: nothing listens at the address (yet).
fn refused(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(next) = cause {
        if let Some(io) = next.downcast_ref::<std::io::Error>() {
            return io.kind() == std::io::ErrorKind::ConnectionRefused;
        }
        cause = next.source();
    }
    false
}

/// The server's message and code, when the server refused the session.
fn server_reason(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cause = Some(error);
    while let Some(next) = cause {
        if let Some(db) = next.downcast_ref::<tokio_postgres::error::DbError>() {
            return Some(format!("{} (SQLSTATE {})", db.message(), db.code().code()));
        }
        if let Some(pg) = next.downcast_ref::<tokio_postgres::Error>()
            && let Some(db) = pg.as_db_error()
        {
            return Some(format!("{} (SQLSTATE {})", db.message(), db.code().code()));
        }
        cause = next.source();
    }
    None
}

/// An error and its causes: tokio-postgres does not show why a TLS handshake
/// failed (a certificate for another host, an unknown CA) unless asked.
fn with_causes(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(next) = cause {
        let shown = next.to_string();
        if !text.contains(&shown) {
            text = format!("{text}: {shown}");
        }
        cause = next.source();
    }
    text
}

/// `host:port/dbname` of a connection config, without credentials.
fn describe(config: &tokio_postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
        #[cfg(unix)]
        Some(tokio_postgres::config::Host::Unix(path)) => path.display().to_string(),
        None => "localhost".to_owned(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!("{host}:{port}/{}", config.get_dbname().unwrap_or_default())
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("target", &self.target)
            .field("committed", &*self.committed.borrow())
            .finish_non_exhaustive()
    }
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        for task in &self.background {
            task.abort();
        }
    }
}

#[async_trait]
impl Store for PostgresStore {
    async fn ingest(&self, delivery: Delivery) -> Result<Receipt, StoreError> {
        self.writer
            .run(|reply| Command::Ingest { delivery, reply })
            .await
    }

    async fn message(&self, lookup: &MessageLookup) -> Result<Option<Message>, StoreError> {
        rows::find_message(&*self.reader().await?, lookup).await
    }

    async fn conversation_messages(
        &self,
        conversation_id: &str,
        page_size: usize,
        cursor: Option<&str>,
    ) -> Result<MessagePage, StoreError> {
        let cursor = cursor.map(message_pages::Cursor::parse).transpose()?;
        let conn = self.reader().await?;
        reads::conversation_messages(&conn, conversation_id, page_size, cursor).await
    }

    async fn events_after(
        &self,
        after: u64,
        filter: &EventFilter,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        reads::events_after(&*self.reader().await?, after, filter, limit).await
    }

    fn committed(&self) -> watch::Receiver<u64> {
        self.committed.clone()
    }

    async fn conversation(&self, id: &str) -> Result<Option<Conversation>, StoreError> {
        reads::conversation(&*self.reader().await?, id).await
    }

    async fn contact_conversations(
        &self,
        contact: &str,
        phone_number_id: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Conversation>, StoreError> {
        let conn = self.reader().await?;
        reads::contact_conversations(&conn, contact, phone_number_id, limit).await
    }

    async fn last_inbound_at(
        &self,
        phone_number_id: &str,
        contact: &str,
    ) -> Result<Option<i64>, StoreError> {
        reads::last_inbound_at(&*self.reader().await?, phone_number_id, contact).await
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
        reads::consumer_position(&*self.reader().await?, consumer).await
    }

    async fn check_writable(&self) -> Result<(), StoreError> {
        // An empty transaction through the writer: fails when the writer or its
        // connection is gone.
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
        reads::consumer_positions(&*self.reader().await?).await
    }

    fn observe_commits(&self, observer: CommitObserver) {
        self.writer.observe_commits(observer);
    }
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(error: tokio_postgres::Error) -> Self {
        // Conditions that go away on their own (a lost connection, a deadlock
        // victim, a server restarting or out of resources) are retryable;
        // anything else is a bug or corrupted data.
        let transient = match error.code() {
            // No SQL state: a client-side failure; only I/O is worth a retry.
            None => std::error::Error::source(&error).is_some_and(|s| s.is::<std::io::Error>()),
            Some(code) => {
                let class = &code.code()[..2];
                matches!(class, "08" | "40" | "53" | "57" | "58")
                    || *code == SqlState::LOCK_NOT_AVAILABLE
            }
        };
        if transient || error.is_closed() {
            StoreError::Unavailable(format!("postgres: {error}"))
        } else {
            StoreError::Internal(format!("postgres: {error}"))
        }
    }
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(error: deadpool_postgres::PoolError) -> Self {
        StoreError::Unavailable(format!("postgres pool: {error}"))
    }
}
