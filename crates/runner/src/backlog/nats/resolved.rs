//! Which events of a batch message are resolved, for the next worker to deliver it: a message is
//! acknowledged only once all its events are resolved, so one that goes back to JetStream with
//! some resolved (handed back on SIGTERM; left by a worker that died) would otherwise have those
//! sent again. The key-value bucket `<stream>_RESOLVED` holds, per destination and message
//! (`<destination>.<stream sequence>`), the indexes of its resolved events; a worker writes it
//! before it hands such a message back, and at each progress report for the messages whose
//! resolved events grew since (so a worker that dies leaves at most what resolved since its last
//! report to be sent again). A worker reads it only for a message delivered again.

use std::time::Duration;

use bytes::Bytes;

use super::worker::Worker;
use crate::backlog::BacklogError;

/// How long a record is kept: longer than a message waits in any sane backlog; a record of a
/// message acknowledged meanwhile is never read again (stream sequences are not reused).
pub(super) const RESOLVED_FOR: Duration = Duration::from_secs(7 * 24 * 3600);

fn key(destination: &str, seq: u64) -> String {
    format!("{destination}.{seq}")
}

impl Worker {
    /// Records which events of the message at `seq` are resolved for `lane`.
    pub(super) async fn record_resolved(
        &self,
        lane: usize,
        seq: u64,
        resolved: &[bool],
    ) -> Result<(), BacklogError> {
        let indexes: Vec<String> = resolved
            .iter()
            .enumerate()
            .filter(|(_, resolved)| **resolved)
            .map(|(index, _)| index.to_string())
            .collect();
        self.resolved
            .put(
                key(&self.destinations[lane], seq),
                Bytes::from(indexes.join(",")),
            )
            .await
            .map_err(|e| BacklogError::Io(format!("NATS: recording resolved events: {e}")))?;
        Ok(())
    }

    /// Marks in `resolved` the events of the message at `seq` that an earlier holder recorded as
    /// resolved for `lane`. When the record cannot be read, they are delivered again
    /// (at-least-once).
    pub(super) async fn resolved_before(&self, lane: usize, seq: u64, resolved: &mut [bool]) {
        match self.resolved.get(key(&self.destinations[lane], seq)).await {
            Ok(Some(value)) => {
                for index in std::str::from_utf8(&value)
                    .unwrap_or_default()
                    .split(',')
                    .filter_map(|i| i.parse::<usize>().ok())
                {
                    if let Some(slot) = resolved.get_mut(index) {
                        *slot = true;
                    }
                }
            }
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(destination = %self.destinations[lane], seq, %error, "Could not read which events of a message delivered again were resolved; they are sent again.");
            }
        }
    }
}
