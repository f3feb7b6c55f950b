//! The delivery engine, shared by every way events arrive (`hardal send` and `hardal serve`): per destination
//! a [`Lane`] decides what may be sent when (batching, per-user order, concurrency, rate limit,
//! backoff, pause), request tasks carry batches through the transport, and each answer is judged
//! by the destination into one verdict per record and applied. What resolved comes back as
//! [`Resolved`] events for the caller to record (counts, dead letters, checkpoint or spool).
//!
//! Nothing a destination or a server does can break the engine: a panic while judging, or a
//! wrong number of verdicts, rejects that request's records with the reason; every reason that
//! came from outside is redacted before anyone sees it; durations from servers are capped.

pub mod lane;
mod numbered;
pub mod rate;
pub mod retry;

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use hardal_core::{Destination, HttpResponse, Note, Record, SendContext, Verdict};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use self::lane::{Lane, RecordId, Resolution};
use self::numbered::NumberedMap;
use self::retry::RetryPolicy;
use crate::config::DeliveryConfig;
use crate::redact::Redactor;
use crate::transport::Transport;

/// Why an event whose mapping made no records is skipped: left unresolved, it would be mapped
/// again on every resume (and hold the spool's watermark) for ever.
pub const NOTHING_TO_SEND: &str = "the destination made nothing to send for this event";

/// Why an event of an erased user is skipped.
pub const SUPPRESSED: &str = "the user asked to be erased: their events are not sent";

/// How an event ended for one destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    Delivered,
    Skipped,
    /// Not sent: older than the destination keeps such events.
    Expired,
    /// Refused for good (by the destination's rules while mapping, or by its answer).
    Rejected,
    /// Given up after the retry budget.
    DeadLettered,
}

impl Ending {
    /// Every ending, in the order of the declaration.
    pub const ALL: [Ending; 5] = [
        Ending::Delivered,
        Ending::Skipped,
        Ending::Expired,
        Ending::Rejected,
        Ending::DeadLettered,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Ending::Delivered => "delivered",
            Ending::Skipped => "skipped",
            Ending::Expired => "expired",
            Ending::Rejected => "rejected",
            Ending::DeadLettered => "dead_lettered",
        }
    }
}

/// What the caller keeps with each event until a destination is done with it: the notes of its
/// mapping (`serve` keeps them as they are, for the tap; `send` keeps them counted).
pub trait Carried: std::fmt::Debug + Send + 'static {}

impl Carried for Vec<Note> {}

/// An event a destination is done with.
#[derive(Debug)]
pub struct Resolved<N: Carried = Vec<Note>> {
    pub lane: usize,
    /// The caller's key of the event (an input line, a spool sequence number).
    pub key: u64,
    pub ending: Ending,
    /// Why, for rejected and dead-lettered events: every attempt's reason.
    pub reasons: Vec<String>,
    pub raw: Arc<str>,
    /// What the destination changed in the event while mapping it.
    pub notes: N,
}

/// A finished request: which lane, which records, and the verdicts (or why there was no answer).
pub struct Completion {
    lane: usize,
    /// The request's number, in the order requests started.
    number: u64,
    batch: Vec<RecordId>,
    result: Result<Vec<Verdict>, String>,
}

/// An event whose records are on their way.
struct Track<N> {
    raw: Arc<str>,
    notes: N,
    remaining: usize,
    reasons: Vec<String>,
    exhausted: bool,
    /// Its user was erased: it ends skipped, unless everything of it was delivered before.
    doomed: bool,
    /// Some of its records were removed unsent.
    dropped: bool,
}

/// How a destination is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LaneState {
    Flowing,
    BackingOff,
    Paused,
}

impl LaneState {
    pub fn as_str(self) -> &'static str {
        match self {
            LaneState::Flowing => "flowing",
            LaneState::BackingOff => "backing_off",
            LaneState::Paused => "paused",
        }
    }
}

