//! How often a failing core is logged: the first failure after a success at
//! once, then at most one line per [`OutageLog::EVERY`] with the count of the
//! failures it stands for. A core down under 10,000 deliveries a second would
//! otherwise write 10,000 identical warnings a second.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Whether to log a failure now, and how many went unlogged before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Report {
    /// Log it; `suppressed` failures since the previous line were not logged.
    Log { suppressed: u64 },
    /// Counted, not logged: a line was written less than [`OutageLog::EVERY`] ago.
    Quiet,
}

/// The state of the core as the adapter's logs have told it.
#[derive(Debug, Default)]
pub struct OutageLog {
    /// Set by a failure, cleared by a success: successes only take the lock
    /// when an outage is ending.
    failing: AtomicBool,
    window: Mutex<Window>,
}

#[derive(Debug, Default)]
struct Window {
    last_logged: Option<Instant>,
    suppressed: u64,
}

impl OutageLog {
    /// Longest quiet time during an outage.
    pub const EVERY: Duration = Duration::from_secs(10);

    /// A call to the core failed at `now`.
    pub fn failed(&self, now: Instant) -> Report {
        let was_failing = self.failing.swap(true, Ordering::Relaxed);
        let mut window = self.window.lock().unwrap_or_else(|e| e.into_inner());
        let due = window
            .last_logged
            .is_none_or(|last| now.saturating_duration_since(last) >= Self::EVERY);
        if was_failing && !due {
            window.suppressed += 1;
            return Report::Quiet;
        }
        window.last_logged = Some(now);
        Report::Log {
            suppressed: std::mem::take(&mut window.suppressed),
        }
    }

    /// A call to the core succeeded. `Some(suppressed)` when this ends an
    /// outage: the failures since its last line, for a closing line.
    pub fn succeeded(&self) -> Option<u64> {
        // A load first: every successful delivery passes here, and a swap
        // would write the shared line each time although it is almost always false.
        if !self.failing.load(Ordering::Relaxed) || !self.failing.swap(false, Ordering::Relaxed) {
            return None;
        }
        let mut window = self.window.lock().unwrap_or_else(|e| e.into_inner());
        window.last_logged = None;
        Some(std::mem::take(&mut window.suppressed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_logs_its_first_failure_then_one_line_per_interval_with_a_count() {
        let log = OutageLog::default();
        let start = Instant::now();
        assert_eq!(log.failed(start), Report::Log { suppressed: 0 });
        for i in 1..=99 {
            assert_eq!(
                log.failed(start + Duration::from_millis(i * 10)),
                Report::Quiet
            );
        }
        assert_eq!(
            log.failed(start + OutageLog::EVERY),
            Report::Log { suppressed: 99 }
        );
        assert_eq!(
            log.failed(start + OutageLog::EVERY + Duration::from_secs(1)),
            Report::Quiet
        );
    }

    #[test]
    fn the_first_failure_after_a_success_logs_at_once() {
        let log = OutageLog::default();
        let start = Instant::now();
        assert_eq!(log.succeeded(), None);
        assert_eq!(log.failed(start), Report::Log { suppressed: 0 });
        assert_eq!(log.failed(start), Report::Quiet);
        assert_eq!(log.succeeded(), Some(1));
        assert_eq!(log.succeeded(), None);
        assert_eq!(log.failed(start), Report::Log { suppressed: 0 });
    }
}
