//! The per-connection idle watchdog: a connection that has no request open and
//! has not begun one within the timeout is closed, whatever protocol it speaks.
//!
//! hyper's HTTP/1 header timeout only starts once a connection has been read as
//! HTTP/1: a socket that sends nothing, or only the HTTP/2 preface, and an
//! HTTP/2 connection with no streams, would otherwise hold their slot forever.
//! The clock runs from accept and again from the end of each request, and is
//! stopped while any request is open (a webhook waiting on the core is not idle).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

/// What one connection's requests report to its watchdog.
#[derive(Debug)]
pub(crate) struct Activity {
    opened: Instant,
    open_requests: AtomicUsize,
    /// When the last request ended, in nanoseconds since `opened`.
    idle_since_nanos: AtomicU64,
    changed: Notify,
}

impl Activity {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            opened: Instant::now(),
            open_requests: AtomicUsize::new(0),
            idle_since_nanos: AtomicU64::new(0),
            changed: Notify::new(),
        })
    }

    /// Marks a request open until the returned guard is dropped.
    pub(crate) fn request(self: &Arc<Self>) -> RequestGuard {
        self.open_requests.fetch_add(1, Ordering::AcqRel);
        self.changed.notify_waiters();
        RequestGuard(Arc::clone(self))
    }

    /// Completes once the connection has been idle for `timeout`.
    pub(crate) async fn idle_for(&self, timeout: Duration) {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            // Registered before the check, so a change between check and await is not missed.
            changed.as_mut().enable();
            if self.open_requests.load(Ordering::Acquire) > 0 {
                changed.await;
                continue;
            }
            let idle_since =
                self.opened + Duration::from_nanos(self.idle_since_nanos.load(Ordering::Acquire));
            let deadline = idle_since + timeout;
            if Instant::now() >= deadline {
                return;
            }
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => {}
                () = changed => {}
            }
        }
    }
}

/// An open request; dropping it (answered, or abandoned) restarts the idle clock.
#[derive(Debug)]
pub(crate) struct RequestGuard(Arc<Activity>);

impl Drop for RequestGuard {
    fn drop(&mut self) {
        let activity = &self.0;
        let since_open = u64::try_from(activity.opened.elapsed().as_nanos()).unwrap_or(u64::MAX);
        activity
            .idle_since_nanos
            .fetch_max(since_open, Ordering::AcqRel);
        activity.open_requests.fetch_sub(1, Ordering::AcqRel);
        activity.changed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUT: Duration = Duration::from_millis(50);
    const PATIENCE: Duration = Duration::from_secs(5);

    #[tokio::test]
    async fn an_untouched_connection_becomes_idle() {
        let activity = Activity::new();
        let started = Instant::now();
        tokio::time::timeout(PATIENCE, activity.idle_for(TIMEOUT))
            .await
            .expect("idle");
        assert!(started.elapsed() >= TIMEOUT);
    }

    #[tokio::test]
    async fn an_open_request_stops_the_clock_and_its_end_restarts_it() {
        let activity = Activity::new();
        let open = activity.request();
        let held = tokio::time::timeout(TIMEOUT * 6, activity.idle_for(TIMEOUT)).await;
        assert!(held.is_err(), "idle with a request open");
        drop(open);
        let ended = Instant::now();
        tokio::time::timeout(PATIENCE, activity.idle_for(TIMEOUT))
            .await
            .expect("idle once the request ended");
        assert!(ended.elapsed() >= TIMEOUT - Duration::from_millis(5));
    }
}
