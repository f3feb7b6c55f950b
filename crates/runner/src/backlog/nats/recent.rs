//! The identities of the events this ingestion node stored recently, so that a retry whose
//! batch differs from the first attempt (other events added, or some left out) stores the
//! events it repeats once: JetStream recognises a repeated message only when it holds the same
//! events. Bounded by the duplicate window and by a count; a retry that reaches another node
//! is recognised only when it repeats whole messages.

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The most identities remembered (about 32 bytes each).
const MAX: usize = 1 << 18;

pub(super) struct Recent {
    window: Duration,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    known: HashSet<u64>,
    /// In the order they were stored, to forget the oldest first.
    order: VecDeque<(Instant, u64)>,
}

impl Recent {
    pub(super) fn new(window: Duration) -> Recent {
        Recent {
            window,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// Which of `identities` were stored within the window (one lock and one reading of the
    /// clock for a whole request).
    pub(super) fn known(&self, identities: impl Iterator<Item = u64>) -> Vec<bool> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.forget_older_than(self.window);
        identities
            .map(|identity| inner.known.contains(&identity))
            .collect()
    }

    /// Remembers identities JetStream acknowledged.
    pub(super) fn stored(&self, identities: &[u64]) {
        let now = Instant::now();
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        for identity in identities {
            if inner.known.insert(*identity) {
                inner.order.push_back((now, *identity));
            }
        }
        while inner.order.len() > MAX {
            if let Some((_, identity)) = inner.order.pop_front() {
                inner.known.remove(&identity);
            }
        }
    }
}

impl Inner {
    fn forget_older_than(&mut self, window: Duration) {
        let now = Instant::now();
        while let Some((at, identity)) = self.order.front().copied() {
            if now.saturating_duration_since(at) < window {
                break;
            }
            self.order.pop_front();
            self.known.remove(&identity);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_are_known_within_the_window_only() {
        let recent = Recent::new(Duration::from_secs(60));
        recent.stored(&[1, 2]);
        assert_eq!(recent.known([1, 3, 2].into_iter()), [true, false, true]);
        let gone = Recent::new(Duration::ZERO);
        gone.stored(&[1]);
        assert_eq!(gone.known([1].into_iter()), [false]);
    }
}
