//! Waking a destination's feeder when its queue receives events, without losing a wake-up
//! that comes between its finding the queue empty and its starting to wait.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

/// Per destination, a count of the events queued so far; and, per task that looked at a queue,
/// which queue and the count it saw.
pub(super) struct Arrivals {
    counts: Vec<AtomicU64>,
    notify: Notify,
    seen: Mutex<HashMap<tokio::task::Id, (usize, u64)>>,
}

impl Arrivals {
    pub(super) fn new(lanes: usize) -> Arrivals {
        Arrivals {
            counts: (0..lanes).map(|_| AtomicU64::new(0)).collect(),
            notify: Notify::new(),
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// An event was queued for `lane`.
    pub(super) fn arrived(&self, lane: usize) {
        self.counts[lane].fetch_add(1, Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    /// The calling task is about to look into `lane`'s queue: what arrives from now on wakes
    /// its next `wait`.
    pub(super) fn looking(&self, lane: usize) {
        if let Some(task) = tokio::task::try_id() {
            let count = self.counts[lane].load(Ordering::SeqCst);
            self.seen
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(task, (lane, count));
        }
    }

    /// Completes when events arrived for the queue the calling task last looked into, since it
    /// looked (at once if they already did), or after `at_most`.
    pub(super) async fn wait(&self, at_most: Duration) {
        // Registered before the check, so that an arrival after the check wakes it.
        let notified = self.notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let seen = tokio::task::try_id().and_then(|task| {
            self.seen
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(&task)
                .copied()
        });
        if let Some((lane, count)) = seen
            && self.counts[lane].load(Ordering::SeqCst) != count
        {
            return;
        }
        let _ = tokio::time::timeout(at_most, notified).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::FutureExt;

    #[tokio::test]
    async fn an_arrival_between_looking_and_waiting_is_not_missed() {
        tokio::spawn(async {
            let arrivals = Arrivals::new(2);
            arrivals.looking(0);
            arrivals.arrived(0);
            assert!(
                arrivals
                    .wait(Duration::from_secs(60))
                    .now_or_never()
                    .is_some(),
                "the wake-up was lost"
            );
            // Events for another destination do not wake this one.
            arrivals.looking(0);
            arrivals.arrived(1);
            assert!(
                arrivals
                    .wait(Duration::from_secs(60))
                    .now_or_never()
                    .is_none()
            );
        })
        .await
        .unwrap();
    }
}
