//! One destination's part of an erasure: its requests (`Destination::erasure`), each sent
//! through the transport, judged by `judge_erasure`, retried by the destination's retry policy
//! and spaced by its erasure rate. A pause (401/403, a redirect) is tried again after a wait that
//! doubles up to the probe interval, for as long as the service runs: the job stays pending
//! rather than record a failure an operator can fix.

use std::time::{Duration, Instant, SystemTime};

use hardal_core::erasure::{Erasure, Identifiers};
use hardal_core::{Destination, Verdict};
use tokio_util::sync::CancellationToken;

use super::Eraser;
use super::request::Who;
use crate::delivery::rate::RateLimiter;
use crate::delivery::retry::{Decision, RetryPolicy};
use crate::redact::Redactor;

/// The first wait after a pause.
const FIRST_PAUSE: Duration = Duration::from_secs(5);

impl Eraser {
    /// Asks the destination of `lane` to erase; the outcome (`confirmed`, `failed` or
    /// `unsupported`) and its detail, never holding an identifier, or `None` when `stop` came
    /// first.
    pub(super) async fn erase_at(
        &self,
        lane: usize,
        identifiers: &Identifiers,
        who: &Who,
        stop: &CancellationToken,
    ) -> Option<(&'static str, String)> {
        let (transport, redactor, probe_max) = (&self.transport, &self.redactor, self.probe_max);
        let destination = self.destinations[lane].as_ref();
        let settings = &self.settings[lane];
        let requests = match destination.erasure(identifiers) {
            Erasure::Unsupported { how } => return Some(("unsupported", who.scrub(&how))),
            Erasure::Requests(requests) => requests,
        };
        let policy = RetryPolicy::from_config(settings);
        let mut rate = destination
            .erasure_requests_per_minute()
            .map(RateLimiter::per_minute);
        let timeout = Duration::from_millis(settings.request_timeout_ms);
        for request in requests {
            let (mut attempts, first, mut pause) =
                (0u32, Instant::now(), FIRST_PAUSE.min(probe_max));
            loop {
                if let Some(rate) = &mut rate {
                    if let Some(at) = rate.wait_until(Instant::now()) {
                        wait(at, stop).await?;
                    }
                    rate.take(Instant::now());
                }
                attempts += 1;
                let verdict = match transport.send(request.request.clone(), timeout).await {
                    Ok(response) => judge(destination, &response),
                    Err(reason) => Verdict::Retry {
                        reason,
                        after: None,
                    },
                };
                let reason = match verdict {
                    Verdict::Delivered => break,
                    Verdict::Rejected { reason } | Verdict::Split { reason } => {
                        return Some(("failed", clean(&request.what, &reason, who, redactor)));
                    }
                    Verdict::Pause { reason } => {
                        tracing::warn!(destination = %destination.id(), reason = %clean(&request.what, &reason, who, redactor), wait_seconds = pause.as_secs(), "A destination paused an erasure request; it is tried again.");
                        wait(Instant::now() + pause, stop).await?;
                        pause = (pause * 2).min(probe_max);
                        attempts = 0;
                        continue;
                    }
                    Verdict::Retry { reason, after } => {
                        match policy.decide(
                            attempts,
                            first,
                            Instant::now(),
                            after,
                            SystemTime::now(),
                            fastrand::f64(),
                        ) {
                            Decision::RetryAt(at) => {
                                wait(at, stop).await?;
                                continue;
                            }
                            Decision::GiveUp(why) => format!("{reason}; {why}"),
                        }
                    }
                };
                return Some(("failed", clean(&request.what, &reason, who, redactor)));
            }
        }
        Some(("confirmed", String::new()))
    }
}

/// The verdict on an erasure answer; a panic while judging is a failure, not a crash.
fn judge(destination: &dyn Destination, response: &hardal_core::HttpResponse) -> Verdict {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        destination.judge_erasure(response)
    }))
    .unwrap_or_else(|panic| Verdict::Rejected {
        reason: format!(
            "destination `{}` failed while judging an erasure answer (HTTP {}): {}",
            destination.id(),
            response.status,
            crate::delivery::panic_message(panic.as_ref())
        ),
    })
}

/// A reason fit for the audit record: secrets redacted, identifiers replaced.
fn clean(what: &str, reason: &str, who: &Who, redactor: &Redactor) -> String {
    let mut text = format!("{what}: {reason}");
    redactor.scrub(&mut text);
    who.scrub(&text)
}

async fn wait(at: Instant, stop: &CancellationToken) -> Option<()> {
    tokio::select! {
        () = tokio::time::sleep_until(tokio::time::Instant::from_std(at)) => Some(()),
        () = stop.cancelled() => None,
    }
}
