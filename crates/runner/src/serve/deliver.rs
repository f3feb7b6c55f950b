//! Delivery from the backlog: per destination a feeder takes the next events in acceptance order
//! (as many as the destination may hold in memory, `max_pending_records`), maps them off the async
//! threads, and hands them to the delivery engine in order; what resolves goes back to the
//! backlog in groups. A destination paused by 401/403 is probed with one request after a backoff
//! that doubles up to `probe_interval_seconds`, and flows again by itself once a probe succeeds;
//! the others never wait for it, and nothing of it is dropped.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use hardal_core::{Consent, Destination, MapContext, Mapped, MappingError, Notes, Outcome};
use tokio::sync::{Semaphore, mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

use super::metrics;
use super::tap::Tap;
use crate::backlog::{Backlog, BacklogError, Resolution, Stored};
use crate::config::DeliveryConfig;
use crate::delivery::{
    Delivery, Ending, LaneState, NOTHING_TO_SEND, Resolved, SUPPRESSED, panic_message,
};
use crate::mapping::{map_event, no_consent};
use crate::privacy::suppression::Suppression;
use crate::redact::Redactor;
use crate::transport::Transport;

/// Events a feeder takes at a time.
const TAKE: usize = 2048;

/// The least time the resolutions of a stop get to be recorded, even when the drain is spent.
const SAVE_GRACE: Duration = Duration::from_secs(2);

/// The first wait before probing a paused destination.
const FIRST_PROBE: Duration = Duration::from_secs(5);

/// How a destination is doing, for `/readyz` and the metrics.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DestinationStatus {
    pub id: String,
    pub state: &'static str,
    /// Why it is paused, when it is.
    pub paused: Option<String>,
}

/// What the delivery loop shares with the HTTP side.
pub type Statuses = Arc<Mutex<Vec<DestinationStatus>>>;

/// An event that arrived for a paused destination, waiting to be handed to the engine.
struct Parked {
    seq: u64,
    raw: Arc<str>,
    records: Vec<hardal_core::Record>,
    notes: Vec<hardal_core::Note>,
}

/// One mapped event of a feeder's batch.
struct MappedEvent {
    seq: u64,
    raw: Arc<str>,
    mapped: Result<Mapped, MappingError>,
    /// Its user is erased: it is skipped, not mapped.
    suppressed: bool,
}

struct MappedBatch {
    lane: usize,
    events: Vec<MappedEvent>,
    /// The suppression list's generation the events were checked against.
    generation: u64,
}

/// Everything the delivery loop needs.
pub struct Setup {
    pub backlog: Arc<dyn Backlog>,
    pub destinations: Arc<Vec<Box<dyn Destination>>>,
    /// Per destination: its consent settings, checked before an event is mapped for it.
    pub consent: Vec<Consent>,
    pub settings: Vec<DeliveryConfig>,
    pub redactor: Redactor,
    pub probe_max: Duration,
    pub drain: Duration,
    pub statuses: Statuses,
    /// Set to the reason when delivery cannot go on (the backlog can never record a resolution
    /// again, a feeder died, the HTTP client did not start): the service stops on it and exits
    /// non-zero, so that a supervisor starts it again, rather than take events it does not
    /// deliver.
    pub failed: watch::Sender<Option<String>>,
    pub tap: Arc<Tap>,
    /// Erased users, whose events are dropped before dispatch.
    pub suppression: Arc<Suppression>,
    /// Erasure jobs asking to drop what the engine holds of erased users; each is answered once
    /// the requests in flight at that moment have finished.
    pub barriers: mpsc::UnboundedReceiver<oneshot::Sender<()>>,
}