/// Requests and retries per destination, for summaries and metrics.
#[derive(Debug, Default, Clone, Copy)]
pub struct LaneCounts {
    pub requests: u64,
    pub records_retried: u64,
    /// Requests split because the destination refused them for a record it did not name.
    pub splits: u64,
}

/// A record that will be tried again.
#[derive(Debug)]
pub struct Retried {
    pub lane: usize,
    /// The caller's key of the record's event.
    pub key: u64,
    /// Why this attempt failed (redacted).
    pub reason: String,
}

/// What one answer did.
#[derive(Debug)]
pub struct Applied<N: Carried = Vec<Note>> {
    pub resolved: Vec<Resolved<N>>,
    /// Records that failed this attempt and wait for the next (for `hardal tap`; collected
    /// only when there are any, so a healthy destination costs nothing).
    pub retried: Vec<Retried>,
    /// The lane and the reason, when this answer paused its destination.
    pub paused: Option<(usize, String)>,
}

/// All delivery state: owned by one task, so delivery needs no locks and its order is
/// deterministic.
pub struct Delivery<N: Carried = Vec<Note>> {
    destinations: Arc<Vec<Box<dyn Destination>>>,
    settings: Vec<DeliveryConfig>,
    policies: Vec<RetryPolicy>,
    lanes: Vec<Lane>,
    /// Per lane, by the caller's key (input lines and backlog sequence numbers come in order).
    tracks: Vec<NumberedMap<Track<N>>>,
    counts: Vec<LaneCounts>,
    /// `None` in a dry run: every batch is "delivered" without a request.
    transport: Option<Transport>,
    redactor: Redactor,
    done: UnboundedSender<Completion>,
    /// Requests started so far (the next one's number), and the numbers of those in flight.
    started: u64,
    open: std::collections::BTreeSet<u64>,
    /// Per lane: the keys of tracked events whose user was erased.
    doomed: Vec<rustc_hash::FxHashSet<u64>>,
}

impl<N: Carried> Delivery<N> {
    /// The engine for `destinations` with their `settings`; completions of its requests arrive
    /// on the receiver and go back in through [`Delivery::complete`].
    pub fn new(
        destinations: Arc<Vec<Box<dyn Destination>>>,
        settings: Vec<DeliveryConfig>,
        transport: Option<Transport>,
        redactor: Redactor,
    ) -> (Delivery<N>, UnboundedReceiver<Completion>) {
        let (done, completions) = unbounded_channel();
        let dry_run = transport.is_none();
        let destinations_len = destinations.len();
        let lanes = destinations
            .iter()
            .map(|d| {
                // A dry run sends nothing, so it has no rate to respect.
                Lane::new(d.requests_per_minute().filter(|_| !dry_run))
            })
            .collect();
        let delivery = Delivery {
            policies: settings.iter().map(RetryPolicy::from_config).collect(),
            tracks: destinations
                .iter()
                .map(|_| NumberedMap::default())
                .collect(),
            counts: vec![LaneCounts::default(); destinations.len()],
            lanes,
            settings,
            destinations,
            transport,
            redactor,
            done,
            started: 0,
            open: Default::default(),
            doomed: (0..destinations_len).map(|_| Default::default()).collect(),
        };
        (delivery, completions)
    }

    pub fn lanes(&self) -> usize {
        self.lanes.len()
    }

    pub fn counts(&self, lane: usize) -> LaneCounts {
        LaneCounts {
            splits: self.lanes[lane].splits(),
            ..self.counts[lane]
        }
    }

    /// Records not yet resolved, in every lane.
    pub fn pending(&self) -> usize {
        self.lanes.iter().map(Lane::pending).sum()
    }

    /// Records not yet resolved in one lane.
    pub fn pending_in(&self, lane: usize) -> usize {
        self.lanes[lane].pending()
    }

    pub fn in_flight(&self) -> usize {
        self.lanes.iter().map(Lane::in_flight).sum()
    }

    pub fn paused(&self, lane: usize) -> Option<&str> {
        self.lanes[lane].paused()
    }

