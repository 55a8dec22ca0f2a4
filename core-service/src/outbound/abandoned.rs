//! Sends whose owner is gone: claimed (`Accepted`) by a process that crashed,
//! was shut down past its grace period, or lost the answer to its commit.
//! Nothing else would ever finish them, and a retry under their idempotency key
//! would wait on them forever.
//!
//! Every send stops calling Kapso within [`SEND_TIME_LIMIT`] of its claim, so
//! one still `Accepted` well after that has no owner, on any replica. It is
//! settled `OutcomeUnknown`: nothing records whether its request left before
//! the owner died, and resending could deliver twice; a status webhook can
//! still settle it. The sweep runs at start-up and then every [`INTERVAL`], and
//! a retry that finds such a send settles it at once.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::store::Store;

/// Longest a send calls Kapso after its claim, whatever the caller's deadline.
pub const SEND_TIME_LIMIT: Duration = Duration::from_secs(60);
/// A send still `Accepted` this long after its claim has lost its owner: the
/// send time limit plus ample room for the store writes around it.
pub const ABANDONED_AFTER: Duration = Duration::from_secs(180);
/// Time between sweeps.
const INTERVAL: Duration = Duration::from_secs(60);

/// Settles abandoned sends at once and then every minute, forever (until aborted).
pub async fn run(store: Arc<dyn Store>) {
    loop {
        let claimed_before = unix_now() - ABANDONED_AFTER.as_secs() as i64;
        match store.settle_abandoned_sends(claimed_before).await {
            Ok(0) => {}
            Ok(settled) => {
                tracing::warn!(
                    settled,
                    "sends abandoned by their owner settled as outcome unknown"
                )
            }
            Err(error) => tracing::warn!(%error, "cannot settle abandoned sends; retrying later"),
        }
        tokio::time::sleep(INTERVAL).await;
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
