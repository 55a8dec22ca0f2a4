//! Making commits durable off the writer thread (pipelined group commit).
//!
//! The writer commits a batch to the write-ahead log without waiting for the
//! disk (`synchronous=NORMAL`) and hands the batch here; this thread fsyncs the
//! log once for everything handed over so far, then answers those callers. While
//! it waits on the disk the writer already runs the next batch, so the fsync is
//! off the writer's critical path and one fsync often covers several batches.
//!
//! Durability is unchanged: no caller is answered before an fsync that started
//! after its batch committed. Frames never vanish before that fsync either:
//! SQLite only rewinds the log after a checkpoint, which syncs the log first and
//! the database file after.
//!
//! # A failed fsync stops the store
//!
//! After a failed `fdatasync` the kernel may already have dropped the dirty
//! pages and cleared the error, so a later fsync that succeeds proves nothing
//! about them. Like PostgreSQL since 2018, the store does not retry: it answers
//! every waiting and later write with an error, stops publishing the durable
//! mark, and reports itself [failed](Failure) so that the process exits; a
//! restart recovers from what the log really holds.

use std::fs::File;
use std::path::Path;
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;

use tokio::sync::watch;

use crate::store::command::Command;

/// A batch the writer committed, waiting for the fsync that makes it durable.
pub(super) struct Committed {
    pub(super) commands: Vec<Command>,
    /// Highest log sequence once this batch is in.
    pub(super) sequence: u64,
}

/// Makes every frame written to the log so far durable: `fdatasync` of the
/// log file. A seam, so that tests can make it wait or fail.
pub(super) type SyncLog = Box<dyn FnMut() -> std::io::Result<()> + Send>;

/// Why the store stopped, once it has: set at most once, never cleared.
pub(super) type Failure = Arc<watch::Sender<Option<String>>>;

/// Opens the database's write-ahead log for fsync. `None` when it cannot be
/// opened: the writer then syncs at commit.
pub(super) fn open_log(database: &Path) -> Option<SyncLog> {
    let mut wal = database.as_os_str().to_owned();
    wal.push("-wal");
    match File::open(&wal) {
        // fdatasync: the log's frames (and its size when it grew); SQLite's own
        // metadata needs no sync here.
        Ok(log) => Some(Box::new(move || log.sync_data())),
        Err(error) => {
            tracing::warn!(%error, path = ?wal, "cannot open the write-ahead log; syncing at every commit instead");
            None
        }
    }
}

/// Handle to the syncer thread; dropping it lets the thread answer what is
/// queued and stop.
pub(super) struct Syncer {
    queue: Option<mpsc::Sender<Committed>>,
    thread: Option<JoinHandle<()>>,
}

impl Syncer {
    /// Starts the thread that runs `sync` for each handed-over batch and then
    /// publishes the batch's sequence to `publish` and answers its callers.
    pub(super) fn spawn(
        sync: SyncLog,
        publish: watch::Sender<u64>,
        failure: Failure,
    ) -> Option<Syncer> {
        let (queue, committed) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("sqlite-fsync".into())
            .spawn(move || sync_loop(sync, &committed, &publish, &failure))
            .ok()?;
        Some(Syncer {
            queue: Some(queue),
            thread: Some(thread),
        })
    }

    /// Queues a committed batch; answers it at once with an error if the thread is gone.
    pub(super) fn hand_over(&self, batch: Committed) {
        let Some(queue) = &self.queue else {
            return answer_all(vec![batch], Some("fsync thread stopped"));
        };
        if let Err(mpsc::SendError(batch)) = queue.send(batch) {
            answer_all(vec![batch], Some("fsync thread stopped"));
        }
    }
}

impl Drop for Syncer {
    fn drop(&mut self) {
        drop(self.queue.take());
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("sqlite fsync thread panicked");
        }
    }
}

fn sync_loop(
    mut sync: SyncLog,
    committed: &mpsc::Receiver<Committed>,
    publish: &watch::Sender<u64>,
    failure: &Failure,
) {
    while let Ok(first) = committed.recv() {
        let mut ready = vec![first];
        ready.extend(committed.try_iter());
        if let Err(error) = sync() {
            let reason = format!(
                "fsync of the write-ahead log failed ({error}); the store stopped \
                 and must be restarted to recover from the log"
            );
            tracing::error!(%error, "fsync of the write-ahead log failed; stopping the store");
            failure.send_replace(Some(reason.clone()));
            answer_all(ready, Some(&reason));
            // Nothing handed over later can be made durable either.
            for batch in committed.iter() {
                answer_all(vec![batch], Some(&reason));
            }
            return;
        }
        let sequence = ready.iter().map(|b| b.sequence).max().unwrap_or(0);
        // Published before answering, so a caller whose write returned
        // already sees it covered by `committed()`.
        publish.send_if_modified(|current| {
            let moved = sequence > *current;
            if moved {
                *current = sequence;
            }
            moved
        });
        answer_all(ready, None);
    }
}

