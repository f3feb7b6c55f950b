//! A backlog for the service's unit tests: it tells the state it is given, has no events, and
//! panics when asked for some (a broken backlog, for the supervision of delivery).

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
