//! The single writer thread and its group commit.
//!
//! Every write request (ingest, begin/finish send, ack) is a [`Command`] sent to
//! one thread that owns the write connection. The thread blocks for the first
//! request, drains whatever else is already queued, and runs the lot in ONE
//! transaction: a request that fails is rolled back alone and answered with its
//! error, the others commit. One COMMIT means one fsync for the whole batch,
//! which is what makes durable-on-return writes fast.
//!
//! Because there is exactly one writer, sequences are assigned and committed in
//! order: once a commit is published, no later commit can add an event with a
//! lower sequence. That is the "no late-committing gaps" rule of
//! [`Store::events_after`](crate::store::Store::events_after), for free.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, OnceLock, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;
use tokio::sync::watch;

use super::checkpoint::{Checkpointer, Nudge};
use super::durable::{Committed, Failure, SyncLog, Syncer};
use super::{consumers, ingest, outbound, retention, rows};
use crate::store::command::{Command, Reply};
use crate::store::{CommitObserver, StoreError};

/// Most requests run in one transaction; bounds the latency a batch adds.
const MAX_BATCH: usize = 512;

/// Requests that may wait for the writer: eight full batches. Past that the
/// disk is not keeping up, and a caller is better told at once (UNAVAILABLE:
/// the adapter answers 503 with Retry-After) than left queueing without bound,
/// its memory held and its deadline running out in the queue.
pub(super) const QUEUE: usize = 4_096;

/// Runs `command` on the connection and holds its outcome; `true` on
/// success. A consumer may not move past `durable`, the last durable sequence.
fn run(command: &mut Command, conn: &Connection, durable: &watch::Sender<u64>) -> bool {
    match command {
        Command::Ingest { delivery, reply } => {
            reply.hold(guarded(|| ingest::apply(conn, delivery)))
        }
        Command::BeginSend { intent, reply } => {
            reply.hold(guarded(|| outbound::begin_send(conn, intent)))
        }
        Command::FinishSend {
            gateway_id,
            result,
            reply,
        } => reply.hold(guarded(|| outbound::finish_send(conn, gateway_id, result))),
        Command::ReleaseSend { gateway_id, reply } => {
            reply.hold(guarded(|| outbound::release_send(conn, gateway_id)))
        }
        Command::SettleAbandonedSends {
            claimed_before,
            reply,
        } => reply.hold(guarded(|| {
            outbound::settle_abandoned_sends(conn, *claimed_before)
        })),
        Command::Position {
            consumer,
            sequence,
            how,
            reply,
        } => reply.hold(guarded(|| {
            consumers::set(conn, consumer, *sequence, *durable.borrow(), *how)
        })),
        Command::Prune {
            older_than_ms,
            batch,
            reply,
        } => reply.hold(guarded(|| retention::prune(conn, *older_than_ms, *batch))),
        // An empty request still takes the write lock (BEGIN IMMEDIATE), so it
        // fails when the writer is dead or the file locked.
        Command::Check { reply } => reply.hold(Ok(())),
    }
}

/// Runs `work`, turning a panic into an error: a bug in one request must not
/// take the writer (and every other caller) down.
fn guarded<T>(work: impl FnOnce() -> Result<T, StoreError>) -> Result<T, StoreError> {
    catch_unwind(AssertUnwindSafe(work))
        .unwrap_or_else(|_| Err(StoreError::Internal("write request panicked".into())))
}

/// Handle to the writer thread. Dropping it flushes the queue and joins the thread.
pub(super) struct Writer {
    queue: Option<mpsc::SyncSender<Command>>,
    thread: Option<JoinHandle<()>>,
    committed: watch::Receiver<u64>,
    /// Told each committed batch's size; set at most once, after the thread started.
    observer: Arc<OnceLock<CommitObserver>>,
    /// Declared after `thread`: joined once the writer, which nudges it, is gone.
    _checkpointer: Option<Checkpointer>,
}

