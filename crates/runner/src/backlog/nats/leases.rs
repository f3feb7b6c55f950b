//! Leases: which worker delivers each partition, a fair share for each live worker, and
//! taking a partition over from a worker that died.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_nats::jetstream::{self, kv, stream};
use bytes::Bytes;

use super::consumer_name;
use super::worker::{FETCH_WAIT, Partition, Worker, sleep_unless};
use crate::backlog::BacklogError;

/// The lease value of a partition its last holder let go of in good order (everything it had
/// taken was acknowledged or handed back), so the next holder need not wait.
pub(super) const FREE: &[u8] = b"free";

impl Worker {
    /// Renews this worker's leases, hands over partitions beyond its fair share, and takes free
    /// ones up to it. Runs every third of the lease, and every second while the shares are
    /// settling (what it says: it is handing partitions over, or holds fewer than its share).
    pub(super) async fn tend(self: &Arc<Self>) -> bool {
        if let Err(error) = self.workers.put(&self.id, Bytes::new()).await {
            tracing::warn!(worker = %self.id, %error, "Could not announce this worker to NATS.");
            return false;
        }
        // Each live worker's key is one message in the bucket's stream (one per key, gone when
        // it was not renewed for a lease); leaving workers let theirs expire rather than delete
        // it, which would leave a marker message behind.
        let live = match self.workers_stream.get_info().await {
            Ok(info) => info.state.messages as usize,
            Err(error) => {
                tracing::warn!(%error, "Could not count the workers alive.");
                return false;
            }
        }
        .max(1);
        let total = self.config.partitions as usize;
        let share = total.div_ceil(live);
        let mut partitions = self.partitions.lock().await;
        // Renew, or learn that a lease was lost.
        for (index, partition) in partitions.iter_mut().enumerate() {
            let Some(revision) = partition.lease else {
                continue;
            };
            match self
                .leases
                .update(index.to_string(), Bytes::from(self.id.clone()), revision)
                .await
            {
                Ok(revision) => partition.lease = Some(revision),
                Err(error) => {
                    tracing::warn!(worker = %self.id, partition = index, %error, "Lost the lease on a partition; it stops fetching from it, and the events it holds are still delivered and acknowledged.");
                    partition.lease = None;
                    partition.stopping.store(true, Ordering::Relaxed);
                }
            }
        }
        // Finish the hand-overs under way whose fetchers stopped and which have nothing in
        // flight any more.
        for (index, partition) in partitions.iter_mut().enumerate() {
            if partition.lease.is_none()
                || !partition.stopping.load(Ordering::Relaxed)
                || partition.fetchers.iter().any(|f| !f.is_finished())
                || self.in_flight_by_partition[index].load(Ordering::Relaxed) > 0
            {
                continue;
            }
            if let Some(revision) = partition.lease.take() {
                let _ = self
                    .leases
                    .update(index.to_string(), Bytes::from_static(FREE), revision)
                    .await;
                tracing::info!(worker = %self.id, partition = index, "Handed a partition over to the other workers.");
            }
        }
        // Start handing over what exceeds the share (a worker joined).
        let held = partitions.iter().filter(|p| p.lease.is_some()).count();
        let leaving = partitions
            .iter()
            .filter(|p| p.lease.is_some() && p.stopping.load(Ordering::Relaxed))
            .count();
        let extra = held.saturating_sub(share).saturating_sub(leaving);
        for partition in partitions
            .iter_mut()
            .rev()
            .filter(|p| p.lease.is_some() && !p.stopping.load(Ordering::Relaxed))
            .take(extra)
        {
            partition.stopping.store(true, Ordering::Relaxed);
        }
        // Take free partitions up to the share, starting from a place of this worker's own so
        // that workers starting together do not all race for the same ones.
        let mut holding = partitions.iter().filter(|p| p.lease.is_some()).count();
        let start = xxhash_rust::xxh3::xxh3_64(self.id.as_bytes()) as usize % total;
        for offset in 0..total {
            if holding >= share {
                break;
            }
            let index = (start + offset) % total;
            if partitions[index].lease.is_some()
                || partitions[index].fetchers.iter().any(|f| !f.is_finished())
                || self.in_flight_by_partition[index].load(Ordering::Relaxed) > 0
            {
                continue;
            }
            let Some((revision, handed_over)) = self.acquire(index).await else {
                continue;
            };
            holding += 1;
            tracing::info!(worker = %self.id, partition = index, handed_over, "Took the lease on a partition.");
            let stopping = Arc::new(AtomicBool::new(false));
            let fetchers = (0..self.destinations.len())
                .map(|lane| {
                    tokio::spawn(Arc::clone(self).fetch(
                        lane,
                        index as u32,
                        handed_over,
                        Arc::clone(&stopping),
                    ))
                })
                .collect();
            partitions[index] = Partition {
                lease: Some(revision),
                stopping,
                fetchers,
            };
        }
        *self.holding.lock().unwrap_or_else(|e| e.into_inner()) = partitions
            .iter()
            .enumerate()
            .filter(|(_, p)| p.lease.is_some())
            .map(|(i, _)| i as u32)
            .collect();
        let handing_over = partitions
            .iter()
            .any(|p| p.lease.is_some() && p.stopping.load(Ordering::Relaxed));
        handing_over || holding < total / live
    }

