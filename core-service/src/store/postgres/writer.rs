//! The writer task and its group commit, and the log lock that keeps readers
//! from skipping late commits.
//!
//! Every write request (ingest, begin/finish send, ack) is queued to one task
//! per core that owns one connection. The task waits for the first request,
//! takes whatever else is already queued, and runs the lot in ONE transaction:
//! one commit (one WAL flush, `synchronous_commit = on`) answers them all, and
//! requests that arrive meanwhile form the next batch. A request that fails
//! makes the batch roll back; each request is then run again in a transaction
//! of its own, so only the failing one is answered with its error. (Savepoints
//! would isolate it up front, but cost a round trip each and a subtransaction
//! per request, and failures are rare.)
//!
//! # Why the log lock
//!
//! Several cores append to one `events` table. A sequence value is taken when a
//! row is inserted but becomes visible when its transaction commits, so without
//! care replica A could take 10, replica B 11, B commit first, and a reader that
//! saw 11 and resumes "after 11" would never see 10. Every batch that appends
//! therefore takes `pg_advisory_xact_lock(LOG_LOCK)` and holds it until its
//! commit: appends are serialized across all cores, so sequence order is commit
//! order and everything below a visible sequence is already visible (or rolled
//! back and never will be). Group commit keeps the cost per batch, not per event.
//!
//! The lock is the batch's FIRST statement, before any key is claimed: taken
//! later, a batch could hold an uncommitted event key that the lock holder is
//! waiting for while itself waiting for the lock, a deadlock. `finish_send`
//! batches take it too, so every write that touches messages is serialized
//! like the SQLite writer's (no unique-wamid race between a send response on
//! one core and a status webhook on another); `begin_send` and `ack` batches
//! don't need it: unique indexes and `GREATEST` settle them alone.

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, OnceLock};

use deadpool_postgres::{ClientWrapper, Pool};
use futures::FutureExt;
use tokio::sync::{mpsc, watch};

use super::{committed, ingest, outbound, retention};
use crate::model::Receipt;
use crate::store::command::{Command, Reply};
use crate::store::{CommitObserver, StoreError};

/// Advisory lock key serializing appends to the event log ("kapso" + 1).
const LOG_LOCK: i64 = 0x6b61_7073_6f00_0001;

/// Most requests run in one transaction; bounds the latency a batch adds.
const MAX_BATCH: usize = 512;

/// Requests that may wait for the writer: eight full batches. Past that the
/// database is not keeping up, and a caller is better told at once
/// (UNAVAILABLE: the adapter answers 503 with Retry-After) than left queueing
/// without bound, its memory held and its deadline running out in the queue.
pub(super) const QUEUE: usize = 4_096;

/// Whether a batch holding `command` must hold the log lock; see the module docs.
fn takes_log_lock(command: &Command) -> bool {
    matches!(command, Command::Ingest { .. } | Command::FinishSend { .. })
}

/// Runs `command` on the connection and holds its outcome; a failure is
/// returned instead, and rolls the batch back.
async fn apply(command: &mut Command, conn: &ClientWrapper) -> Result<(), StoreError> {
    match command {
        Command::Ingest { delivery, reply } => {
            reply.hold_value(guarded(ingest::apply(conn, delivery)).await)
        }
        Command::BeginSend { intent, reply } => {
            reply.hold_value(guarded(outbound::begin_send(conn, intent)).await)
        }
        Command::FinishSend {
            gateway_id,
            result,
            reply,
        } => reply.hold_value(guarded(outbound::finish_send(conn, gateway_id, result)).await),
        Command::ReleaseSend { gateway_id, reply } => {
            reply.hold_value(guarded(outbound::release_send(conn, gateway_id)).await)
        }
        Command::SettleAbandonedSends {
            claimed_before,
            reply,
        } => {
            reply.hold_value(guarded(outbound::settle_abandoned_sends(conn, *claimed_before)).await)
        }
        Command::Position {
            consumer,
            sequence,
            how,
            reply,
        } => {
            reply.hold_value(guarded(outbound::set_position(conn, consumer, *sequence, *how)).await)
        }
        Command::Prune {
            older_than_ms,
            batch,
            reply,
        } => reply.hold_value(guarded(retention::prune(conn, *older_than_ms, *batch)).await),
        Command::Check { reply } => reply.hold_value(Ok(())),
    }
}

/// The delivery of a single event `command` stores, and its reply, when it
/// is one: such deliveries can be pipelined.
fn single_event(command: &mut Command) -> Option<(ingest::SingleEvent<'_>, &mut Reply<Receipt>)> {
    match command {
        Command::Ingest { delivery, reply } => Some((ingest::single_event(delivery)?, reply)),
        _ => None,
    }
}

/// Handle to the writer task. Dropping it lets the task finish what is queued and stop.
pub(super) struct Writer {
    queue: mpsc::Sender<Command>,
    observer: Arc<OnceLock<CommitObserver>>,
}

impl Writer {
    /// Starts the writer task on `pool` (its own, one connection); commits are
    /// published to `publish`.
    pub(super) fn spawn(pool: Pool, publish: Arc<watch::Sender<u64>>) -> Writer {
        let (queue, requests) = mpsc::channel(QUEUE);
        let observer = Arc::new(OnceLock::new());
        tokio::spawn(write_loop(pool, requests, publish, Arc::clone(&observer)));
        Writer { queue, observer }
    }

