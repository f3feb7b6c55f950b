//! The delivery side of a node: fetching the partitions it holds, handing events to the
//! delivery engine, acknowledging verdicts, and letting go in good order.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_nats::Subject;
use async_nats::jetstream::{self, consumer::PullConsumer, kv, stream};
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::arrivals::Arrivals;
use super::batch::{self, event_seq, message_of};
use super::dead_letters::Envelope;
use super::leases::{FREE, open_bucket};
use super::resolved::RESOLVED_FOR;
use super::seen::{self, Seen};
use super::{TARGET, consumer_name, io, unix_now};
use crate::backlog::{BacklogError, Resolution, Stored};
use crate::config::NatsConfig;
use crate::delivery::Ending;

/// Messages fetched from one partition at a time.
const FETCH: usize = 256;

/// Events a worker keeps fetched per destination, beyond what the delivery engine holds.
const QUEUE: usize = 1024;

/// How long a fetch waits on an empty partition.
pub(super) const FETCH_WAIT: Duration = Duration::from_secs(2);

/// How long resolved messages wait for others to be acknowledged with.
const ACK_LINGER: Duration = Duration::from_millis(10);

/// How long a stopping worker tries to hand back its events and free its leases.
const LET_GO_WITHIN: Duration = Duration::from_secs(5);

/// How long the count of an event's deliveries left by stopped workers is kept.
const ORPHANED_FOR: Duration = Duration::from_secs(7 * 24 * 3600);

/// A message (of one or more events) a worker took and has not acknowledged.
struct Held {
    /// Where JetStream expects the acknowledgement of this delivery.
    reply: Subject,
    partition: u32,
    /// The partition's generation when it was fetched: a lost lease starts a new one, and
    /// what an older one fetched and the delivery engine has not taken any of is handed back.
    generation: u64,
    /// Per event of the message, in its order.
    events: Vec<EventState>,
    /// How many of its events are resolved.
    resolved: usize,
    /// How many resolved events the bucket of partial resolutions holds for it.
    recorded: usize,
    /// The ids of its parts and its time in milliseconds (see `seen.rs`), recorded before it is
    /// acknowledged; none for a message that names no parts.
    parts: Option<(Vec<String>, i64)>,
    /// Every event resolved and the message acknowledged, but the acknowledgement is not known
    /// to have left this process (the flush after it failed): it is sent again with each
    /// progress report until a flush succeeds, and a delivery of it again is acknowledged, not
    /// delivered.
    acked: bool,
}

/// A message taken in, as `arrive` gives it to the fetch loop.
struct Arrival {
    seq: u64,
    /// How many events it holds.
    count: usize,
    /// Its events to deliver (those not resolved before).
    stored: Vec<Stored>,
    /// How many times JetStream delivered it.
    delivered: i64,
    /// Its parts with the index of each one's first event, and its time in milliseconds.
    parts: Option<(Vec<(String, usize)>, i64)>,
}

/// The record lines of messages about to be acknowledged, by partition (see `seen.rs`).
fn records_of<'a>(messages: impl IntoIterator<Item = (u64, &'a Held)>) -> HashMap<u32, String> {
    let mut records: HashMap<u32, String> = HashMap::new();
    for (seq, held) in messages {
        if let Some((parts, at_ms)) = &held.parts {
            records
                .entry(held.partition)
                .or_default()
                .push_str(&seen::record_lines(seq, *at_ms, parts));
        }
    }
    records
}

/// Where one event of a held message is.
#[derive(Debug, Clone, Copy, Default)]
struct EventState {
    /// Taken by the delivery engine (it may be on its way to the destination).
    taken: bool,
    /// Its verdict is in (dead letter stored, if any), or an earlier holder recorded it so.
    resolved: bool,
}

impl Held {
    /// Whether the delivery engine took any of its events: then it takes the rest too, whatever
    /// becomes of the lease (the next holder waits until this worker has nothing in flight).
    fn committed(&self) -> bool {
        self.events.iter().any(|e| e.taken)
    }

    fn resolved_flags(&self) -> Vec<bool> {
        self.events.iter().map(|e| e.resolved).collect()
    }

    /// Every event resolved.
    fn complete(&self) -> bool {
        self.resolved == self.events.len()
    }

    /// Every event resolved, and the acknowledgement not sent yet.
    fn to_acknowledge(&self) -> bool {
        self.complete() && !self.acked
    }
}

/// A partition's state in this worker.
#[derive(Default)]
pub(super) struct Partition {
    /// The lease's revision while this worker holds it.
    pub(super) lease: Option<u64>,
    /// When the lease was last written (asked for, to be safe): it expires a lease after.
    pub(super) written: Option<std::time::Instant>,
    /// The last renewal failed (the next that succeeds says so).
    pub(super) renewal_failed: bool,
    /// Asked to stop fetching (being handed over, or the lease was lost).
    pub(super) stopping: Arc<AtomicBool>,
    pub(super) fetchers: Vec<JoinHandle<()>>,
}

