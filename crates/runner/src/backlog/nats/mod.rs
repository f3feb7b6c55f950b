//! NATS JetStream as the backlog, for several ingestion nodes and delivery workers on one
//! replicated stream.
//!
//! Layout (every name derives from the configured `stream` and `subject_prefix`):
//! - the stream `<stream>` holds accepted events on `<prefix>.events.<partition>`, the partition
//!   being a hash of the event's user, so a user's events share one subject and keep their order.
//!   A message holds the events that share a partition of the requests a node received while
//!   its last publish was under way (`grouper.rs`, `batch.rs`), each request's events one part.
//!   Retention is by interest: a message is gone once every destination acknowledged it. A
//!   message of one part has a `Nats-Msg-Id` derived from its events' identities, so JetStream
//!   itself drops a retried request within the deduplication window, whichever node it arrives
//!   on; a retry grouped with other requests is recognised by the workers (`seen.rs`), and
//!   `recent.rs` covers a retry whose batch changed;
//! - one durable pull consumer per destination and partition, `<destination>_<partition>`;
//! - the key-value bucket `<stream>_LEASES` holds which worker delivers each partition (a value
//!   that lives `lease_seconds` unless renewed), `<stream>_WORKERS` the workers alive (same
//!   lifetime), from which each worker takes its fair share of partitions;
//! - the stream `<stream>_DLQ` holds dead letters on `<prefix>.dead.<destination>`;
//! - the stream `<stream>_SEEN` holds the parts of acknowledged messages on
//!   `<prefix>.seen.<partition>`, a week, for the next holder of a partition (`seen.rs`).
//!
//! A worker only ever fetches from partitions it holds the lease of, and acknowledges a message
//! once its destination's verdict on each of its events is in (`resolved.rs`); while its events
//! wait for a retry it tells JetStream it is still working on it (`+WPI`), so it is not
//! delivered elsewhere. ARCHITECTURE.md states the failure cases.

mod arrivals;
mod batch;
mod connect;
mod dead_letters;
mod erasure;
mod grouper;
mod leases;
mod recent;
mod resolved;
mod seen;
mod worker;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_nats::jetstream::ErrorCode;
use async_nats::jetstream::context::{
    CreateStreamError, CreateStreamErrorKind, GetStreamErrorKind,
};
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::{self, stream};
use async_nats::{HeaderMap, Subject};
use async_trait::async_trait;
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::OnceCell;

use super::{
    Appended, Backlog, BacklogError, BacklogStats, DeadLetter, DeadLetterFilter, Depth, Incoming,
    PartitionDepth, Resolution, Stored,
};
use crate::config::NatsConfig;
use connect::connect;
use worker::{FETCH_WAIT, Worker};

/// The header a replayed dead letter carries: only this destination delivers it.
const TARGET: &str = "Hardal-Target";

/// How long the backlog counts as not writable after a publish failed.
const UNWRITABLE_FOR: Duration = Duration::from_secs(5);

/// How long `stats` answers from memory (`/readyz` and `/metrics` both ask).
const STATS_FOR: Duration = Duration::from_secs(1);

/// The backlog on NATS JetStream.
pub struct NatsBacklog {
    client: async_nats::Client,
    js: jetstream::Context,
    events: stream::Stream,
    dead: stream::Stream,
    config: NatsConfig,
    destinations: Vec<String>,
    /// The subject of each partition.
    subjects: Vec<Subject>,
    /// When a publish last failed other than for a full stream: the backlog counts as not
    /// writable for a while after (it cannot wait for the next publish to learn otherwise: a
    /// load balancer sends none to an unready node).
    failed_at: Mutex<Option<Instant>>,
    /// The delivery side, started by the first `take` (ingestion-only nodes and `hardal dlq`
    /// never hold leases).
    worker: OnceCell<Arc<Worker>>,
    stats: Mutex<Option<(Instant, BacklogStats)>>,
    /// The identities this node stored within the duplicate window.
    recent: recent::Recent,
    /// What publishes the accepted events.
    grouper: grouper::Grouper,
    /// The buckets of erasure, once erasure needed them.
    erasure: OnceCell<erasure::Buckets>,
}

