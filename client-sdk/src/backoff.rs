//! The reconnect schedule of [`watch`](crate::watch): exponential, capped, jittered.
//!
//! Jitter keeps many consumers that lost the core at the same moment from
//! reconnecting in lockstep when it comes back; the cap keeps a consumer from
//! sleeping for minutes after a long outage.

use std::time::Duration;

/// How long to wait before each reconnect attempt.
///
/// Attempt `n` (0-based) waits a random time in `[base/2, base]` where
/// `base = min(initial * 2^n, max)`.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use kapso_client::Backoff;
///
/// let backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(10));
/// assert_eq!(backoff.base_delay(0), Duration::from_millis(100));
/// assert_eq!(backoff.base_delay(3), Duration::from_millis(800));
/// assert_eq!(backoff.base_delay(30), Duration::from_secs(10));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Base delay of the first attempt.
    pub initial: Duration,
    /// Upper bound of any delay.
    pub max: Duration,
}

impl Default for Backoff {
    /// 200 ms doubling up to 30 s.
    fn default() -> Self {
        Backoff::new(Duration::from_millis(200), Duration::from_secs(30))
    }
}

impl Backoff {
    /// A schedule starting at `initial` and never exceeding `max`.
    pub fn new(initial: Duration, max: Duration) -> Self {
        Backoff {
            initial,
            max: max.max(initial),
        }
    }

    /// The delay before attempt `attempt` without jitter.
    pub fn base_delay(&self, attempt: u32) -> Duration {
        // Past 2^20 the cap has long been reached; bounding the shift avoids overflow.
        let factor = 1u32 << attempt.min(20);
        self.initial.saturating_mul(factor).min(self.max)
    }

    /// The delay before attempt `attempt`, jittered by `unit` in `[0, 1]`:
    /// 0 gives half the base delay, 1 the full base delay.
    pub fn delay_with(&self, attempt: u32, unit: f64) -> Duration {
        let base = self.base_delay(attempt);
        base / 2 + (base / 2).mul_f64(unit.clamp(0.0, 1.0))
    }

    /// The delay before attempt `attempt`, with random jitter.
    pub fn delay(&self, attempt: u32) -> Duration {
        self.delay_with(attempt, rand::random::<f64>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_doubles_then_stays_at_the_cap() {
        let backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
        let bases: Vec<_> = (0..8).map(|n| backoff.base_delay(n).as_millis()).collect();
        assert_eq!(bases, [100, 200, 400, 800, 1600, 2000, 2000, 2000]);
        assert_eq!(backoff.base_delay(u32::MAX), Duration::from_secs(2));
    }

    #[test]
    fn jittered_delays_stay_within_half_and_full_base() {
        let backoff = Backoff::default();
        for attempt in 0..64 {
            let base = backoff.base_delay(attempt);
            assert_eq!(backoff.delay_with(attempt, 0.0), base / 2);
            assert_eq!(backoff.delay_with(attempt, 1.0), base);
            assert_eq!(backoff.delay_with(attempt, 7.0), base, "unit is clamped");
            let delay = backoff.delay(attempt);
            assert!(delay >= base / 2 && delay <= base && delay <= backoff.max);
        }
    }

    #[test]
    fn max_below_initial_is_raised_to_initial() {
        let backoff = Backoff::new(Duration::from_secs(1), Duration::from_millis(10));
        assert_eq!(backoff.base_delay(5), Duration::from_secs(1));
    }
}
