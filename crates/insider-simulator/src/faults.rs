//! Fault injection: what can go wrong with a request, for which requests and endpoints, and the
//! book that decides.
//!
//! Faults stand for the infrastructure in front of Insider (rate limiter, edge, network), so they are
//! decided before authentication and validation, and a faulted request records no users (except
//! [`Fault::Slow`] and [`Fault::Hold`], which answer normally after their wait). A fault applies
//! to every endpoint unless it names some ([`Endpoint`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

/// How a 429 states its `Retry-After`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RetryAfterSpec {
    /// `Retry-After: <seconds>`.
    Seconds(u64),
    /// `Retry-After: <HTTP-date>` with this fixed instant.
    #[serde(with = "http_date")]
    HttpDate(SystemTime),
    /// `Retry-After: <HTTP-date>` this many seconds after the response is made, because a fixed
    /// instant written into a test is stale by the time the test runs.
    HttpDateInSeconds(u64),
}

impl RetryAfterSpec {
    /// The header value, computed when the response is made.
    pub fn header_value(&self, now: SystemTime) -> String {
        match *self {
            RetryAfterSpec::Seconds(seconds) => seconds.to_string(),
            RetryAfterSpec::HttpDate(at) => httpdate::fmt_http_date(at),
            RetryAfterSpec::HttpDateInSeconds(seconds) => {
                httpdate::fmt_http_date(now + Duration::from_secs(seconds))
            }
        }
    }
}

/// What happens to a faulted request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fault {
    /// 429 `{"error":"rejected: too many requests"}`, with `Retry-After` when given.
    TooManyRequests {
        #[serde(default)]
        retry_after: Option<RetryAfterSpec>,
    },
    /// A 5xx: 500, 502, 503, 504 or one of Cloudflare's 520 to 524.
    ServerError { status: u16 },
    /// Answer normally, after this delay.
    Slow {
        #[serde(rename = "delay_ms", with = "millis")]
        delay: Duration,
    },
    /// Read the request, then close the connection without a response.
    Drop,
    /// 401 whatever the headers say, as when a token is revoked.
    Unauthorized,
    /// A redirect (3xx) to `location`, as a moved endpoint or a hostile proxy answers.
    Redirect { status: u16, location: String },
    /// A success status whose body is not Insider's answer: a captive portal's HTML page, a
    /// proxy's `{}`. Nothing is recorded.
    OddAnswer {
        status: u16,
        content_type: String,
        body: String,
    },
    /// An error status whose body echoes every request header, as debugging proxies and
    /// misconfigured servers do (the credentials included).
    EchoHeaders { status: u16 },
    /// Keep the request open until the test releases it (`POST /_simulator/release`,
    /// `Simulator::release`, clearing the faults or a reset), then answer normally: a request in
    /// flight for as long as a test needs, e.g. to kill the sender meanwhile.
    Hold,
}

/// The endpoints a fault can be aimed at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Endpoint {
    /// The data endpoint: Insider's upsert (GA4's collect and Meta's events in those stand-ins).
    Upsert,
    /// Insider's Delete User Profile API.
    Delete,
    /// Insider's Delete User's PII Data API.
    Anonymize,
}

impl Endpoint {
    pub fn as_str(self) -> &'static str {
        match self {
            Endpoint::Upsert => "upsert",
            Endpoint::Delete => "delete",
            Endpoint::Anonymize => "anonymize",
        }
    }
}

/// The requests a [`Fault::Hold`] keeps open, and their release.
#[derive(Debug)]
pub struct Holds {
    /// Bumped on every release; a held request waits for a number above the one it saw.
    released: watch::Sender<u64>,
    held: AtomicU64,
}

impl Default for Holds {
    fn default() -> Holds {
        Holds {
            released: watch::Sender::new(0),
            held: AtomicU64::new(0),
        }
    }
}

impl Holds {
    /// Waits until the next release. A request whose client went away stops being counted.
    pub async fn wait(&self) {
        let mut released = self.released.subscribe();
        let seen = *released.borrow_and_update();
        self.held.fetch_add(1, Ordering::SeqCst);
        struct Counted<'a>(&'a AtomicU64);
        impl Drop for Counted<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::SeqCst);
            }
        }
        let _counted = Counted(&self.held);
        let _ = released.wait_for(|now| *now > seen).await;
    }

    /// Lets every held request go on.
    pub fn release(&self) {
        self.released.send_modify(|n| *n += 1);
    }

    /// Requests being held now.
    pub fn held(&self) -> u64 {
        self.held.load(Ordering::SeqCst)
    }
}