fn io(context: &str) -> impl Fn(&dyn std::fmt::Display) -> BacklogError + '_ {
    move |error| BacklogError::Io(format!("NATS: {context}: {error}"))
}

impl NatsBacklog {
    /// Connects, and creates (or updates) the streams, consumers and buckets the configuration
    /// names.
    pub async fn open(config: &NatsConfig, destinations: &[String]) -> Result<NatsBacklog, String> {
        let client = connect(config).await?;
        let js = jetstream::new(client.clone());
        let partitions = config.partitions;
        let description = format!("hardal events in {partitions} partitions");
        let events_config = stream::Config {
            name: config.stream.clone(),
            description: Some(description.clone()),
            subjects: vec![format!("{}.events.*", config.subject_prefix)],
            retention: stream::RetentionPolicy::Interest,
            discard: stream::DiscardPolicy::New,
            max_bytes: i64::try_from(config.max_bytes).unwrap_or(i64::MAX),
            num_replicas: config.replicas,
            duplicate_window: Duration::from_secs(config.duplicate_window_seconds),
            allow_direct: true,
            ..Default::default()
        };
        let events = ensure_stream(&js, events_config, |found| {
            let made = found.description.clone().unwrap_or_default();
            if made == description {
                return Ok(());
            }
            Err(format!(
                "NATS stream `{}` was made as \"{made}\", but the configuration asks for {partitions} partitions; events already in it would be delivered out of order. Keep `partitions` as it was, or drain the stream and delete it first",
                config.stream
            ))
        })
        .await?;
        let dead = ensure_stream(
            &js,
            stream::Config {
                name: format!("{}_DLQ", config.stream),
                description: Some("hardal dead letters".into()),
                subjects: vec![format!("{}.dead.*", config.subject_prefix)],
                num_replicas: config.replicas,
                allow_direct: true,
                ..Default::default()
            },
            |_| Ok(()),
        )
        .await?;
        // Every consumer exists before anything is published: with interest retention, an event
        // nobody is interested in yet would be dropped.
        for destination in destinations {
            for partition in 0..partitions {
                // Creating a durable consumer that exists updates what may change of it.
                events
                    .create_consumer(consumer_config(config, destination, partition))
                    .await
                    .map_err(|e| {
                        format!(
                            "NATS: creating consumer `{}`: {e}",
                            consumer_name(destination, partition)
                        )
                    })?;
            }
        }
        warn_about_forgotten_consumers(&events, destinations, partitions).await;
        let subjects: Vec<Subject> = (0..partitions)
            .map(|p| Subject::from(format!("{}.events.{p}", config.subject_prefix)))
            .collect();
        let max_bytes = config.max_bytes;
        let grouper = grouper::Grouper::start(js.clone(), subjects.clone(), move |error| {
            full_or_io(&error, max_bytes, "publishing")
        });
        Ok(NatsBacklog {
            client,
            js,
            events,
            dead,
            config: config.clone(),
            destinations: destinations.to_vec(),
            subjects,
            grouper,
            failed_at: Mutex::new(None),
            worker: OnceCell::new(),
            stats: Mutex::new(None),
            recent: recent::Recent::new(Duration::from_secs(config.duplicate_window_seconds)),
            erasure: OnceCell::new(),
        })
    }

    /// Notes a failed publish (a full stream is not a failure of the backlog).
    fn failed(&self, error: BacklogError) -> BacklogError {
        if matches!(error, BacklogError::Io(_)) {
            *self.failed_at.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
        }
        error
    }