/// The delivery side of a node: its leases, the fetchers of the partitions it holds, and the
/// events it took and has not acknowledged.
pub(super) struct Worker {
    pub(super) id: String,
    pub(super) client: async_nats::Client,
    pub(super) js: jetstream::Context,
    pub(super) events: stream::Stream,
    pub(super) config: NatsConfig,
    pub(super) destinations: Vec<String>,
    /// `[destination][partition]`.
    consumers: Vec<Vec<PullConsumer>>,
    pub(super) leases: kv::Store,
    pub(super) workers: kv::Store,
    pub(super) workers_stream: stream::Stream,
    /// How many times each message was left by a worker that stopped without a verdict
    /// (`<destination>.<stream sequence>`), for `max_deliver`.
    orphaned: kv::Store,
    /// Which events of messages handed back or left partly resolved were resolved (see
    /// `resolved.rs`).
    pub(super) resolved: kv::Store,
    /// Messages resolved whole, waiting for their acknowledgement (by destination and stream
    /// sequence), and the wake-up of the task that sends them.
    due: Mutex<Vec<(usize, u64)>>,
    acknowledging: tokio::sync::Notify,
    /// The stream of the parts of acknowledged messages, and its subject per partition.
    seen: stream::Stream,
    seen_subjects: Vec<Subject>,
    senders: Vec<mpsc::Sender<Stored>>,
    pub(super) queues: Vec<tokio::sync::Mutex<mpsc::Receiver<Stored>>>,
    /// Messages, by destination and stream sequence.
    in_flight: Mutex<HashMap<(usize, u64), Held>>,
    /// Messages in flight per partition (a partition is handed over only when it has none).
    pub(super) in_flight_by_partition: Vec<AtomicUsize>,
    /// Per partition, how many times this worker lost its lease (see `Held::generation`).
    pub(super) generations: Vec<AtomicU64>,
    /// Per partition, until when (milliseconds after `epoch`, by this worker's clock) its lease
    /// is surely still this worker's: the time of the last write asked for, plus the lease.
    /// Fetchers and the hand-on to the delivery engine read it themselves, so that nothing more
    /// is delivered from a partition whose renewal is late, even before tending notices.
    valid_until: Vec<AtomicU64>,
    epoch: std::time::Instant,
    /// Which worker last took each partition (`<partition>` → worker id), so that the next
    /// knows whom to wait for.
    pub(super) holders: kv::Store,
    pub(super) partitions: tokio::sync::Mutex<Vec<Partition>>,
    /// The partitions held after the last tending, for the metrics.
    pub(super) holding: Mutex<Vec<u32>>,
    pub(super) arrivals: Arrivals,
    /// The dead-letter stream's subject prefix.
    pub(super) dead_prefix: String,
    /// Resolutions whose dead letter could not be stored yet, by destination: stored again at
    /// each progress report (their events stay in flight until then).
    unstored: Mutex<Vec<(usize, Resolution)>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    /// Cancelled when the worker stops.
    cancel: CancellationToken,
}

