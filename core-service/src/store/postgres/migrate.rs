//! The versioned schema.
//!
//! Migrations are SQL files under `core-service/migrations/postgres/`, embedded
//! in the binary and applied in order at open. `schema_migrations` records each
//! one applied, in the same transaction as its DDL (PostgreSQL's DDL is
//! transactional), so a crash leaves the schema at a known version. Several
//! cores starting at once take turns on a session advisory lock: the first
//! applies, the others find nothing left to do.

use deadpool_postgres::ClientWrapper;

use crate::store::StoreError;

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
];

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
            conn.execute(
                "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                &[&version, name],
            )
            .await?;
            conn.batch_execute("COMMIT").await
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
