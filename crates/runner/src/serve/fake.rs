//! Backlogs for the service's unit tests: one that tells the state it is given, has no events,
//! and panics when asked for some (a broken backlog, for the supervision of delivery); one that
//! stops answering (for stopping within a bound); one with endless events that never records
//! a resolution (for the credit delivery holds).

use std::sync::Mutex;

use async_trait::async_trait;

use crate::backlog::{
    Appended, Backlog, BacklogError, BacklogStats, DeadLetter, DeadLetterFilter, Incoming,
    Resolution, Stored,
};

pub struct Stats(pub Mutex<BacklogStats>);

impl Stats {
    pub fn new(stats: BacklogStats) -> Stats {
        Stats(Mutex::new(stats))
    }
}

#[async_trait]
impl Backlog for Stats {
    async fn append(&self, _: Vec<Incoming>) -> Result<Appended, BacklogError> {
        unreachable!("the fake backlog takes no events")
    }
    async fn take(&self, destination: &str, _: usize) -> Result<Vec<Stored>, BacklogError> {
        panic!("the backlog broke while {destination} took events")
    }
    async fn resolve(&self, _: &str, _: Vec<Resolution>) -> Result<(), BacklogError> {
        Ok(())
    }
    async fn wait_for_events(&self) {
        std::future::pending().await
    }
    async fn dead_letters(&self, _: &DeadLetterFilter) -> Result<Vec<DeadLetter>, BacklogError> {
        Ok(Vec::new())
    }
    async fn replay(&self, _: &DeadLetterFilter) -> Result<u64, BacklogError> {
        Ok(0)
    }
    async fn purge(&self, _: &DeadLetterFilter) -> Result<u64, BacklogError> {
        Ok(0)
    }
    async fn stats(&self) -> Result<BacklogStats, BacklogError> {
        Ok(self.0.lock().unwrap_or_else(|e| e.into_inner()).clone())
    }
}

/// A backlog that hands out one event that needs no request (it has no user, so `insider`
/// skips it), then no more, and whose `resolve` and `close` never answer, as on a NATS server
/// gone away.
pub struct Stuck {
    taken: std::sync::atomic::AtomicBool,
    /// Notified once `resolve` was called (and hangs).
    pub resolving: tokio::sync::Notify,
}

impl Stuck {
    pub fn new() -> Stuck {
        Stuck {
            taken: std::sync::atomic::AtomicBool::new(false),
            resolving: tokio::sync::Notify::new(),
        }
    }
}

#[async_trait]
impl Backlog for Stuck {
    async fn append(&self, _: Vec<Incoming>) -> Result<Appended, BacklogError> {
        unreachable!("the fake backlog takes no events")
    }
    async fn take(&self, _: &str, _: usize) -> Result<Vec<Stored>, BacklogError> {
        if self.taken.swap(true, std::sync::atomic::Ordering::SeqCst) {
            return Ok(Vec::new());
        }
        Ok(vec![Stored {
            seq: 1,
            body: r#"{"event_name": "search"}"#.to_owned(),
        }])
    }
    async fn resolve(&self, _: &str, _: Vec<Resolution>) -> Result<(), BacklogError> {
        self.resolving.notify_one();
        std::future::pending().await
    }
    async fn wait_for_events(&self) {
        std::future::pending().await
    }
    async fn dead_letters(&self, _: &DeadLetterFilter) -> Result<Vec<DeadLetter>, BacklogError> {
        std::future::pending().await
    }
    async fn replay(&self, _: &DeadLetterFilter) -> Result<u64, BacklogError> {
        std::future::pending().await
    }
    async fn purge(&self, _: &DeadLetterFilter) -> Result<u64, BacklogError> {
        std::future::pending().await
    }
    async fn stats(&self) -> Result<BacklogStats, BacklogError> {
        std::future::pending().await
    }
    async fn close(&self) {
        std::future::pending().await
    }
}

/// A backlog with endless events that need no request (no user: `insider` skips them), whose
/// `resolve` never answers, as while another process holds the spool's write lock.
pub struct Unrecorded {
    pub taken: std::sync::atomic::AtomicU64,
}

#[async_trait]
impl Backlog for Unrecorded {
    async fn append(&self, _: Vec<Incoming>) -> Result<Appended, BacklogError> {
        unreachable!("the fake backlog takes no events")
    }
    async fn take(&self, _: &str, limit: usize) -> Result<Vec<Stored>, BacklogError> {
        let first = self
            .taken
            .fetch_add(limit as u64, std::sync::atomic::Ordering::SeqCst);
        Ok((first..first + limit as u64)
            .map(|seq| Stored {
                seq: seq + 1,
                body: r#"{"event_name": "search"}"#.to_owned(),
            })
            .collect())
    }
    async fn resolve(&self, _: &str, _: Vec<Resolution>) -> Result<(), BacklogError> {
        std::future::pending().await
    }
    async fn wait_for_events(&self) {}
    async fn dead_letters(&self, _: &DeadLetterFilter) -> Result<Vec<DeadLetter>, BacklogError> {
        Ok(Vec::new())
    }
    async fn replay(&self, _: &DeadLetterFilter) -> Result<u64, BacklogError> {
        Ok(0)
    }
    async fn purge(&self, _: &DeadLetterFilter) -> Result<u64, BacklogError> {
        Ok(0)
    }
    async fn stats(&self) -> Result<BacklogStats, BacklogError> {
        Ok(BacklogStats::default())
    }
}
