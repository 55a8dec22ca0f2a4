//! Connection settings and the versioned schema.
//!
//! Migrations are SQL files under `core-service/migrations/sqlite/`, embedded in
//! the binary and applied in order at open. `PRAGMA user_version` records how
//! many have run; each runs in its own transaction together with the version
//! bump, so a crash leaves the schema at a known version.

use std::path::Path;
use std::time::Duration;

use rusqlite::Connection;

use crate::store::StoreError;

/// Every migration, in order. Index + 1 is the `user_version` after it ran.
const MIGRATIONS: &[(&str, &str)] = &[
    (
        "0001_initial",
        include_str!("../../../migrations/sqlite/0001_initial.sql"),
    ),
    (
        "0002_retention",
        include_str!("../../../migrations/sqlite/0002_retention.sql"),
    ),
];

/// How long a connection waits for a lock held by another before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Log size, in pages, at which the writer finishes a checkpoint (see `checkpoint`).
const WAL_CHECKPOINT_PAGES: i64 = 4_000;

/// Statements each connection keeps prepared (the write path uses ~20, reads vary with filters).
const STATEMENT_CACHE: usize = 64;

/// Opens the write connection and brings the schema up to date.
pub(super) fn open_writer(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)
        .map_err(|e| StoreError::Unavailable(format!("cannot open {}: {e}", path.display())))?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    // WAL: readers never block the writer nor each other. The mode is stored in
    // the file, so read connections opened later inherit it.
    let mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Internal(format!(
            "{} cannot use WAL (journal mode {mode})",
            path.display()
        )));
    }
    // FULL: the WAL is fsynced at every commit, so a returned write survives a
    // power loss, not only a crash of the process.
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    // The checkpoint thread copies the log back continuously; the writer's own
    // checkpoint (after a commit leaves this many pages in the log) finishes
    // the job so the log can start over. 4,000 pages of 4 KiB keep the log
    // near 20 MB under full load; SQLite's default of 1,000 made the writer
    // finish a checkpoint four times as often (measured: 15-30% less throughput).
    conn.pragma_update(None, "wal_autocheckpoint", WAL_CHECKPOINT_PAGES)?;
    migrate(&conn)?;
    Ok(conn)
}

/// Opens a read-only connection to a database the writer already set up.
pub(super) fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)
        .map_err(|e| StoreError::Unavailable(format!("cannot open {}: {e}", path.display())))?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    // A bug in a read path must not be able to write behind the writer's back.
    conn.pragma_update(None, "query_only", true)?;
    Ok(conn)
}

/// Opens the connection that copies the write-ahead log back into the database
/// (see `checkpoint`). It keeps the default `synchronous=FULL`: a checkpoint must
/// fsync the database before the log it copied from may be overwritten.
pub(super) fn open_checkpointer(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)
        .map_err(|e| StoreError::Unavailable(format!("cannot open {}: {e}", path.display())))?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    Ok(conn)
}

/// Applies every migration the database has not seen yet.
fn migrate(conn: &Connection) -> Result<(), StoreError> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let known = MIGRATIONS.len();
    let applied = usize::try_from(version).unwrap_or(usize::MAX);
    if applied > known {
        return Err(StoreError::Internal(format!(
            "database schema version {version} is newer than this build ({known})"
        )));
    }
    for (index, (name, sql)) in MIGRATIONS.iter().enumerate().skip(applied) {
        let tx = conn.unchecked_transaction()?;
        tx.execute_batch(sql)
            .map_err(|e| StoreError::Internal(format!("migration {name} failed: {e}")))?;
        tx.pragma_update(None, "user_version", index + 1)?;
        tx.commit()?;
        tracing::info!(migration = name, "applied sqlite migration");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_apply_once_and_record_their_version() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gw.db");
        drop(open_writer(&path).unwrap());
        let conn = open_writer(&path).unwrap();
        let version: usize = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, MIGRATIONS.len());
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gw.db");
        let conn = open_writer(&path).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        drop(conn);
        assert!(matches!(open_writer(&path), Err(StoreError::Internal(_))));
    }
}