impl Writer {
    /// Starts the writer thread on `conn`; `committed` is the highest sequence
    /// already stored, `checkpoint_interval` the checkpoint thread's pause.
    /// `sync` makes the log durable (`None`: SQLite syncs at each commit);
    /// `failure` is set when it failed, and then every write is refused.
    pub(super) fn spawn(
        conn: Connection,
        committed: u64,
        checkpoint_interval: Duration,
        sync: Option<SyncLog>,
        failure: Failure,
    ) -> Result<Writer, StoreError> {
        let (queue, requests) = mpsc::sync_channel(QUEUE);
        let (publish, watch) = watch::channel(committed);
        let observer = Arc::new(OnceLock::new());
        let observed = Arc::clone(&observer);
        let syncer =
            sync.and_then(|sync| Syncer::spawn(sync, publish.clone(), Arc::clone(&failure)));
        if syncer.is_some() {
            // The syncer thread fsyncs the log for each commit; SQLite need not.
            conn.pragma_update(None, "synchronous", "NORMAL")?;
        }
        let (checkpointer, nudge) = conn
            .path()
            .and_then(|path| {
                let path = std::path::Path::new(path);
                Checkpointer::spawn(path, checkpoint_interval, Arc::clone(&failure))
            })
            .unzip();
        let thread = std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || {
                write_loop(
                    &conn, &requests, &publish, &observed, &failure, syncer, nudge,
                )
            })
            .map_err(|e| StoreError::Unavailable(format!("cannot start sqlite writer: {e}")))?;
        Ok(Writer {
            queue: Some(queue),
            thread: Some(thread),
            committed: watch,
            observer,
            _checkpointer: checkpointer,
        })
    }

    /// Queues the command `command` builds around its reply and returns its
    /// outcome once its batch is durable.
    pub(super) async fn run<T>(
        &self,
        command: impl FnOnce(Reply<T>) -> Command,
    ) -> Result<T, StoreError> {
        let (command, answer) = Command::with_reply(command);
        let queue = self.queue.as_ref().ok_or_else(stopped)?;
        // Never blocks the caller's runtime thread: a full queue is shed.
        queue.try_send(command).map_err(|error| match error {
            mpsc::TrySendError::Full(_) => {
                StoreError::Unavailable(format!("sqlite write queue full ({QUEUE} requests)"))
            }
            mpsc::TrySendError::Disconnected(_) => stopped(),
        })?;
        // A dropped reply means the thread died with the request in hand.
        answer.await.map_err(|_| stopped())?
    }

    /// Highest committed sequence, published after every commit that appended.
    pub(super) fn committed(&self) -> watch::Receiver<u64> {
        self.committed.clone()
    }

    /// Reports every later commit's request count to `observer` (first caller wins).
    pub(super) fn observe_commits(&self, observer: CommitObserver) {
        if self.observer.set(observer).is_err() {
            tracing::warn!("sqlite writer already has a commit observer; ignoring another");
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Closing the queue lets the loop finish what is queued, then return.
        drop(self.queue.take());
        if let Some(thread) = self.thread.take() {
            // Bounded: at most one batch is left to commit.
            if thread.join().is_err() {
                tracing::error!("sqlite writer thread panicked");
            }
        }
    }
}

fn stopped() -> StoreError {
    StoreError::Unavailable("sqlite writer stopped".into())
}