impl Fault {
    /// A short name for logs and statistics.
    pub fn name(&self) -> &'static str {
        match self {
            Fault::TooManyRequests { .. } => "too_many_requests",
            Fault::ServerError { .. } => "server_error",
            Fault::Slow { .. } => "slow",
            Fault::Drop => "drop",
            Fault::Unauthorized => "unauthorized",
            Fault::Redirect { .. } => "redirect",
            Fault::OddAnswer { .. } => "odd_answer",
            Fault::EchoHeaders { .. } => "echo_headers",
            Fault::Hold => "hold",
        }
    }

    fn validate(&self) -> Result<(), FaultError> {
        match *self {
            Fault::ServerError { status } if !is_server_error_status(status) => {
                Err(FaultError::Status(status))
            }
            Fault::Redirect { status, .. } if !(300..=399).contains(&status) => {
                Err(FaultError::Status(status))
            }
            Fault::OddAnswer { status, .. } if !(200..=299).contains(&status) => {
                Err(FaultError::Status(status))
            }
            Fault::EchoHeaders { status } if !(400..=599).contains(&status) => {
                Err(FaultError::Status(status))
            }
            _ => Ok(()),
        }
    }
}

/// The 5xx statuses Insider's path can answer: its own and those of Cloudflare's edge.
pub fn is_server_error_status(status: u16) -> bool {
    matches!(status, 500 | 502 | 503 | 504 | 520..=524)
}

/// Which upsert requests a fault applies to. Control requests never count.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scope {
    /// The next `n` upsert requests.
    Next(u64),
    /// Each request with this probability, drawn from a generator seeded with `seed`, so the same
    /// sequence of requests meets the same faults on every run.
    Fraction { fraction: f64, seed: u64 },
    /// Every request until the faults are cleared.
    Always,
}

/// A fault or scope the simulator cannot honour.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FaultError {
    #[error(
        "status {0} does not fit this fault (server errors: 500, 502-504, 520-524; redirects: 3xx; odd answers: 2xx; echoes: 4xx or 5xx)"
    )]
    Status(u16),
    #[error("fraction {0} is not between 0 and 1")]
    Fraction(f64),
    #[error("scope next(0) would never apply")]
    EmptyNext,
}

/// One injected fault and what is left of its scope.
#[derive(Debug, Clone)]
struct Armed {
    fault: Fault,
    scope: Scope,
    /// The endpoints it applies to; empty for all.
    endpoints: Vec<Endpoint>,
    /// How many requests this fault has judged; the index into its random sequence.
    draws: u64,
}

/// The injected faults, in the order they were injected, and the requests held.
#[derive(Debug, Default)]
pub struct FaultBook {
    armed: Vec<Armed>,
    holds: Arc<Holds>,
}

impl FaultBook {
    /// Adds a fault for every endpoint after checking it can be honoured.
    pub fn inject(&mut self, fault: Fault, scope: Scope) -> Result<(), FaultError> {
        self.inject_at(fault, scope, &[])
    }

    /// Adds a fault for requests to `endpoints` (all when empty); a `Next(n)` scope counts only
    /// their requests.
    pub fn inject_at(
        &mut self,
        fault: Fault,
        scope: Scope,
        endpoints: &[Endpoint],
    ) -> Result<(), FaultError> {
        fault.validate()?;
        match scope {
            Scope::Next(0) => return Err(FaultError::EmptyNext),
            Scope::Fraction { fraction, .. } if !(0.0..=1.0).contains(&fraction) => {
                return Err(FaultError::Fraction(fraction));
            }
            _ => {}
        }
        self.armed.push(Armed {
            fault,
            scope,
            endpoints: endpoints.to_vec(),
            draws: 0,
        });
        Ok(())
    }

    /// Removes every fault and lets held requests go on.
    pub fn clear(&mut self) {
        self.armed.clear();
        self.holds.release();
    }

    /// The held requests, to wait in outside the book's lock.
    pub fn holds(&self) -> Arc<Holds> {
        self.holds.clone()
    }

    /// Decides the fault of the next request to the data endpoint, if any.
    pub fn next_fault(&mut self) -> Option<Fault> {
        self.next_fault_at(Endpoint::Upsert)
    }

