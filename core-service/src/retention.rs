//! Background pruning of old log events and de-duplication keys
//! (`EVENT_RETENTION_DAYS`).
//!
//! Runs shortly after start and then hourly, deleting in small batches through
//! the store's normal write path, so each batch shares a commit with ingest
//! instead of stalling it. Messages and status history are never pruned.
//!
//! Pruning an event's key re-opens the door for a very late re-delivery of that
//! event to be stored again. Kapso retries for hours, so any retention of days
//! (30 by default) is far outside that window.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::metrics::CoreMetrics;
use crate::store::{Store, StoreError};

/// Rows per table deleted in one write: small enough that a commit stays short.
pub const BATCH: usize = 2_000;
/// Time between pruning passes.
const INTERVAL: Duration = Duration::from_secs(3600);
/// Delay before the first pass, so start-up (and its health probe) goes first.
const FIRST_PASS_AFTER: Duration = Duration::from_secs(60);
/// Pause between batches: lets queued ingest requests have the writer.
const BETWEEN_BATCHES: Duration = Duration::from_millis(50);

/// Prunes forever (until the task is aborted). `days` must be non-zero.
pub async fn run(store: Arc<dyn Store>, days: u32, metrics: Arc<CoreMetrics>) {
    let retention = Duration::from_secs(u64::from(days) * 86_400);
    tokio::time::sleep(FIRST_PASS_AFTER).await;
    loop {
        let cutoff = cutoff_ms(SystemTime::now(), retention);
        match prune_all(store.as_ref(), cutoff, BATCH, &metrics).await {
            Ok(0) => tracing::debug!(days, "retention: nothing to prune"),
            Ok(rows) => tracing::info!(rows, days, "retention: pruned old events and keys"),
            Err(error) => tracing::warn!(%error, "retention pass failed; retrying next hour"),
        }
        tokio::time::sleep(INTERVAL).await;
    }
}

/// Deletes everything received before `cutoff_ms`, `batch` rows at a time; returns the total.
pub async fn prune_all(
    store: &dyn Store,
    cutoff_ms: i64,
    batch: usize,
    metrics: &CoreMetrics,
) -> Result<u64, StoreError> {
    let mut total = 0;
    loop {
        let rows = store.prune(cutoff_ms, batch).await?;
        if rows == 0 {
            return Ok(total);
        }
        metrics.pruned(rows);
        total += rows;
        tokio::time::sleep(BETWEEN_BATCHES).await;
    }
}

/// Unix milliseconds `retention` before `now`.
fn cutoff_ms(now: SystemTime, retention: Duration) -> i64 {
    let since_epoch = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let cutoff = since_epoch.saturating_sub(retention);
    i64::try_from(cutoff.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cutoff_is_retention_before_now() {
        let now = UNIX_EPOCH + Duration::from_secs(100 * 86_400);
        let cutoff = cutoff_ms(now, Duration::from_secs(30 * 86_400));
        assert_eq!(cutoff, 70 * 86_400 * 1000);
        assert_eq!(cutoff_ms(UNIX_EPOCH, Duration::from_secs(1)), 0);
    }
}