/// Delivers until `stop` is cancelled, then closes the feeders' queue, lets in-flight requests
/// finish and records what resolved, all within `drain`; everything else stays in the backlog.
pub async fn run(setup: Setup, stop: CancellationToken) {
    let lanes = setup.destinations.len();
    let ids: Vec<String> = setup
        .destinations
        .iter()
        .map(|d| d.id().to_owned())
        .collect();
    let transport = match Transport::new() {
        Ok(transport) => transport,
        Err(e) => {
            tracing::error!(error = %e, "The HTTP client could not start; nothing is delivered.");
            setup
                .failed
                .send_replace(Some(format!("the HTTP client could not start: {e}")));
            return;
        }
    };
    let credits: Vec<Arc<Semaphore>> = setup
        .settings
        .iter()
        .map(|s| Arc::new(Semaphore::new(s.max_pending_records)))
        .collect();
    let (delivery, mut completions) = Delivery::new(
        Arc::clone(&setup.destinations),
        setup.settings.clone(),
        Some(transport),
        setup.redactor.clone(),
    );
    let (mapped_tx, mut mapped_rx) = mpsc::channel::<MappedBatch>(lanes * 2 + 1);
    // The feeders stop with the service, or when delivery ends on its own.
    let feeding = stop.child_token();
    let mut feeders = Vec::new();
    let mappers = Mappers {
        destinations: Arc::clone(&setup.destinations),
        consent: Arc::new(setup.consent.clone()),
    };
    for (lane, credit) in credits.iter().enumerate() {
        feeders.push(tokio::spawn(feed(
            lane,
            Arc::clone(&setup.backlog),
            mappers.clone(),
            Arc::clone(credit),
            mapped_tx.clone(),
            feeding.clone(),
            (Arc::clone(&setup.tap), Arc::clone(&setup.suppression)),
        )));
    }
    drop(mapped_tx);
    let mut state = Loop {
        delivery,
        backlog: Arc::clone(&setup.backlog),
        ids,
        credits,
        redactor: setup.redactor.clone(),
        unsaved: vec![Vec::new(); lanes],
        parked: (0..lanes).map(|_| VecDeque::new()).collect(),
        saving: vec![None; lanes],
        probe_at: vec![None; lanes],
        probe_wait: vec![FIRST_PROBE.min(setup.probe_max); lanes],
        probe_max: setup.probe_max,
        retried: vec![0; lanes],
        splits: vec![0; lanes],
        endings: vec![[0; Ending::ALL.len()]; lanes],
        statuses: setup.statuses,
        failed: setup.failed,
        tap: setup.tap,
        suppression: setup.suppression,
        barriers: Vec::new(),
    };
    let mut barriers = setup.barriers;
    let (saved_tx, mut saved_rx) = mpsc::unbounded_channel::<usize>();
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut stopping = stop.is_cancelled();
    let mut deadline: Option<tokio::time::Instant> = None;
    loop {
        let now = Instant::now();
        if !stopping {
            state.unpark();
            state.delivery.dispatch(now, false);
        } else {
            deadline.get_or_insert(tokio::time::Instant::now() + setup.drain);
            // Closed before anything is waited for: a feeder handing on a batch ends at once.
            mapped_rx.close();
            if state.delivery.in_flight() == 0 {
                break;
            }
        }
        state.save(&saved_tx);
        state.release_barriers();
        let wake = [
            state.delivery.next_wakeup(now, false),
            state.probe_at.iter().flatten().min().copied(),
        ]
        .into_iter()
        .flatten()
        .min()
        .map(tokio::time::Instant::from_std);
        tokio::select! {
            biased;
            Some(completion) = completions.recv() => {
                let applied = state.delivery.complete(completion);
                state.tap.retried(&applied.retried);
                if let Some((lane, reason)) = applied.paused {
                    state.paused(lane, reason);
                }
                for resolved in applied.resolved {
                    state.finish(resolved);
                }
            }
            Some(lane) = saved_rx.recv() => state.saved(lane),
            Some(barrier) = barriers.recv() => state.drop_erased(barrier),
            Some(batch) = mapped_rx.recv(), if !stopping => state.accept(batch),
            () = sleep_until(wake) => state.probe_due(),
            () = sleep_until(deadline) => {
                tracing::warn!("In-flight requests did not finish in time; their events stay in the backlog.");
                break;
            }
            _ = tick.tick() => {
                state.report();
                // A feeder ends only when stopping; one that ended otherwise (a panic) would
                // leave its destination without events for ever: delivery stops, loudly, and
                // the service reports itself not ready.
                if !stop.is_cancelled()
                    && let Some(lane) = feeders.iter().position(|f| f.is_finished())
                {
                    let reason = match feeders.swap_remove(lane).await {
                        Err(e) if e.is_panic() => panic_message(e.into_panic().as_ref()),
                        _ => "it ended".to_owned(),
                    };
                    tracing::error!(destination = %state.ids[lane], %reason, "A destination's feeder stopped; delivery stops, and the service with it.");
                    state.failed.send_replace(Some(format!(
                        "delivery to `{}` stopped: {reason}",
                        state.ids[lane]
                    )));
                    break;
                }
            }
            () = stop.cancelled(), if !stopping => stopping = true,
        }
    }
    feeding.cancel();
    mapped_rx.close();
    // What resolved is recorded before the service ends, within a bound: a backlog that no
    // longer answers must not hold the stop for ever (what was not recorded is delivered again
    // after a restart: a duplicate, never a loss).
    let until = deadline
        .unwrap_or_else(|| tokio::time::Instant::now() + setup.drain)
        .max(tokio::time::Instant::now() + SAVE_GRACE);
    let recorded = tokio::time::timeout_at(until, async {
        state.save(&saved_tx);
        while state.saving.iter().any(Option::is_some) {
            match saved_rx.recv().await {
                Some(lane) => state.saved(lane),
                None => break,
            }
            state.save(&saved_tx);
        }
    })
    .await;
    if recorded.is_err() {
        tracing::warn!(
            "The backlog did not record the last resolutions in time; those events are delivered again after a restart."
        );
    }
    // The feeders saw the stop; one still inside the backlog after that is cut off.
    let stopped = futures_util::future::join_all(feeders.iter_mut());
    if tokio::time::timeout(SAVE_GRACE, stopped).await.is_err() {
        feeders.iter().for_each(tokio::task::JoinHandle::abort);
    }
    state.report();
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The delivery loop's state.
struct Loop {
    delivery: Delivery,
    backlog: Arc<dyn Backlog>,
    ids: Vec<String>,
    /// Per destination: how many more events it may take into memory.
    credits: Vec<Arc<Semaphore>>,
    redactor: Redactor,
    /// Per destination: resolutions not yet handed to the backlog.
    unsaved: Vec<Vec<Resolution>>,
    /// Per destination: events that arrived while it was paused, in order.
    parked: Vec<VecDeque<Parked>>,
    /// Per destination: how many resolutions a save under way records (one save at a time, so
    /// saves group up), their credit held until it ends.
    saving: Vec<Option<usize>>,
    probe_at: Vec<Option<Instant>>,
    probe_wait: Vec<Duration>,
    probe_max: Duration,
    retried: Vec<u64>,
    splits: Vec<u64>,
    /// Per destination and ending: events resolved since the metrics were last told.
    endings: Vec<[u64; Ending::ALL.len()]>,
    statuses: Statuses,
    failed: watch::Sender<Option<String>>,
    tap: Arc<Tap>,
    suppression: Arc<Suppression>,
    /// Erasure jobs waiting for the requests started before a mark to finish.
    barriers: Vec<(u64, oneshot::Sender<()>)>,
}

impl Loop {
    /// Drops what the engine and the parked queues hold of erased users; the job is answered
    /// once every request started before now has finished.
    fn drop_erased(&mut self, barrier: oneshot::Sender<()>) {
        let suppression = Arc::clone(&self.suppression);
        let erased = |raw: &str| suppression.matches_text(raw);
        for resolved in self.delivery.drop_where(&erased, Instant::now()) {
            self.suppressed(resolved);
        }
        for lane in 0..self.parked.len() {
            let parked = std::mem::take(&mut self.parked[lane]);
            for event in parked {
                if erased(&event.raw) {
                    self.suppressed(Resolved {
                        lane,
                        key: event.seq,
                        ending: Ending::Skipped,
                        reasons: vec![SUPPRESSED.to_owned()],
                        raw: event.raw,
                        notes: Vec::new(),
                    });
                } else {
                    self.parked[lane].push_back(event);
                }
            }
        }
        self.barriers
            .push((self.delivery.requests_started(), barrier));
        self.release_barriers();
    }

    /// Answers the erasure jobs whose requests in flight have all finished.
    fn release_barriers(&mut self) {
        if self.barriers.is_empty() {
            return;
        }
        for (mark, barrier) in std::mem::take(&mut self.barriers) {
            if self.delivery.finished_before(mark) {
                let _ = barrier.send(());
            } else {
                self.barriers.push((mark, barrier));
            }
        }
    }

    /// An event of an erased user that ended unsent.
    fn suppressed(&mut self, resolved: Resolved) {
        ::metrics::counter!("hardal_events_suppressed_total", "stage" => "delivery").increment(1);
        self.finish(resolved);
    }

    /// Takes a feeder's mapped events, in order.
    fn accept(&mut self, batch: MappedBatch) {
        let lane = batch.lane;
        let now = Instant::now();
        let no_consent = batch
            .events
            .iter()
            .filter(|e| e.mapped.as_ref().is_ok_and(|m| no_consent(&m.outcome)))
            .count();
        if no_consent > 0 {
            metrics::no_consent(&self.ids[lane], no_consent as u64);
        }
        // Mapped before the latest erasure: checked again against the list as it is now.
        let recheck = batch.generation != self.suppression.generation();
        for mut event in batch.events {
            if recheck && !event.suppressed && self.suppression.matches_text(&event.raw) {
                event.suppressed = true;
            }
            if event.suppressed {
                self.suppressed(Resolved {
                    lane,
                    key: event.seq,
                    ending: Ending::Skipped,
                    reasons: vec![SUPPRESSED.to_owned()],
                    raw: Arc::clone(&event.raw),
                    notes: Vec::new(),
                });
                continue;
            }
            let resolved = |ending, reasons: Vec<String>, notes| Resolved {
                lane,
                key: event.seq,
                ending,
                reasons,
                raw: Arc::clone(&event.raw),
                notes,
            };
            let done = match event.mapped {
                Err(error) => resolved(Ending::Rejected, vec![error.to_string()], Vec::new()),
                Ok(mapped) => match mapped.outcome {
                    Outcome::Skipped(_) => resolved(Ending::Skipped, Vec::new(), mapped.notes),
                    Outcome::Expired(_) => resolved(Ending::Expired, Vec::new(), mapped.notes),
                    Outcome::Records(records) if records.is_empty() => resolved(
                        Ending::Skipped,
                        vec![NOTHING_TO_SEND.to_owned()],
                        mapped.notes,
                    ),
                    Outcome::Records(records) => {
                        let parked = Parked {
                            seq: event.seq,
                            raw: Arc::clone(&event.raw),
                            records,
                            notes: mapped.notes,
                        };
                        if self.delivery.paused(lane).is_some() || !self.parked[lane].is_empty() {
                            // Kept in order, holding its credit: the feeder stops taking once
                            // the credit is spent, and nothing is taken that is not delivered.
                            self.parked[lane].push_back(parked);
                        } else {
                            self.hand_over(lane, parked, now);
                        }
                        continue;
                    }
                },
            };
            self.finish(done);
        }
    }

    fn hand_over(&mut self, lane: usize, event: Parked, now: Instant) {
        if !self
            .delivery
            .accept(lane, event.seq, event.raw, event.records, event.notes, now)
        {
            // Paused meanwhile (events are parked only while a pause is known here): it stays
            // unresolved in the backlog, its credit free again.
            self.credits[lane].add_permits(1);
        }
    }

    /// Hands the events that arrived while a destination was paused to the engine, once it
    /// flows (or is being probed) again.
    fn unpark(&mut self) {
        let now = Instant::now();
        for lane in 0..self.parked.len() {
            while self.delivery.paused(lane).is_none()
                && let Some(event) = self.parked[lane].pop_front()
            {
                self.hand_over(lane, event, now);
            }
        }
    }

    fn finish(&mut self, mut resolved: Resolved) {
        let lane = resolved.lane;
        resolved
            .reasons
            .iter_mut()
            .for_each(|r| self.redactor.scrub(r));
        self.tap.resolved(&resolved);
        // Counted here and handed to the metrics in bulk: a labelled counter costs a lookup.
        self.endings[lane][resolved.ending as usize] += 1;
        // Its credit comes back once the resolution is recorded (`saved`), not now: while the
        // backlog cannot record (another process holds the spool), the feeder stops taking
        // rather than deliver the whole backlog with nothing recorded.
        self.unsaved[lane].push(Resolution {
            seq: resolved.key,
            ending: resolved.ending,
            reasons: resolved.reasons,
        });
    }

    /// Hands each destination's resolutions to the backlog, one save at a time per destination,
    /// and their counts to the metrics.
    fn save(&mut self, saved: &mpsc::UnboundedSender<usize>) {
        for (lane, id) in self.ids.iter().enumerate() {
            for (ending, count) in Ending::ALL.iter().zip(&mut self.endings[lane]) {
                if *count > 0 {
                    metrics::resolved(id, *ending, std::mem::take(count));
                }
            }
        }
        for lane in 0..self.unsaved.len() {
            if self.saving[lane].is_some() || self.unsaved[lane].is_empty() {
                continue;
            }
            let resolutions = std::mem::take(&mut self.unsaved[lane]);
            self.saving[lane] = Some(resolutions.len());
            let backlog = Arc::clone(&self.backlog);
            let id = self.ids[lane].clone();
            let saved = saved.clone();
            let failed = self.failed.clone();
            tokio::spawn(async move {
                match backlog.resolve(&id, resolutions).await {
                    Ok(()) => {}
                    Err(BacklogError::Fatal(reason)) => {
                        tracing::error!(destination = %id, %reason, "Resolved events can never be recorded in the backlog: the service stops.");
                        failed
                            .send_replace(Some(format!("the backlog cannot be written: {reason}")));
                    }
                    Err(error) => {
                        // The backlog keeps what it could not write and writes it later (the
                        // spool does); what still failed stays unresolved and is delivered
                        // again after a restart: a duplicate, never a loss.
                        tracing::error!(destination = %id, %error, "Resolved events could not be recorded in the backlog.");
                    }
                }
                let _ = saved.send(lane);
            });
        }
    }

    /// A save of `lane`'s resolutions ended: their credit is free again.
    fn saved(&mut self, lane: usize) {
        if let Some(count) = self.saving[lane].take() {
            self.credits[lane].add_permits(count);
        }
    }

    fn paused(&mut self, lane: usize, reason: String) {
        let wait = self.probe_wait[lane];
        tracing::error!(destination = %self.ids[lane], %reason, probe_in_seconds = wait.as_secs(), "Destination paused: nothing is sent to it until a probe request succeeds; the other destinations go on, and nothing is dropped.");
        self.probe_at[lane] = Some(Instant::now() + wait);
        self.probe_wait[lane] = (wait * 2).min(self.probe_max);
        self.report();
    }

    /// Probes the destinations whose wait is over.
    fn probe_due(&mut self) {
        let now = Instant::now();
        for lane in 0..self.probe_at.len() {
            if self.probe_at[lane].is_some_and(|at| at <= now) {
                self.probe_at[lane] = None;
                tracing::warn!(destination = %self.ids[lane], "Probing a paused destination with one request.");
                self.delivery.probe(lane, now);
            }
        }
    }

    /// Publishes each destination's state, and the retries and splits since the last report.
    fn report(&mut self) {
        let now = Instant::now();
        let mut statuses = Vec::with_capacity(self.ids.len());
        for (lane, id) in self.ids.iter().enumerate() {
            let state = self.delivery.state(lane, now);
            if state != LaneState::Paused && self.probe_wait[lane] > FIRST_PROBE.min(self.probe_max)
            {
                tracing::warn!(destination = %id, "The destination answered a probe: it flows again.");
                self.probe_wait[lane] = FIRST_PROBE.min(self.probe_max);
            }
            let counts = self.delivery.counts(lane);
            ::metrics::counter!("hardal_records_retried_total", "destination" => id.clone())
                .increment(counts.records_retried - self.retried[lane]);
            self.retried[lane] = counts.records_retried;
            ::metrics::counter!("hardal_batch_splits_total", "destination" => id.clone())
                .increment(counts.splits - self.splits[lane]);
            self.splits[lane] = counts.splits;
            statuses.push(DestinationStatus {
                id: id.clone(),
                state: state.as_str(),
                paused: self.delivery.paused(lane).map(str::to_owned),
            });
        }
        *self.statuses.lock().unwrap_or_else(|e| e.into_inner()) = statuses;
    }
}

/// What the feeders map with: every destination, and the consent settings of each.
#[derive(Clone)]
struct Mappers {
    destinations: Arc<Vec<Box<dyn Destination>>>,
    consent: Arc<Vec<Consent>>,
}

/// One destination's feeder: takes events as credit allows, maps them off the async threads
/// (two batches may be mapping while the next is taken), and sends them on in order.
async fn feed(
    lane: usize,
    backlog: Arc<dyn Backlog>,
    mappers: Mappers,
    credit: Arc<Semaphore>,
    out: mpsc::Sender<MappedBatch>,
    stop: CancellationToken,
    (tap, suppression): (Arc<Tap>, Arc<Suppression>),
) {
    let id = mappers.destinations[lane].id().to_owned();
    let mut mapping: VecDeque<tokio::task::JoinHandle<MappedBatch>> = VecDeque::new();
    // Sends the oldest mapped batch on; false when the engine is gone.
    async fn send_front(
        mapping: &mut VecDeque<tokio::task::JoinHandle<MappedBatch>>,
        out: &mpsc::Sender<MappedBatch>,
    ) -> bool {
        let Some(handle) = mapping.pop_front() else {
            return true;
        };
        match handle.await {
            Ok(batch) => out.send(batch).await.is_ok(),
            Err(_) => false,
        }
    }
    loop {
        if stop.is_cancelled() {
            return;
        }
        while mapping.front().is_some_and(|h| h.is_finished()) {
            if !send_front(&mut mapping, &out).await {
                return;
            }
        }
        if mapping.len() >= 2 || (credit.available_permits() == 0 && !mapping.is_empty()) {
            if !send_front(&mut mapping, &out).await {
                return;
            }
            continue;
        }
        // At least one event's worth of credit, and as much more as there is, up to a batch.
        let mut permit = tokio::select! {
            permit = Arc::clone(&credit).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => return,
            },
            () = stop.cancelled() => return,
        };
        let more = credit.available_permits().min(TAKE - 1);
        if more > 0
            && let Ok(extra) = Arc::clone(&credit).try_acquire_many_owned(more as u32)
        {
            permit.merge(extra);
        }
        let want = permit.num_permits();
        let events = match backlog.take(&id, want).await {
            Ok(events) => events,
            Err(error) => {
                tracing::error!(destination = %id, %error, "Events could not be read from the backlog; trying again.");
                drop(permit);
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    () = stop.cancelled() => return,
                }
                continue;
            }
        };
        if events.is_empty() {
            drop(permit);
            if !mapping.is_empty() {
                if !send_front(&mut mapping, &out).await {
                    return;
                }
                continue;
            }
            tokio::select! {
                () = backlog.wait_for(&id) => {}
                () = stop.cancelled() => return,
            }
            continue;
        }
        // Credit is kept for the events taken; the rest goes back.
        if let Some(unused) = permit.split(want - events.len()) {
            drop(unused);
        }
        permit.forget();
        let mappers = mappers.clone();
        let tap = Arc::clone(&tap);
        let suppression = Arc::clone(&suppression);
        mapping.push_back(tokio::task::spawn_blocking(move || {
            let generation = suppression.generation();
            let (destination, consent) = (&mappers.destinations[lane], &mappers.consent[lane]);
            MappedBatch {
                lane,
                events: map_batch(
                    lane,
                    destination.as_ref(),
                    consent,
                    events,
                    &tap,
                    &suppression,
                ),
                generation,
            }
        }));
    }
}

