//! The retry policy as data: after a failed attempt, either a time to try again (the server's
//! Retry-After, else exponential backoff with full jitter, capped) or the decision to give up
//! because the record's budget of attempts or time is spent.

use std::time::{Duration, Instant, SystemTime};

use hardal_core::RetryAfter;
use hardal_core::destination::MAX_RETRY_AFTER;

use crate::config::DeliveryConfig;

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub max_elapsed: Duration,
    pub initial: Duration,
    pub max_delay: Duration,
}

/// What to do with a record after a failed attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    RetryAt(Instant),
    GiveUp(String),
}

impl RetryPolicy {
    pub fn from_config(config: &DeliveryConfig) -> RetryPolicy {
        RetryPolicy {
            max_attempts: config.max_attempts,
            max_elapsed: Duration::from_secs(config.max_retry_seconds),
            initial: Duration::from_millis(config.backoff_initial_ms),
            max_delay: Duration::from_millis(config.backoff_max_ms),
        }
    }

    /// Decides after attempt number `attempts` (1 for the first send) failed at `now`.
    /// `random` is a uniform sample in [0, 1) for the jitter.
    pub fn decide(
        &self,
        attempts: u32,
        first_attempt: Instant,
        now: Instant,
        retry_after: Option<RetryAfter>,
        wall_now: SystemTime,
        random: f64,
    ) -> Decision {
        if attempts >= self.max_attempts {
            return Decision::GiveUp(format!("gave up after {attempts} attempts"));
        }
        let delay = match retry_after {
            Some(RetryAfter::Delay(delay)) => delay.min(MAX_RETRY_AFTER),
            Some(RetryAfter::At(at)) => at
                .duration_since(wall_now)
                .unwrap_or_default()
                .min(MAX_RETRY_AFTER),
            None => {
                let exponent = attempts.saturating_sub(1).min(30);
                let ceiling = self
                    .initial
                    .saturating_mul(1 << exponent)
                    .min(self.max_delay);
                ceiling.mul_f64(random.clamp(0.0, 1.0))
            }
        };
        // Checked: an instant far enough ahead does not exist on every platform.
        let due = now.checked_add(delay);
        if due.is_none_or(|due| due.saturating_duration_since(first_attempt) > self.max_elapsed) {
            return Decision::GiveUp(format!(
                "gave up: the next attempt ({} s from now) would pass the retry budget of {} s",
                delay.as_secs(),
                self.max_elapsed.as_secs()
            ));
        }
        Decision::RetryAt(due.expect("checked above"))
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant, SystemTime};

    use hardal_core::RetryAfter;

    use super::{Decision, RetryPolicy};

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 5,
            max_elapsed: Duration::from_secs(60),
            initial: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
        }
    }

    #[test]
    fn backoff_doubles_with_full_jitter_and_a_cap() {
        let (t0, wall) = (Instant::now(), SystemTime::now());
        let delay = |attempts, random| match policy().decide(attempts, t0, t0, None, wall, random) {
            Decision::RetryAt(at) => at - t0,
            other => panic!("{other:?}"),
        };
        assert_eq!(delay(1, 0.999_999).as_millis(), 99);
        assert_eq!(delay(2, 0.5), Duration::from_millis(100));
        assert_eq!(delay(3, 0.5), Duration::from_millis(200));
        assert_eq!(delay(4, 0.999_999).as_millis(), 799);
        assert_eq!(delay(1, 0.0), Duration::ZERO);
        let capped = RetryPolicy {
            max_attempts: 50,
            ..policy()
        };
        let Decision::RetryAt(at) = capped.decide(40, t0, t0, None, wall, 0.5) else {
            panic!()
        };
        assert_eq!(at - t0, Duration::from_millis(500));
    }

    #[test]
    fn retry_after_is_honoured_in_seconds_and_dates() {
        let (t0, wall) = (Instant::now(), SystemTime::now());
        let after = Some(RetryAfter::Delay(Duration::from_secs(7)));
        assert_eq!(
            policy().decide(1, t0, t0, after, wall, 0.1),
            Decision::RetryAt(t0 + Duration::from_secs(7))
        );
        let at = Some(RetryAfter::At(wall + Duration::from_secs(3)));
        assert_eq!(
            policy().decide(1, t0, t0, at, wall, 0.1),
            Decision::RetryAt(t0 + Duration::from_secs(3))
        );
        let past = Some(RetryAfter::At(wall - Duration::from_secs(3)));
        assert_eq!(
            policy().decide(1, t0, t0, past, wall, 0.1),
            Decision::RetryAt(t0)
        );
    }

    #[test]
    fn a_huge_retry_after_never_overflows() {
        let (t0, wall) = (Instant::now(), SystemTime::now());
        let generous = RetryPolicy {
            max_elapsed: Duration::from_secs(u64::MAX / 4),
            ..policy()
        };
        for after in [
            RetryAfter::Delay(Duration::MAX),
            RetryAfter::Delay(Duration::from_secs(u64::MAX)),
            RetryAfter::At(wall + Duration::from_secs(1 << 50)),
        ] {
            assert!(matches!(
                generous.decide(1, t0, t0, Some(after), wall, 0.5),
                Decision::RetryAt(_)
            ));
            assert!(matches!(
                policy().decide(1, t0, t0, Some(after), wall, 0.5),
                Decision::GiveUp(_)
            ));
        }
    }

    #[test]
    fn budgets_of_attempts_and_time() {
        let (t0, wall) = (Instant::now(), SystemTime::now());
        assert_eq!(
            policy().decide(5, t0, t0, None, wall, 0.5),
            Decision::GiveUp("gave up after 5 attempts".into())
        );
        let long = Some(RetryAfter::Delay(Duration::from_secs(61)));
        assert!(matches!(
            policy().decide(1, t0, t0, long, wall, 0.5),
            Decision::GiveUp(_)
        ));
        let later = t0 + Duration::from_secs(59);
        assert!(matches!(
            policy().decide(
                2,
                t0,
                later,
                Some(RetryAfter::Delay(Duration::from_secs(2))),
                wall,
                0.5
            ),
            Decision::GiveUp(_)
        ));
    }
}