impl Worker {
    pub(super) async fn start(
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
            "hardal leases: the worker delivering each partition",
            lease,
            config.replicas,
        )
        .await?;
        let workers_bucket = format!("{}_WORKERS", config.stream);
        let workers = open_bucket(
            &js,
            &workers_bucket,
            "hardal workers alive, each with the partitions it has events of in flight",
            lease,
            config.replicas,
        )
        .await?;
        let orphaned = open_bucket(
            &js,
            &format!("{}_ORPHANED", config.stream),
            "hardal: how often each event was left by a worker that died",
            ORPHANED_FOR,
            config.replicas,
        )
        .await?;
        let resolved = open_bucket(
            &js,
            &format!("{}_RESOLVED", config.stream),
            "hardal: the resolved events of batch messages handed back or left partly resolved",
            RESOLVED_FOR,
            config.replicas,
        )
        .await?;
        let holders = open_bucket(
            &js,
            &format!("{}_HOLDERS", config.stream),
            "hardal: the worker that last took each partition",
            ORPHANED_FOR,
            config.replicas,
        )
        .await?;
        let seen = seen::open_stream(
            &js,
            &format!("{}_SEEN", config.stream),
            &config.subject_prefix,
            config.replicas,
        )
        .await?;
        let seen_subjects = (0..config.partitions)
            .map(|p| Subject::from(format!("{}.seen.{p}", config.subject_prefix)))
            .collect();
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
        let lanes = destinations.len();
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
            orphaned,
            resolved,
            due: Mutex::new(Vec::new()),
            acknowledging: tokio::sync::Notify::new(),
            seen,
            seen_subjects,
            senders,
            queues,
            in_flight: Mutex::new(HashMap::new()),
            in_flight_by_partition: (0..config.partitions)
                .map(|_| AtomicUsize::new(0))
                .collect(),
            generations: (0..config.partitions).map(|_| AtomicU64::new(0)).collect(),
            valid_until: (0..config.partitions).map(|_| AtomicU64::new(0)).collect(),
            epoch: std::time::Instant::now(),
            holders,
            partitions: tokio::sync::Mutex::new(
                (0..config.partitions)
                    .map(|_| Partition::default())
                    .collect(),
            ),
            holding: Mutex::new(Vec::new()),
            arrivals: Arrivals::new(lanes),
            unstored: Mutex::new(Vec::new()),
            tasks: Mutex::new(Vec::new()),
            cancel: CancellationToken::new(),
            config,
        });
        tracing::info!(worker = %worker.id, "This node delivers from NATS partitions it holds a lease on.");
        let mut settling = worker.tend().await;
        let tending = Arc::clone(&worker);
        let progress = Arc::clone(&worker);
        let acker = Arc::clone(&worker);
        let mut tasks = worker.tasks.lock().unwrap_or_else(|e| e.into_inner());
        tasks.push(tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = acker.cancel.cancelled() => return,
                    _ = acker.acknowledging.notified() => {}
                }
                // What resolves meanwhile goes along: one record per partition and one flush
                // for many resolutions, rather than for each.
                tokio::time::sleep(ACK_LINGER).await;
                let due = std::mem::take(&mut *acker.due.lock().unwrap_or_else(|e| e.into_inner()));
                let mut by_lane: Vec<Vec<u64>> = vec![Vec::new(); acker.destinations.len()];
                for (lane, seq) in due {
                    by_lane[lane].push(seq);
                }
                for (lane, seqs) in by_lane.into_iter().enumerate() {
                    if !seqs.is_empty()
                        && let Err(error) = acker.acknowledge(lane, seqs).await
                    {
                        tracing::warn!(destination = %acker.destinations[lane], %error, "Could not acknowledge resolved messages; trying again at the next progress report.");
                    }
                }
            }
        }));
        tasks.push(tokio::spawn(async move {
            let calm = lease / 3;
            let busy = calm.min(Duration::from_secs(1));
            loop {
                tokio::select! {
                    _ = tending.cancel.cancelled() => return,
                    _ = tokio::time::sleep(if settling { busy } else { calm }) => {}
                }
                settling = tending.tend().await;
            }
        }));
        tasks.push(tokio::spawn(async move {
            let every = Duration::from_secs(progress.config.ack_wait_seconds) / 3;
            let mut tick = tokio::time::interval(every.max(Duration::from_millis(300)));
            tick.tick().await;
            loop {
                tokio::select! {
                    _ = progress.cancel.cancelled() => return,
                    _ = tick.tick() => {}
                }
                progress.store_unstored().await;
                progress.still_working().await;
            }
        }));
        drop(tasks);
        Ok(worker)
    }

    /// The partitions this worker holds.
    pub(super) fn held(&self) -> Vec<u32> {
        self.holding
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl Worker {
    /// Records that the lease on `partition` was written (asked for at `asked`).
    pub(super) fn lease_written(&self, partition: usize, asked: std::time::Instant) {
        let until = asked.saturating_duration_since(self.epoch)
            + Duration::from_secs(self.config.lease_seconds);
        self.valid_until[partition].store(until.as_millis() as u64, Ordering::Relaxed);
    }

    /// Whether the lease on `partition` is surely still this worker's by its own clock.
    fn lease_valid(&self, partition: u32) -> bool {
        (self.epoch.elapsed().as_millis() as u64)
            < self.valid_until[partition as usize].load(Ordering::Relaxed)
    }

    /// Waits while the lease on `partition` has run out by this worker's clock (its renewal is
    /// late: NATS is slow or gone); says whether it may go on (false: stopping).
    async fn until_lease_valid(&self, partition: u32, stopping: &AtomicBool) -> bool {
        while !self.lease_valid(partition) {
            if self.cancel.is_cancelled()
                || !sleep_unless(Duration::from_millis(250), stopping).await
            {
                return false;
            }
        }
        !self.cancel.is_cancelled()
    }

    /// Fetches one destination's events from one partition while this worker holds it.
    pub(super) async fn fetch(
        self: Arc<Self>,
        lane: usize,
        partition: u32,
        handed_over: bool,
        previous: Option<String>,
        stopping: Arc<AtomicBool>,
    ) {
        if !handed_over
            && !self
                .wait_for_leftovers(lane, partition, previous.as_deref(), &stopping)
                .await
        {
            return;
        }
        let generation = self.generations[partition as usize].load(Ordering::Relaxed);
        let consumer = &self.consumers[lane][partition as usize];
        let sender = &self.senders[lane];
        // Events delivered again (a dead worker's), gathered until the first event delivered
        // for the first time: JetStream sends them first but not in order among themselves.
        let mut again: Vec<Arrival> = Vec::new();
        // The parts of this partition seen within the duplicate window.
        let mut seen = Seen::default();
        // Until the first event delivered for the first time, what comes again on a partition
        // taken without a hand-over was left by a worker that stopped without a verdict.
        let mut orphans_possible = !handed_over;
        // The last event queued for the delivery engine.
        let mut last_queued: Option<u64> = None;
        // Events per message in the last fetch (until one is known, a fetch asks for one).
        let mut per_message = FETCH;
        loop {
            if stopping.load(Ordering::Relaxed) && again.is_empty() {
                return;
            }
            if !self.until_lease_valid(partition, &stopping).await {
                return;
            }
            // The queue's room is in events, a fetch is in messages: what the last fetch held
            // per message tells how many fit.
            let room = if again.is_empty() {
                match sender.capacity().min(FETCH) {
                    0 => 0,
                    events => (events / per_message).max(1),
                }
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
                    tokio::select! {
                        _ = self.cancel.cancelled() => return,
                        _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    }
                }
            };
            // A batch is read to its end, even when asked to stop, and every event in it is in
            // flight (kept alive by progress acknowledgements) before any waits for room in
            // the queue: what JetStream sent is this worker's to deliver or hand back. Events
            // go on as they come, as far as the queue has room, once nothing delivered again
            // can still come before them: a live partition's events do not wait for the end of
            // a fetch that waits for more, nor for its next message when the queue was full
            // as they came: they go on as soon as it has room.
            let (mut received, mut events, mut fresh_seen, mut closed) = (0, 0, false, false);
            let mut fresh: VecDeque<Stored> = VecDeque::new();
            loop {
                let waiting =
                    !closed && !fresh.is_empty() && again.is_empty() && self.lease_valid(partition);
                let next = match next_or_room(&mut batch, sender, waiting).await {
                    NextOrRoom::Next(next) => next,
                    NextOrRoom::Room(Ok(permit)) => {
                        if let Some(stored) = fresh.pop_front() {
                            last_queued = Some(stored.seq);
                            permit.send(stored);
                            self.arrivals.arrived(lane);
                        }
                        closed = !self.queue_what_fits(lane, sender, &mut fresh, &mut last_queued);
                        continue;
                    }
                    NextOrRoom::Room(Err(_)) => {
                        closed = true;
                        continue;
                    }
                };
                let Some(message) = next else { break };
                match message {
                    Ok(message) => {
                        received += 1;
                        match self
                            .arrive(lane, partition, generation, message, orphans_possible)
                            .await
                        {
                            Some(arrival) if arrival.delivered > 1 && !fresh_seen => {
                                events += arrival.stored.len();
                                again.push(arrival);
                            }
                            Some(arrival) => {
                                events += arrival.stored.len();
                                orphans_possible = false;
                                fresh_seen = true;
                                // Everything delivered again came before this: it is judged
                                // first (in stream order) and goes first.
                                let mut messages = std::mem::take(&mut again);
                                messages.push(arrival);
                                let stored = self
                                    .skip_duplicates(lane, partition, &mut seen, messages)
                                    .await;
                                fresh.extend(stored);
                            }
                            None => {}
                        }
                        if !closed
                            && again.is_empty()
                            && self.lease_valid(partition)
                            && !self.queue_what_fits(lane, sender, &mut fresh, &mut last_queued)
                        {
                            closed = true;
                        }
                    }
                    Err(error) => {
                        tracing::warn!(destination = %self.destinations[lane], partition, %error, "A fetch from NATS failed; trying again.");
                        break;
                    }
                }
            }
            if closed || self.cancel.is_cancelled() {
                // Stopping: what is in flight is handed back by `close`.
                return;
            }
            if let Some(average) = events.checked_div(received) {
                per_message = average.max(1);
            }
            if !fresh_seen && received == room && !again.is_empty() {
                // Perhaps more delivered again to come: they go first, in order.
                continue;
            }
            // Judged in stream order, which JetStream does not keep among what comes again.
            let again = self
                .skip_duplicates(lane, partition, &mut seen, std::mem::take(&mut again))
                .await;
            let mut ready = again.into_iter().chain(fresh).peekable();
            while let Some(stored) = ready.next() {
                if !self.until_lease_valid(partition, &stopping).await {
                    // The rest of a message of which some events are queued goes on too: the
                    // engine may take those, and a message is resolved only whole. The other
                    // messages are handed back once the lease is known lost.
                    let open = last_queued.map(|seq| message_of(seq).0);
                    let rest = std::iter::once(stored)
                        .chain(ready)
                        .take_while(|s| Some(message_of(s.seq).0) == open);
                    for stored in rest {
                        if sender.send(stored).await.is_err() {
                            return;
                        }
                        self.arrivals.arrived(lane);
                    }
                    return;
                }
                last_queued = Some(stored.seq);
                if sender.send(stored).await.is_err() {
                    return;
                }
                self.arrivals.arrived(lane);
            }
        }
    }

    /// Queues events, in order, as far as the queue has room now (noting the last one queued);
    /// false once the delivery side is gone.
    fn queue_what_fits(
        &self,
        lane: usize,
        sender: &mpsc::Sender<Stored>,
        ready: &mut VecDeque<Stored>,
        last_queued: &mut Option<u64>,
    ) -> bool {
        while let Some(stored) = ready.pop_front() {
            let seq = stored.seq;
            match sender.try_send(stored) {
                Ok(()) => {
                    *last_queued = Some(seq);
                    self.arrivals.arrived(lane);
                }
                Err(mpsc::error::TrySendError::Full(stored)) => {
                    ready.push_front(stored);
                    break;
                }
                Err(mpsc::error::TrySendError::Closed(_)) => return false,
            }
        }
        true
    }

    /// Takes one fetched message in: in flight from now on, and its events returned, with how
    /// many times JetStream delivered the message, to be queued for the delivery engine (none
    /// when it is not this destination's, is in flight here already, or goes to the dead
    /// letters). While `orphans_possible` (a partition taken over without a hand-over, before
    /// its first fresh message), a message delivered again was left by a worker that stopped
    /// without a verdict: that counts toward `max_deliver`; one handed back in good order does
    /// not.
    async fn arrive(
        &self,
        lane: usize,
        partition: u32,
        generation: u64,
        message: jetstream::Message,
        orphans_possible: bool,
    ) -> Option<Arrival> {
        let reply = message.reply.clone()?;
        let info = message.info().ok()?;
        let (seq, delivered) = (info.stream_sequence, info.delivered);
        let at_ms = (info.published.unix_timestamp_nanos() / 1_000_000) as i64;
        let destination = &self.destinations[lane];
        if let Some(target) = message.headers.as_ref().and_then(|h| h.get(TARGET))
            && target.as_str() != destination.as_str()
        {
            // A replayed dead letter of another destination.
            let _ = self.client.publish(reply, "+ACK".into()).await;
            return None;
        }
        let unreadable = |reason: String| {
            let text = String::from_utf8_lossy(&message.payload).into_owned();
            (vec![(0, text)], reason)
        };
        let bodies = match batch::unpack(message.headers.as_ref(), &message.payload) {
            Ok(packed) => packed
                .into_iter()
                .map(|body| String::from_utf8(body.to_vec()))
                .collect::<Result<Vec<String>, _>>()
                .map_err(|_| {
                    unreadable(
                        "an event in NATS is not valid UTF-8 (it was not published by hardal)"
                            .into(),
                    )
                }),
            Err(error) => Err(unreadable(format!(
                "the message in NATS cannot be read: {error}"
            ))),
        };
        let bodies = match bodies {
            Ok(bodies) => bodies,
            Err((texts, reason)) => {
                self.dead_letter_now(lane, reply, seq, texts, reason).await;
                return None;
            }
        };
        if let Some(held) = self
            .in_flight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(&(lane, seq))
        {
            // Delivered again while this worker still holds it (its progress or its
            // acknowledgement went unheard): acknowledge the newest delivery, deliver it once.
            held.reply = reply;
            return None;
        }
        // Delivered again: an earlier holder may have resolved some of its events.
        let mut resolved = vec![false; bodies.len()];
        if delivered > 1 {
            self.resolved_before(lane, seq, &mut resolved).await;
        }
        if orphans_possible && delivered > 1 && self.config.max_deliver > 0 {
            let orphaned = self.count_orphaned(lane, seq, delivered).await;
            if orphaned + 1 > self.config.max_deliver {
                let reason = format!(
                    "NATS delivered this event {} times, more than max_deliver ({}); each time, the worker holding it stopped before the destination's verdict",
                    orphaned + 1,
                    self.config.max_deliver
                );
                let texts = bodies
                    .into_iter()
                    .enumerate()
                    .filter(|(index, _)| !resolved[*index])
                    .collect();
                self.dead_letter_now(lane, reply, seq, texts, reason).await;
                return None;
            }
        }
        let count = bodies.len();
        let parts = batch::parts_of(message.headers.as_ref(), count);
        let mut held = Held {
            reply,
            partition,
            generation,
            parts: parts
                .as_ref()
                .map(|parts| (parts.iter().map(|(id, _)| id.clone()).collect(), at_ms)),
            events: resolved
                .iter()
                .map(|resolved| EventState {
                    taken: false,
                    resolved: *resolved,
                })
                .collect(),
            resolved: resolved.iter().filter(|r| **r).count(),
            recorded: 0,
            acked: false,
        };
        held.recorded = held.resolved;
        let stored = pass_on(seq, bodies, &mut held);
        let done = held.complete();
        self.in_flight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert((lane, seq), held);
        self.in_flight_by_partition[partition as usize].fetch_add(1, Ordering::Relaxed);
        if done {
            // Nothing left to deliver.
            let _ = self.acknowledge(lane, vec![seq]).await;
            return None;
        }
        Some(Arrival {
            seq,
            count,
            stored,
            delivered,
            parts: parts.map(|parts| (parts, at_ms)),
        })
    }

    /// Resolves unsent the events of parts the stream held earlier within the duplicate window
    /// (see `seen.rs`), judging `messages` in stream order, and returns the other events. The
    /// records of earlier holders are read first, once per take of the partition.
    async fn skip_duplicates(
        &self,
        lane: usize,
        partition: u32,
        seen: &mut Seen,
        mut messages: Vec<Arrival>,
    ) -> Vec<Stored> {
        let window = Duration::from_secs(self.config.duplicate_window_seconds);
        if !seen.loaded
            && let Some(earliest) = messages
                .iter()
                .filter_map(|m| m.parts.as_ref().map(|(_, at_ms)| *at_ms))
                .min()
        {
            let since =
                UNIX_EPOCH + Duration::from_millis(earliest.max(0) as u64).saturating_sub(window);
            let subject = self.seen_subjects[partition as usize].as_str();
            if let Err(error) = seen::load(&self.seen, subject, since, seen).await {
                tracing::warn!(destination = %self.destinations[lane], partition, %error, "Could not read which parts were delivered before; a retry among these events may be delivered twice.");
            }
        }
        messages.sort_unstable_by_key(|m| m.seq);
        let mut duplicates = Vec::new();
        let mut kept = Vec::new();
        for message in messages {
            let mut skipped = vec![false; message.count];
            if let Some((parts, at_ms)) = &message.parts {
                let ids = parts.iter().map(|(id, _)| id.as_str());
                let verdicts = seen.judge(message.seq, *at_ms, ids, window);
                for (index, (_, start)) in parts.iter().enumerate() {
                    let end = parts
                        .get(index + 1)
                        .map_or(message.count, |(_, next)| *next);
                    if verdicts[index] {
                        skipped[*start..end].fill(true);
                    }
                }
            }
            for stored in message.stored {
                let (_, index) = message_of(stored.seq);
                if skipped.get(index).copied().unwrap_or(false) {
                    duplicates.push(Resolution {
                        seq: stored.seq,
                        ending: Ending::Skipped,
                        reasons: Vec::new(),
                    });
                } else {
                    kept.push(stored);
                }
            }
        }
        if !duplicates.is_empty() {
            tracing::debug!(destination = %self.destinations[lane], partition, events = duplicates.len(), "Events of a retry stored twice are resolved unsent.");
            if let Err(error) = self.resolve(lane, duplicates).await {
                tracing::warn!(destination = %self.destinations[lane], partition, %error, "Could not acknowledge the duplicates of a retry; trying again shortly.");
            }
        }
        kept
    }

    /// Hands messages resolved whole (by destination and stream sequence) to the task that
    /// acknowledges them together.
    fn queue_acknowledgements(&self, messages: impl IntoIterator<Item = (usize, u64)>) {
        let mut due = self.due.lock().unwrap_or_else(|e| e.into_inner());
        let before = due.len();
        due.extend(messages);
        if due.len() > before {
            self.acknowledging.notify_one();
        }
    }

    /// Appends the parts of messages about to be acknowledged to their partitions' records
    /// (see `seen.rs`).
    async fn write_records(&self, records: HashMap<u32, String>) -> Result<(), BacklogError> {
        let failed = io("recording the parts of acknowledged messages");
        let written = records.into_iter().map(|(partition, lines)| {
            let subject = self.seen_subjects[partition as usize].clone();
            async move { self.js.publish(subject, Bytes::from(lines)).await?.await }
        });
        for result in futures_util::future::join_all(written).await {
            result.map_err(|e| failed(&e))?;
        }
        Ok(())
    }

    /// Acknowledges messages whose events are all resolved, after appending their parts to the
    /// records of the next holders (see `seen.rs`). When the records cannot be written, the
    /// messages stay in flight unacknowledged, and the next progress report tries again.
    async fn acknowledge(&self, lane: usize, seqs: Vec<u64>) -> Result<(), BacklogError> {
        let (records, replies) = {
            let in_flight = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
            let complete: Vec<(u64, &Held)> = seqs
                .into_iter()
                .filter_map(|seq| Some((seq, in_flight.get(&(lane, seq))?)))
                .filter(|(_, held)| held.to_acknowledge())
                .collect();
            let replies: Vec<u64> = complete.iter().map(|(seq, _)| *seq).collect();
            (records_of(complete), replies)
        };
        self.write_records(records).await?;
        let mut acked = Vec::new();
        for seq in replies {
            let reply = {
                let mut in_flight = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
                in_flight.get_mut(&(lane, seq)).and_then(|held| {
                    (!held.acked).then(|| {
                        held.acked = true;
                        held.reply.clone()
                    })
                })
            };
            if let Some(reply) = reply {
                let _ = self.client.publish(reply, "+ACK".into()).await;
                acked.push((lane, seq));
            }
        }
        if acked.is_empty() {
            return Ok(());
        }
        self.client
            .flush()
            .await
            .map_err(|e| io("acknowledging")(&e))?;
        self.forget_acked(&acked);
        Ok(())
    }

    /// Counts one more time a message was left by a worker that stopped without a verdict, and
    /// returns how many times that happened. JetStream's own count also counts events handed
    /// back in good order, so it stands in only when the count cannot be read or written.
    async fn count_orphaned(&self, lane: usize, seq: u64, delivered: i64) -> i64 {
        let key = format!("{}.{seq}", self.destinations[lane]);
        let counted = async {
            let before = match self.orphaned.get(&key).await? {
                Some(value) => std::str::from_utf8(&value)
                    .ok()
                    .and_then(|v| v.parse::<i64>().ok())
                    .unwrap_or(0),
                None => 0,
            };
            let now = before + 1;
            self.orphaned
                .put(&key, Bytes::from(now.to_string()))
                .await
                .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)?;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(now)
        }
        .await;
        counted.unwrap_or_else(|error| {
            tracing::warn!(destination = %self.destinations[lane], seq, %error, "Could not count the deliveries of an event a stopped worker left; JetStream's count stands in.");
            delivered - 1
        })
    }

    /// Records the verdicts of events in flight: dead letters stored, then each event marked
    /// resolved in its message, and a message whose events are all resolved acknowledged. The
    /// whole batch is handled whatever fails: an event whose dead letter could not be stored
    /// stays unresolved (its message kept alive like the others) and its dead letter is stored
    /// again at the next progress report; the error says how many. A message leaves
    /// `in_flight` only once its acknowledgement was flushed to the server: until then it
    /// counts as in flight for its partition (which is not handed over), and a delivery of it
    /// again is acknowledged instead of delivered.
    pub(super) async fn resolve(
        &self,
        lane: usize,
        resolved: Vec<Resolution>,
    ) -> Result<(), BacklogError> {
        let mut unstored = Vec::new();
        let mut first_error = None;
        let mut complete_seqs = Vec::new();
        for resolution in resolved {
            let (seq, index) = message_of(resolution.seq);
            let pending = self
                .in_flight
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(&(lane, seq))
                .is_some_and(|held| {
                    !held.acked && held.events.get(index).is_some_and(|e| !e.resolved)
                });
            if !pending {
                continue;
            }
            if matches!(resolution.ending, Ending::Rejected | Ending::DeadLettered)
                && let Err(error) = self.store_dead_letter(lane, &resolution).await
            {
                first_error.get_or_insert(error);
                unstored.push((lane, resolution));
                continue;
            }
            let complete = {
                let mut in_flight = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
                in_flight.get_mut(&(lane, seq)).is_some_and(|held| {
                    if let Some(event) = held.events.get_mut(index)
                        && !event.resolved
                    {
                        event.resolved = true;
                        held.resolved += 1;
                    }
                    held.to_acknowledge()
                })
            };
            if complete {
                complete_seqs.push(seq);
            }
        }
        self.queue_acknowledgements(complete_seqs.into_iter().map(|seq| (lane, seq)));
        if let Some(error) = first_error {
            let count = unstored.len();
            self.unstored
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend(unstored);
            return Err(BacklogError::Io(format!(
                "{count} dead letter(s) could not be stored; their events stay in flight and are stored again shortly: {error}"
            )));
        }
        Ok(())
    }

    /// Takes messages whose acknowledgement reached the server out of `in_flight`.
    fn forget_acked(&self, acked: &[(usize, u64)]) {
        let mut in_flight = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        for key in acked {
            if let Some(held) = in_flight.remove(key) {
                self.in_flight_by_partition[held.partition as usize]
                    .fetch_sub(1, Ordering::Relaxed);
            }
        }
    }

    /// Stores the dead letter of a refused event, with the event's text as it was accepted.
    async fn store_dead_letter(
        &self,
        lane: usize,
        resolution: &Resolution,
    ) -> Result<(), BacklogError> {
        let (seq, index) = message_of(resolution.seq);
        let message = self
            .events
            .get_raw_message(seq)
            .await
            .map_err(|e| io("reading a dead-lettered event")(&e))?;
        let packed =
            batch::unpack(Some(&message.headers), &message.payload).map_err(BacklogError::Io)?;
        let body = packed
            .get(index)
            .cloned()
            .ok_or_else(|| BacklogError::Io(format!("message {seq} has no event {index}")))?;
        let envelope = Envelope {
            destination: self.destinations[lane].clone(),
            at: unix_now(),
            ending: match resolution.ending {
                Ending::Rejected => "rejected",
                _ => "dead_lettered",
            }
            .into(),
            reasons: resolution.reasons.clone(),
            event: String::from_utf8_lossy(&body).into_owned(),
        };
        self.publish_dead(envelope, resolution.seq).await
    }

    /// Stores again the dead letters that could not be stored before.
    async fn store_unstored(&self) {
        let unstored =
            std::mem::take(&mut *self.unstored.lock().unwrap_or_else(|e| e.into_inner()));
        let mut by_lane: Vec<Vec<Resolution>> = vec![Vec::new(); self.destinations.len()];
        for (lane, resolution) in unstored {
            by_lane[lane].push(resolution);
        }
        for (lane, resolutions) in by_lane.into_iter().enumerate() {
            if resolutions.is_empty() {
                continue;
            }
            if let Err(error) = self.resolve(lane, resolutions).await {
                tracing::warn!(destination = %self.destinations[lane], %error, "Dead letters still cannot be stored; trying again shortly.");
            }
        }
    }

    /// Tells JetStream that the messages in flight are still being worked on (waiting for
    /// room, for a retry, or for a paused destination), so that it does not deliver them
    /// elsewhere; records the resolved events of partly resolved messages that resolved more
    /// since the last report (a worker that dies leaves only what resolved after it to be sent
    /// again); hands back those of a lost lease the delivery engine has not taken any of.
    async fn still_working(&self) {
        let (replies, back, partly) = {
            let mut in_flight = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
            let back = self.stale_untaken(&mut in_flight, None);
            let replies: Vec<((usize, u64), Subject, bool)> = in_flight
                .iter()
                .map(|(key, held)| (*key, held.reply.clone(), held.acked))
                .collect();
            let partly: Vec<((usize, u64), Vec<bool>, usize)> = in_flight
                .iter()
                .filter(|(_, held)| !held.acked && held.resolved > held.recorded)
                .map(|(key, held)| (*key, held.resolved_flags(), held.resolved))
                .collect();
            (replies, back, partly)
        };
        self.hand_back(back).await;
        // Messages resolved whole whose parts could not be recorded yet.
        let complete: Vec<(usize, u64)> = self
            .in_flight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|(_, held)| held.to_acknowledge())
            .map(|(key, _)| *key)
            .collect();
        self.queue_acknowledgements(complete);
        for ((lane, seq), flags, count) in partly {
            match self.record_resolved(lane, seq, &flags).await {
                Ok(()) => {
                    if let Some(held) = self
                        .in_flight
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .get_mut(&(lane, seq))
                    {
                        held.recorded = held.recorded.max(count);
                    }
                }
                Err(error) => {
                    tracing::warn!(destination = %self.destinations[lane], seq, %error, "Could not record the resolved events of a message; trying again at the next report.");
                }
            }
        }
        let mut acked = Vec::new();
        for (key, reply, is_acked) in replies {
            // An acknowledgement not known to have left is sent again (acknowledging twice is
            // harmless); the rest are still being worked on.
            let word = if is_acked { "+ACK" } else { "+WPI" };
            let _ = self.client.publish(reply, word.into()).await;
            if is_acked {
                acked.push(key);
            }
        }
        if self.client.flush().await.is_ok() {
            self.forget_acked(&acked);
        }
    }

    /// Takes out of `in_flight` the messages of lost leases (of `partition`, or of any) that
    /// the delivery engine has not taken any event of, in stream order.
    fn stale_untaken(
        &self,
        in_flight: &mut HashMap<(usize, u64), Held>,
        partition: Option<u32>,
    ) -> Vec<(u64, Held)> {
        let stale: Vec<(usize, u64)> = in_flight
            .iter()
            .filter(|(_, held)| {
                !held.committed()
                    && partition.is_none_or(|p| p == held.partition)
                    && held.generation
                        != self.generations[held.partition as usize].load(Ordering::Relaxed)
            })
            .map(|(key, _)| *key)
            .collect();
        let mut back: Vec<(u64, Held)> = stale
            .into_iter()
            .filter_map(|key| Some((key.1, in_flight.remove(&key)?)))
            .collect();
        back.sort_by_key(|(seq, _)| *seq);
        back
    }

    /// Hands messages back to JetStream (`-NAK`: delivered again at once, to the partition's
    /// holder); none of their events was taken, so none is resolved.
    async fn hand_back(&self, back: Vec<(u64, Held)>) {
        if back.is_empty() {
            return;
        }
        for (_, held) in back {
            let _ = self.client.publish(held.reply, "-NAK".into()).await;
            self.in_flight_by_partition[held.partition as usize].fetch_sub(1, Ordering::Relaxed);
        }
        let _ = self.client.flush().await;
    }

    /// Lets go of a partition whose lease was lost: stops fetching from it, and hands back
    /// what it fetched that the delivery engine has not taken (the next holder waits until
    /// what the engine took is resolved).
    pub(super) async fn lost(&self, index: usize, partition: &mut Partition) {
        partition.lease = None;
        partition.written = None;
        partition.stopping.store(true, Ordering::Relaxed);
        self.generations[index].fetch_add(1, Ordering::Relaxed);
        let back = {
            let mut in_flight = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
            self.stale_untaken(&mut in_flight, Some(index as u32))
        };
        self.hand_back(back).await;
    }

    /// Whether the delivery engine may take a queued event: once, and not when the lease of its
    /// partition was lost before the engine took any event of its message (the message is
    /// handed back then); the rest of a message the engine began goes on to it.
    pub(super) async fn hand_on(&self, lane: usize, seq: u64) -> bool {
        let (message, index) = message_of(seq);
        loop {
            let back = {
                let mut in_flight = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
                let Some(held) = in_flight.get_mut(&(lane, message)) else {
                    // Handed back already.
                    return false;
                };
                let Some(event) = held.events.get(index).copied() else {
                    return false;
                };
                if event.taken || event.resolved {
                    // A second copy: fetched again after a lost lease came back to this worker.
                    return false;
                }
                let partition = held.partition;
                let current =
                    held.generation == self.generations[partition as usize].load(Ordering::Relaxed);
                if (current && self.lease_valid(partition)) || (!current && held.committed()) {
                    held.events[index].taken = true;
                    return true;
                }
                if current {
                    None
                } else {
                    in_flight
                        .remove(&(lane, message))
                        .map(|held| (message, held))
                }
            };
            match back {
                Some(back) => {
                    self.hand_back(vec![back]).await;
                    return false;
                }
                // The lease ran out by this worker's clock and is not known lost: wait for the
                // renewal (then it goes on) or the loss (then it is handed back).
                None => {
                    tokio::select! {
                        _ = self.cancel.cancelled() => return false,
                        _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                    }
                }
            }
        }
    }

    /// Stops fetching, hands back what is in flight (JetStream delivers it again at once, to
    /// the next holder) and lets go of every lease in good order.
    pub(super) async fn close(&self) {
        // One cancellation reaches the lease loop, the progress reports and every fetcher;
        // closing the queues frees fetchers that wait for room (the engine takes no more).
        self.cancel.cancel();
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
        for queue in &self.queues {
            queue.lock().await.close();
        }
        // A fetcher reads its batch to its end (so that all JetStream sent it is in flight,
        // to be handed back) within a long poll; one that is not done by then is stopped, and
        // its partition's lease is left to expire, so that the next holder waits for what it
        // may have left.
        let deadline = tokio::time::Instant::now() + FETCH_WAIT + Duration::from_secs(3);
        let mut unfinished = vec![false; partitions.len()];
        for (index, partition) in partitions.iter_mut().enumerate() {
            for mut fetcher in partition.fetchers.drain(..) {
                if tokio::time::timeout_at(deadline, &mut fetcher)
                    .await
                    .is_err()
                {
                    fetcher.abort();
                    unfinished[index] = true;
                }
            }
        }
        let mut held: Vec<(usize, u64, Held)> = self
            .in_flight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
            .map(|((lane, seq), held)| (lane, seq, held))
            .collect();
        // Dead letters not stored yet go back with their events: the next holder judges them
        // again.
        self.unstored
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        // Handed back in their order, so that they are delivered again in it; bounded, since
        // NATS may be what is gone (then the leases expire by themselves).
        held.sort_by_key(|(_, seq, _)| *seq);
        let letting_go = async {
            // What resolved of a message handed back is recorded first, so that the next
            // holder does not send it again.
            futures_util::future::join_all(
                held.iter()
                    .filter(|(_, _, h)| h.resolved > h.recorded && h.resolved < h.events.len())
                    .map(|(lane, seq, h)| {
                        let (lane, seq, flags) = (*lane, *seq, h.resolved_flags());
                        async move { self.record_resolved(lane, seq, &flags).await }
                    })
                    .collect::<Vec<_>>(),
            )
            .await;
            // The parts of messages resolved whole and not acknowledged yet are recorded
            // first, as for any acknowledgement; a record that fails (NATS is going) leaves a
            // retry of them unrecognised by the next holder: delivered twice, not lost.
            let complete = held
                .iter()
                .filter(|(_, _, h)| h.to_acknowledge())
                .map(|(_, seq, h)| (*seq, h));
            let _ = self.write_records(records_of(complete)).await;
            for (_, _, held) in held {
                // A resolved message's acknowledgement goes again; the rest are handed back.
                let done = held.acked || held.complete();
                let word = if done { "+ACK" } else { "-NAK" };
                let _ = self.client.publish(held.reply, word.into()).await;
            }
            let _ = self.client.flush().await;
            for (index, partition) in partitions.iter_mut().enumerate() {
                if let Some(revision) = partition.lease.take()
                    && !unfinished[index]
                {
                    let _ = self
                        .leases
                        .update(index.to_string(), Bytes::from_static(FREE), revision)
                        .await;
                }
            }
            // No longer counted among the workers alive: the others' share grows at their next
            // tending, and they take the freed partitions at once.
            let announcement = format!("$KV.{}_WORKERS.{}", self.config.stream, self.id);
            let _ = self.workers_stream.purge().filter(announcement).await;
        };
        if tokio::time::timeout(LET_GO_WITHIN, letting_go)
            .await
            .is_err()
        {
            tracing::warn!(worker = %self.id, "Could not let go of every partition in time; the rest expire by themselves.");
            return;
        }
        tracing::info!(worker = %self.id, "Let go of every partition.");
    }
}