    /// Lifts a destination's pause on trial at `now` (one request; see [`Lane::probe`]).
    pub fn probe(&mut self, lane: usize, now: Instant) {
        self.lanes[lane].probe(now);
    }

    /// Whether a destination flows, backs off (a 429 or 5xx asked it to wait) or is paused.
    pub fn state(&self, lane: usize, now: Instant) -> LaneState {
        let lane = &self.lanes[lane];
        if lane.paused().is_some() {
            LaneState::Paused
        } else if lane.backing_off(now) {
            LaneState::BackingOff
        } else {
            LaneState::Flowing
        }
    }

    /// The destinations, in lane order.
    pub fn destinations(&self) -> &Arc<Vec<Box<dyn Destination>>> {
        &self.destinations
    }

    pub fn settings(&self, lane: usize) -> &DeliveryConfig {
        &self.settings[lane]
    }

    /// Whether a lane that can still make progress holds as many records as it may: more input
    /// should wait. Paused lanes take no more records, so they never hold reading back.
    pub fn at_capacity(&self) -> bool {
        self.lanes
            .iter()
            .zip(&self.settings)
            .any(|(lane, settings)| {
                lane.paused().is_none() && lane.pending() >= settings.max_pending_records
            })
    }

    /// The earliest time [`Delivery::dispatch`] could send something without new input.
    pub fn next_wakeup(&self, now: Instant, flush: bool) -> Option<Instant> {
        self.lanes
            .iter()
            .zip(&self.settings)
            .filter_map(|(lane, settings)| lane.next_wakeup(now, settings.concurrency, flush))
            .min()
    }

    /// Takes an event's records for a destination, in acceptance order; `key` identifies the
    /// event to the caller. A paused destination takes nothing: its events stay unresolved.
    /// Callers resolve an event with no records themselves, as skipped ([`NOTHING_TO_SEND`]).
    pub fn accept(
        &mut self,
        lane: usize,
        key: u64,
        raw: Arc<str>,
        records: Vec<Record>,
        notes: N,
        now: Instant,
    ) -> bool {
        if self.lanes[lane].paused().is_some() || records.is_empty() {
            return false;
        }
        self.tracks[lane].insert(
            key,
            Track {
                raw,
                notes,
                remaining: records.len(),
                reasons: Vec::new(),
                exhausted: false,
                doomed: false,
                dropped: false,
            },
        );
        for record in records {
            self.lanes[lane].accept(key, record, now);
        }
        true
    }

    /// Sends every batch the lanes allow now.
    pub fn dispatch(&mut self, now: Instant, flush: bool) {
        for (index, lane) in self.lanes.iter_mut().enumerate() {
            let destination = self.destinations[index].as_ref();
            let settings = &self.settings[index];
            let linger = Duration::from_millis(settings.linger_ms);
            while let Some(batch) =
                lane.next_batch(destination, now, settings.concurrency, linger, flush)
            {
                let records: Vec<Arc<Record>> = batch
                    .iter()
                    .map(|id| Arc::clone(&lane.record(*id).record))
                    .collect();
                let context = SendContext {
                    attempt: batch
                        .iter()
                        .map(|id| lane.record(*id).attempts)
                        .max()
                        .unwrap_or(1)
                        .max(1),
                    now: SystemTime::now(),
                };
                let request = destination.encode(&borrowed(&records), &context);
                self.counts[index].requests += 1;
                let number = self.started;
                self.started += 1;
                self.open.insert(number);
                let done = self.done.clone();
                let Some(transport) = &self.transport else {
                    let verdicts = vec![Verdict::Delivered; batch.len()];
                    let _ = done.send(Completion {
                        lane: index,
                        number,
                        batch,
                        result: Ok(verdicts),
                    });
                    continue;
                };
                let transport = transport.clone();
                let timeout = Duration::from_millis(settings.request_timeout_ms);
                let destinations = Arc::clone(&self.destinations);
                let id = destination.id().to_owned();
                metrics::histogram!("hardal_request_records", "destination" => id.clone())
                    .record(batch.len() as f64);
                tokio::spawn(async move {
                    let started = Instant::now();
                    let result = transport.send(request, timeout).await;
                    metrics::histogram!("hardal_request_seconds", "destination" => id)
                        .record(started.elapsed().as_secs_f64());
                    let result = result.map(|response| {
                        judge_safely(destinations[index].as_ref(), &borrowed(&records), &response)
                    });
                    let _ = done.send(Completion {
                        lane: index,
                        number,
                        batch,
                        result,
                    });
                });
            }
        }
    }