fn write_loop(
    conn: &Connection,
    requests: &mpsc::Receiver<Command>,
    publish: &watch::Sender<u64>,
    observer: &OnceLock<CommitObserver>,
    stopped_by: &Failure,
    syncer: Option<Syncer>,
    checkpoint: Option<Nudge>,
) {
    let mut batch: Vec<Command> = Vec::with_capacity(MAX_BATCH);
    while let Ok(first) = requests.recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match requests.try_recv() {
                Ok(command) => batch.push(command),
                Err(_) => break,
            }
        }
        // Stopped after a failed fsync: nothing may commit any more.
        let stopped = stopped_by.borrow().clone();
        if let Some(reason) = stopped {
            for command in batch.drain(..) {
                command.answer(Some(&reason));
            }
            continue;
        }
        let failure = commit_batch(conn, &mut batch, publish).err();
        if let Some(reason) = &failure {
            tracing::error!(error = %reason, requests = batch.len(), "sqlite batch not committed");
        } else {
            if let Some(observe) = observer.get() {
                observe(batch.len());
            }
            if let Some(checkpoint) = &checkpoint {
                checkpoint.committed();
            }
            if let Some(syncer) = &syncer {
                match rows::committed_sequence(conn) {
                    Ok(sequence) => {
                        let commands = std::mem::replace(&mut batch, Vec::with_capacity(MAX_BATCH));
                        syncer.hand_over(Committed { commands, sequence });
                        continue;
                    }
                    Err(error) => tracing::error!(%error, "cannot read committed sequence"),
                }
            }
            // Published before answering, so that a caller whose write returned
            // already sees it covered by `committed()`.
            match rows::committed_sequence(conn) {
                Ok(sequence) => {
                    publish.send_if_modified(|current| {
                        let moved = sequence > *current;
                        if moved {
                            *current = sequence;
                        }
                        moved
                    });
                }
                Err(error) => tracing::error!(%error, "cannot read committed sequence"),
            }
        }
        for command in batch.drain(..) {
            command.answer(failure.as_deref());
        }
    }
}

/// Runs every request of the batch in one transaction. `Err` when the batch as
/// a whole did not commit (then every successful request is answered with it).
///
/// Requests almost always succeed, so they first run side by side with no
/// savepoints: a savepoint copies every page a request touches, a cost paid
/// on the hot path for the rare failure. When one fails, the transaction is
/// rolled back and the batch runs again with a savepoint per request, so the
/// failing request is undone alone.
fn commit_batch(
    conn: &Connection,
    batch: &mut [Command],
    durable: &watch::Sender<u64>,
) -> Result<(), String> {
    let all_succeeded = in_transaction(conn, |conn| {
        Ok(batch.iter_mut().all(|command| run(command, conn, durable)))
    })?;
    if !all_succeeded {
        in_transaction(conn, |conn| {
            run_isolated(conn, batch, durable).map(|()| true)
        })?;
    }
    Ok(())
}

/// Runs `body` in a transaction and commits when it returns `Ok(true)`; rolls
/// back otherwise. Returns what `body` returned, or why the commit failed.
fn in_transaction(
    conn: &Connection,
    body: impl FnOnce(&Connection) -> Result<bool, String>,
) -> Result<bool, String> {
    // IMMEDIATE: take the write lock now rather than on the first write, so a
    // lock problem fails the batch up front instead of midway.
    step(conn, "BEGIN IMMEDIATE")?;
    let outcome = body(conn).and_then(|keep| {
        if keep {
            step(conn, "COMMIT")?;
        }
        Ok(keep)
    });
    if outcome != Ok(true)
        && !conn.is_autocommit()
        && let Err(error) = conn.execute_batch("ROLLBACK")
    {
        tracing::error!(%error, "sqlite rollback failed");
    }
    outcome
}

/// Runs each request inside its own savepoint, rolling back the ones that fail.
fn run_isolated(
    conn: &Connection,
    batch: &mut [Command],
    durable: &watch::Sender<u64>,
) -> Result<(), String> {
    for command in batch.iter_mut() {
        step(conn, "SAVEPOINT request")?;
        if !run(command, conn, durable) {
            step(conn, "ROLLBACK TO request")?;
        }
        step(conn, "RELEASE request")?;
    }
    Ok(())
}