/// Sleeps for `span` unless asked to stop first; says whether it slept it all.
pub(super) async fn sleep_unless(span: Duration, stopping: &AtomicBool) -> bool {
    let deadline = tokio::time::Instant::now() + span;
    while tokio::time::Instant::now() < deadline {
        if stopping.load(Ordering::Relaxed) {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    !stopping.load(Ordering::Relaxed)
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        .unwrap_or_else(|| "worker".into())
}

/// What a fetch waits for: its next message, or, while events it brought wait for room in the
/// queue (`waiting`), that room, whichever comes first.
enum NextOrRoom<'a, M> {
    Next(Option<M>),
    Room(Result<mpsc::Permit<'a, Stored>, mpsc::error::SendError<()>>),
}

async fn next_or_room<'a, S>(
    batch: &mut S,
    sender: &'a mpsc::Sender<Stored>,
    waiting: bool,
) -> NextOrRoom<'a, S::Item>
where
    S: futures_util::Stream + Unpin,
{
    if !waiting {
        return NextOrRoom::Next(batch.next().await);
    }
    // Both are cancel-safe: a message not taken stays in the fetch, room not taken stays free.
    tokio::select! {
        next = batch.next() => NextOrRoom::Next(next),
        room = sender.reserve() => NextOrRoom::Room(room),
    }
}

/// Takes the events of a message out on their way to the delivery engine, each addressed by
/// its `seq`, leaving out those already resolved. Every event the engine delivers from NATS
/// passes here: the one place to leave an event out (marked resolved in `held`) before it is
/// delivered.
fn pass_on(seq: u64, bodies: Vec<String>, held: &mut Held) -> Vec<Stored> {
    bodies
        .into_iter()
        .enumerate()
        .filter(|(index, _)| !held.events[*index].resolved)
        .map(|(index, body)| Stored {
            seq: event_seq(seq, index),
            body,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(seq: u64) -> Stored {
        Stored {
            seq,
            body: format!("{{\"id\":\"{seq}\"}}"),
        }
    }

    #[tokio::test]
    async fn events_waiting_for_room_go_on_when_it_comes_although_the_fetch_brings_nothing_more() {
        // A full queue, and a fetch that waits for more messages (none come).
        let (sender, mut queue) = mpsc::channel(1);
        sender.try_send(stored(1)).unwrap();
        let mut fetch = futures_util::stream::pending::<()>();
        let waiter = tokio::spawn(async move {
            match next_or_room(&mut fetch, &sender, true).await {
                NextOrRoom::Room(Ok(permit)) => permit.send(stored(2)),
                _ => panic!("room was expected"),
            }
        });
        assert_eq!(queue.recv().await.map(|s| s.seq), Some(1));
        // The engine took what was queued: the waiting event follows at once, not at the end
        // of the fetch.
        let next = tokio::time::timeout(Duration::from_secs(10), queue.recv()).await;
        assert_eq!(next.unwrap().map(|s| s.seq), Some(2));
        waiter.await.unwrap();
    }

    #[tokio::test]
    async fn without_events_waiting_a_fetch_waits_for_its_next_message_only() {
        let (sender, _queue) = mpsc::channel::<Stored>(1);
        let mut fetch = futures_util::stream::iter([7]);
        assert!(matches!(
            next_or_room(&mut fetch, &sender, false).await,
            NextOrRoom::Next(Some(7))
        ));
    }
}
