//! Pruning old log entries and de-duplication keys, a bounded batch at a time.
//!
//! A prune is one writer request, so it shares a group commit with ingest
//! instead of holding locks of its own for long. It needs no log lock: it only
//! removes the oldest entries, never adds behind a reader's position.

use deadpool_postgres::ClientWrapper;

use crate::store::StoreError;

/// See [`Store::prune`](crate::store::Store::prune).
pub(super) async fn prune(
    conn: &ClientWrapper,
    older_than_ms: i64,
    batch: usize,
) -> Result<u64, StoreError> {
    let batch = i64::try_from(batch).unwrap_or(i64::MAX);
    // Events are appended in time order, so only the first `batch` by sequence
    // need looking at: the scan stops there even when nothing is old enough.
    // An event's identity is a column of its row and goes with it.
    // The highest sequence pruned moves up with the delete, in one statement:
    // consumers behind it are told they missed events, not left to skip them.
    let stmt = conn
        .prepare_cached(
            "WITH gone AS (DELETE FROM events WHERE sequence IN \
             (SELECT sequence FROM events ORDER BY sequence LIMIT $2) \
             AND received_at_ms < $1 RETURNING sequence), \
             horizon AS (UPDATE log_horizon \
             SET pruned_through = GREATEST(pruned_through, (SELECT max(sequence) FROM gone)) \
             WHERE EXISTS (SELECT 1 FROM gone)) \
             SELECT count(*) FROM gone",
        )
        .await?;
    let events: i64 = conn
        .query_one(&stmt, &[&older_than_ms, &batch])
        .await?
        .try_get(0)?;
    let stmt = conn
        .prepare_cached(
            "DELETE FROM deliveries WHERE key IN (SELECT key FROM deliveries \
             WHERE received_at_ms < $1 ORDER BY received_at_ms LIMIT $2)",
        )
        .await?;
    let deliveries = conn.execute(&stmt, &[&older_than_ms, &batch]).await?;
    Ok(u64::try_from(events).unwrap_or(0) + deliveries)
}