fn answer_all(batches: Vec<Committed>, failure: Option<&str>) {
    for batch in batches {
        for command in batch.commands {
            command.answer(failure);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use tokio::sync::mpsc as async_mpsc;

    use super::super::{DEFAULT_CHECKPOINT_INTERVAL_MS, SqliteStore, lock, migrate};
    use super::*;
    use crate::model::{
        ConversationId, Delivery, Direction, EventFilter, EventType, NewEvent, Wamid,
    };
    use crate::store::Store;

    /// A log sync the test drives: each call says so on the first channel and
    /// then waits for its outcome on the second.
    fn gated() -> (
        SyncLog,
        async_mpsc::UnboundedReceiver<()>,
        mpsc::Sender<std::io::Result<()>>,
    ) {
        let (entered, calls) = async_mpsc::unbounded_channel();
        let (verdict, verdicts) = mpsc::channel();
        let sync: SyncLog = Box::new(move || {
            let _ = entered.send(());
            // Bounded, so that a failing test's store can still be dropped.
            verdicts
                .recv_timeout(Duration::from_secs(30))
                .unwrap_or(Ok(()))
        });
        (sync, calls, verdict)
    }

    fn open(dir: &tempfile::TempDir, sync: SyncLog) -> Arc<SqliteStore> {
        let path = dir.path().join("gw.db");
        let lock = lock::acquire(&path).unwrap();
        let conn = migrate::open_writer(&path).unwrap();
        let pause = Duration::from_millis(DEFAULT_CHECKPOINT_INTERVAL_MS);
        Arc::new(SqliteStore::start(path, lock, conn, pause, Some(sync)).unwrap())
    }

    fn delivery(wamid: &str) -> Delivery {
        Delivery {
            key: Some(wamid.into()),
            events: vec![NewEvent {
                event_type: EventType::MessageReceived,
                message_id: Wamid::parse(wamid),
                conversation_id: ConversationId::parse("conv-1"),
                phone_number_id: "1234567890".into(),
                contact_phone: "15551234567".into(),
                direction: Direction::Inbound,
                message_type: "text".into(),
                text: "hola".into(),
                timestamp: 1_700_000_000,
                payload_json: "{}".into(),
                ..NewEvent::default()
            }],
        }
    }

    async fn readable(store: &SqliteStore) -> usize {
        store
            .events_after(0, &EventFilter::default(), 100)
            .await
            .unwrap()
            .len()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_committed_event_is_not_read_before_its_fsync() {
        let dir = tempfile::tempdir().unwrap();
        let (sync, mut calls, verdict) = gated();
        let store = open(&dir, sync);
        let writing = tokio::spawn({
            let store = Arc::clone(&store);
            async move { store.ingest(delivery("wamid.1")).await }
        });
        // The batch is committed and waits for its fsync.
        calls.recv().await.unwrap();
        assert_eq!(readable(&store).await, 0, "committed but not yet durable");
        verdict.send(Ok(())).unwrap();
        writing.await.unwrap().unwrap();
        assert_eq!(readable(&store).await, 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_fsync_stops_the_store_for_good() {
        let dir = tempfile::tempdir().unwrap();
        let (sync, mut calls, verdict) = gated();
        let store = open(&dir, sync);
        let writing = tokio::spawn({
            let store = Arc::clone(&store);
            async move { store.ingest(delivery("wamid.1")).await }
        });
        calls.recv().await.unwrap();
        verdict
            .send(Err(std::io::Error::other("injected EIO")))
            .unwrap();
        assert!(writing.await.unwrap().is_err(), "not answered as durable");
        let reason = tokio::time::timeout(Duration::from_secs(30), store.stopped())
            .await
            .expect("the store reports that it stopped");
        assert!(reason.contains("fsync"), "{reason}");

        // No later fsync gets the chance to "confirm" what the kernel dropped.
        verdict.send(Ok(())).unwrap();
        assert!(store.ingest(delivery("wamid.2")).await.is_err());
        assert!(store.check_writable().await.is_err());
        assert!(calls.try_recv().is_err(), "no fsync after the failed one");
        assert_eq!(readable(&store).await, 0);
    }

    /// The process-level half: a core whose store stopped ends `serve` with
    /// the reason as its error, which `main` returns, so the process exits
    /// non-zero (and a supervisor restarts it, recovering from the log).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_core_whose_store_stopped_ends_with_an_error() {
        use clap::Parser as _;

        let dir = tempfile::tempdir().unwrap();
        let (sync, mut calls, verdict) = gated();
        let store = open(&dir, sync);
        let config =
            crate::Config::try_parse_from(["kapso-core", "--metrics-addr", "off"]).unwrap();
        let core = crate::Core::with_store(config, Arc::clone(&store) as Arc<dyn Store>).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let serving = tokio::spawn(core.serve(listener, std::future::pending()));

        let writing = tokio::spawn({
            let store = Arc::clone(&store);
            async move { store.ingest(delivery("wamid.1")).await }
        });
        calls.recv().await.unwrap();
        verdict
            .send(Err(std::io::Error::other("injected EIO")))
            .unwrap();
        assert!(writing.await.unwrap().is_err());
        let ended = tokio::time::timeout(Duration::from_secs(30), serving)
            .await
            .expect("serving ends without a shutdown signal")
            .unwrap();
        let error = ended.expect_err("ends with an error").to_string();
        assert!(error.contains("fsync"), "{error}");
    }
}
