//! A strict request-rate limiter: requests are spaced at least `60 s / requests_per_minute`
//! apart (the generic cell rate algorithm with no burst), so no window of any length ever sees
//! more than its share plus one request.

use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct RateLimiter {
    interval: Duration,
    next_slot: Option<Instant>,
}

impl RateLimiter {
    pub fn per_minute(requests: u32) -> RateLimiter {
        RateLimiter {
            interval: Duration::from_secs(60) / requests.max(1),
            next_slot: None,
        }
    }

    /// When the next request may go, if not now.
    pub fn wait_until(&self, now: Instant) -> Option<Instant> {
        self.next_slot.filter(|slot| *slot > now)
    }

    /// Takes the slot for a request sent `now`; call only when `wait_until` is `None`.
    pub fn take(&mut self, now: Instant) {
        let start = self.next_slot.map_or(now, |slot| slot.max(now));
        self.next_slot = Some(start + self.interval);
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::RateLimiter;

    #[test]
    fn spaces_requests_evenly() {
        let mut limiter = RateLimiter::per_minute(600); // one per 100 ms
        let t0 = Instant::now();
        assert_eq!(limiter.wait_until(t0), None);
        limiter.take(t0);
        assert_eq!(
            limiter.wait_until(t0),
            Some(t0 + Duration::from_millis(100))
        );
        assert_eq!(
            limiter.wait_until(t0 + Duration::from_millis(99)),
            Some(t0 + Duration::from_millis(100))
        );
        assert_eq!(limiter.wait_until(t0 + Duration::from_millis(100)), None);
        limiter.take(t0 + Duration::from_millis(150));
        // Idle time does not bank a burst.
        assert_eq!(limiter.wait_until(t0 + Duration::from_secs(10)), None);
        limiter.take(t0 + Duration::from_secs(10));
        assert!(limiter.wait_until(t0 + Duration::from_secs(10)).is_some());
    }
}
