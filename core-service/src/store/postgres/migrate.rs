//! The versioned schema.
//!
//! Migrations are SQL files under `core-service/migrations/postgres/`, embedded
//! in the binary and applied in order at open. `schema_migrations` records each
//! one applied, in the same transaction as its DDL (PostgreSQL's DDL is
//! transactional), so a crash leaves the schema at a known version; a
//! migration that rewrites stored rows as Rust computes them has a data step,
//! run after its SQL in the same transaction. Several
//! cores starting at once take turns on a session advisory lock: the first
//! applies, the others find nothing left to do.

use deadpool_postgres::ClientWrapper;

use super::rows::{self, event_columns};
use crate::store::StoreError;
use crate::store::effect::Effect;

/// Every migration, in order. Index + 1 is its version.
const MIGRATIONS: &[(&str, &str)] = &[
    (
        "0001_initial",
        include_str!("../../../migrations/postgres/0001_initial.sql"),
    ),
    (
        "0002_log_horizon",
        include_str!("../../../migrations/postgres/0002_log_horizon.sql"),
    ),
    (
        "0003_conversations_by_contact",
        include_str!("../../../migrations/postgres/0003_conversations_by_contact.sql"),
    ),
    (
        "0004_message_content",
        include_str!("../../../migrations/postgres/0004_message_content.sql"),
    ),
    (
        "0005_no_events_by_conversation",
        include_str!("../../../migrations/postgres/0005_no_events_by_conversation.sql"),
    ),
    (
        "0006_event_identity",
        include_str!("../../../migrations/postgres/0006_event_identity.sql"),
    ),
    (
        "0007_send_failure",
        include_str!("../../../migrations/postgres/0007_send_failure.sql"),
    ),
];

/// A migration's data step, after its SQL.
async fn data_step(conn: &ClientWrapper, name: &str) -> Result<(), StoreError> {
    match name {
        "0006_event_identity" => key_stored_events(conn).await,
        _ => Ok(()),
    }
}

/// Events the 0006 data step rewrites per statement.
const EVENTS_PER_STEP: i64 = 5_000;

/// 0006: gives every stored event the identity ingest now gives it: a received
/// message or status its message's row and kind, any other event its whole
/// identity (as `event_keys` held it). An event whose message row is gone
/// keeps its whole identity.
async fn key_stored_events(conn: &ClientWrapper) -> Result<(), StoreError> {
    let select = conn
        .prepare(concat!(
            "SELECT ",
            event_columns!(),
            " FROM events WHERE dedup_key IS NULL ORDER BY sequence LIMIT $1"
        ))
        .await?;
    let update = conn
        .prepare(
            "UPDATE events AS e SET message_row = m.id, \
               dedup_key = CASE WHEN m.id IS NULL THEN v.whole ELSE v.kind END \
             FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[]) \
               AS v (sequence, kind, whole, wamid) \
             LEFT JOIN messages AS m ON m.wamid = v.wamid \
             WHERE e.sequence = v.sequence",
        )
        .await?;
    loop {
        let stored = conn.query(&select, &[&EVENTS_PER_STEP]).await?;
        if stored.is_empty() {
            return Ok(());
        }
        let (mut sequences, mut kinds, mut wholes, mut wamids) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for row in &stored {
            let stored = rows::event_from_row(row)?;
            let identity = Effect::of(&stored.event, 0).identity;
            sequences.push(i64::try_from(stored.sequence).unwrap_or(i64::MAX));
            kinds.push(identity.key());
            wholes.push(identity.to_string());
            wamids.push(identity.message().map(|wamid| wamid.as_str().to_owned()));
        }
        conn.execute(&update, &[&sequences, &kinds, &wholes, &wamids])
            .await?;
    }
}

/// Advisory lock key held while migrating ("kapso" + 2).
const MIGRATION_LOCK: i64 = 0x6b61_7073_6f00_0002;

/// Applies every migration the database has not seen yet.
pub(super) async fn migrate(conn: &ClientWrapper) -> Result<(), StoreError> {
    conn.batch_execute(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK})"))
        .await?;
    let outcome = apply_pending(conn).await;
    // A session lock outlives errors: release it, or a pooled connection keeps it.
    let unlocked = conn
        .batch_execute(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})"))
        .await;
    outcome?;
    unlocked?;
    Ok(())
}

async fn apply_pending(conn: &ClientWrapper) -> Result<(), StoreError> {
    conn.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ( \
           version    INTEGER PRIMARY KEY, \
           name       TEXT NOT NULL, \
           applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
    )
    .await?;
    let version: i32 = conn
        .query_one(
            "SELECT coalesce(max(version), 0) FROM schema_migrations",
            &[],
        )
        .await?
        .try_get(0)?;
    let known = MIGRATIONS.len();
    let applied = usize::try_from(version).unwrap_or(usize::MAX);
    if applied > known {
        return Err(StoreError::Internal(format!(
            "database schema version {version} is newer than this build ({known})"
        )));
    }
    for (index, (name, sql)) in MIGRATIONS.iter().enumerate().skip(applied) {
        let version = i32::try_from(index + 1).unwrap_or(i32::MAX);
        let applied = async {
            conn.batch_execute("BEGIN").await?;
            conn.batch_execute(sql).await?;
            data_step(conn, name).await?;
            conn.execute(
                "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                &[&version, name],
            )
            .await?;
            conn.batch_execute("COMMIT").await?;
            Ok::<_, StoreError>(())
        }
        .await;
        if let Err(error) = applied {
            let _ = conn.batch_execute("ROLLBACK").await;
            return Err(StoreError::Internal(format!(
                "migration {name} failed: {error}"
            )));
        }
        tracing::info!(migration = name, "applied postgres migration");
    }
    Ok(())
}
