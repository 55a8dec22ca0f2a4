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

use std::fs::File;
use std::path::Path;
use std::sync::mpsc;
use std::thread::JoinHandle;

use tokio::sync::watch;

use super::writer::Job;
use crate::store::StoreError;

/// A batch the writer committed, waiting for the fsync that makes it durable.
pub(super) struct Committed {
    pub(super) jobs: Vec<Box<dyn Job>>,
    /// Highest log sequence once this batch is in.
    pub(super) sequence: u64,
}

/// Handle to the syncer thread; dropping it lets the thread answer what is
/// queued and stop.
pub(super) struct Syncer {
    queue: Option<mpsc::Sender<Committed>>,
    thread: Option<JoinHandle<()>>,
}

impl Syncer {
    /// Opens the database's write-ahead log for fsync and starts the thread.
    /// `None` when the log cannot be opened: the writer then syncs at commit.
    pub(super) fn spawn(database: &Path, publish: watch::Sender<u64>) -> Option<Syncer> {
        let mut wal = database.as_os_str().to_owned();
        wal.push("-wal");
        let log = match File::open(&wal) {
            Ok(log) => log,
            Err(error) => {
                tracing::warn!(%error, path = ?wal, "cannot open the write-ahead log; syncing at every commit instead");
                return None;
            }
        };
        let (queue, committed) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("sqlite-fsync".into())
            .spawn(move || sync_loop(&log, &committed, &publish))
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

fn sync_loop(log: &File, committed: &mpsc::Receiver<Committed>, publish: &watch::Sender<u64>) {
    while let Ok(first) = committed.recv() {
        let mut ready = vec![first];
        ready.extend(committed.try_iter());
        // fdatasync: the log's frames (and its size when it grew); SQLite's own
        // metadata needs no sync here.
        let failure = log.sync_data().err().map(|error| {
            tracing::error!(%error, "fsync of the write-ahead log failed; callers will retry");
            StoreError::Unavailable(format!("fsync failed: {error}")).to_string()
        });
        if failure.is_none() {
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
        }
        answer_all(ready, failure.as_deref());
    }
}

fn answer_all(batches: Vec<Committed>, failure: Option<&str>) {
    for batch in batches {
        for job in batch.jobs {
            job.answer(failure);
        }
    }
}
