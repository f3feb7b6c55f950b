//! Leases: which worker delivers each partition, a fair share for each live worker, and
//! taking a partition over from a worker that died.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

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
        let mut partitions = self.partitions.lock().await;
        // Renewals come first: nothing else this worker fails to do may cost it a lease.
        let failed = self.renew(&mut partitions).await;
        // The announcement names the partitions this worker has events of in flight: the next
        // holder of one it lost waits until it has none.
        let busy: Vec<String> = self
            .in_flight_by_partition
            .iter()
            .enumerate()
            .filter(|(_, n)| n.load(Ordering::Relaxed) > 0)
            .map(|(p, _)| p.to_string())
            .collect();
        if let Err(error) = self
            .workers
            .put(&self.id, Bytes::from(busy.join(",")))
            .await
        {
            tracing::warn!(worker = %self.id, %error, "Could not announce this worker to NATS.");
            return true;
        }
        // Each live worker's key is one message in the bucket's stream (one per key, gone when
        // it was not renewed for a lease); a leaving worker purges its key's subject rather than
        // delete the key, which would leave a marker message behind.
        let live = match self.workers_stream.get_info().await {
            Ok(info) => info.state.messages as usize,
            Err(error) => {
                tracing::warn!(%error, "Could not count the workers alive.");
                return true;
            }
        }
        .max(1);
        let total = self.config.partitions as usize;
        let share = total.div_ceil(live);
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
            let asked = Instant::now();
            let Some((revision, handed_over)) = self.acquire(index).await else {
                continue;
            };
            holding += 1;
            self.lease_written(index, asked);
            let previous = self.previous_holder(index).await;
            tracing::info!(worker = %self.id, partition = index, handed_over, "Took the lease on a partition.");
            let stopping = Arc::new(AtomicBool::new(false));
            let fetchers = (0..self.destinations.len())
                .map(|lane| {
                    tokio::spawn(Arc::clone(self).fetch(
                        lane,
                        index as u32,
                        handed_over,
                        previous.clone(),
                        Arc::clone(&stopping),
                    ))
                })
                .collect();
            partitions[index] = Partition {
                lease: Some(revision),
                written: Some(asked),
                renewal_failed: false,
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
        failed || handing_over || holding < total / live
    }

    /// Renews the leases this worker holds; says whether a renewal failed (to try again soon).
    /// A lease is lost only when another worker wrote it (a revision conflict), or when it
    /// expired by its own time; any other failure keeps it, and the next tending tries again.
    async fn renew(&self, partitions: &mut [Partition]) -> bool {
        let lifetime = Duration::from_secs(self.config.lease_seconds);
        // All at once: one slow answer must not make the renewals after it late.
        let asked = Instant::now();
        let renewals = partitions
            .iter()
            .enumerate()
            .filter_map(|(index, partition)| {
                let revision = partition.lease?;
                Some(async move {
                    let result = self
                        .leases
                        .update(index.to_string(), Bytes::from(self.id.clone()), revision)
                        .await;
                    (index, result)
                })
            });
        let results = futures_util::future::join_all(renewals).await;
        let mut failed = false;
        for (index, result) in results {
            let partition = &mut partitions[index];
            match result {
                Ok(revision) => {
                    partition.lease = Some(revision);
                    partition.written = Some(asked);
                    self.lease_written(index, asked);
                    if std::mem::take(&mut partition.renewal_failed) {
                        tracing::info!(worker = %self.id, partition = index, "Renewed the lease on a partition again.");
                    }
                }
                Err(error)
                    if error.kind() != kv::UpdateErrorKind::WrongLastRevision
                        && partition.written.is_some_and(|at| at.elapsed() < lifetime) =>
                {
                    failed = true;
                    partition.renewal_failed = true;
                    tracing::warn!(worker = %self.id, partition = index, %error, "Could not renew the lease on a partition; it keeps it, and tries again (nothing more is delivered from it once the lease runs out by this worker's clock).");
                }
                Err(error) => {
                    tracing::warn!(worker = %self.id, partition = index, %error, "Lost the lease on a partition (another worker wrote it, or it expired); it stops fetching from it and hands back what it has not sent, and what it sent is still acknowledged.");
                    self.lost(index, partition).await;
                }
            }
        }
        failed
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

    /// Which worker took a partition before this one (this one's id is written in its place).
    async fn previous_holder(&self, index: usize) -> Option<String> {
        let key = index.to_string();
        let previous = match self.holders.get(&key).await {
            Ok(found) => found.and_then(|v| String::from_utf8(v.to_vec()).ok()),
            Err(error) => {
                tracing::warn!(partition = index, %error, "Could not read which worker held a partition before.");
                None
            }
        };
        if let Err(error) = self.holders.put(&key, Bytes::from(self.id.clone())).await {
            tracing::warn!(partition = index, %error, "Could not record that this worker holds a partition.");
        }
        previous
    }

    /// Waits, on a partition taken without a hand-over, until what its last holder left behind
    /// can come first. That holder's last fetch may still deliver for up to `FETCH_WAIT` after
    /// it stopped. A holder still alive (it lost its lease, and resolves what it sent) is waited
    /// for until it has no acknowledgement pending; what a dead one left JetStream delivers
    /// again after the ack wait (from the last delivery or progress report). Fetching sooner
    /// would deliver some users' later events before their earlier ones.
    pub(super) async fn wait_for_leftovers(
        &self,
        lane: usize,
        partition: u32,
        previous: Option<&str>,
        stopping: &AtomicBool,
    ) -> bool {
        let settle = FETCH_WAIT + Duration::from_secs(1);
        if !sleep_unless(settle, stopping).await {
            return false;
        }
        let consumer = consumer_name(&self.destinations[lane], partition);
        let mut told = false;
        let pending = loop {
            let pending = self
                .events
                .consumer_info(&consumer)
                .await
                .map_or(1, |info| info.num_ack_pending);
            if pending == 0 {
                return true;
            }
            // The previous holder's announcement: absent when it is dead, else the partitions
            // it has events of in flight.
            let announced = match previous {
                Some(previous) => self.workers.get(previous).await.ok().flatten(),
                None => None,
            };
            let Some(busy) = announced else {
                break pending;
            };
            let here = partition.to_string();
            if !String::from_utf8_lossy(&busy).split(',').any(|p| p == here) {
                // Alive and done with it: what it handed back is delivered again first.
                return true;
            }
            if !std::mem::replace(&mut told, true) {
                tracing::info!(worker = %self.id, destination = %self.destinations[lane], partition, pending, previous, "The partition's last holder is alive and has events unacknowledged; waiting until it resolved them.");
            }
            if !sleep_unless(Duration::from_secs(1), stopping).await {
                return false;
            }
        };
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
    description: &str,
    lifetime: Duration,
    replicas: usize,
) -> Result<kv::Store, BacklogError> {
    js.get_or_create_stream(stream::Config {
        name: format!("KV_{bucket}"),
        description: Some(description.into()),
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