fn step(conn: &Connection, sql: &str) -> Result<(), String> {
    conn.prepare_cached(sql)
        .and_then(|mut s| s.execute([]))
        .map(drop)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Move;

    fn consumers(conn: &Connection) -> Vec<String> {
        let mut stmt = conn
            .prepare("SELECT name FROM consumers ORDER BY name")
            .unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    /// Places `name` at `sequence`: refused past the log's last event.
    fn seek(name: &str, sequence: u64) -> impl FnOnce(Reply<u64>) -> Command + use<> {
        let consumer = name.to_owned();
        move |reply| Command::Position {
            consumer,
            sequence,
            how: Move::To,
            reply,
        }
    }

    fn spawn_writer(path: &std::path::Path) -> Writer {
        let conn = super::super::migrate::open_writer(path).unwrap();
        let pause = Duration::from_millis(super::super::DEFAULT_CHECKPOINT_INTERVAL_MS);
        let sync = super::super::durable::open_log(path);
        let failure = Arc::new(watch::channel(None).0);
        Writer::spawn(conn, 0, pause, sync, failure).unwrap()
    }

    #[tokio::test]
    async fn a_failing_request_is_answered_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gw.db");
        let writer = spawn_writer(&path);
        let (ok, failed, after) = tokio::join!(
            writer.run(seek("a", 0)),
            writer.run(seek("b", 5)),
            writer.run(seek("d", 0)),
        );
        ok.unwrap();
        after.unwrap();
        assert!(
            matches!(failed, Err(StoreError::OutOfRange(_))),
            "{failed:?}"
        );
        let conn = Connection::open(&path).unwrap();
        assert_eq!(consumers(&conn), ["a", "d"]);
    }

    #[test]
    fn a_panicking_request_is_an_error() {
        let outcome = guarded::<()>(|| panic!("a bug in one request"));
        assert!(
            matches!(outcome, Err(StoreError::Internal(_))),
            "{outcome:?}"
        );
    }

    #[tokio::test]
    async fn a_full_queue_sheds_requests_as_unavailable() {
        use futures::StreamExt as _;
        use futures::stream::FuturesUnordered;

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gw.db");
        // A writer whose thread starts only once the queue is full.
        let (queue, requests) = mpsc::sync_channel(QUEUE);
        let (publish, committed) = watch::channel(0);
        let writer = Writer {
            queue: Some(queue),
            thread: None,
            committed,
            observer: Arc::new(OnceLock::new()),
            _checkpointer: None,
        };
        let mut queued: FuturesUnordered<_> =
            (0..=QUEUE).map(|_| writer.run(seek("c", 0))).collect();
        // Polling them all once queues them: the last one does not fit.
        let first = futures::poll!(queued.next());
        assert!(
            matches!(
                first,
                std::task::Poll::Ready(Some(Err(StoreError::Unavailable(_))))
            ),
            "{first:?}"
        );
        let conn = super::super::migrate::open_writer(&path).unwrap();
        std::thread::spawn(move || {
            let (observer, failure) = (OnceLock::new(), Arc::new(watch::channel(None).0));
            write_loop(&conn, &requests, &publish, &observer, &failure, None, None);
        });
        let mut answered = 0;
        while let Some(outcome) = queued.next().await {
            outcome.unwrap();
            answered += 1;
        }
        assert_eq!(answered, QUEUE, "every queued request is served");
    }

    #[tokio::test]
    async fn dropping_the_writer_flushes_what_was_queued() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gw.db");
        let writer = spawn_writer(&path);
        let queued: Vec<_> = (0..50)
            .map(|i| {
                let (command, answer) = Command::with_reply(seek(&format!("c{i:02}"), 0));
                writer.queue.as_ref().unwrap().send(command).unwrap();
                answer
            })
            .collect();
        drop(writer);
        for answer in queued {
            answer.await.unwrap().unwrap();
        }
        let conn = Connection::open(&path).unwrap();
        assert_eq!(consumers(&conn).len(), 50);
    }
}
