//! Failures on purpose, so a consumer's retries can be watched at work: a
//! burst of 429s, then a share of 503s, and a delay before every answer.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::meta_error::MetaError;

/// What `kapso dev` was asked to get wrong.
#[derive(Debug)]
pub struct Misbehaviour {
    fail_rate: f64,
    latency: Duration,
    /// 429s still to answer.
    burst_left: AtomicU64,
}

impl Misbehaviour {
    pub fn new(fail_rate: f64, latency: Duration, burst_429: u64) -> Misbehaviour {
        Misbehaviour {
            fail_rate,
            latency,
            burst_left: AtomicU64::new(burst_429),
        }
    }

    /// How long to wait before answering.
    pub fn latency(&self) -> Duration {
        self.latency
    }

    /// The failure to answer a call with instead of taking it, if any. `roll`
    /// is uniform in `[0, 1)`: the call fails when it falls under the rate.
    pub fn failure(&self, roll: f64) -> Option<MetaError> {
        let in_burst = self
            .burst_left
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                left.checked_sub(1)
            })
            .is_ok();
        if in_burst {
            return Some(MetaError::RateLimited);
        }
        (roll < self.fail_rate).then_some(MetaError::Unavailable)
    }
}

/// `--fail-rate`: a share from 0 to 1.
pub fn parse_rate(raw: &str) -> Result<f64, String> {
    let rate: f64 = raw
        .parse()
        .map_err(|_| format!("{raw:?} is not a number"))?;
    if (0.0..=1.0).contains(&rate) {
        Ok(rate)
    } else {
        Err(format!("{raw} is not between 0 and 1"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_of_429s_comes_first_then_calls_go_through() {
        let misbehaviour = Misbehaviour::new(0.0, Duration::ZERO, 2);
        assert_eq!(misbehaviour.failure(0.5), Some(MetaError::RateLimited));
        assert_eq!(misbehaviour.failure(0.5), Some(MetaError::RateLimited));
        assert_eq!(misbehaviour.failure(0.0), None);
        assert_eq!(misbehaviour.failure(0.0), None);
    }

    #[test]
    fn the_fail_rate_is_the_share_of_rolls_under_it() {
        let misbehaviour = Misbehaviour::new(0.25, Duration::ZERO, 0);
        assert_eq!(misbehaviour.failure(0.0), Some(MetaError::Unavailable));
        assert_eq!(misbehaviour.failure(0.2499), Some(MetaError::Unavailable));
        assert_eq!(misbehaviour.failure(0.25), None);
        assert_eq!(misbehaviour.failure(0.99), None);
        let always = Misbehaviour::new(1.0, Duration::ZERO, 0);
        assert_eq!(always.failure(0.999_999), Some(MetaError::Unavailable));
        let never = Misbehaviour::new(0.0, Duration::ZERO, 0);
        assert_eq!(never.failure(0.0), None);
    }

    #[test]
    fn a_rate_is_between_0_and_1() {
        assert_eq!(parse_rate("0.1"), Ok(0.1));
        assert_eq!(parse_rate("1"), Ok(1.0));
        assert!(parse_rate("1.5").is_err());
        assert!(parse_rate("-0.1").is_err());
        assert!(parse_rate("NaN").is_err());
        assert!(parse_rate("half").is_err());
    }
}
