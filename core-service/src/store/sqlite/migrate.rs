//! Connection settings and the versioned schema.
//!
//! Migrations are SQL files under `core-service/migrations/sqlite/`, embedded in
//! the binary and applied in order at open, each optionally followed by a data
//! step in Rust. `PRAGMA user_version` records how many have run; each runs in
//! its own transaction together with the version bump, so a crash leaves the
//! schema at a known version.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};

use super::rows::{self, event_columns};
use crate::model::{EventType, NewEvent, Wamid};
use crate::store::StoreError;
use crate::store::effect::{Effect, Identity};

/// Rewrites existing rows after a migration's SQL, in the same transaction.
type DataStep = fn(&Connection) -> Result<(), StoreError>;

struct Migration {
    name: &'static str,
    sql: &'static str,
    data: Option<DataStep>,
}

/// Every migration, in order. Index + 1 is the `user_version` after it ran.
const MIGRATIONS: &[Migration] = &[
    Migration {
        name: "0001_initial",
        sql: include_str!("../../../migrations/sqlite/0001_initial.sql"),
        data: None,
    },
    Migration {
        name: "0002_retention",
        sql: include_str!("../../../migrations/sqlite/0002_retention.sql"),
        data: None,
    },
    Migration {
        name: "0003_event_identity",
        sql: include_str!("../../../migrations/sqlite/0003_event_identity.sql"),
        data: Some(move_event_keys_into_the_log),
    },
    Migration {
        name: "0004_message_event_identity",
        sql: include_str!("../../../migrations/sqlite/0004_message_event_identity.sql"),
        data: Some(key_message_events_by_their_row),
    },
    Migration {
        name: "0005_log_horizon",
        sql: include_str!("../../../migrations/sqlite/0005_log_horizon.sql"),
        data: None,
    },
    Migration {
        name: "0006_conversations_by_contact",
        sql: include_str!("../../../migrations/sqlite/0006_conversations_by_contact.sql"),
        data: None,
    },
    Migration {
        name: "0007_message_content",
        sql: include_str!("../../../migrations/sqlite/0007_message_content.sql"),
        data: None,
    },
    Migration {
        name: "0008_no_events_by_conversation",
        sql: include_str!("../../../migrations/sqlite/0008_no_events_by_conversation.sql"),
        data: None,
    },
    Migration {
        name: "0009_send_failure",
        sql: include_str!("../../../migrations/sqlite/0009_send_failure.sql"),
        data: None,
    },
];

/// How long a connection waits for a lock held by another before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Log size, in pages, at which the writer finishes a checkpoint (see `checkpoint`).
pub(super) const WAL_CHECKPOINT_PAGES: i64 = 64_000;

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
    // the job so the log can start over. That checkpoint stalls every commit
    // behind it for a log fsync and a database fsync (see `checkpoint`), so the
    // threshold sets how often requests wait on it. 64,000 pages of 4 KiB was
    // measured against smaller thresholds and SQLite's default of 1,000: the
    // figures are in docs/design/write-path.md ("The checkpoint").
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
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(applied) {
        let name = migration.name;
        let failed = |e: String| StoreError::Internal(format!("migration {name} failed: {e}"));
        let tx = conn.unchecked_transaction()?;
        tx.execute_batch(migration.sql)
            .map_err(|e| failed(e.to_string()))?;
        if let Some(data) = migration.data {
            data(&tx).map_err(|e| failed(e.to_string()))?;
        }
        tx.pragma_update(None, "user_version", index + 1)?;
        tx.commit()?;
        tracing::info!(migration = name, "applied sqlite migration");
    }
    Ok(())
}

/// 0003: gives every stored event its identity, computed as ingest computes it
/// (from the type, message id and payload, all stored), then drops the
/// `event_keys` table that held the identities apart from the log.
fn move_event_keys_into_the_log(conn: &Connection) -> Result<(), StoreError> {
    let mut select = conn.prepare(
        "SELECT sequence, event_type, message_id, payload_json FROM events WHERE dedup_key IS NULL",
    )?;
    // OR IGNORE: the log never held one identity twice; should it, the later
    // event keeps no identity rather than failing the upgrade.
    let mut update =
        conn.prepare("UPDATE OR IGNORE events SET dedup_key = ?2 WHERE sequence = ?1")?;
    let mut rows = select.query([])?;
    while let Some(row) = rows.next()? {
        let event = NewEvent {
            event_type: EventType::parse(&row.get::<_, String>(1)?),
            message_id: Wamid::from_stored(row.get(2)?),
            payload_json: row.get(3)?,
            ..NewEvent::default()
        };
        update.execute(params![row.get::<_, i64>(0)?, identity_before_0004(&event)])?;
    }
    conn.execute_batch("DROP TABLE event_keys")?;
    Ok(())
}

