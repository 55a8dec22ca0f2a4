//! Copying the write-ahead log back into the database off the writer thread.
//!
//! Every commit appends pages to the log. A checkpoint copies them into the
//! database file and fsyncs it; once everything is copied the next commit
//! starts the log over, so it stays small and is overwritten in place (cheaper
//! to write and to fsync than a file that keeps growing). SQLite runs that
//! checkpoint on the committing connection, which stalls the writer on a
//! database fsync over megabytes.
//!
//! This thread copies pages back continuously from a connection of its own
//! (PASSIVE: it never waits for, nor blocks, the writer). The writer keeps
//! SQLite's automatic checkpoint, but by the time it runs, only the pages of
//! the last few milliseconds are left, and the writer's checkpoint is the one
//! that can finish the log and let it start over, since no commit runs beside it.

use std::path::Path;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;

/// Pause between rounds; also leaves the writer gaps to finish the log.
const ROUND_INTERVAL: Duration = Duration::from_millis(10);

/// Handle to the checkpoint thread; dropping it stops the thread.
pub(super) struct Checkpointer {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts the thread on a new connection to `database`. `None` when that
    /// fails: the writer's own checkpoints then do all the work, as SQLite's
    /// default does.
    pub(super) fn spawn(database: &Path) -> Option<Checkpointer> {
        let conn = match super::migrate::open_checkpointer(database) {
            Ok(conn) => conn,
            Err(error) => {
                tracing::warn!(%error, "cannot open a checkpoint connection; the writer checkpoints alone");
                return None;
            }
        };
        let (stop, stopping) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || checkpoint_loop(&conn, &stopping))
            .ok()?;
        Some(Checkpointer {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("sqlite checkpoint thread panicked");
        }
    }
}

fn checkpoint_loop(conn: &Connection, stopping: &mpsc::Receiver<()>) {
    // The sender is only ever dropped, never used: a disconnect means stop.
    while let Err(RecvTimeoutError::Timeout) = stopping.recv_timeout(ROUND_INTERVAL) {
        // A round with nothing new to copy costs a lock and a header read.
        let round = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
        if let Err(error) = round {
            // Transient (a full disk, say): the writer's own checkpoints carry on.
            tracing::warn!(%error, "background checkpoint failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Under writes that never pause, the log still starts over: it stays near
    /// the writer's checkpoint threshold instead of growing with everything written.
    #[test]
    fn the_log_stays_bounded_under_continuous_writes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gw.db");
        let writer = super::super::migrate::open_writer(&path).unwrap();
        writer
            .execute_batch("CREATE TABLE blobs (id INTEGER PRIMARY KEY, body BLOB NOT NULL)")
            .unwrap();
        let _checkpointer = Checkpointer::spawn(&path).unwrap();
        let wal = dir.path().join("gw.db-wal");
        let page = vec![7u8; 4096];
        let mut largest = 0;
        // 200 MB through the log, 400 KB per commit.
        for _ in 0..500 {
            let tx = writer.unchecked_transaction().unwrap();
            for _ in 0..100 {
                tx.execute("INSERT INTO blobs (body) VALUES (?1)", [&page])
                    .unwrap();
            }
            tx.commit().unwrap();
            largest = largest.max(std::fs::metadata(&wal).unwrap().len());
        }
        let threshold = 4_000 * 4_096;
        assert!(
            largest < 3 * threshold,
            "the log grew to {largest} bytes with a checkpoint every {threshold}"
        );
    }
}