    /// Takes the lease on a partition if nobody holds it; says whether its last holder handed it
    /// over in good order.
    async fn acquire(&self, index: usize) -> Option<(u64, bool)> {
        let key = index.to_string();
        let value = Bytes::from(self.id.clone());
        match self.leases.entry(&key).await {
            Ok(None) => self
                .leases
                .create(&key, value)
                .await
                .ok()
                .map(|r| (r, false)),
            Ok(Some(entry)) if entry.operation != kv::Operation::Put => self
                .leases
                .update(&key, value, entry.revision)
                .await
                .ok()
                .map(|r| (r, false)),
            Ok(Some(entry)) if entry.value.as_ref() == FREE => self
                .leases
                .update(&key, value, entry.revision)
                .await
                .ok()
                .map(|r| (r, true)),
            _ => None,
        }
    }

    /// Waits, on a partition taken without a hand-over, until what its last holder left behind
    /// can come first. That holder's last fetch may still deliver for up to `FETCH_WAIT` after
    /// it died, and JetStream delivers what it left unacknowledged again only after the ack wait
    /// (from the last delivery or progress report): fetching sooner would deliver some users'
    /// later events before their earlier ones.
    pub(super) async fn wait_for_leftovers(
        &self,
        lane: usize,
        partition: u32,
        stopping: &AtomicBool,
    ) -> bool {
        let settle = FETCH_WAIT + Duration::from_secs(1);
        if !sleep_unless(settle, stopping).await {
            return false;
        }
        let pending = self
            .events
            .consumer_info(consumer_name(&self.destinations[lane], partition))
            .await
            .map_or(1, |info| info.num_ack_pending);
        if pending == 0 {
            return true;
        }
        tracing::info!(worker = %self.id, destination = %self.destinations[lane], partition, pending, "The partition's last holder left events unacknowledged; waiting until JetStream delivers them again, so that they come first.");
        sleep_unless(
            Duration::from_secs(self.config.ack_wait_seconds) + settle,
            stopping,
        )
        .await
    }
}

/// Opens a key-value bucket, making it first if need be. The bucket's stream is made here, as
/// the client would make it, because the client's own way asks the server for account details
/// in a form servers before 2.10 (Debian's) do not give.
pub(super) async fn open_bucket(
    js: &jetstream::Context,
    bucket: &str,
    lifetime: Duration,
    replicas: usize,
) -> Result<kv::Store, BacklogError> {
    js.get_or_create_stream(stream::Config {
        name: format!("KV_{bucket}"),
        description: Some("hardal leases".into()),
        subjects: vec![format!("$KV.{bucket}.>")],
        max_messages_per_subject: 1,
        max_age: lifetime,
        duplicate_window: lifetime.min(Duration::from_secs(120)),
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        num_replicas: replicas,
        discard: stream::DiscardPolicy::New,
        ..Default::default()
    })
    .await
    .map_err(|e| {
        BacklogError::Io(format!(
            "NATS: creating the key-value bucket `{bucket}`: {e}"
        ))
    })?;
    js.get_key_value(bucket).await.map_err(|e| {
        BacklogError::Io(format!(
            "NATS: opening the key-value bucket `{bucket}`: {e}"
        ))
    })
}