    /// Applies a finished request's verdicts: what resolved, and whether the lane paused.
    pub fn complete(&mut self, completion: Completion) -> Applied<N> {
        let now = Instant::now();
        let index = completion.lane;
        self.open.remove(&completion.number);
        let mut verdicts = match completion.result {
            Ok(verdicts) => verdicts,
            Err(reason) => vec![
                Verdict::Retry {
                    reason,
                    after: None
                };
                completion.batch.len()
            ],
        };
        for verdict in &mut verdicts {
            match verdict {
                Verdict::Delivered => {}
                Verdict::Retry { reason, .. }
                | Verdict::Rejected { reason }
                | Verdict::Pause { reason }
                | Verdict::Split { reason } => self.redactor.scrub(reason),
            }
        }
        let retried = verdicts
            .iter()
            .filter(|v| matches!(v, Verdict::Retry { .. }))
            .count();
        self.counts[index].records_retried += retried as u64;
        let mut again = Vec::new();
        if retried > 0 {
            for (id, verdict) in completion.batch.iter().zip(&verdicts) {
                if let Verdict::Retry { reason, .. } = verdict {
                    again.push(Retried {
                        lane: index,
                        key: self.lanes[index].record(*id).line,
                        reason: reason.clone(),
                    });
                }
            }
        }
        let lane = &mut self.lanes[index];
        let was_paused = lane.paused().is_some();
        let (policy, wall) = (&self.policies[index], SystemTime::now());
        // One jitter for the request, not one per record: the records of a failed request come
        // due together and go again as one request. Drawn per record, a request of 1,000
        // records came back as 1,000 due times, woke the engine for each and reached a
        // destination that was down as a stream of small requests.
        let jitter = fastrand::f64();
        let resolutions = lane.complete(&completion.batch, verdicts, now, |pending, after| {
            let first = pending.first_attempt.unwrap_or(now);
            policy.decide(pending.attempts, first, now, after, wall, jitter)
        });
        let paused = match lane.paused() {
            Some(reason) if !was_paused => Some((index, reason.to_owned())),
            _ => None,
        };
        // Records of erased users that are to be tried again are removed instead.
        let mut resolved = self.remove_doomed(index, now);
        // A record whose budget this attempt used up is dead-lettered, not retried.
        if !again.is_empty() {
            let exhausted: rustc_hash::FxHashSet<u64> = resolutions
                .iter()
                .filter(|(_, r)| matches!(r, Resolution::Exhausted(_)))
                .map(|(key, _)| *key)
                .collect();
            again.retain(|r| !exhausted.contains(&r.key));
        }
        for (key, resolution) in resolutions {
            let track = self.tracks[index]
                .get_mut(&key)
                .expect("records belong to tracked events");
            track.remaining -= 1;
            match resolution {
                Resolution::Delivered => {}
                Resolution::Rejected(reason) => track.reasons.push(reason),
                Resolution::Exhausted(reasons) => {
                    track.exhausted = true;
                    track.reasons.extend(reasons);
                }
            }
            if track.remaining == 0 {
                let track = self.tracks[index].remove(&key).expect("present");
                resolved.push(self.ended(index, key, track));
            }
        }
        Applied {
            resolved,
            retried: again,
            paused,
        }
    }
}

