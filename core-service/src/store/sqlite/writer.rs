//! The single writer thread and its group commit.
//!
//! Every write request (ingest, begin/finish send, ack) is a closure sent to one
//! thread that owns the write connection. The thread blocks for the first
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
use tokio::sync::{oneshot, watch};

use super::checkpoint::{Checkpointer, Nudge};
use super::durable::{Committed, Failure, SyncLog, Syncer};
use super::rows;
use crate::store::{CommitObserver, StoreError};

/// Most requests run in one transaction; bounds the latency a batch adds.
const MAX_BATCH: usize = 512;

/// Requests that may wait for the writer: eight full batches. Past that the
/// disk is not keeping up, and a caller is better told at once (UNAVAILABLE:
/// the adapter answers 503 with Retry-After) than left queueing without bound,
/// its memory held and its deadline running out in the queue.
pub(super) const QUEUE: usize = 4_096;

/// A queued write request, type-erased so the loop knows nothing of what it does.
pub(super) trait Job: Send {
    /// Runs the request on the connection. `true` on success. May be called
    /// again after a rollback; only the last run's outcome is answered.
    fn run(&mut self, conn: &Connection) -> bool;
    /// Sends the outcome; `failure` is set when the batch as a whole did not commit.
    fn answer(self: Box<Self>, failure: Option<&str>);
}

struct Request<T, F> {
    work: F,
    outcome: Option<Result<T, StoreError>>,
    reply: oneshot::Sender<Result<T, StoreError>>,
}

impl<T, F> Job for Request<T, F>
where
    T: Send,
    F: FnMut(&Connection) -> Result<T, StoreError> + Send,
{
    fn run(&mut self, conn: &Connection) -> bool {
        // A bug in one request must not take the writer (and every other caller) down.
        let outcome = catch_unwind(AssertUnwindSafe(|| (self.work)(conn)))
            .unwrap_or_else(|_| Err(StoreError::Internal("write request panicked".into())));
        let ok = outcome.is_ok();
        self.outcome = Some(outcome);
        ok
    }

    fn answer(self: Box<Self>, failure: Option<&str>) {
        let result = match (failure, self.outcome) {
            (_, Some(Err(error))) => Err(error),
            (None, Some(Ok(value))) => Ok(value),
            (Some(reason), _) => Err(StoreError::Unavailable(reason.to_owned())),
            (None, None) => Err(StoreError::Internal("write request never ran".into())),
        };
        // The caller may have given up waiting; nothing to do then.
        let _ = self.reply.send(result);
    }
}

/// Handle to the writer thread. Dropping it flushes the queue and joins the thread.
pub(super) struct Writer {
    queue: Option<mpsc::SyncSender<Box<dyn Job>>>,
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

