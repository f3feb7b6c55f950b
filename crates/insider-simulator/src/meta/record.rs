//! What the Meta stand-in saw and kept: every request's log line, the events it accepted, and
//! running statistics.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

/// One events request as the stand-in answered it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetaRequestLog {
    /// The 1-based number of the request.
    pub number: u64,
    pub status: Option<u16>,
    /// Events in `data`, when the body could be read.
    pub events: Option<usize>,
    /// The event that made Meta refuse the request, when one did (Meta's answer does not say).
    pub refused_index: Option<usize>,
    pub fault: Option<&'static str>,
    pub test_event_code: Option<String>,
    pub partner_agent: Option<String>,
}

/// A server event the stand-in accepted.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AcceptedServerEvent {
    /// The request that carried it.
    pub request: u64,
    /// Its position in that request's `data`.
    pub index: usize,
    pub event: Value,
}

/// Running totals.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MetaStats {
    pub requests: u64,
    pub events_received: u64,
    /// Requests by the status they were answered with.
    pub by_status: BTreeMap<u16, u64>,
}

/// Everything recorded.
#[derive(Debug, Default)]
pub struct MetaRecord {
    pub requests: Vec<MetaRequestLog>,
    pub accepted: Vec<AcceptedServerEvent>,
    pub stats: MetaStats,
}

impl MetaRecord {
    pub fn add(&mut self, log: MetaRequestLog, accepted: Vec<AcceptedServerEvent>) {
        self.stats.requests += 1;
        if let Some(status) = log.status {
            *self.stats.by_status.entry(status).or_default() += 1;
        }
        self.stats.events_received += accepted.len() as u64;
        self.requests.push(log);
        self.accepted.extend(accepted);
    }
}