impl<N: Carried> Delivery<N> {
    /// Requests started so far: a mark for [`Delivery::finished_before`].
    pub fn requests_started(&self) -> u64 {
        self.started
    }

    /// Whether every request started before `mark` has finished.
    pub fn finished_before(&self, mark: u64) -> bool {
        self.open.first().is_none_or(|first| *first >= mark)
    }

    /// Drops the events whose text `erased` matches (an erased user's): their records that are
    /// not in flight are removed at once, those in flight when their answer comes unless it
    /// delivered them; each such event ends skipped ([`SUPPRESSED`]), never dead-lettered.
    /// Returns the events that ended now.
    pub fn drop_where(&mut self, erased: &dyn Fn(&str) -> bool, now: Instant) -> Vec<Resolved<N>> {
        let mut resolved = Vec::new();
        for index in 0..self.lanes.len() {
            for (key, track) in self.tracks[index].iter_mut() {
                if !track.doomed && erased(&track.raw) {
                    track.doomed = true;
                    self.doomed[index].insert(*key);
                }
            }
            resolved.extend(self.remove_doomed(index, now));
        }
        resolved
    }

    /// Removes the records of doomed events in a lane that are not in flight; returns the
    /// events that ended with that.
    fn remove_doomed(&mut self, index: usize, now: Instant) -> Vec<Resolved<N>> {
        if self.doomed[index].is_empty() {
            return Vec::new();
        }
        let mut resolved = Vec::new();
        for key in self.lanes[index].remove_lines(&self.doomed[index], now) {
            let track = self.tracks[index]
                .get_mut(&key)
                .expect("records belong to tracked events");
            track.remaining -= 1;
            track.dropped = true;
            if track.remaining == 0 {
                let track = self.tracks[index].remove(&key).expect("present");
                resolved.push(self.ended(index, key, track));
            }
        }
        resolved
    }

    /// How an event whose records are all resolved ended.
    fn ended(&mut self, index: usize, key: u64, track: Track<N>) -> Resolved<N> {
        let doomed = self.doomed[index].remove(&key);
        let (ending, reasons) =
            if doomed && (track.dropped || track.exhausted || !track.reasons.is_empty()) {
                (Ending::Skipped, vec![SUPPRESSED.to_owned()])
            } else {
                let ending = match (track.exhausted, track.reasons.is_empty()) {
                    (true, _) => Ending::DeadLettered,
                    (false, false) => Ending::Rejected,
                    (false, true) => Ending::Delivered,
                };
                (ending, track.reasons)
            };
        Resolved {
            lane: index,
            key,
            ending,
            reasons,
            raw: track.raw,
            notes: track.notes,
        }
    }
}

/// The destination's verdicts, checked: a panic while judging, or a number of verdicts other
/// than one per record, rejects every record of the request with the reason (a destination bug
/// must cost a dead letter, not a hung or crashed run).
fn judge_safely(
    destination: &dyn Destination,
    records: &[&Record],
    response: &HttpResponse,
) -> Vec<Verdict> {
    let reject = |reason: String| vec![Verdict::Rejected { reason }; records.len()];
    match std::panic::catch_unwind(AssertUnwindSafe(|| destination.judge(records, response))) {
        Ok(verdicts) if verdicts.len() == records.len() => verdicts,
        Ok(verdicts) => reject(format!(
            "destination `{}` gave {} verdicts for the {} records of a request (HTTP {}); a bug in the destination, so the records are kept here",
            destination.id(),
            verdicts.len(),
            records.len(),
            response.status
        )),
        Err(panic) => reject(format!(
            "destination `{}` failed while judging the answer (HTTP {}): {}",
            destination.id(),
            response.status,
            panic_message(panic.as_ref())
        )),
    }
}

/// The records of a request as `encode` and `judge` take them.
fn borrowed(records: &[Arc<Record>]) -> Vec<&Record> {
    records.iter().map(|r| r.as_ref()).collect()
}