    /// Decides the fault of the next request to `endpoint`, if any. Faults are asked in
    /// injection order and the first that fires wins; a `Next` fault is used up as it fires.
    pub fn next_fault_at(&mut self, endpoint: Endpoint) -> Option<Fault> {
        let mut fired = None;
        for (position, armed) in self.armed.iter_mut().enumerate() {
            if !armed.endpoints.is_empty() && !armed.endpoints.contains(&endpoint) {
                continue;
            }
            let fires = match &mut armed.scope {
                Scope::Next(left) => {
                    *left -= 1;
                    true
                }
                Scope::Fraction { fraction, seed } => {
                    let draw = unit_interval(splitmix64(seed.wrapping_add(armed.draws)));
                    armed.draws += 1;
                    draw < *fraction
                }
                Scope::Always => true,
            };
            if fires {
                fired = Some((position, armed.fault.clone()));
                break;
            }
        }
        let (position, fault) = fired?;
        if matches!(self.armed[position].scope, Scope::Next(0)) {
            self.armed.remove(position);
        }
        Some(fault)
    }
}

/// SplitMix64: a tiny, well-mixed generator, enough to spread faults reproducibly.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Maps 64 random bits onto [0, 1) using the top 53 bits, as many as an `f64` can hold.
fn unit_interval(bits: u64) -> f64 {
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

/// Serde for `SystemTime` as an HTTP-date string, the form it takes on the wire.
mod http_date {
    use std::time::SystemTime;

    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(at: &SystemTime, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&httpdate::fmt_http_date(*at))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<SystemTime, D::Error> {
        let text = String::deserialize(deserializer)?;
        httpdate::parse_http_date(&text).map_err(D::Error::custom)
    }
}

/// Serde for a `Duration` as whole milliseconds.
mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(delay: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(u64::try_from(delay.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(deserializer)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fire_pattern(book: &mut FaultBook, requests: usize) -> String {
        (0..requests)
            .map(|_| {
                if book.next_fault().is_some() {
                    'x'
                } else {
                    '.'
                }
            })
            .collect()
    }

    #[test]
    fn scopes_fire_as_stated() {
        let drop = Fault::Drop;
        let cases: &[(&str, Scope, usize, Option<usize>)] = &[
            ("next 3", Scope::Next(3), 10, Some(3)),
            ("always", Scope::Always, 10, Some(10)),
            (
                "fraction 0",
                Scope::Fraction {
                    fraction: 0.0,
                    seed: 1,
                },
                100,
                Some(0),
            ),
            (
                "fraction 1",
                Scope::Fraction {
                    fraction: 1.0,
                    seed: 1,
                },
                100,
                Some(100),
            ),
            // A half should land near half; the exact count is whatever the seed gives.
            (
                "fraction 0.5",
                Scope::Fraction {
                    fraction: 0.5,
                    seed: 7,
                },
                1000,
                None,
            ),
        ];
        for (name, scope, requests, expected) in cases {
            let mut book = FaultBook::default();
            book.inject(drop.clone(), *scope).unwrap();
            let fired = fire_pattern(&mut book, *requests).matches('x').count();
            match expected {
                Some(expected) => assert_eq!(fired, *expected, "{name}"),
                None => assert!((400..600).contains(&fired), "{name}: {fired}"),
            }
        }
    }

    #[test]
    fn fractions_repeat_with_the_same_seed_and_differ_with_another() {
        let pattern = |seed| {
            let mut book = FaultBook::default();
            book.inject(
                Fault::Drop,
                Scope::Fraction {
                    fraction: 0.3,
                    seed,
                },
            )
            .unwrap();
            fire_pattern(&mut book, 64)
        };
        assert_eq!(pattern(42), pattern(42));
        assert_ne!(pattern(42), pattern(43));
    }

    #[test]
    fn invalid_faults_are_refused() {
        let cases = [
            (
                Fault::ServerError { status: 501 },
                Scope::Always,
                FaultError::Status(501),
            ),
            (
                Fault::ServerError { status: 429 },
                Scope::Always,
                FaultError::Status(429),
            ),
            (Fault::Drop, Scope::Next(0), FaultError::EmptyNext),
            (
                Fault::Drop,
                Scope::Fraction {
                    fraction: 1.5,
                    seed: 0,
                },
                FaultError::Fraction(1.5),
            ),
        ];
        for (fault, scope, error) in cases {
            assert_eq!(FaultBook::default().inject(fault, scope), Err(error));
        }
    }
}