/// An event's identity as 0003 stored it: whole, as one string, whether or
/// not the event changes a message.
fn identity_before_0004(event: &NewEvent) -> String {
    Identity::of(event, true).to_string()
}

/// 0004: gives each stored received message and status the identity ingest now
/// gives it, its message's row and kind. An event whose message row is gone
/// keeps its whole identity.
fn key_message_events_by_their_row(conn: &Connection) -> Result<(), StoreError> {
    let mut select = conn.prepare(concat!(
        "SELECT ",
        event_columns!(),
        " FROM events WHERE message_id <> '' AND message_row IS NULL"
    ))?;
    let mut row_of = conn.prepare("SELECT id FROM messages WHERE wamid = ?1")?;
    // OR IGNORE: as in 0003, an identity met twice stays as it was.
    let mut update = conn.prepare(
        "UPDATE OR IGNORE events SET message_row = ?2, dedup_key = ?3 WHERE sequence = ?1",
    )?;
    let mut stored = select.query([])?;
    while let Some(row) = stored.next()? {
        let stored = rows::event_from_row(row)?;
        let Identity::OfMessage { wamid, kind } = Effect::of(&stored.event, 0).identity else {
            continue;
        };
        let message_row: Option<i64> = row_of
            .query_row([wamid.as_str()], |r| r.get(0))
            .optional()?;
        if let Some(message_row) = message_row {
            update.execute(params![stored.sequence as i64, message_row, kind.as_str()])?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::ingest::is_known;
    use super::super::messages::find_by_wamid;
    use super::*;
    use crate::model::MessageLookup;

    /// The writer finishes checkpoints at the measured threshold, not at
    /// SQLite's default of 1,000 pages (docs/design/write-path.md).
    #[test]
    fn the_writer_checkpoints_at_the_measured_threshold() {
        let dir = tempfile::tempdir().unwrap();
        let conn = open_writer(&dir.path().join("gw.db")).unwrap();
        let pages: i64 = conn
            .pragma_query_value(None, "wal_autocheckpoint", |r| r.get(0))
            .unwrap();
        assert_eq!(pages, WAL_CHECKPOINT_PAGES);
        assert!(pages > 1_000);
    }

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

    /// A database as a release that knew only the first `version` migrations left it.
    fn database_at_version(path: &std::path::Path, version: usize) -> Connection {
        let old = Connection::open(path).unwrap();
        for migration in &MIGRATIONS[..version] {
            old.execute_batch(migration.sql).unwrap();
        }
        old.pragma_update(None, "user_version", version).unwrap();
        old
    }

    /// An event with no message: identified by its whole identity in every version.
    fn conversation_created() -> NewEvent {
        NewEvent {
            event_type: EventType::ConversationCreated,
            payload_json: r#"{"conversation":{"id":"conv-1"}}"#.into(),
            ..NewEvent::default()
        }
    }

    /// A database from before 0003 gets the identity of every stored event,
    /// exactly as ingest computes it, so what it held still de-duplicates.
    #[test]
    fn upgrading_moves_stored_identities_into_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gw.db");
        let old = database_at_version(&path, 2);
        let received = NewEvent {
            event_type: EventType::MessageReceived,
            message_id: Wamid::parse("wamid.before-upgrade"),
            payload_json: r#"{"message":{"id":"wamid.before-upgrade"}}"#.into(),
            ..NewEvent::default()
        };
        let created = conversation_created();
        for event in [&received, &created] {
            old.execute(
                "INSERT INTO events (received_at_ms, event_type, message_id, conversation_id, \
                 phone_number_id, contact_phone, direction, message_type, text, reply_to, \
                 timestamp, payload_json) VALUES (1, ?1, ?2, '', '', '', 'inbound', '', '', '', 0, ?3)",
                params![
                    event.event_type.as_str(),
                    event.message_id.as_ref().map_or("", Wamid::as_str),
                    event.payload_json
                ],
            )
            .unwrap();
        }
        drop(old);

        let conn = open_writer(&path).unwrap();
        let keys: Vec<String> = conn
            .prepare("SELECT dedup_key FROM events ORDER BY sequence")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            keys,
            [
                identity_before_0004(&received),
                identity_before_0004(&created)
            ]
        );
        let leftover: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE name LIKE 'event_keys%'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(leftover, 0, "event_keys and its index are gone");
    }

    /// A database from before 0004: its received messages and statuses are
    /// found by message row and kind, other events by their whole identity,
    /// so what it held still de-duplicates.
    #[test]
    fn upgrading_keys_message_events_by_their_row() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gw.db");
        let old = database_at_version(&path, 3);
        old.execute(
            "INSERT INTO messages (id, wamid, direction, status, timestamp, created_at, updated_at) \
             VALUES (7, 'wamid.before-upgrade', 'inbound', 'received', 1, 1, 1)",
            [],
        )
        .unwrap();
        let received = NewEvent {
            event_type: EventType::MessageReceived,
            message_id: Wamid::parse("wamid.before-upgrade"),
            direction: crate::model::Direction::Inbound,
            payload_json: "{}".into(),
            ..NewEvent::default()
        };
        let created = conversation_created();
        for event in [&received, &created] {
            old.execute(
                "INSERT INTO events (received_at_ms, event_type, message_id, conversation_id, \
                 phone_number_id, contact_phone, direction, message_type, text, reply_to, \
                 timestamp, payload_json, dedup_key) \
                 VALUES (1, ?1, ?2, '', '', '', ?3, '', '', '', 0, ?4, ?5)",
                params![
                    event.event_type.as_str(),
                    event.message_id.as_ref().map_or("", Wamid::as_str),
                    event.direction.as_str(),
                    event.payload_json,
                    identity_before_0004(event)
                ],
            )
            .unwrap();
        }
        drop(old);

        let conn = open_writer(&path).unwrap();
        let identities: Vec<(Option<i64>, String)> = conn
            .prepare("SELECT message_row, dedup_key FROM events ORDER BY sequence")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            identities,
            [
                (Some(7), "whatsapp.message.received".to_string()),
                (None, identity_before_0004(&created))
            ]
        );
        for event in [&received, &created] {
            let identity = Effect::of(event, 0).identity;
            let message = identity
                .message()
                .and_then(|wamid| find_by_wamid(&conn, wamid.as_str()).unwrap());
            assert!(
                is_known(&conn, &identity, message).unwrap(),
                "{}",
                event.event_type
            );
        }
    }

    /// Sends Kapso never took were recorded before 0009 as a made-up Meta
    /// error (code 0, a fixed title); they read back as not taken, while a
    /// refusal with Meta's error stays one.
    #[test]
    fn upgrading_reads_made_up_errors_as_not_taken() {
        use crate::model::{MetaError, SendFailure};

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gw.db");
        let old = database_at_version(&path, 8);
        let made_up =
            r#"[{"code":0,"title":"not taken by Kapso","message":"cannot connect to Kapso"}]"#;
        let refused =
            r#"[{"code":131047,"title":"Re-engagement message","message":"window closed"}]"#;
        for (gateway_id, errors) in [("gw-old", made_up), ("gw-refused", refused)] {
            old.execute(
                "INSERT INTO messages (gateway_id, direction, status, errors_json, timestamp, \
                 created_at, updated_at) VALUES (?1, 'outbound', 'failed', ?2, 1, 1, 1)",
                params![gateway_id, errors],
            )
            .unwrap();
        }
        drop(old);
        let conn = open_writer(&path).unwrap();
        let not_taken = rows::find_message(&conn, &MessageLookup::any("gw-old").unwrap())
            .unwrap()
            .unwrap();
        assert_eq!(
            not_taken.send_failure(),
            SendFailure::NotTaken {
                reason: "cannot connect to Kapso".into()
            }
        );
        assert!(not_taken.errors.is_empty());
        let refused = rows::find_message(&conn, &MessageLookup::any("gw-refused").unwrap())
            .unwrap()
            .unwrap();
        assert_eq!(
            refused.send_failure(),
            SendFailure::Refused(vec![MetaError {
                code: 131047,
                title: "Re-engagement message".into(),
                message: "window closed".into(),
                details: String::new(),
            }])
        );
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