    /// Runs `work` in the next batch and returns its outcome once the batch is
    /// durable. `work` runs a second time when another request of its batch
    /// fails, so it must only touch the connection.
    pub(super) async fn run<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnMut(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: Box<dyn Job> = Box::new(Request {
            work,
            outcome: None,
            reply,
        });
        let queue = self.queue.as_ref().ok_or_else(stopped)?;
        // Never blocks the caller's runtime thread: a full queue is shed.
        queue.try_send(job).map_err(|error| match error {
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
    requests: &mpsc::Receiver<Box<dyn Job>>,
    publish: &watch::Sender<u64>,
    observer: &OnceLock<CommitObserver>,
    stopped_by: &Failure,
    syncer: Option<Syncer>,
    checkpoint: Option<Nudge>,
) {
    let mut batch: Vec<Box<dyn Job>> = Vec::with_capacity(MAX_BATCH);
    while let Ok(first) = requests.recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match requests.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        // Stopped after a failed fsync: nothing may commit any more.
        let stopped = stopped_by.borrow().clone();
        if let Some(reason) = stopped {
            for job in batch.drain(..) {
                job.answer(Some(&reason));
            }
            continue;
        }
        let failure = commit_batch(conn, &mut batch).err();
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
                        let jobs = std::mem::replace(&mut batch, Vec::with_capacity(MAX_BATCH));
                        syncer.hand_over(Committed { jobs, sequence });
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
        for job in batch.drain(..) {
            job.answer(failure.as_deref());
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
fn commit_batch(conn: &Connection, batch: &mut [Box<dyn Job>]) -> Result<(), String> {
    let all_succeeded = in_transaction(conn, |conn| Ok(batch.iter_mut().all(|job| job.run(conn))))?;
    if !all_succeeded {
        in_transaction(conn, |conn| run_isolated(conn, batch).map(|()| true))?;
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
fn run_isolated(conn: &Connection, batch: &mut [Box<dyn Job>]) -> Result<(), String> {
    for job in batch.iter_mut() {
        step(conn, "SAVEPOINT request")?;
        if !job.run(conn) {
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

    fn consumers(conn: &Connection) -> Vec<String> {
        let mut stmt = conn
            .prepare("SELECT name FROM consumers ORDER BY name")
            .unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    fn insert(conn: &Connection, name: &str) -> Result<(), StoreError> {
        conn.execute(
            "INSERT INTO consumers (name, sequence) VALUES (?1, 0)",
            [name],
        )?;
        Ok(())
    }

    fn spawn_writer(path: &std::path::Path) -> Writer {
        let conn = super::super::migrate::open_writer(path).unwrap();
        let pause = Duration::from_millis(super::super::DEFAULT_CHECKPOINT_INTERVAL_MS);
        let sync = super::super::durable::open_log(path);
        let failure = Arc::new(watch::channel(None).0);
        Writer::spawn(conn, 0, pause, sync, failure).unwrap()
    }

    #[tokio::test]
    async fn a_failing_request_is_rolled_back_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gw.db");
        let writer = spawn_writer(&path);
        let (ok, failed, panicked, after) = tokio::join!(
            writer.run(|conn| insert(conn, "a")),
            writer.run(|conn| {
                insert(conn, "b")?;
                Err::<(), _>(StoreError::NotFound("refused".into()))
            }),
            writer.run(|conn| {
                insert(conn, "c")?;
                panic!("a bug in one request")
            }),
            writer.run(|conn| insert(conn, "d")),
        );
        ok.unwrap();
        after.unwrap();
        assert!(matches!(failed, Err(StoreError::NotFound(_))));
        assert!(matches!(panicked, Err::<(), _>(StoreError::Internal(_))));
        let names = writer.run(|conn| Ok(consumers(conn))).await.unwrap();
        assert_eq!(names, ["a", "d"]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_queue_sheds_requests_as_unavailable() {
        use futures::StreamExt as _;
        use futures::stream::FuturesUnordered;

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gw.db");
        let writer = spawn_writer(&path);
        // One request holds the writer while the queue fills behind it.
        let (running, started) = oneshot::channel();
        let (release, released) = mpsc::channel::<()>();
        let mut signal = Some(running);
        let mut gate = Some(released);
        let holding = writer.run(move |_| {
            if let Some(running) = signal.take() {
                let _ = running.send(());
            }
            if let Some(released) = gate.take() {
                let _ = released.recv();
            }
            Ok(())
        });
        tokio::pin!(holding);
        tokio::select! {
            _ = &mut holding => panic!("the holding request ran to its end"),
            _ = started => {}
        }
        let mut queued: FuturesUnordered<_> = (0..=QUEUE).map(|_| writer.run(|_| Ok(()))).collect();
        // Polling them all once queues them: the last one does not fit.
        let first = futures::poll!(queued.next());
        assert!(
            matches!(
                first,
                std::task::Poll::Ready(Some(Err(StoreError::Unavailable(_))))
            ),
            "{first:?}"
        );
        release.send(()).unwrap();
        holding.await.unwrap();
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
                let (reply, answer) = oneshot::channel();
                let job: Box<dyn Job> = Box::new(Request {
                    work: move |conn: &Connection| insert(conn, &format!("c{i:02}")),
                    outcome: None,
                    reply,
                });
                writer.queue.as_ref().unwrap().send(job).unwrap();
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