    /// Reports every later commit's request count to `observer` (first caller wins).
    pub(super) fn observe_commits(&self, observer: CommitObserver) {
        if self.observer.set(observer).is_err() {
            tracing::warn!("postgres writer already has a commit observer; ignoring another");
        }
    }

    /// Queues the command `command` builds around its reply for the next
    /// batch; returns its outcome once that batch is committed.
    pub(super) async fn run<T>(
        &self,
        command: impl FnOnce(Reply<T>) -> Command,
    ) -> Result<T, StoreError> {
        let (command, answer) = Command::with_reply(command);
        // Never waits for room: a full queue is shed.
        self.queue.try_send(command).map_err(|error| match error {
            mpsc::error::TrySendError::Full(_) => {
                StoreError::Unavailable(format!("postgres write queue full ({QUEUE} requests)"))
            }
            mpsc::error::TrySendError::Closed(_) => stopped(),
        })?;
        answer.await.map_err(|_| stopped())?
    }
}

fn stopped() -> StoreError {
    StoreError::Unavailable("postgres writer stopped".into())
}

async fn write_loop(
    pool: Pool,
    mut requests: mpsc::Receiver<Command>,
    publish: Arc<watch::Sender<u64>>,
    observer: Arc<OnceLock<CommitObserver>>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while requests.recv_many(&mut batch, MAX_BATCH).await > 0 {
        run_batch(&pool, &mut batch, &publish, &observer).await;
    }
}

/// Commits the batch and answers every request in it.
async fn run_batch(
    pool: &Pool,
    batch: &mut Vec<Command>,
    publish: &watch::Sender<u64>,
    observer: &OnceLock<CommitObserver>,
) {
    let conn = match pool.get().await {
        Ok(conn) => conn,
        Err(error) => {
            let error = StoreError::from(error);
            tracing::error!(%error, requests = batch.len(), "postgres batch not started");
            for command in batch.drain(..) {
                command.fail(StoreError::Unavailable(error.to_string()));
            }
            return;
        }
    };
    match commit(&conn, batch).await {
        Ok(()) => {
            // Published before answering, so that a caller whose write returned
            // already sees it covered by `committed()`.
            if let Some(max) = batch.iter().filter_map(Command::appended).max() {
                committed::publish(publish, max);
            }
            if let Some(observe) = observer.get() {
                observe(batch.len());
            }
            for command in batch.drain(..) {
                command.answer(None);
            }
        }
        Err(error) if conn.is_closed() => {
            tracing::error!(%error, requests = batch.len(), "postgres connection lost");
            for command in batch.drain(..) {
                command.fail(StoreError::Unavailable(error.to_string()));
            }
        }
        Err(error) => {
            if batch.len() > 1 {
                tracing::debug!(%error, requests = batch.len(), "batch failed; running each alone");
            }
            for mut command in batch.drain(..) {
                match commit(&conn, std::slice::from_mut(&mut command)).await {
                    Ok(()) => {
                        if let Some(max) = command.appended() {
                            committed::publish(publish, max);
                        }
                        if let Some(observe) = observer.get() {
                            observe(1);
                        }
                        command.answer(None);
                    }
                    Err(error) => command.fail(error),
                }
            }
        }
    }
}

/// Runs `work`, turning a panic into an error: a bug in one request must not
/// take the writer (and every caller) down.
async fn guarded<T>(work: impl Future<Output = Result<T, StoreError>>) -> Result<T, StoreError> {
    AssertUnwindSafe(work)
        .catch_unwind()
        .await
        .unwrap_or_else(|_| Err(StoreError::Internal("write request panicked".into())))
}

/// Runs `commands` in one transaction and commits it; rolls back on any error.
async fn commit(conn: &ClientWrapper, commands: &mut [Command]) -> Result<(), StoreError> {
    let begin = if commands.iter().any(takes_log_lock) {
        format!("BEGIN; SELECT pg_advisory_xact_lock({LOG_LOCK})")
    } else {
        "BEGIN".to_owned()
    };
    conn.batch_execute(&begin).await?;
    let outcome = run_all(conn, commands).await;
    if outcome.is_err()
        && !conn.is_closed()
        && let Err(error) = conn.batch_execute("ROLLBACK").await
    {
        tracing::error!(%error, "postgres rollback failed");
    }
    outcome
}

async fn run_all(conn: &ClientWrapper, commands: &mut [Command]) -> Result<(), StoreError> {
    let mut next = 0;
    while next < commands.len() {
        // Deliveries of a single event (what Kapso sends unless batching is
        // on) go out together: one round trip for a run of them.
        let (alone, replies): (Vec<_>, Vec<_>) =
            commands[next..].iter_mut().map_while(single_event).unzip();
        if alone.len() > 1 {
            let receipts = guarded(ingest::apply_pipelined(conn, &alone)).await?;
            next += alone.len();
            for (reply, receipt) in replies.into_iter().zip(receipts) {
                reply.hold_value(Ok(receipt))?;
            }
        } else {
            apply(&mut commands[next], conn).await?;
            next += 1;
        }
    }
    // NOTIFY is queued with the transaction and delivered to every core's
    // listener only once it commits, carrying the new highest sequence.
    let commit = match commands.iter().filter_map(Command::appended).max() {
        Some(max) => format!("NOTIFY {}, '{max}'; COMMIT", committed::CHANNEL),
        None => "COMMIT".to_owned(),
    };
    conn.batch_execute(&commit).await?;
    Ok(())
}
