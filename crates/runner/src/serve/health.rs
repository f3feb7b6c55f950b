//! What `/readyz` and `/metrics` say of the backlog and of delivery, kept current by a task of
//! its own. The backlog's state is read every second, each read bounded, so that the health
//! endpoints answer at once whatever the backlog is doing (a NATS server that does not answer
//! held them for 10 s, longer than Prometheus waits for a scrape), and so that readiness follows
//! the backlog by itself rather than only when a POST comes (behind a load balancer that gates on
//! `/readyz`, none comes to an unready node). Delivery's task is watched too: if it ends while
//! the service runs, nothing more would be delivered, so the service says it is not ready.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::backlog::{Backlog, BacklogStats};

/// How often the backlog's state is read.
pub const REFRESH: Duration = Duration::from_secs(1);

/// The longest a read of the backlog's state may take; one that takes longer counts as a
/// backlog that does not answer.
const READ_TIMEOUT: Duration = Duration::from_secs(2);

/// The backlog's and delivery's state as last seen.
pub struct Health {
    backlog: Arc<dyn Backlog>,
    /// The size at which the backlog refuses events (`max_bytes`).
    max_bytes: u64,
    known: Mutex<Known>,
}

#[derive(Debug, Clone, Default)]
struct Known {
    /// The last state read (kept when a later read fails, for the gauges).
    stats: Option<BacklogStats>,
    /// Why the last read failed, if it did.
    unreadable: Option<String>,
    /// Why delivery stopped, if it stopped while the service runs.
    delivery_failed: Option<String>,
}

/// Readiness as far as the backlog and delivery decide it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Readiness {
    /// The backlog was read and takes writes.
    pub backlog_writable: bool,
    /// The backlog holds `max_bytes`: every POST would get 503 until delivery makes room.
    pub backlog_full: bool,
    /// Why the backlog counts as not writable or delivery as stopped; empty when neither.
    pub problems: Vec<String>,
}

impl Readiness {
    pub fn ready(&self) -> bool {
        self.problems.is_empty()
    }
}

impl Health {
    pub fn new(backlog: Arc<dyn Backlog>, max_bytes: u64) -> Health {
        Health {
            backlog,
            max_bytes,
            known: Mutex::new(Known {
                unreadable: Some("the backlog's state has not been read yet".into()),
                ..Known::default()
            }),
        }
    }

    /// Reads the backlog's state every [`REFRESH`] until the task is aborted.
    pub async fn run(self: Arc<Self>) {
        let mut tick = tokio::time::interval(REFRESH);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            self.refresh().await;
        }
    }

    /// Reads the backlog's state once, within [`READ_TIMEOUT`].
    pub async fn refresh(&self) {
        let read = tokio::time::timeout(READ_TIMEOUT, self.backlog.stats()).await;
        let before = self.readiness();
        {
            let mut known = self.lock();
            match read {
                Ok(Ok(stats)) => {
                    known.stats = Some(stats);
                    known.unreadable = None;
                }
                Ok(Err(error)) => {
                    known.unreadable =
                        Some(format!("the backlog's state could not be read: {error}"))
                }
                Err(_) => {
                    known.unreadable = Some(format!(
                        "the backlog did not tell its state within {} s",
                        READ_TIMEOUT.as_secs()
                    ))
                }
            }
        }
        let after = self.readiness();
        if after != before {
            if after.ready() {
                tracing::info!("The backlog takes events again.");
            } else {
                tracing::warn!(problems = ?after.problems, "The service is not ready.");
            }
        }
    }

    /// Waits for delivery's task; if it ends before `stop` asked it to (a panic, a start that
    /// failed), says why and makes the service unready.
    pub async fn watch_delivery(
        &self,
        task: tokio::task::JoinHandle<()>,
        stop: &CancellationToken,
    ) {
        let ended = task.await;
        if stop.is_cancelled() {
            return;
        }
        self.delivery_failed(match ended {
            Ok(()) => "its task ended".to_owned(),
            Err(error) if error.is_panic() => format!(
                "its task panicked: {}",
                crate::delivery::panic_message(error.into_panic().as_ref())
            ),
            Err(error) => format!("its task was cancelled: {error}"),
        });
    }

    /// Records that delivery stopped while the service runs.
    fn delivery_failed(&self, reason: String) {
        tracing::error!(%reason, "Delivery stopped while the service runs: nothing more is delivered, and the service reports itself not ready. Restart it.");
        self.lock().delivery_failed = Some(reason);
    }

    /// The backlog's last known state, for the gauges.
    pub fn stats(&self) -> Option<BacklogStats> {
        self.lock().stats.clone()
    }

    /// Readiness from what was last seen; never waits for the backlog.
    pub fn readiness(&self) -> Readiness {
        let known = self.lock();
        let mut problems = Vec::new();
        let writable = match (&known.unreadable, &known.stats) {
            (Some(why), _) => {
                problems.push(why.clone());
                false
            }
            (None, Some(stats)) if !stats.writable => {
                problems.push("the backlog's last write failed".into());
                false
            }
            (None, stats) => stats.is_some(),
        };
        let full = known
            .stats
            .as_ref()
            .is_some_and(|s| s.bytes >= self.max_bytes);
        if full {
            problems.push(format!(
                "the backlog is full ({} bytes, max_bytes {}): events are refused until delivery makes room",
                known.stats.as_ref().map_or(0, |s| s.bytes),
                self.max_bytes
            ));
        }
        if let Some(why) = &known.delivery_failed {
            problems.push(format!("delivery stopped: {why}"));
        }
        Readiness {
            backlog_writable: writable,
            backlog_full: full,
            problems,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Known> {
        self.known.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tokio_util::sync::CancellationToken;

    use super::Health;
    use crate::backlog::{Backlog, BacklogStats};
    use crate::serve::fake::Stats;

    fn healthy() -> (Arc<Stats>, Health) {
        let backlog = Arc::new(Stats::new(BacklogStats {
            writable: true,
            bytes: 10,
            ..BacklogStats::default()
        }));
        let health = Health::new(Arc::clone(&backlog) as Arc<dyn Backlog>, 100);
        (backlog, health)
    }

    #[tokio::test]
    async fn readiness_follows_the_backlog_without_a_write() {
        let (backlog, health) = healthy();
        assert!(
            !health.readiness().ready(),
            "not ready before the first read"
        );
        health.refresh().await;
        assert!(health.readiness().ready());
        backlog.0.lock().unwrap().writable = false;
        health.refresh().await;
        assert!(!health.readiness().backlog_writable);
        backlog.0.lock().unwrap().writable = true;
        health.refresh().await;
        assert!(health.readiness().ready(), "ready again by itself");
        backlog.0.lock().unwrap().bytes = 100;
        health.refresh().await;
        let full = health.readiness();
        assert!(full.backlog_full && !full.ready(), "{full:?}");
    }

    #[tokio::test]
    async fn a_delivery_task_that_dies_makes_the_service_unready() {
        let (_, health) = healthy();
        health.refresh().await;
        let task = tokio::spawn(async { panic!("a feeder's backlog broke") });
        health.watch_delivery(task, &CancellationToken::new()).await;
        let readiness = health.readiness();
        assert!(!readiness.ready());
        assert!(
            readiness.problems[0].contains("a feeder's backlog broke"),
            "{readiness:?}"
        );
        // Stopped on request, it is no failure.
        let (_, health) = healthy();
        health.refresh().await;
        let stop = CancellationToken::new();
        stop.cancel();
        health.watch_delivery(tokio::spawn(async {}), &stop).await;
        assert!(health.readiness().ready());
    }
}
