//! NATS JetStream as the backlog, for several ingestion nodes and delivery workers on one
//! replicated stream.
//!
//! Layout (every name derives from the configured `stream` and `subject_prefix`):
//! - the stream `<stream>` holds accepted events on `<prefix>.events.<partition>`, the partition
//!   being a hash of the event's user, so a user's events share one subject and keep their order.
//!   Retention is by interest: an event is gone once every destination acknowledged it. Publishes
//!   carry the event's identity as `Nats-Msg-Id`, so JetStream itself drops duplicates within the
//!   deduplication window, whichever node they arrive on;
//! - one durable pull consumer per destination and partition, `<destination>_<partition>`;
//! - the key-value bucket `<stream>_LEASES` holds which worker delivers each partition (a value
//!   that lives `lease_seconds` unless renewed), `<stream>_WORKERS` the workers alive (same
//!   lifetime), from which each worker takes its fair share of partitions;
//! - the stream `<stream>_DLQ` holds dead letters on `<prefix>.dead.<destination>`.
//!
//! A worker only ever fetches from partitions it holds the lease of, and acknowledges an event
//! once its destination's verdict is in; while the event waits for a retry it tells JetStream it
//! is still working on it (`+WPI`), so it is not delivered elsewhere. ARCHITECTURE.md states
//! the failure cases.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::{self, consumer::PullConsumer, kv, stream};
use async_nats::{HeaderMap, Subject};
use async_trait::async_trait;
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::{Notify, OnceCell, mpsc};
use tokio::task::JoinHandle;

use super::{
    Appended, Backlog, BacklogError, BacklogStats, DeadLetter, DeadLetterFilter, Depth, Incoming,
    PartitionDepth, Resolution, Stored,
};
use crate::config::NatsConfig;
use crate::delivery::Ending;

/// The header a replayed dead letter carries: only this destination delivers it.
const TARGET: &str = "Hardal-Target";

/// The lease value of a partition its last holder let go of in good order (everything it had
/// taken was acknowledged or handed back), so the next holder need not wait.
const FREE: &[u8] = b"free";

/// Events fetched from one partition at a time.
const FETCH: usize = 256;

/// Events a worker keeps fetched per destination, beyond what the delivery engine holds.
const QUEUE: usize = 1024;

/// How long a fetch waits on an empty partition.
const FETCH_WAIT: Duration = Duration::from_secs(2);

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
}

fn io(context: &str) -> impl Fn(&dyn std::fmt::Display) -> BacklogError + '_ {
    move |error| BacklogError::Io(format!("NATS: {context}: {error}"))
}