/// The text of a panic's payload.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use hardal_core::{Record, Verdict};

    use super::{Completion, Delivery, Ending};
    use crate::redact::Redactor;

    /// An engine for one Insider destination with the `delivery` settings given, and where its
    /// requests go (no transport: each comes back as a completion to be answered by hand).
    fn engine(delivery: &str) -> (Delivery, tokio::sync::mpsc::UnboundedReceiver<Completion>) {
        let config = crate::config::load_str(
            &format!(
                r#"{{"destinations": [{{"id": "d", "type": "insider", "consent": {{"mode": "off"}}, "partner_name": "p",
                     "request_token": "t0ken", "endpoint": "http://127.0.0.1:9/x"}}],
                    "delivery": {delivery}}}"#
            ),
            &|_| None,
        )
        .unwrap();
        Delivery::new(
            Arc::new(config.destinations),
            config.delivery,
            None,
            Redactor::default(),
        )
    }

    /// A record that fails with a retry verdict is reported as retried while attempts remain,
    /// and only as dead-lettered once its last attempt failed.
    #[test]
    fn retries_are_reported_until_the_budget_is_spent() {
        let (mut delivery, mut done) =
            engine(r#"{"max_attempts": 2, "backoff_initial_ms": 0, "backoff_max_ms": 0}"#);
        let mut now = Instant::now();
        let record = Record::new(b"{}".to_vec());
        assert!(delivery.accept(0, 7, Arc::from("{}"), vec![record], Vec::new(), now));
        let mut attempt = |delivery: &mut Delivery, now: Instant| {
            delivery.dispatch(now, true);
            // Without a transport every batch is "delivered"; the answer is made a 503 here.
            let mut completion = done.try_recv().expect("a batch was sent");
            completion.result = Ok(vec![Verdict::Retry {
                reason: "HTTP 503".into(),
                after: None,
            }]);
            delivery.complete(completion)
        };
        let first = attempt(&mut delivery, now);
        assert!(first.resolved.is_empty());
        assert_eq!(
            first
                .retried
                .iter()
                .map(|r| (r.lane, r.key, r.reason.as_str()))
                .collect::<Vec<_>>(),
            [(0, 7, "HTTP 503")]
        );
        now += Duration::from_secs(1);
        let last = attempt(&mut delivery, now);
        assert!(last.retried.is_empty(), "{:?}", last.retried);
        assert_eq!(last.resolved.len(), 1);
        assert_eq!(last.resolved[0].ending, Ending::DeadLettered);
    }

    /// The records of a failed request come due together and go again as one request, whatever
    /// the jitter: a destination that is down gets one retry per request, not one per record.
    #[test]
    fn a_failed_request_is_retried_as_one_request() {
        let (mut delivery, mut done) =
            engine(r#"{"backoff_initial_ms": 1000, "backoff_max_ms": 60000}"#);
        let mut now = Instant::now();
        for line in 0..100 {
            let record = Record::new(b"{}".to_vec());
            assert!(delivery.accept(0, line, Arc::from("{}"), vec![record], Vec::new(), now));
        }
        for round in 0..3 {
            // Until the engine sends: a wake-up may be for a gate (backoff, rate) of its own.
            let mut wakes = 0;
            let mut completion = loop {
                delivery.dispatch(now, true);
                if let Ok(completion) = done.try_recv() {
                    break completion;
                }
                wakes += 1;
                assert!(
                    wakes < 100,
                    "round {round}: woken {wakes} times for nothing"
                );
                now = delivery.next_wakeup(now, true).expect("something is due");
            };
            assert_eq!(completion.batch.len(), 100, "round {round}");
            assert!(done.try_recv().is_err(), "one request in round {round}");
            completion.result = Ok(vec![
                Verdict::Retry {
                    reason: "HTTP 503".into(),
                    after: None,
                };
                100
            ]);
            let _ = delivery.complete(completion);
            now = delivery.next_wakeup(now, true).expect("a retry is due");
        }
    }
}
