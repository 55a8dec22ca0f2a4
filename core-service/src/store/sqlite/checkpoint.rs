//! Copying the write-ahead log back into the database off the writer thread.
//!
//! Every commit appends pages to the log. A checkpoint copies them into the
//! database file and fsyncs it; once everything is copied the next commit
//! starts the log over, so it stays small and is overwritten in place (cheaper
//! to write and to fsync than a file that keeps growing). SQLite runs that
//! checkpoint on the committing connection, which stalls the writer on a
//! database fsync over megabytes.
//!
//! This thread copies pages back from a connection of its own, a few
//! milliseconds after each commit (PASSIVE: it never waits for, nor blocks, the
//! writer), and sleeps while nothing is written. The writer keeps
//! SQLite's automatic checkpoint, but by the time it runs, only the pages of
//! the last few milliseconds are left, and the writer's checkpoint is the one
//! that can finish the log and let it start over, since no commit runs beside it.
//!
//! That last checkpoint must fsync the database before the log starts over, and
//! SQLite syncs the database only at the end of a checkpoint that reached the
//! end of the log, which this thread's rarely do while commits keep coming. So
//! each round here also flushes the database file itself: the writer's fsync
//! then finds a few milliseconds of pages to write instead of everything copied
//! since the last one, which shortens the writer's database fsyncs several
//! times over (measured in docs/design/write-path.md, "The checkpoint").
//!
//! A round waits [`DEFAULT_INTERVAL_MS`] after a commit unless the operator
//! sets another pause (`SQLITE_CHECKPOINT_INTERVAL_MS`). A round copies each
//! page once however many commits dirtied it since the last, so a longer pause
//! writes fewer bytes: on a store of several GB, where the disk takes the
//! copies scattered over the file at half its pace, that is more throughput,
//! and the longer flush at the end of each round is a longer tail. Once the log
//! nears the writer's threshold, rounds come at the default pace whatever the
//! setting, so that the writer's own checkpoint finds little left to copy.

use std::fs::File;
use std::path::Path;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;

use super::durable::Failure;
use super::migrate::WAL_CHECKPOINT_PAGES;

/// Pause between a commit and the round it starts, unless set otherwise: lets
/// a few milliseconds of commits gather, and leaves the writer gaps to finish
/// the log.
pub const DEFAULT_INTERVAL_MS: u64 = 10;

/// Log size, in pages, from which rounds come at the default pace whatever
/// the pause set (see the module's notes).
const CATCH_UP_PAGES: i64 = WAL_CHECKPOINT_PAGES * 3 / 4;

/// Handle to the checkpoint thread; dropping it waits for the thread, which
/// stops once its [`Nudge`] is dropped (drop that first).
pub(super) struct Checkpointer {
    thread: Option<JoinHandle<()>>,
}

/// The writer's end: tells the thread the log grew.
pub(super) struct Nudge(mpsc::SyncSender<()>);

impl Nudge {
    /// A commit added to the log. Never blocks: one pending nudge is enough.
    pub(super) fn committed(&self) {
        let _ = self.0.try_send(());
    }
}

impl Checkpointer {
    /// Starts the thread on a new connection to `database`, pausing `interval`
    /// between a commit and a round. `None` when that fails: the writer's own
    /// checkpoints then do all the work, as SQLite's default does. A failed
    /// flush of the database stops the store through `failure`, as a failed
    /// fsync of the log does (see [`durable`](super::durable)).
    pub(super) fn spawn(
        database: &Path,
        interval: Duration,
        failure: Failure,
    ) -> Option<(Checkpointer, Nudge)> {
        let conn = match super::migrate::open_checkpointer(database) {
            Ok(conn) => conn,
            Err(error) => {
                tracing::warn!(%error, "cannot open a checkpoint connection; the writer checkpoints alone");
                return None;
            }
        };
        // Opened for fsync only; SQLite writes through its own descriptor.
        let file = match File::open(database) {
            Ok(file) => file,
            Err(error) => {
                tracing::warn!(%error, "cannot open the database to flush it; the writer checkpoints alone");
                return None;
            }
        };
        let (nudge, nudges) = mpsc::sync_channel(1);
        let thread = std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || checkpoint_loop(&conn, &file, &nudges, interval, &failure))
            .ok()?;
        let checkpointer = Checkpointer {
            thread: Some(thread),
        };
        Some((checkpointer, Nudge(nudge)))
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("sqlite checkpoint thread panicked");
        }
    }
}