impl NatsBacklog {
    /// Connects, and creates (or updates) the streams, consumers and buckets the configuration
    /// names.
    pub async fn open(
        config: &NatsConfig,
        destinations: &[String],
        dedup_window: Duration,
    ) -> Result<NatsBacklog, String> {
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
            duplicate_window: dedup_window,
            allow_direct: true,
            ..Default::default()
        };
        if let Ok(mut existing) = js.get_stream(&config.stream).await {
            let info = existing
                .info()
                .await
                .map_err(|e| format!("NATS: reading stream `{}`: {e}", config.stream))?;
            let made = info.config.description.clone().unwrap_or_default();
            if made != description {
                return Err(format!(
                    "NATS stream `{}` was made as \"{made}\", but the configuration asks for {partitions} partitions; events already in it would be delivered out of order. Keep `partitions` as it was, or drain the stream and delete it first",
                    config.stream
                ));
            }
        }
        let events = js
            .create_or_update_stream(events_config)
            .await
            .map_err(|e| format!("NATS: creating stream `{}`: {e}", config.stream))?;
        let events = js
            .get_stream(&events.config.name)
            .await
            .map_err(|e| format!("NATS: opening stream `{}`: {e}", config.stream))?;
        let dead_name = format!("{}_DLQ", config.stream);
        js.create_or_update_stream(stream::Config {
            name: dead_name.clone(),
            description: Some("hardal dead letters".into()),
            subjects: vec![format!("{}.dead.*", config.subject_prefix)],
            num_replicas: config.replicas,
            allow_direct: true,
            ..Default::default()
        })
        .await
        .map_err(|e| format!("NATS: creating stream `{dead_name}`: {e}"))?;
        let dead = js
            .get_stream(&dead_name)
            .await
            .map_err(|e| format!("NATS: opening stream `{dead_name}`: {e}"))?;
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
        Ok(NatsBacklog {
            client,
            js,
            events,
            dead,
            config: config.clone(),
            destinations: destinations.to_vec(),
            subjects: (0..partitions)
                .map(|p| Subject::from(format!("{}.events.{p}", config.subject_prefix)))
                .collect(),
            failed_at: Mutex::new(None),
            worker: OnceCell::new(),
            stats: Mutex::new(None),
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

    fn dead_subject(&self, destination: &str) -> String {
        format!("{}.dead.{destination}", self.config.subject_prefix)
    }

    /// Dead letters the filter selects, with their stream sequence.
    async fn select_dead(
        &self,
        filter: &DeadLetterFilter,
    ) -> Result<Vec<DeadLetter>, BacklogError> {
        let subject = match &filter.destination {
            Some(destination) => self.dead_subject(destination),
            None => format!("{}.dead.*", self.config.subject_prefix),
        };
        let mut found = Vec::new();
        let mut next = filter.id.unwrap_or(1);
        loop {
            if filter.limit.is_some_and(|limit| found.len() >= limit) {
                break;
            }
            let message = match self
                .dead
                .raw_message_builder()
                .sequence(next)
                .next_by_subject(subject.clone())
                .send()
                .await
            {
                Ok(message) => message,
                Err(error) if error.kind() == stream::LastRawMessageErrorKind::NoMessageFound => {
                    break;
                }
                Err(error) => return Err(io("reading dead letters")(&error)),
            };
            if filter.id.is_some_and(|id| id != message.sequence) {
                break;
            }
            next = message.sequence + 1;
            let Ok(envelope) = serde_json::from_slice::<Envelope>(&message.payload) else {
                continue;
            };
            if !selected(filter, &envelope) {
                if filter.id.is_some() {
                    break;
                }
                continue;
            }
            found.push(DeadLetter {
                id: message.sequence,
                destination: envelope.destination,
                at: envelope.at,
                ending: envelope.ending,
                reasons: envelope.reasons,
                event: serde_json::from_str(&envelope.event)
                    .unwrap_or(serde_json::Value::String(envelope.event)),
            });
            if filter.id.is_some() {
                break;
            }
        }
        Ok(found)
    }
}

/// A dead letter as the dead-letter stream holds it.
#[derive(serde::Serialize, serde::Deserialize)]
struct Envelope {
    destination: String,
    at: u64,
    ending: String,
    reasons: Vec<String>,
    /// The event's text as it was accepted.
    event: String,
}

fn selected(filter: &DeadLetterFilter, envelope: &Envelope) -> bool {
    let seconds = |t: SystemTime| t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    filter
        .reason
        .as_ref()
        .is_none_or(|text| envelope.reasons.iter().any(|r| r.contains(text.as_str())))
        && filter
            .since
            .is_none_or(|since| envelope.at >= seconds(since))
        && filter
            .until
            .is_none_or(|until| envelope.at <= seconds(until))
}

async fn connect(config: &NatsConfig) -> Result<async_nats::Client, String> {
    let mut options = async_nats::ConnectOptions::new().name("hardal");
    if let Some(token) = &config.token {
        options = options.token(token.expose().to_owned());
    }
    if let Some(user) = &config.user {
        let password = config
            .password
            .as_ref()
            .map(|p| p.expose().to_owned())
            .unwrap_or_default();
        options = options.user_and_password(user.clone(), password);
    }
    if let Some(file) = &config.credentials_file {
        options = options
            .credentials_file(file)
            .await
            .map_err(|e| format!("NATS: reading credentials file {file}: {e}"))?;
    }
    if let Some(tls) = &config.tls {
        options = options.require_tls(tls.required);
        if let Some(ca) = &tls.ca_file {
            options = options.add_root_certificates(ca.into());
        }
        if let (Some(cert), Some(key)) = (&tls.cert_file, &tls.key_file) {
            options = options.add_client_certificate(cert.into(), key.into());
        }
    }
    let servers: Vec<async_nats::ServerAddr> = config
        .servers
        .iter()
        .map(|s| {
            s.parse()
                .map_err(|e| format!("NATS: server address `{}`: {e}", without_credentials(s)))
        })
        .collect::<Result<_, _>>()?;
    let named: Vec<String> = config
        .servers
        .iter()
        .map(|s| without_credentials(s))
        .collect();
    options
        .connect(servers)
        .await
        .map_err(|e| format!("NATS: cannot connect to {}: {e}", named.join(", ")))
}

/// A server URL as it may be shown: credentials written into it (`nats://user:pass@host`) are
/// replaced.
fn without_credentials(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.split_once('@') {
            Some((_, host)) => format!("{scheme}://[redacted]@{host}"),
            None => url.to_owned(),
        },
        None => match url.split_once('@') {
            Some((_, host)) => format!("[redacted]@{host}"),
            None => url.to_owned(),
        },
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
        let mut acks = Vec::with_capacity(events.len());
        for event in events {
            let partition = partition_of(
                event.user.as_deref(),
                event.identity,
                self.config.partitions,
            );
            let publish = PublishMessage::build()
                .payload(Bytes::from(event.body))
                .message_id(format!("{:016x}", event.identity));
            let sent = self
                .js
                .send_publish(self.subjects[partition as usize].clone(), publish)
                .await;
            match sent {
                Ok(ack) => acks.push(ack),
                Err(error) => {
                    return Err(self.failed(full_or_io(
                        &error,
                        self.config.max_bytes,
                        "publishing",
                    )));
                }
            }
        }
        let mut appended = Appended::default();
        let mut failed = None;
        // Every acknowledgement is awaited, so that a failure leaves nothing in flight; the
        // client sends the batch again, and what JetStream stored already is a duplicate then.
        for ack in
            futures_util::future::join_all(acks.into_iter().map(|ack| ack.into_future())).await
        {
            match ack {
                Ok(ack) if ack.duplicate => appended.duplicates += 1,
                Ok(_) => appended.accepted += 1,
                Err(error) => {
                    failed.get_or_insert(full_or_io(&error, self.config.max_bytes, "publishing"));
                }
            }
        }
        match failed {
            Some(error) => Err(self.failed(error)),
            None => Ok(appended),
        }
    }

    async fn take(&self, destination: &str, limit: usize) -> Result<Vec<Stored>, BacklogError> {
        let lane = self.destination(destination)?;
        let worker = self.worker().await?;
        let mut queue = worker.queues[lane].lock().await;
        let mut taken = Vec::new();
        while taken.len() < limit {
            match queue.try_recv() {
                Ok(stored) => taken.push(stored),
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
            Some(worker) => {
                let _ = tokio::time::timeout(FETCH_WAIT, worker.arrived.notified()).await;
            }
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
        for letter in self.select_dead(filter).await? {
            if !self.destinations.contains(&letter.destination) {
                return Err(BacklogError::UnknownDestination(letter.destination));
            }
            let body = match &letter.event {
                serde_json::Value::String(text) => text.clone(),
                event => event.to_string(),
            };
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

    async fn close(&self) {
        if let Some(worker) = self.worker.get() {
            worker.close().await;
        }
        let _ = self.client.flush().await;
    }
}

/// An event a worker took and has not acknowledged.
struct Held {
    /// Where JetStream expects the acknowledgement of this delivery.
    reply: Subject,
    partition: u32,
}

/// A partition's state in this worker.
#[derive(Default)]
struct Partition {
    /// The lease's revision while this worker holds it.
    lease: Option<u64>,
    /// Asked to stop fetching (being handed over, or the lease was lost).
    stopping: Arc<AtomicBool>,
    fetchers: Vec<JoinHandle<()>>,
}

/// The delivery side of a node: its leases, the fetchers of the partitions it holds, and the
/// events it took and has not acknowledged.
struct Worker {
    id: String,
    client: async_nats::Client,
    js: jetstream::Context,
    events: stream::Stream,
    config: NatsConfig,
    destinations: Vec<String>,
    /// `[destination][partition]`.
    consumers: Vec<Vec<PullConsumer>>,
    leases: kv::Store,
    workers: kv::Store,
    workers_stream: stream::Stream,
    senders: Vec<mpsc::Sender<Stored>>,
    queues: Vec<tokio::sync::Mutex<mpsc::Receiver<Stored>>>,
    /// By destination and stream sequence.
    in_flight: Mutex<HashMap<(usize, u64), Held>>,
    /// Events in flight per partition (a partition is handed over only when it has none).
    in_flight_by_partition: Vec<AtomicUsize>,
    partitions: tokio::sync::Mutex<Vec<Partition>>,
    /// The partitions held after the last tending, for the metrics.
    holding: Mutex<Vec<u32>>,
    arrived: Notify,
    /// The dead-letter stream's subject prefix.
    dead_prefix: String,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Worker {
    async fn start(
        client: async_nats::Client,
        js: jetstream::Context,
        events: stream::Stream,
        config: NatsConfig,
        destinations: Vec<String>,
    ) -> Result<Arc<Worker>, BacklogError> {
        let lease = Duration::from_secs(config.lease_seconds);
        let leases = open_bucket(
            &js,
            &format!("{}_LEASES", config.stream),
            lease,
            config.replicas,
        )
        .await?;
        let workers_bucket = format!("{}_WORKERS", config.stream);
        let workers = open_bucket(&js, &workers_bucket, lease, config.replicas).await?;
        let workers_stream = js
            .get_stream(format!("KV_{workers_bucket}"))
            .await
            .map_err(|e| io("opening the workers bucket")(&e))?;
        let mut consumers = Vec::new();
        for destination in &destinations {
            let mut row = Vec::new();
            for partition in 0..config.partitions {
                row.push(
                    events
                        .get_consumer::<jetstream::consumer::pull::Config>(&consumer_name(
                            destination,
                            partition,
                        ))
                        .await
                        .map_err(|e| io("opening a consumer")(&e))?,
                );
            }
            consumers.push(row);
        }
        let (senders, queues) = destinations
            .iter()
            .map(|_| {
                let (tx, rx) = mpsc::channel(QUEUE);
                (tx, tokio::sync::Mutex::new(rx))
            })
            .unzip();
        let id = format!(
            "{}-{}-{:08x}",
            hostname(),
            std::process::id(),
            xxhash_rust::xxh3::xxh3_64(
                &SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_nanos()
                    .to_le_bytes()
            ) as u32
        );
        let worker = Arc::new(Worker {
            id,
            client,
            js,
            events,
            dead_prefix: format!("{}.dead", config.subject_prefix),
            destinations,
            consumers,
            leases,
            workers,
            workers_stream,
            senders,
            queues,
            in_flight: Mutex::new(HashMap::new()),
            in_flight_by_partition: (0..config.partitions)
                .map(|_| AtomicUsize::new(0))
                .collect(),
            partitions: tokio::sync::Mutex::new(
                (0..config.partitions)
                    .map(|_| Partition::default())
                    .collect(),
            ),
            holding: Mutex::new(Vec::new()),
            arrived: Notify::new(),
            tasks: Mutex::new(Vec::new()),
            config,
        });
        tracing::info!(worker = %worker.id, "This node delivers from NATS partitions it holds a lease on.");
        worker.tend().await;
        let tending = Arc::clone(&worker);
        let progress = Arc::clone(&worker);
        let mut tasks = worker.tasks.lock().unwrap_or_else(|e| e.into_inner());
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(lease / 3);
            tick.tick().await;
            loop {
                tick.tick().await;
                tending.tend().await;
            }
        }));
        tasks.push(tokio::spawn(async move {
            let every = Duration::from_secs(progress.config.ack_wait_seconds) / 3;
            let mut tick = tokio::time::interval(every.max(Duration::from_millis(300)));
            tick.tick().await;
            loop {
                tick.tick().await;
                progress.still_working().await;
            }
        }));
        drop(tasks);
        Ok(worker)
    }

    /// The partitions this worker holds.
    fn held(&self) -> Vec<u32> {
        self.holding
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Renews this worker's leases, hands over partitions beyond its fair share, and takes free
    /// ones up to it. Runs every third of the lease.
    async fn tend(self: &Arc<Self>) {
        if let Err(error) = self.workers.put(&self.id, Bytes::new()).await {
            tracing::warn!(worker = %self.id, %error, "Could not announce this worker to NATS.");
            return;
        }
        // Each live worker's key is one message in the bucket's stream (one per key, gone when
        // it was not renewed for a lease); leaving workers let theirs expire rather than delete
        // it, which would leave a marker message behind.
        let live = match self.workers_stream.get_info().await {
            Ok(info) => info.state.messages as usize,
            Err(error) => {
                tracing::warn!(%error, "Could not count the workers alive.");
                return;
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
    async fn wait_for_leftovers(&self, lane: usize, partition: u32, stopping: &AtomicBool) -> bool {
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

    /// Fetches one destination's events from one partition while this worker holds it.
    async fn fetch(
        self: Arc<Self>,
        lane: usize,
        partition: u32,
        handed_over: bool,
        stopping: Arc<AtomicBool>,
    ) {
        if !handed_over && !self.wait_for_leftovers(lane, partition, &stopping).await {
            return;
        }
        let consumer = &self.consumers[lane][partition as usize];
        let sender = &self.senders[lane];
        // Events delivered again (a dead worker's), gathered until the first event delivered
        // for the first time: JetStream sends them first but not in order among themselves.
        let mut again: Vec<Stored> = Vec::new();
        loop {
            if stopping.load(Ordering::Relaxed) && again.is_empty() {
                return;
            }
            let room = if again.is_empty() {
                sender.capacity().min(FETCH)
            } else {
                FETCH
            };
            if room == 0 {
                // Paused or slow: wait for room rather than pull what cannot be handed on.
                match tokio::time::timeout(FETCH_WAIT, sender.reserve()).await {
                    Ok(Ok(permit)) => drop(permit),
                    Ok(Err(_)) => return,
                    Err(_) => {}
                }
                continue;
            }
            let batch = consumer
                .batch()
                .max_messages(room)
                .expires(FETCH_WAIT)
                .messages()
                .await;
            let mut batch = match batch {
                Ok(batch) => batch,
                Err(error) => {
                    tracing::warn!(destination = %self.destinations[lane], partition, %error, "Could not fetch events from NATS; trying again.");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            // A batch is read to its end, even when asked to stop, and every event in it is in
            // flight (kept alive by progress acknowledgements) before any waits for room in
            // the queue: what JetStream sent is this worker's to deliver or hand back.
            let (mut received, mut fresh) = (0, Vec::new());
            while let Some(message) = batch.next().await {
                match message {
                    Ok(message) => {
                        received += 1;
                        match self.arrive(lane, partition, message).await {
                            Some((stored, 1)) => fresh.push(stored),
                            Some((stored, _)) if fresh.is_empty() => again.push(stored),
                            Some((stored, _)) => fresh.push(stored),
                            None => {}
                        }
                    }
                    Err(error) => {
                        tracing::warn!(destination = %self.destinations[lane], partition, %error, "A fetch from NATS failed; trying again.");
                        break;
                    }
                }
            }
            if fresh.is_empty() && received == room && !again.is_empty() {
                // Perhaps more delivered again to come: they go first, in order.
                continue;
            }
            again.sort_unstable_by_key(|stored| stored.seq);
            for stored in again.drain(..).chain(fresh) {
                if sender.send(stored).await.is_err() {
                    return;
                }
                self.arrived.notify_waiters();
            }
        }
    }

    /// Takes one fetched event in: in flight from now on, and returned, with how many times
    /// JetStream delivered it, to be queued for the delivery engine (unless it is not this
    /// destination's, is in flight here already, or goes to the dead letters).
    async fn arrive(
        &self,
        lane: usize,
        partition: u32,
        message: jetstream::Message,
    ) -> Option<(Stored, i64)> {
        let reply = message.reply.clone()?;
        let info = message.info().ok()?;
        let (seq, delivered) = (info.stream_sequence, info.delivered);
        let destination = &self.destinations[lane];
        if let Some(target) = message.headers.as_ref().and_then(|h| h.get(TARGET))
            && target.as_str() != destination.as_str()
        {
            // A replayed dead letter of another destination.
            let _ = self.client.publish(reply, "+ACK".into()).await;
            return None;
        }
        let body = match String::from_utf8(message.payload.to_vec()) {
            Ok(body) => body,
            Err(_) => {
                self.dead_letter_now(
                    lane,
                    reply,
                    seq,
                    String::from_utf8_lossy(&message.payload).into_owned(),
                    "the event in NATS is not valid UTF-8 (it was not published by hardal)".into(),
                )
                .await;
                return None;
            }
        };
        if self.config.max_deliver > 0 && delivered > self.config.max_deliver {
            let reason = format!(
                "NATS delivered this event {delivered} times, more than max_deliver ({}); each time, the worker holding it stopped before the destination's verdict",
                self.config.max_deliver
            );
            self.dead_letter_now(lane, reply, seq, body, reason).await;
            return None;
        }
        {
            let mut in_flight = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(held) = in_flight.get_mut(&(lane, seq)) {
                // Delivered again while this worker still holds it (its progress went unheard):
                // acknowledge the newest delivery, deliver it once.
                held.reply = reply;
                return None;
            }
            in_flight.insert((lane, seq), Held { reply, partition });
        }
        self.in_flight_by_partition[partition as usize].fetch_add(1, Ordering::Relaxed);
        Some((Stored { seq, body }, delivered))
    }

    async fn dead_letter_now(
        &self,
        lane: usize,
        reply: Subject,
        seq: u64,
        body: String,
        reason: String,
    ) {
        let envelope = Envelope {
            destination: self.destinations[lane].clone(),
            at: unix_now(),
            ending: "dead_lettered".into(),
            reasons: vec![reason],
            event: body,
        };
        match self.publish_dead(envelope, seq).await {
            Ok(()) => {
                let _ = self.client.publish(reply, "+ACK".into()).await;
            }
            Err(error) => {
                tracing::error!(%error, "A dead letter could not be stored; the event stays in NATS.")
            }
        }
    }

    async fn publish_dead(&self, envelope: Envelope, seq: u64) -> Result<(), BacklogError> {
        let subject = format!("{}.{}", self.dead_prefix, envelope.destination);
        let id = format!("dead-{}-{seq}", envelope.destination);
        let payload = serde_json::to_vec(&envelope).expect("an envelope serializes");
        self.js
            .send_publish(
                subject,
                PublishMessage::build()
                    .payload(payload.into())
                    .message_id(id),
            )
            .await
            .map_err(|e| io("storing a dead letter")(&e))?
            .await
            .map_err(|e| io("storing a dead letter")(&e))?;
        Ok(())
    }

    async fn resolve(&self, lane: usize, resolved: Vec<Resolution>) -> Result<(), BacklogError> {
        let destination = &self.destinations[lane];
        for resolution in resolved {
            let held = self
                .in_flight
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&(lane, resolution.seq));
            let Some(held) = held else {
                continue;
            };
            if matches!(resolution.ending, Ending::Rejected | Ending::DeadLettered) {
                let body = match self.events.get_raw_message(resolution.seq).await {
                    Ok(message) => String::from_utf8_lossy(&message.payload).into_owned(),
                    Err(error) => {
                        self.in_flight
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .insert((lane, resolution.seq), held);
                        return Err(io("reading a dead-lettered event")(&error));
                    }
                };
                let envelope = Envelope {
                    destination: destination.clone(),
                    at: unix_now(),
                    ending: match resolution.ending {
                        Ending::Rejected => "rejected",
                        _ => "dead_lettered",
                    }
                    .into(),
                    reasons: resolution.reasons,
                    event: body,
                };
                if let Err(error) = self.publish_dead(envelope, resolution.seq).await {
                    self.in_flight
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert((lane, resolution.seq), held);
                    return Err(error);
                }
            }
            let _ = self.client.publish(held.reply, "+ACK".into()).await;
            self.in_flight_by_partition[held.partition as usize].fetch_sub(1, Ordering::Relaxed);
        }
        self.client
            .flush()
            .await
            .map_err(|e| io("acknowledging")(&e))
    }

    /// Tells JetStream that the events in flight are still being worked on (waiting for room,
    /// for a retry, or for a paused destination), so that it does not deliver them elsewhere.
    async fn still_working(&self) {
        let replies: Vec<Subject> = self
            .in_flight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .map(|held| held.reply.clone())
            .collect();
        for reply in replies {
            let _ = self.client.publish(reply, "+WPI".into()).await;
        }
        let _ = self.client.flush().await;
    }

    /// Stops fetching, hands back what is in flight (JetStream delivers it again at once, to
    /// the next holder) and lets go of every lease in good order.
    async fn close(&self) {
        for task in self
            .tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            task.abort();
        }
        let mut partitions = self.partitions.lock().await;
        for partition in partitions.iter() {
            partition.stopping.store(true, Ordering::Relaxed);
        }
        for partition in partitions.iter_mut() {
            for fetcher in partition.fetchers.drain(..) {
                let _ = fetcher.await;
            }
        }
        let mut held: Vec<(u64, Subject)> = self
            .in_flight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
            .map(|((_, seq), held)| (seq, held.reply))
            .collect();
        // Handed back in their order, so that they are delivered again in it.
        held.sort_by_key(|(seq, _)| *seq);
        for (_, reply) in held {
            let _ = self.client.publish(reply, "-NAK".into()).await;
        }
        let _ = self.client.flush().await;
        for (index, partition) in partitions.iter_mut().enumerate() {
            if let Some(revision) = partition.lease.take() {
                let _ = self
                    .leases
                    .update(index.to_string(), Bytes::from_static(FREE), revision)
                    .await;
            }
        }
        tracing::info!(worker = %self.id, "Let go of every partition.");
    }
}

/// Opens a key-value bucket, making it first if need be. The bucket's stream is made here, as
/// the client would make it, because the client's own way asks the server for account details
/// in a form servers before 2.10 (Debian's) do not give.
async fn open_bucket(
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

/// Sleeps for `span` unless asked to stop first; says whether it slept it all.
async fn sleep_unless(span: Duration, stopping: &AtomicBool) -> bool {
    let deadline = tokio::time::Instant::now() + span;
    while tokio::time::Instant::now() < deadline {
        if stopping.load(Ordering::Relaxed) {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    !stopping.load(Ordering::Relaxed)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        .unwrap_or_else(|| "worker".into())
}