/// Maps events for one destination (`map_event`: consent first; a panic in the destination's
/// mapping rejects that event). Events of erased users are not mapped.
fn map_batch(
    lane: usize,
    destination: &dyn Destination,
    consent: &Consent,
    events: Vec<Stored>,
    tap: &Tap,
    suppression: &Suppression,
) -> Vec<MappedEvent> {
    // The service does not count repairs; noting them would only cost.
    let context = MapContext {
        notes: Notes::LeftOut,
        ..MapContext::at(SystemTime::now())
    };
    events
        .into_iter()
        .map(|stored| {
            let raw: Arc<str> = stored.body.into();
            let event = crate::input::parse_shared(&raw);
            if event.as_ref().is_ok_and(|event| suppression.matches(event)) {
                return MappedEvent {
                    seq: stored.seq,
                    raw,
                    mapped: Ok(Mapped {
                        outcome: Outcome::Skipped(SUPPRESSED.to_owned()),
                        notes: Vec::new(),
                    }),
                    suppressed: true,
                };
            }
            let mapped = match &event {
                Err(reason) => Err(MappingError::new("", reason.clone())),
                Ok(event) => map_event(destination, consent, event, &context),
            };
            tap.mapped(lane, stored.seq, &raw, event.as_ref().ok(), &mapped);
            MappedEvent {
                seq: stored.seq,
                raw,
                mapped,
                suppressed: false,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use tokio::sync::watch;
    use tokio_util::sync::CancellationToken;

    use super::{Setup, run};
    use crate::backlog::{Backlog, BacklogStats};
    use crate::serve::fake::{Stats, Stuck, Unrecorded};
    use crate::serve::tap::Tap;

    /// Delivery to one destination `a` (whose endpoint nothing answers) from `backlog`.
    fn setup(backlog: Arc<dyn Backlog>) -> Setup {
        let config = crate::config::load_str(
            r#"{"destinations": [{"id": "a", "type": "insider", "consent": {"mode": "off"}, "partner_name": "brand",
                "request_token": "t0k3n", "endpoint": "http://127.0.0.1:9/upsert"}]}"#,
            &|_: &str| None,
        )
        .unwrap();
        Setup {
            backlog,
            destinations: Arc::new(config.destinations),
            consent: config.consent,
            settings: config.delivery,
            tap: Arc::new(Tap::new(None, vec!["a".into()], config.redactor.clone())),
            redactor: config.redactor,
            probe_max: Duration::from_secs(60),
            drain: Duration::from_secs(1),
            statuses: Arc::new(Mutex::new(Vec::new())),
            failed: watch::channel(None).0,
            suppression: Arc::default(),
            barriers: tokio::sync::mpsc::unbounded_channel().1,
        }
    }

    #[tokio::test]
    async fn delivery_ends_when_a_feeder_dies_instead_of_going_on_without_it() {
        let setup = setup(Arc::new(Stats::new(BacklogStats::default())));
        let failed = setup.failed.subscribe();
        // The fake backlog panics in `take`: the feeder dies, and delivery must end by itself
        // (it went on for ever, delivering nothing to that destination).
        tokio::time::timeout(
            Duration::from_secs(60),
            run(setup, CancellationToken::new()),
        )
        .await
        .expect("delivery ended once its feeder died");
        // And says why, so that the service stops (and a supervisor starts it again) rather
        // than take events nothing delivers.
        let reason = failed.borrow().clone().expect("the failure is reported");
        assert!(reason.contains("delivery to `a` stopped"), "{reason}");
    }

    #[tokio::test]
    async fn delivery_stops_within_its_bound_when_the_backlog_no_longer_answers() {
        let backlog = Arc::new(Stuck::new());
        let stop = CancellationToken::new();
        let setup = setup(Arc::clone(&backlog) as Arc<dyn Backlog>);
        let running = tokio::spawn(run(setup, stop.clone()));
        // The event resolved (skipped), and recording that hangs.
        tokio::time::timeout(Duration::from_secs(60), backlog.resolving.notified())
            .await
            .expect("the event was resolved");
        stop.cancel();
        tokio::time::timeout(Duration::from_secs(60), running)
            .await
            .expect("delivery stopped within its drain bound although the backlog hangs")
            .unwrap();
    }

    #[tokio::test]
    async fn what_is_not_recorded_holds_its_credit_so_taking_stops() {
        let backlog = Arc::new(Unrecorded {
            taken: Default::default(),
        });
        let mut setup = setup(Arc::clone(&backlog) as Arc<dyn Backlog>);
        setup.settings[0].max_pending_records = 100;
        let stop = CancellationToken::new();
        let running = tokio::spawn(run(setup, stop.clone()));
        let taken = || backlog.taken.load(std::sync::atomic::Ordering::SeqCst);
        tokio::time::timeout(Duration::from_secs(60), async {
            while taken() < 100 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .expect("the credit was taken");
        // Every event resolved at once (skipped) and none could be recorded: nothing more may
        // be taken (credit came back at once, and the whole backlog was delivered with
        // nothing recorded).
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(taken(), 100);
        stop.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(60), running).await;
    }
}