    fn destination(&self, id: &str) -> Result<usize, BacklogError> {
        self.destinations
            .iter()
            .position(|d| d == id)
            .ok_or_else(|| BacklogError::UnknownDestination(id.to_owned()))
    }

    async fn worker(&self) -> Result<&Arc<Worker>, BacklogError> {
        self.worker
            .get_or_try_init(|| async {
                Worker::start(
                    self.client.clone(),
                    self.js.clone(),
                    self.events.clone(),
                    self.config.clone(),
                    self.destinations.clone(),
                )
                .await
            })
            .await
    }
}

/// Opens the stream `wanted` names, making it if need be, and updating it only when a setting
/// hardal chooses differs from it: nats-server 2.9 crashes when two updates of one stream cross
/// (the nodes of a deployment starting together), and most starts change nothing. `check` may
/// refuse the stream as it was found.
async fn ensure_stream(
    js: &jetstream::Context,
    wanted: stream::Config,
    check: impl Fn(&stream::Config) -> Result<(), String>,
) -> Result<stream::Stream, String> {
    let name = wanted.name.clone();
    let opening = |e: &dyn std::fmt::Display| format!("NATS: opening stream `{name}`: {e}");
    // A cluster that is starting too answers nothing until it elected its leader.
    let mut attempts = 0;
    let looked_up = loop {
        match js.get_stream(&name).await {
            Err(error) if error.kind() == GetStreamErrorKind::Request && attempts < 5 => {
                attempts += 1;
                tracing::warn!(stream = %name, %error, "NATS JetStream does not answer yet; asking again.");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            looked_up => break looked_up,
        }
    };
    let found = match looked_up {
        Ok(found) => found,
        Err(error)
            if matches!(error.kind(), GetStreamErrorKind::JetStream(e)
                if e.error_code() == ErrorCode::STREAM_NOT_FOUND) =>
        {
            match js.create_stream(wanted.clone()).await {
                Ok(made) => return Ok(made),
                // Another node made it meanwhile: it is checked as found. Otherwise the reason
                // it could not be made is the one worth telling.
                Err(refused) => match js.get_stream(&name).await {
                    Ok(found) => found,
                    Err(_) => return Err(creation_refused(&name, &wanted, &refused)),
                },
            }
        }
        Err(error) => return Err(opening(&error)),
    };
    let found_config = &found.cached_info().config;
    check(found_config)?;
    if chosen_settings_match(found_config, &wanted) {
        return Ok(found);
    }
    js.update_stream(&wanted)
        .await
        .map_err(|e| format!("NATS: updating stream `{name}`: {e}"))?;
    js.get_stream(&name).await.map_err(|e| opening(&e))
}

/// Why a stream could not be made, with the way out when JetStream cannot reserve its size: a
/// file stream reserves its `max_bytes` up front, against the server's `max_file_store` (by
/// default three quarters of the free disk), so a server with little disk refuses the default.
fn creation_refused(name: &str, wanted: &stream::Config, refused: &CreateStreamError) -> String {
    let storage = matches!(refused.kind(), CreateStreamErrorKind::JetStream(e)
        if [ErrorCode::INSUFFICIENT_RESOURCES, ErrorCode::STORAGE_RESOURCES_EXCEEDED]
            .contains(&e.error_code()));
    if storage && wanted.max_bytes > 0 {
        format!(
            "NATS: creating stream `{name}`: {refused}: JetStream cannot reserve the {} bytes of `backlog.max_bytes` on each of its {} replica(s); lower `backlog.max_bytes`, or give the servers more storage (`jetstream {{ max_file_store }}` and the disk under it)",
            wanted.max_bytes, wanted.num_replicas
        )
    } else {
        format!("NATS: creating stream `{name}`: {refused}")
    }
}

/// Whether a stream as found has every setting hardal chose (those it leaves at their default,
/// the server fills in its own way).
fn chosen_settings_match(found: &stream::Config, wanted: &stream::Config) -> bool {
    fn same<T: PartialEq + Default>(found: &T, wanted: &T) -> bool {
        *wanted == T::default() || found == wanted
    }
    same(&found.description, &wanted.description)
        && same(&found.subjects, &wanted.subjects)
        && same(&found.retention, &wanted.retention)
        && same(&found.discard, &wanted.discard)
        && same(&found.max_bytes, &wanted.max_bytes)
        && same(&found.num_replicas, &wanted.num_replicas)
        && same(&found.duplicate_window, &wanted.duplicate_window)
        && same(&found.allow_direct, &wanted.allow_direct)
}

/// Warns about consumers of destinations the configuration no longer names: with interest
/// retention, the stream keeps every event they have not acknowledged, until `max_bytes`.
async fn warn_about_forgotten_consumers(
    events: &stream::Stream,
    destinations: &[String],
    partitions: u32,
) {
    let ours: HashSet<String> = destinations
        .iter()
        .flat_map(|d| (0..partitions).map(move |p| consumer_name(d, p)))
        .collect();
    let mut names = events.consumer_names();
    let mut forgotten = Vec::new();
    while let Some(Ok(name)) = names.next().await {
        if !ours.contains(&name) {
            forgotten.push(name);
        }
    }
    if !forgotten.is_empty() {
        forgotten.sort();
        tracing::warn!(
            stream = %events.cached_info().config.name,
            consumers = %forgotten.join(", "),
            "The stream has consumers this configuration does not name (a destination removed or renamed?); the stream keeps every event they have not acknowledged. Delete them with `nats consumer rm` if they are gone for good."
        );
    }
}

fn consumer_name(destination: &str, partition: u32) -> String {
    format!("{destination}_{partition}")
}

fn consumer_config(
    config: &NatsConfig,
    destination: &str,
    partition: u32,
) -> jetstream::consumer::pull::Config {
    jetstream::consumer::pull::Config {
        durable_name: Some(consumer_name(destination, partition)),
        description: Some(format!(
            "hardal: partition {partition} for destination {destination}"
        )),
        filter_subject: format!("{}.events.{partition}", config.subject_prefix),
        ack_policy: jetstream::consumer::AckPolicy::Explicit,
        ack_wait: Duration::from_secs(config.ack_wait_seconds),
        // hardal counts deliveries itself and dead-letters beyond `max_deliver`, so that nothing
        // is left in the stream that no consumer will ever deliver again.
        max_deliver: -1,
        // What a worker may hold unacknowledged; the delivery engine's own limit is the real one.
        max_ack_pending: 100_000,
        ..Default::default()
    }
}

/// The partition of a user's events (of an event's own identity, when it names no user).
pub fn partition_of(user: Option<&str>, identity: u64, partitions: u32) -> u32 {
    let hash = match user {
        Some(user) => xxhash_rust::xxh3::xxh3_64_with_seed(user.as_bytes(), 3),
        None => identity,
    };
    (hash % u64::from(partitions.max(1))) as u32
}

fn full_or_io(error: &dyn std::fmt::Display, max_bytes: u64, context: &str) -> BacklogError {
    let text = error.to_string();
    if text.contains("maximum bytes") || text.contains("maximum messages") {
        BacklogError::Full {
            bytes: max_bytes,
            max_bytes,
        }
    } else {
        BacklogError::Io(format!("NATS: {context}: {text}"))
    }
}

#[async_trait]
impl Backlog for NatsBacklog {
    async fn append(&self, events: Vec<Incoming>) -> Result<Appended, BacklogError> {
        // Published while disconnected, events would wait in the client and reach the stream
        // after the answer (a 503) and after the sender's retry, out of its order.
        if self.client.connection_state() != async_nats::connection::State::Connected {
            return Err(BacklogError::Io(
                "NATS: not connected to any server; reconnecting".into(),
            ));
        }
        let mut appended = Appended::default();
        // An event repeated within the request, or stored by this node within the duplicate
        // window (a retry whose batch differs from the first attempt's), is stored once.
        let mut seen = HashSet::with_capacity(events.len());
        let known = self.recent.known(events.iter().map(|event| event.identity));
        let fresh: Vec<Incoming> = events
            .into_iter()
            .zip(known)
            .filter(|(event, known)| {
                let new = seen.insert(event.identity) && !known;
                appended.duplicates += usize::from(!new);
                new
            })
            .map(|(event, _)| event)
            .collect();
        if fresh.is_empty() {
            // Nothing to publish: no need to wait for the group under way.
            return Ok(appended);
        }
        match self.grouper.store(fresh).await {
            Ok(outcome) => {
                self.recent.stored(&outcome.stored);
                appended.accepted += outcome.accepted;
                appended.duplicates += outcome.duplicates;
                Ok(appended)
            }
            Err(error) => Err(self.failed(error)),
        }
    }

    async fn take(&self, destination: &str, limit: usize) -> Result<Vec<Stored>, BacklogError> {
        let lane = self.destination(destination)?;
        let worker = self.worker().await?;
        let mut queue = worker.queues[lane].lock().await;
        worker.arrivals.looking(lane);
        let mut taken = Vec::new();
        while taken.len() < limit {
            match queue.try_recv() {
                Ok(stored) => {
                    if worker.hand_on(lane, stored.seq).await {
                        taken.push(stored);
                    }
                }
                Err(_) => break,
            }
        }
        Ok(taken)
    }

    async fn resolve(
        &self,
        destination: &str,
        resolved: Vec<Resolution>,
    ) -> Result<(), BacklogError> {
        let lane = self.destination(destination)?;
        let worker = self.worker().await?;
        worker.resolve(lane, resolved).await
    }

    async fn wait_for_events(&self) {
        match self.worker.get() {
            Some(worker) => worker.arrivals.wait(FETCH_WAIT).await,
            None => tokio::time::sleep(FETCH_WAIT).await,
        }
    }

    async fn dead_letters(
        &self,
        filter: &DeadLetterFilter,
    ) -> Result<Vec<DeadLetter>, BacklogError> {
        self.select_dead(filter).await
    }

    async fn replay(&self, filter: &DeadLetterFilter) -> Result<u64, BacklogError> {
        let mut count = 0;
        for (letter, body) in self.select_dead_with_text(filter).await? {
            if !self.destinations.contains(&letter.destination) {
                return Err(BacklogError::UnknownDestination(letter.destination));
            }
            let checked = super::check_event(&body).ok();
            let partition = partition_of(
                checked.as_ref().and_then(|c| c.user.as_deref()),
                checked.as_ref().map_or(letter.id, |c| c.identity),
                self.config.partitions,
            );
            let mut headers = HeaderMap::new();
            headers.insert(TARGET, letter.destination.as_str());
            let publish = PublishMessage::build()
                .payload(Bytes::from(body))
                .headers(headers)
                .message_id(format!("replay-{}", letter.id));
            self.js
                .send_publish(self.subjects[partition as usize].clone(), publish)
                .await
                .map_err(|e| full_or_io(&e, self.config.max_bytes, "replaying"))?
                .await
                .map_err(|e| full_or_io(&e, self.config.max_bytes, "replaying"))?;
            self.dead
                .delete_message(letter.id)
                .await
                .map_err(|e| io("removing a replayed dead letter")(&e))?;
            count += 1;
        }
        Ok(count)
    }

    async fn purge(&self, filter: &DeadLetterFilter) -> Result<u64, BacklogError> {
        let mut count = 0;
        for letter in self.select_dead(filter).await? {
            self.dead
                .delete_message(letter.id)
                .await
                .map_err(|e| io("deleting a dead letter")(&e))?;
            count += 1;
        }
        Ok(count)
    }

    async fn stats(&self) -> Result<BacklogStats, BacklogError> {
        if let Some((at, stats)) = &*self.stats.lock().unwrap_or_else(|e| e.into_inner())
            && at.elapsed() < STATS_FOR
        {
            return Ok(stats.clone());
        }
        let connected = self.client.connection_state() == async_nats::connection::State::Connected;
        let info = self
            .events
            .get_info()
            .await
            .map_err(|e| io("reading the stream")(&e))?;
        let mut stats = BacklogStats {
            depths: Vec::new(),
            partitions: Vec::new(),
            held: self.worker.get().map(|w| w.held()),
            bytes: info.state.bytes,
            writable: connected
                && self
                    .failed_at
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .is_none_or(|at| at.elapsed() > UNWRITABLE_FOR),
        };
        let now = SystemTime::now();
        for destination in &self.destinations {
            let mut depth = Depth {
                destination: destination.clone(),
                ..Depth::default()
            };
            for partition in 0..self.config.partitions {
                let consumer = self
                    .events
                    .consumer_info(consumer_name(destination, partition))
                    .await
                    .map_err(|e| io("reading a consumer")(&e))?;
                let events = consumer.num_pending + consumer.num_ack_pending as u64;
                depth.events += events;
                stats.partitions.push(PartitionDepth {
                    destination: destination.clone(),
                    partition,
                    events,
                });
                if events == 0 {
                    continue;
                }
                // The oldest event not yet acknowledged is the first after the ack floor.
                if let Ok(oldest) = self
                    .events
                    .raw_message_builder()
                    .sequence(consumer.ack_floor.stream_sequence + 1)
                    .next_by_subject(self.subjects[partition as usize].to_string())
                    .send()
                    .await
                {
                    let published = SystemTime::UNIX_EPOCH
                        + Duration::from_nanos(
                            u64::try_from(oldest.time.unix_timestamp_nanos()).unwrap_or(0),
                        );
                    let age = now
                        .duration_since(published)
                        .unwrap_or_default()
                        .as_secs_f64();
                    depth.oldest_age_seconds = depth.oldest_age_seconds.max(age);
                }
            }
            stats.depths.push(depth);
        }
        *self.stats.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((Instant::now(), stats.clone()));
        Ok(stats)
    }

    async fn begin_erasure(
        &self,
        record: crate::backlog::ErasureRecord,
        identifiers: String,
        suppress: Vec<crate::backlog::SuppressionEntry>,
    ) -> Result<(), BacklogError> {
        self.nats_begin_erasure(record, identifiers, suppress).await
    }

    async fn suppressions(&self) -> Result<Vec<crate::backlog::SuppressionEntry>, BacklogError> {
        self.nats_suppressions().await
    }

    /// Every node reads the suppression list again every second (`serve`).
    fn suppression_delay(&self) -> Duration {
        Duration::from_secs(2)
    }

    async fn prune_suppressions(&self, before: u64) -> Result<u64, BacklogError> {
        self.nats_prune_suppressions(before).await
    }

    async fn remove_erased(
        &self,
        record: crate::backlog::ErasureRecord,
        erased: crate::backlog::ErasedMatcher,
    ) -> Result<crate::backlog::ErasureRecord, BacklogError> {
        self.nats_remove_erased(record, erased).await
    }

    async fn record_erasure(
        &self,
        record: crate::backlog::ErasureRecord,
    ) -> Result<(), BacklogError> {
        self.nats_record_erasure(record).await
    }

    async fn pending_erasures(&self) -> Result<Vec<crate::backlog::PendingErasure>, BacklogError> {
        self.nats_pending_erasures().await
    }

    async fn erasures(
        &self,
        id: Option<&str>,
    ) -> Result<Vec<crate::backlog::ErasureRecord>, BacklogError> {
        self.nats_erasures(id).await
    }

    async fn close(&self) {
        if let Some(worker) = self.worker.get() {
            worker.close().await;
        }
        let _ = self.client.flush().await;
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
