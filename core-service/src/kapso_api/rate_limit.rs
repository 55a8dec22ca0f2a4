//! Client-side rate limit per API key (GCRA), so a burst of sends waits its turn
//! instead of collecting 429s from Kapso (plans allow 100 to 2000 requests a minute).
//!
//! Each caller reserves the next slot under a short lock and then sleeps until it:
//! waiting callers are served in reservation order, and nobody holds the lock while asleep.

use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// What asking for a slot amounted to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Admission {
    /// Go now.
    Now,
    /// Reserved: the slot comes after this wait.
    After(Duration),
    /// The next slot is later than the caller's deadline; nothing was reserved.
    TooLate(Duration),
}

#[derive(Debug)]
pub(super) struct RateLimiter {
    /// Time between requests at the steady rate.
    interval: Duration,
    /// How far ahead of the steady rate a burst may run.
    tolerance: Duration,
    /// Theoretical arrival time of the next request.
    next: Mutex<Instant>,
}

impl RateLimiter {
    /// `per_minute` requests a minute at the steady rate, `burst` of them at once.
    pub(super) fn new(per_minute: NonZeroU32, burst: NonZeroU32) -> RateLimiter {
        let interval = Duration::from_secs(60) / per_minute.get();
        RateLimiter {
            interval,
            tolerance: interval * (burst.get() - 1),
            next: Mutex::new(Instant::now()),
        }
    }

    /// Reserves a slot no later than `deadline`.
    pub(super) fn admit(&self, deadline: Instant) -> Admission {
        let now = Instant::now();
        let mut next = self.next.lock().unwrap();
        let tat = (*next).max(now);
        let allowed_at = tat.checked_sub(self.tolerance).unwrap_or(now).max(now);
        if allowed_at > deadline {
            return Admission::TooLate(allowed_at - now);
        }
        *next = tat + self.interval;
        if allowed_at <= now {
            Admission::Now
        } else {
            Admission::After(allowed_at - now)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(per_minute: u32, burst: u32) -> RateLimiter {
        RateLimiter::new(
            NonZeroU32::new(per_minute).unwrap(),
            NonZeroU32::new(burst).unwrap(),
        )
    }

    #[tokio::test(start_paused = true)]
    async fn burst_passes_then_requests_queue_at_the_steady_rate() {
        let limiter = limiter(60, 3);
        let far = Instant::now() + Duration::from_secs(3600);
        for _ in 0..3 {
            assert_eq!(limiter.admit(far), Admission::Now);
        }
        assert_eq!(limiter.admit(far), Admission::After(Duration::from_secs(1)));
        assert_eq!(limiter.admit(far), Admission::After(Duration::from_secs(2)));
    }

    #[tokio::test(start_paused = true)]
    async fn slots_free_up_as_time_passes() {
        let limiter = limiter(60, 1);
        let far = Instant::now() + Duration::from_secs(3600);
        assert_eq!(limiter.admit(far), Admission::Now);
        tokio::time::advance(Duration::from_millis(400)).await;
        assert_eq!(
            limiter.admit(far),
            Admission::After(Duration::from_millis(600))
        );
        tokio::time::advance(Duration::from_secs(3)).await;
        assert_eq!(limiter.admit(far), Admission::Now);
    }

    #[tokio::test(start_paused = true)]
    async fn a_slot_past_the_deadline_is_not_reserved() {
        let limiter = limiter(60, 1);
        let soon = Instant::now() + Duration::from_millis(100);
        assert_eq!(limiter.admit(soon), Admission::Now);
        assert_eq!(
            limiter.admit(soon),
            Admission::TooLate(Duration::from_secs(1))
        );
        let far = Instant::now() + Duration::from_secs(10);
        assert_eq!(limiter.admit(far), Admission::After(Duration::from_secs(1)));
    }
}