fn checkpoint_loop(
    conn: &Connection,
    database: &File,
    nudges: &mpsc::Receiver<()>,
    interval: Duration,
    failure: &Failure,
) {
    let mut failing = false;
    let mut pause = interval;
    // Idle until a commit; the writer dropping its end means stop.
    while nudges.recv().is_ok() {
        std::thread::sleep(pause);
        let round = copy(conn);
        if round.is_ok()
            && let Err(error) = database.sync_data()
        {
            tracing::error!(%error, "fsync of the database failed; stopping the store");
            failure.send_replace(Some(format!(
                "fsync of the database failed ({error}); the store stopped \
                 and must be restarted to recover from the log"
            )));
            return;
        }
        if let Ok(log_pages) = round {
            pause = next_pause(interval, log_pages);
        }
        // Said once when it starts and once when it ends, not 100 times a second.
        // Meanwhile the writer's own checkpoints carry on (a full disk, say).
        match round.map(drop) {
            Err(error) if !failing => {
                tracing::warn!(%error, "background checkpoints failing; the writer checkpoints alone");
                failing = true;
            }
            Ok(()) if failing => {
                tracing::info!("background checkpoints working again");
                failing = false;
            }
            _ => {}
        }
    }
}

/// The pause before the next round, given the one set and the log's size.
fn next_pause(interval: Duration, log_pages: i64) -> Duration {
    if log_pages >= CATCH_UP_PAGES {
        interval.min(Duration::from_millis(DEFAULT_INTERVAL_MS))
    } else {
        interval
    }
}

/// One round's copy of what it can of the log into the database; the caller
/// then flushes the database file (see the module's notes). Returns the log's
/// size in pages.
fn copy(conn: &Connection) -> std::io::Result<i64> {
    // The answer's columns: busy, pages in the log, pages copied.
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| row.get(1))
        .map_err(std::io::Error::other)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_failure() -> Failure {
        std::sync::Arc::new(tokio::sync::watch::channel(None).0)
    }

    const DEFAULT: Duration = Duration::from_millis(DEFAULT_INTERVAL_MS);

    #[test]
    fn a_long_pause_shortens_once_the_log_nears_the_writers_threshold() {
        let long = Duration::from_millis(300);
        assert_eq!(next_pause(long, 0), long);
        assert_eq!(next_pause(long, CATCH_UP_PAGES - 1), long);
        assert_eq!(next_pause(long, CATCH_UP_PAGES), DEFAULT);
        // A pause shorter than the default stays as set.
        let short = Duration::from_millis(2);
        assert_eq!(next_pause(short, WAL_CHECKPOINT_PAGES), short);
    }

    /// After a commit, the thread copies the log into the database on its own:
    /// the file grows although the writer never checkpoints here.
    #[test]
    fn a_commit_is_copied_into_the_database_by_the_thread() {
        copy_one_commit_after(DEFAULT);
    }

    /// The pause set is taken before the copy: the file cannot grow sooner.
    #[test]
    fn a_longer_pause_holds_the_copy_back() {
        let pause = Duration::from_millis(400);
        assert!(copy_one_commit_after(pause) >= pause);
    }

    /// Commits 1 MB with the thread pausing `pause`; how long after the
    /// commit the database file had grown by it.
    fn copy_one_commit_after(pause: Duration) -> Duration {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gw.db");
        let writer = super::super::migrate::open_writer(&path).unwrap();
        writer.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
        writer
            .execute_batch("CREATE TABLE blobs (id INTEGER PRIMARY KEY, body BLOB NOT NULL)")
            .unwrap();
        let (_checkpointer, nudge) = Checkpointer::spawn(&path, pause, no_failure()).unwrap();
        let before = std::fs::metadata(&path).unwrap().len();
        let tx = writer.unchecked_transaction().unwrap();
        for _ in 0..256 {
            tx.execute("INSERT INTO blobs (body) VALUES (?1)", [vec![7u8; 4096]])
                .unwrap();
        }
        tx.commit().unwrap();
        let committed = std::time::Instant::now();
        nudge.committed();
        let deadline = committed + pause + Duration::from_secs(5);
        while std::fs::metadata(&path).unwrap().len() < before + 1_000_000 {
            assert!(
                std::time::Instant::now() < deadline,
                "nothing was copied into the database"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        committed.elapsed()
    }

    /// Under writes that never pause, the log still starts over: it stays near
    /// the writer's checkpoint threshold instead of growing with everything written.
    #[test]
    fn the_log_stays_bounded_under_continuous_writes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gw.db");
        let writer = super::super::migrate::open_writer(&path).unwrap();
        // Below the production threshold, so that a short test passes it many times over.
        let threshold_pages = 1_000;
        assert!(threshold_pages < super::super::migrate::WAL_CHECKPOINT_PAGES);
        writer
            .pragma_update(None, "wal_autocheckpoint", threshold_pages)
            .unwrap();
        writer
            .execute_batch("CREATE TABLE blobs (id INTEGER PRIMARY KEY, body BLOB NOT NULL)")
            .unwrap();
        let (_checkpointer, nudge) = Checkpointer::spawn(&path, DEFAULT, no_failure()).unwrap();
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
            nudge.committed();
            largest = largest.max(std::fs::metadata(&wal).unwrap().len());
        }
        let threshold = threshold_pages as u64 * 4_096;
        assert!(
            largest < 3 * threshold,
            "the log grew to {largest} bytes with a checkpoint every {threshold}"
        );
    }
}
