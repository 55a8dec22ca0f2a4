//! Retrying upstream calls: exponential backoff with jitter, a bounded number of
//! attempts, all inside the caller's deadline. Only outcomes that prove the
//! request did not take effect are retried (plus unknown outcomes of calls that
//! are idempotent upstream, like mark-read).

use std::future::Future;
use std::time::Duration;

use rand::Rng;
use tokio::time::Instant;

use crate::kapso_api::CallOutcome;

/// How hard to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Upstream attempts per call, the first included.
    pub max_attempts: u32,
    /// Backoff before the second attempt; doubles each time.
    pub base_delay: Duration,
    /// Backoff never exceeds this (Kapso's `Retry-After` may).
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(5),
        }
    }
}

/// Whether an unknown outcome may be retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Idempotent {
    /// Repeating the request has no further effect (mark-read): unknown outcomes are retried.
    Yes,
    /// Repeating could send twice: an unknown outcome ends the call.
    No,
}

impl RetryPolicy {
    /// Calls `call` until it is done, refused, unknown (unless `idempotent`), out of
    /// attempts, or the next wait would pass `deadline`. The last outcome is returned:
    /// `Retryable` then means "gave up".
    pub(crate) async fn run<T, F, Fut>(
        &self,
        deadline: Instant,
        idempotent: Idempotent,
        mut call: F,
    ) -> CallOutcome<T>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = CallOutcome<T>>,
    {
        let mut attempt = 1;
        loop {
            let outcome = call(attempt).await;
            let asked_wait = match &outcome {
                CallOutcome::Retryable(retry) => retry.after,
                CallOutcome::Unknown(_) if idempotent == Idempotent::Yes => None,
                _ => return outcome,
            };
            if attempt >= self.max_attempts {
                return outcome;
            }
            let wait = asked_wait.unwrap_or_else(|| self.backoff(attempt));
            if Instant::now() + wait >= deadline {
                return outcome;
            }
            tracing::debug!(
                attempt,
                wait_ms = wait.as_millis() as u64,
                "retrying Kapso call"
            );
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    /// Wait after the `attempt`-th failure: "equal jitter", between half and all of
    /// the exponential step, so replicas that failed together do not retry together.
    fn backoff(&self, attempt: u32) -> Duration {
        let step = self
            .base_delay
            .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)))
            .min(self.max_delay);
        let half = step / 2;
        half + rand::rng().random_range(Duration::ZERO..=half)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::kapso_api::{Rejection, Retry, RetryCause};

    fn retryable(after: Option<Duration>) -> CallOutcome<()> {
        CallOutcome::Retryable(Retry {
            after,
            cause: RetryCause::Throttled(None),
        })
    }

    /// Replays `script`, recording when each attempt happened.
    async fn run(
        policy: RetryPolicy,
        deadline: Duration,
        idempotent: Idempotent,
        script: Vec<CallOutcome<()>>,
    ) -> (CallOutcome<()>, Vec<Duration>) {
        let start = Instant::now();
        let calls = Mutex::new(Vec::new());
        let script = Mutex::new(script.into_iter());
        let outcome = policy
            .run(start + deadline, idempotent, |_| {
                calls.lock().unwrap().push(start.elapsed());
                let next = script.lock().unwrap().next().unwrap();
                async move { next }
            })
            .await;
        (outcome, calls.into_inner().unwrap())
    }

    #[tokio::test(start_paused = true)]
    async fn honours_retry_after() {
        let script = vec![
            retryable(Some(Duration::from_secs(2))),
            CallOutcome::Done(()),
        ];
        let (outcome, calls) = run(
            RetryPolicy::default(),
            Duration::from_secs(10),
            Idempotent::No,
            script,
        )
        .await;
        assert_eq!(outcome, CallOutcome::Done(()));
        assert_eq!(calls, [Duration::ZERO, Duration::from_secs(2)]);
    }

    #[tokio::test(start_paused = true)]
    async fn backs_off_exponentially_within_bounds() {
        let script = vec![
            retryable(None),
            retryable(None),
            retryable(None),
            retryable(None),
        ];
        let (outcome, calls) = run(
            RetryPolicy::default(),
            Duration::from_secs(10),
            Idempotent::No,
            script,
        )
        .await;
        assert!(matches!(outcome, CallOutcome::Retryable(_)));
        assert_eq!(calls.len(), 4);
        let gaps: Vec<_> = calls.windows(2).map(|w| w[1] - w[0]).collect();
        for (i, gap) in gaps.iter().enumerate() {
            let step = Duration::from_millis(200) * 2u32.pow(i as u32);
            assert!(*gap >= step / 2 && *gap <= step, "gap {i}: {gap:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn never_waits_past_the_deadline() {
        let script = vec![
            retryable(Some(Duration::from_secs(30))),
            CallOutcome::Done(()),
        ];
        let (outcome, calls) = run(
            RetryPolicy::default(),
            Duration::from_secs(10),
            Idempotent::No,
            script,
        )
        .await;
        assert!(matches!(outcome, CallOutcome::Retryable(_)));
        assert_eq!(calls.len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn unknown_and_permanent_end_a_send_but_unknown_retries_a_read() {
        let unknown = || CallOutcome::Unknown("HTTP 502".into());
        let (outcome, calls) = run(
            RetryPolicy::default(),
            Duration::from_secs(10),
            Idempotent::No,
            vec![unknown()],
        )
        .await;
        assert_eq!(outcome, unknown());
        assert_eq!(calls.len(), 1);
        let script = vec![CallOutcome::Permanent(Rejection::NotConfigured)];
        let (_, calls) = run(
            RetryPolicy::default(),
            Duration::from_secs(10),
            Idempotent::No,
            script,
        )
        .await;
        assert_eq!(calls.len(), 1);
        let script = vec![unknown(), CallOutcome::Done(())];
        let (outcome, calls) = run(
            RetryPolicy::default(),
            Duration::from_secs(10),
            Idempotent::Yes,
            script,
        )
        .await;
        assert_eq!(outcome, CallOutcome::Done(()));
        assert_eq!(calls.len(), 2);
    }
}
