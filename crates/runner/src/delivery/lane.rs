//! One destination's delivery queue: which records may go now, how they are batched, and what
//! each verdict does to them. Pure state (time is passed in), so its ordering rules are tested
//! without a network.
//!
//! Per-user order: the unresolved records of one `order_key` form a queue. Only its head may be
//! dispatched — together with the records queued behind it, in order, in the same request — so a
//! later record of a user never travels before an earlier one, also while that one waits for a
//! retry.
//!
//! Splits: when an answer refuses a whole request for a record it does not name
//! ([`Verdict::Split`]), the request is cut into halves (the first ⌈n/2⌉ records in request order,
//! then the rest), which go before anything else, each as one request of exactly its records: a
//! half waits until all its records may go (a user's record behind one in the other half waits
//! for that one), so it is never sent in pieces and one bad record among n costs at most
//! 2·⌈log2 n⌉ + 1 requests while the good halves are delivered. A split costs no attempt and no
//! backoff; a lone record split is rejected with the reason.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::hash::BuildHasher;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hardal_core::{Destination, Record, Verdict};
use rustc_hash::FxHashMap as HashMap;
use smallvec::SmallVec;

use super::numbered::NumberedMap;
use super::rate::RateLimiter;

pub type RecordId = u64;

/// A record on its way, with the event (input line) it belongs to and its attempts so far.
#[derive(Debug)]
pub struct Pending {
    pub line: u64,
    /// Shared with the request task, which gives the records back to `judge`.
    pub record: Arc<Record>,
    pub attempts: u32,
    pub first_attempt: Option<Instant>,
    pub reasons: Vec<String>,
    key: Option<u64>,
    /// The half of a split request this record belongs to, while it is unresolved.
    half: Option<u64>,
    state: State,
    ready_at: Instant,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Behind an earlier record of the same user.
    Queued,
    Ready,
    InFlight,
    RetryWait,
}

/// How many lines of reasons a record keeps: the first ones say how the trouble began, the last
/// ones how it ended; a long outage retried a thousand times must not hold a thousand strings per
/// record in memory.
const KEPT_REASONS: usize = 6;

/// Adds an attempt's reason. The same reason as the attempt before extends that line
/// (`attempts 2–40: HTTP 503`); past `KEPT_REASONS` lines, the first and the last half are kept
/// around a line that counts the attempts left out.
fn keep_reason(reasons: &mut Vec<String>, attempt: u32, reason: &str) {
    if let Some(last) = reasons.last_mut()
        && let Some((span, text)) = last.split_once(": ")
        && text == reason
    {
        let first = span
            .trim_start_matches("attempts ")
            .trim_start_matches("attempt ")
            .split('–')
            .next()
            .unwrap_or("?")
            .to_owned();
        *last = format!("attempts {first}–{attempt}: {reason}");
        return;
    }
    let reason = format!("attempt {attempt}: {reason}");
    let half = KEPT_REASONS / 2;
    if reasons.len() < KEPT_REASONS {
        reasons.push(reason);
        return;
    }
    if reasons.len() == KEPT_REASONS {
        reasons.insert(half, String::new());
    }
    // reasons = first half, the count line, the last half: the oldest of the last half goes.
    let omitted = reasons[half]
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or(0)
        + 1;
    reasons[half] = format!("(… {omitted} more lines of reasons …)");
    reasons.remove(half + 1);
    reasons.push(reason);
}

/// What happened to one record for good.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    Delivered,
    /// Refused by the destination; never retried.
    Rejected(String),
    /// Retried until its budget ran out.
    Exhausted(Vec<String>),
}

/// A partial batch held back to linger, as planning left it.
#[derive(Debug, Clone, Copy)]
struct Held {
    /// `next_id` when it was planned: records accepted since have ids from here on.
    accepted: RecordId,
    /// How many records it held.
    records: usize,
}

impl Held {
    /// Whether planning again now could find a full batch. Planning walks every ready record, so
    /// planning again on each arrival while a batch lingers costs the square of its size (a NATS
    /// worker receives a few records per message); instead the lane plans again once the
    /// arrivals could reach the destination's record limit, or have grown the supply by half
    /// (a byte limit or a destination's own batcher may end a batch sooner, and then the batch
    /// waits at most for those arrivals or its linger). Planning work per record stays constant.
    fn may_fill(&self, next_id: RecordId, max_records: usize) -> bool {
        let arrived = (next_id - self.accepted) as usize;
        self.records + arrived >= max_records || arrived > self.records / 2
    }
}

/// One user's unresolved records, in order. Most users have one record pending at a time, which
/// is kept in the table itself rather than behind a pointer of its own.
type UserQueue = SmallVec<[RecordId; 2]>;

/// The delivery state of one destination.
#[derive(Debug, Default)]
pub struct Lane {
    records: NumberedMap<Pending>,
    next_id: RecordId,
    ready: VecDeque<RecordId>,
    /// Unresolved records per user, by a hash of the order key: a collision only makes two users
    /// share one queue, which keeps both in order.
    by_key: HashMap<u64, UserQueue>,
    retry_wait: BinaryHeap<Reverse<(Instant, RecordId)>>,
    in_flight: usize,
    not_before: Option<Instant>,
    rate: Option<RateLimiter>,
    paused: Option<String>,
    /// When the current pause began.
    paused_since: Option<Instant>,
    /// Resumed on trial after a pause: one request at a time until one is answered without a
    /// pause.
    probing: bool,
    /// Set when the last `next_batch` held back a partial batch: when its linger ends.
    linger_until: Option<Instant>,
    /// The partial batch the last planning held back, while only new records have come since.
    held: Option<Held>,
    /// Set when the last `next_batch` found only records of split halves that cannot go yet
    /// (they wait for records in flight or for a retry): only a completion or a retry changes it.
    blocked: bool,
    /// Requests split because an answer refused them for a record it did not name.
    splits: u64,
    /// The unresolved records of each half of a split request, in request order.
    halves: HashMap<u64, Vec<RecordId>>,
    /// The halves in the order they go: the newest split's first.
    half_order: VecDeque<u64>,
    next_half: u64,
}

impl Lane {
    pub fn new(requests_per_minute: Option<u32>) -> Lane {
        Lane {
            rate: requests_per_minute.map(RateLimiter::per_minute),
            ..Lane::default()
        }
    }

    /// Records not yet resolved (queued, ready, in flight or waiting for a retry).
    pub fn pending(&self) -> usize {
        self.records.len()
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// How many requests were split so far ([`Verdict::Split`] on more than one record).
    pub fn splits(&self) -> u64 {
        self.splits
    }

    pub fn paused(&self) -> Option<&str> {
        self.paused.as_deref()
    }

    /// Whether a retry-after or backoff holds the lane back at `now`.
    pub fn backing_off(&self, now: Instant) -> bool {
        self.not_before.is_some_and(|t| t > now)
    }

    /// Lifts a pause on trial at `now`: the lane sends one request; if its answer pauses again,
    /// the lane is paused again, else it flows as before.
    ///
    /// The time the lane spent paused is not counted against its records' retry budgets (a 503
    /// right after a long pause would otherwise dead-letter at once): their first attempts move
    /// forward by it.
    pub fn probe(&mut self, now: Instant) {
        self.held = None;
        if self.paused.take().is_some() {
            self.probing = true;
            let paused_for = self
                .paused_since
                .take()
                .map_or(Duration::ZERO, |since| now.saturating_duration_since(since));
            for pending in self.records.values_mut() {
                if let Some(first) = &mut pending.first_attempt {
                    // Never past `now`: the first attempt came before the pause began.
                    *first = first.checked_add(paused_for).unwrap_or(now).min(now);
                }
            }
        }
    }

    pub fn record(&self, id: RecordId) -> &Pending {
        &self.records[&id]
    }

    /// Asserts that every index of the lane holds only records it owns, so its memory is bounded
    /// by the records pending (for property tests).
    #[doc(hidden)]
    pub fn check_invariants(&self) {
        let queued: usize = self.by_key.values().map(|queue| queue.len()).sum();
        assert!(
            queued <= self.records.len(),
            "user queues hold resolved records"
        );
        assert!(
            self.ready.len() <= self.records.len(),
            "the ready queue holds resolved records"
        );
        assert!(
            self.retry_wait.len() <= self.records.len(),
            "the retry heap holds resolved records"
        );
        assert!(self.ready.iter().all(|id| self.records.contains_key(id)));
        assert!(
            self.by_key.values().all(|q| !q.is_empty()),
            "an empty user queue was kept"
        );
        assert_eq!(self.halves.len(), self.half_order.len());
        assert!(
            self.halves.iter().all(|(half, ids)| !ids.is_empty()
                && ids.iter().all(|id| self.records[id].half == Some(*half))),
            "a half holds resolved or foreign records"
        );
    }

    /// Takes a newly accepted record, in acceptance order.
    pub fn accept(&mut self, line: u64, record: Record, now: Instant) {
        let id = self.next_id;
        self.next_id += 1;
        let key = record
            .order_key
            .as_deref()
            .map(|k| rustc_hash::FxBuildHasher.hash_one(k));
        let head = match key {
            Some(key) => {
                let queue = self.by_key.entry(key).or_default();
                queue.push(id);
                queue.len() == 1
            }
            None => true,
        };
        let state = if head { State::Ready } else { State::Queued };
        self.records.insert(
            id,
            Pending {
                line,
                record: Arc::new(record),
                attempts: 0,
                first_attempt: None,
                reasons: Vec::new(),
                key,
                half: None,
                state,
                ready_at: now,
            },
        );
        if head {
            self.ready.push_back(id);
        }
    }

    /// Moves records whose retry time has come back to the front of the ready queue.
    fn release_due(&mut self, now: Instant) {
        while let Some(Reverse((due, id))) = self.retry_wait.peek().copied() {
            if due > now {
                break;
            }
            self.retry_wait.pop();
            self.held = None;
            let pending = self.records.get_mut(&id).expect("waiting records exist");
            pending.state = State::Ready;
            pending.ready_at = now;
            self.ready.push_front(id);
        }
    }

    /// The next request's records, if one should go now: the lane is not paused or backing off,
    /// a request slot and a rate slot are free, and the batch is full, or its oldest record has
    /// waited `linger`, or no more input is coming soon (`flush`).
    pub fn next_batch(
        &mut self,
        destination: &dyn Destination,
        now: Instant,
        concurrency: usize,
        linger: Duration,
        flush: bool,
    ) -> Option<Vec<RecordId>> {
        self.release_due(now);
        self.linger_until = None;
        self.blocked = false;
        let concurrency = if self.probing { 1 } else { concurrency };
        if self.paused.is_some() || self.in_flight >= concurrency || self.ready.is_empty() {
            return None;
        }
        if self.not_before.is_some_and(|t| t > now) {
            return None;
        }
        if self
            .rate
            .as_ref()
            .is_some_and(|r| r.wait_until(now).is_some())
        {
            return None;
        }
        let oldest = self.records[&self.ready[0]].ready_at;
        let lingering = !flush && now < oldest + linger;
        let (batch, full, prefix) = match self.ready_half() {
            Some(half) => (self.halves[&half].clone(), true, false),
            None if lingering
                && self.held.is_some_and(|held| {
                    !held.may_fill(self.next_id, destination.batch_limits().max_records)
                }) =>
            {
                self.linger_until = Some(oldest + linger);
                return None;
            }
            None => self.plan_batch(destination),
        };
        if batch.is_empty() {
            // Every ready record waits for a half that cannot go yet.
            self.blocked = true;
            return None;
        }
        if !full && lingering {
            self.linger_until = Some(oldest + linger);
            self.held = Some(Held {
                accepted: self.next_id,
                records: batch.len(),
            });
            return None;
        }
        self.held = None;
        if prefix {
            // Planning took heads in order from the front of the ready queue.
            let heads = batch
                .iter()
                .filter(|id| self.records[id].state == State::Ready)
                .count();
            self.ready.drain(..heads);
        } else {
            // Halves (rare) sit anywhere in the ready queue.
            let taken: rustc_hash::FxHashSet<RecordId> = batch.iter().copied().collect();
            self.ready.retain(|id| !taken.contains(id));
        }
        for id in &batch {
            let pending = self.records.get_mut(id).expect("planned records exist");
            pending.state = State::InFlight;
            pending.attempts += 1;
            pending.first_attempt.get_or_insert(now);
        }
        self.in_flight += 1;
        if let Some(rate) = &mut self.rate {
            rate.take(now);
        }
        Some(batch)
    }

    /// The first half of a split request whose records may all go now: each is ready, or queued
    /// right behind its user's ready record of the same half.
    fn ready_half(&self) -> Option<u64> {
        self.half_order.iter().copied().find(|half| {
            self.halves[half].iter().all(|id| {
                let pending = &self.records[id];
                match pending.state {
                    State::Ready => true,
                    State::Queued => pending.key.is_some_and(|key| {
                        let front = &self.records[&self.by_key[&key][0]];
                        front.half == Some(*half) && front.state == State::Ready
                    }),
                    State::InFlight | State::RetryWait => false,
                }
            })
        })
    }

    /// Picks records for one request from the ready queue, each followed by the records queued
    /// behind it for the same user, offering them in that order to the destination's batcher;
    /// `full` when the batcher, not the supply, ended the batch. Records of split halves go only
    /// as their half; `prefix` when no ready record was passed over for that.
    fn plan_batch(&self, destination: &dyn Destination) -> (Vec<RecordId>, bool, bool) {
        let mut batcher = destination.batcher();
        let mut batch = Vec::new();
        let mut prefix = true;
        for &head in &self.ready {
            if self.records[&head].half.is_some() {
                // Its user's later records wait behind it.
                prefix = false;
                continue;
            }
            let followers = self.records[&head]
                .key
                .into_iter()
                .flat_map(|key| self.by_key[&key].iter().skip(1))
                .take_while(|id| {
                    let pending = &self.records[id];
                    pending.state == State::Queued && pending.half.is_none()
                });
            for &id in std::iter::once(&head).chain(followers) {
                if !batcher.offer(&self.records[&id].record) {
                    // A record too large for any request still goes alone (destinations refuse
                    // such records when they map them, so this is only a safety net).
                    return if batch.is_empty() {
                        (vec![id], true, prefix)
                    } else {
                        (batch, true, prefix)
                    };
                }
                batch.push(id);
            }
        }
        (batch, false, prefix)
    }

    /// The earliest time `next_batch` could return something if no input arrives, or `None`
    /// when only a completion can change that. Call it right after `next_batch`.
    pub fn next_wakeup(&self, now: Instant, concurrency: usize, flush: bool) -> Option<Instant> {
        if self.paused.is_some() {
            return None;
        }
        let concurrency = if self.probing { 1 } else { concurrency };
        let retry = self.retry_wait.peek().map(|Reverse((due, _))| *due);
        let send = if self.ready.is_empty() || self.in_flight >= concurrency || self.blocked {
            None
        } else {
            let gate = [
                self.not_before,
                self.rate.as_ref().and_then(|r| r.wait_until(now)),
            ]
            .into_iter()
            .flatten()
            .max()
            .unwrap_or(now);
            // `next_batch`, called just before, left the linger deadline if it held a partial
            // batch back; planning again here would only repeat its work.
            Some(match self.linger_until {
                Some(until) if !flush => gate.max(until),
                _ => gate,
            })
        };
        [retry, send].into_iter().flatten().min()
    }

    /// Applies the verdicts of a completed request (one per record, in batch order). Returns the
    /// records resolved for good, with their line and outcome, and whether the lane paused.
    pub fn complete(
        &mut self,
        batch: &[RecordId],
        verdicts: Vec<Verdict>,
        now: Instant,
        mut decide: impl FnMut(&Pending, Option<hardal_core::RetryAfter>) -> super::retry::Decision,
    ) -> Vec<(u64, Resolution)> {
        // Resolved records free their users' next ones, retries and splits change the supply:
        // the next call plans afresh.
        self.held = None;
        self.in_flight -= 1;
        let mut resolved = Vec::new();
        let mut backoff_until: Option<Instant> = None;
        let mut split = Vec::new();
        // A split is a verdict on the whole request; given to only some of its records (a
        // destination's bug), it cannot be honoured without breaking per-user order, so those
        // records are retried instead.
        let whole_split = verdicts.iter().all(|v| matches!(v, Verdict::Split { .. }));
        let verdicts = verdicts.into_iter().map(|verdict| match verdict {
            Verdict::Split { reason } if !whole_split => Verdict::Retry {
                reason: format!("{reason} (a split given to only some records of the request)"),
                after: None,
            },
            verdict => verdict,
        });
        for (id, verdict) in batch.iter().zip(verdicts) {
            let attempt = self.records[id].attempts;
            match verdict {
                Verdict::Delivered => {
                    resolved.push((self.resolve(*id, now), Resolution::Delivered))
                }
                Verdict::Rejected { reason } => {
                    resolved.push((self.resolve(*id, now), Resolution::Rejected(reason)))
                }
                // Alone, the record is the one the answer refused.
                Verdict::Split { reason } if batch.len() == 1 => {
                    resolved.push((self.resolve(*id, now), Resolution::Rejected(reason)))
                }
                Verdict::Split { .. } => split.push(*id),
                Verdict::Pause { reason } => {
                    if self.paused.is_none() {
                        self.paused_since = Some(now);
                    }
                    self.paused.get_or_insert(reason);
                    self.requeue(*id, now);
                }
                Verdict::Retry { reason, after } => {
                    let pending = self.records.get_mut(id).expect("batch records exist");
                    keep_reason(&mut pending.reasons, attempt, &reason);
                    match decide(pending, after) {
                        super::retry::Decision::RetryAt(due) => {
                            backoff_until = Some(backoff_until.map_or(due, |b| b.min(due)));
                            let is_head = pending
                                .key
                                .is_none_or(|key| self.by_key[&key].first() == Some(id));
                            if is_head {
                                pending.state = State::RetryWait;
                                self.retry_wait.push(Reverse((due, *id)));
                            } else {
                                // It travels again behind its user's head record.
                                pending.state = State::Queued;
                            }
                        }
                        super::retry::Decision::GiveUp(why) => {
                            let mut reasons = std::mem::take(&mut pending.reasons);
                            reasons.push(why);
                            resolved.push((self.resolve(*id, now), Resolution::Exhausted(reasons)));
                        }
                    }
                }
            }
        }
        if !split.is_empty() {
            self.split(&split, now);
        }
        if self.probing && self.paused.is_none() {
            // The trial request was answered without a pause: the destination works again.
            self.probing = false;
        }
        // A destination that asked for a pause in sending (429, 503) gets no new requests before
        // the earliest retry is due, whatever batch they would carry.
        if let Some(until) = backoff_until {
            self.not_before = Some(self.not_before.map_or(until, |t| t.max(until)));
        }
        resolved
    }

    /// Cuts a split request's records (in request order) into halves that go next, each as one
    /// request; the attempt they were sent in is not counted.
    fn split(&mut self, ids: &[RecordId], now: Instant) {
        self.splits += 1;
        let (first, second) = ids.split_at(ids.len().div_ceil(2));
        let mut heads = Vec::new();
        let mut made = Vec::new();
        for part in [first, second] {
            let half = self.next_half;
            self.next_half += 1;
            for id in part {
                self.leave_half(*id);
                let pending = self.records.get_mut(id).expect("batch records exist");
                pending.half = Some(half);
                pending.attempts = pending.attempts.saturating_sub(1);
                if pending.attempts == 0 {
                    // Its retry budget's clock starts with a send that counts.
                    pending.first_attempt = None;
                }
                let is_head = pending
                    .key
                    .is_none_or(|key| self.by_key[&key].first() == Some(id));
                if is_head {
                    pending.state = State::Ready;
                    pending.ready_at = now;
                    heads.push(*id);
                } else {
                    // It travels again behind its user's head record.
                    pending.state = State::Queued;
                }
            }
            self.halves.insert(half, part.to_vec());
            made.push(half);
        }
        for half in made.into_iter().rev() {
            self.half_order.push_front(half);
        }
        // The first half's heads, then the second's, before every other ready record.
        for id in heads.into_iter().rev() {
            self.ready.push_front(id);
        }
    }

    /// Takes a record out of its split half, if it is in one.
    fn leave_half(&mut self, id: RecordId) {
        let Some(half) = self.records.get_mut(&id).and_then(|p| p.half.take()) else {
            return;
        };
        let members = self.halves.get_mut(&half).expect("a record's half exists");
        members.retain(|m| *m != id);
        if members.is_empty() {
            self.halves.remove(&half);
            self.half_order.retain(|h| *h != half);
        }
    }

    /// A record the engine gave up on before sending (paused or interrupted runs keep it).
    fn requeue(&mut self, id: RecordId, now: Instant) {
        let pending = self.records.get_mut(&id).expect("batch records exist");
        pending.attempts = pending.attempts.saturating_sub(1);
        let is_head = pending
            .key
            .is_none_or(|key| self.by_key[&key].first() == Some(&id));
        if is_head {
            pending.state = State::Ready;
            pending.ready_at = now;
            self.ready.push_front(id);
        } else {
            pending.state = State::Queued;
        }
    }

    /// Removes the records of `lines` that are not in flight (an erased user's), as if they had
    /// never been accepted: the next record of each user concerned becomes ready. Returns the
    /// line of each record removed. In-flight records stay: their answer resolves them, or, if
    /// they are to be tried again, a later call removes them.
    pub fn remove_lines(&mut self, lines: &rustc_hash::FxHashSet<u64>, now: Instant) -> Vec<u64> {
        self.held = None;
        let ids: rustc_hash::FxHashSet<RecordId> = self
            .records
            .iter()
            .filter(|(_, p)| lines.contains(&p.line) && p.state != State::InFlight)
            .map(|(id, _)| *id)
            .collect();
        if ids.is_empty() {
            return Vec::new();
        }
        self.retry_wait.retain(|Reverse((_, id))| !ids.contains(id));
        self.ready.retain(|id| !ids.contains(id));
        let mut keys = rustc_hash::FxHashSet::default();
        let mut removed = Vec::with_capacity(ids.len());
        for id in &ids {
            self.leave_half(*id);
            let pending = self.records.remove(id).expect("found records exist");
            keys.extend(pending.key);
            removed.push(pending.line);
        }
        // Each user's queue once, not once per record: an erased user may have thousands.
        for key in keys {
            let queue = self.by_key.get_mut(&key).expect("keyed records are queued");
            queue.retain(|r| !ids.contains(r));
            match queue.first().copied() {
                None => {
                    self.by_key.remove(&key);
                }
                Some(next) => {
                    let next_pending = self.records.get_mut(&next).expect("queued records exist");
                    if next_pending.state == State::Queued {
                        next_pending.state = State::Ready;
                        next_pending.ready_at = now;
                        self.ready.push_back(next);
                    }
                }
            }
        }
        removed
    }

    /// Removes a resolved record; the next record of its user becomes ready. Returns its line.
    fn resolve(&mut self, id: RecordId, now: Instant) -> u64 {
        self.leave_half(id);
        let pending = self.records.remove(&id).expect("resolved records exist");
        if pending.state == State::Ready {
            self.ready.retain(|r| *r != id);
        }
        if let Some(key) = pending.key {
            let queue = self.by_key.get_mut(&key).expect("keyed records are queued");
            queue.retain(|r| *r != id);
            match queue.first().copied() {
                None => {
                    self.by_key.remove(&key);
                }
                Some(next) => {
                    let next_pending = self.records.get_mut(&next).expect("queued records exist");
                    if next_pending.state == State::Queued {
                        next_pending.state = State::Ready;
                        next_pending.ready_at = now;
                        self.ready.push_back(next);
                    }
                }
            }
        }
        pending.line
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, Instant};

    use hardal_core::{
        BatchLimits, Batcher, Destination, Event, HttpMethod, HttpRequest, HttpResponse,
        LimitsBatcher, MapContext, Mapped, MappingError, Record, RetryAfter, SendContext, Verdict,
    };

    use super::{Lane, RecordId, Resolution};
    use crate::delivery::retry::{Decision, RetryPolicy};

    /// A destination whose records are their payload text; `max` records per request.
    struct Fake {
        max: usize,
    }

    impl Destination for Fake {
        fn id(&self) -> &str {
            "fake"
        }
        fn kind(&self) -> &'static str {
            "fake"
        }
        fn map(&self, _: &Event, _: &MapContext) -> Result<Mapped, MappingError> {
            unreachable!()
        }
        fn batch_limits(&self) -> BatchLimits {
            BatchLimits {
                max_records: self.max,
                max_bytes: 1_000_000,
            }
        }
        fn body_size(&self, records: usize, payload_bytes: usize) -> usize {
            payload_bytes + records
        }
        fn encode(&self, _: &[&Record], _: &SendContext) -> HttpRequest {
            HttpRequest {
                method: HttpMethod::Post,
                url: String::new(),
                headers: vec![],
                body: vec![],
            }
        }
        fn judge(&self, records: &[&Record], response: &HttpResponse) -> Vec<Verdict> {
            vec![response.status_verdict(); records.len()]
        }
    }

    /// `(user, name)` records, accepted in order; names are the payloads.
    fn lane(records: &[(&str, &str)], now: Instant) -> Lane {
        let mut lane = Lane::new(None);
        for (line, (user, name)) in records.iter().enumerate() {
            let key = (!user.is_empty()).then(|| user.to_string());
            lane.accept(
                line as u64 + 1,
                Record {
                    payload: name.as_bytes().to_vec(),
                    order_key: key,
                    batch_key: None,
                },
                now,
            );
        }
        lane
    }

    fn names(lane: &Lane, batch: &[RecordId]) -> Vec<String> {
        batch
            .iter()
            .map(|id| String::from_utf8(lane.record(*id).record.payload.clone()).unwrap())
            .collect()
    }

    fn retry_at(at: Instant) -> impl FnMut(&super::Pending, Option<RetryAfter>) -> Decision {
        move |_, _| Decision::RetryAt(at)
    }

    const LINGER: Duration = Duration::from_millis(100);

    #[test]
    fn an_erased_users_records_are_removed_except_those_in_flight() {
        let t0 = Instant::now();
        let fake = Fake { max: 2 };
        // Lines 1..=6: e is the erased user.
        let mut lane = lane(
            &[
                ("e", "e1"),
                ("e", "e2"),
                ("b", "b1"),
                ("e", "e3"),
                ("b", "b2"),
                ("e", "e4"),
            ],
            t0,
        );
        // e1 and e2 go in one request and are in flight.
        let in_flight = lane.next_batch(&fake, t0, 1, LINGER, true).unwrap();
        assert_eq!(names(&lane, &in_flight), ["e1", "e2"]);
        let erased: rustc_hash::FxHashSet<u64> = [1, 2, 4, 6].into_iter().collect();
        let mut removed = lane.remove_lines(&erased, t0);
        removed.sort_unstable();
        assert_eq!(removed, [4, 6]);
        lane.check_invariants();
        // The request in flight is tried again: its records are removed then.
        let retry = Verdict::Retry {
            reason: "HTTP 503".into(),
            after: None,
        };
        let resolved = lane.complete(&in_flight, vec![retry.clone(), retry], t0, retry_at(t0));
        assert!(resolved.is_empty());
        let mut removed = lane.remove_lines(&erased, t0);
        removed.sort_unstable();
        assert_eq!(removed, [1, 2]);
        lane.check_invariants();
        // Only b's records are left, in order.
        let batch = lane.next_batch(&fake, t0, 1, LINGER, true).unwrap();
        assert_eq!(names(&lane, &batch), ["b1", "b2"]);
        assert_eq!(lane.pending(), 2);
    }

    #[test]
    fn a_users_records_travel_together_in_order_and_wait_behind_a_retry() {
        let t0 = Instant::now();
        let fake = Fake { max: 10 };
        let mut lane = lane(
            &[
                ("a", "a1"),
                ("b", "b1"),
                ("a", "a2"),
                ("", "x"),
                ("a", "a3"),
            ],
            t0,
        );
        let batch = lane.next_batch(&fake, t0, 4, LINGER, true).unwrap();
        // a1 is followed by a2 and a3 in the same request, in order.
        assert_eq!(names(&lane, &batch), ["a1", "a2", "a3", "b1", "x"]);
        let later = t0 + Duration::from_secs(1);
        let verdicts = vec![
            Verdict::Retry {
                reason: "HTTP 503".into(),
                after: None,
            },
            Verdict::Retry {
                reason: "HTTP 503".into(),
                after: None,
            },
            Verdict::Retry {
                reason: "HTTP 503".into(),
                after: None,
            },
            Verdict::Delivered,
            Verdict::Delivered,
        ];
        let resolved = lane.complete(&batch, verdicts, t0, retry_at(later));
        assert_eq!(
            resolved,
            [(2, Resolution::Delivered), (4, Resolution::Delivered)]
        );
        // A new record of user a arrives: it must wait behind a1's retry, not go alone.
        lane.accept(
            6,
            Record {
                payload: b"a4".to_vec(),
                order_key: Some("a".into()),
                batch_key: None,
            },
            t0,
        );
        assert_eq!(lane.next_batch(&fake, t0, 4, LINGER, true), None);
        let batch = lane.next_batch(&fake, later, 4, LINGER, true).unwrap();
        assert_eq!(names(&lane, &batch), ["a1", "a2", "a3", "a4"]);
        assert_eq!(lane.record(batch[0]).attempts, 2);
        assert_eq!(lane.record(batch[0]).reasons, ["attempt 1: HTTP 503"]);
    }

    #[test]
    fn a_record_keeps_the_first_and_last_reasons_of_many_attempts() {
        let mut reasons = Vec::new();
        for attempt in 1..=1000 {
            let reason = if attempt % 2 == 0 {
                "HTTP 503"
            } else {
                "timed out"
            };
            super::keep_reason(&mut reasons, attempt, reason);
        }
        assert_eq!(
            reasons,
            [
                "attempt 1: timed out",
                "attempt 2: HTTP 503",
                "attempt 3: timed out",
                "(… 994 more lines of reasons …)",
                "attempt 998: HTTP 503",
                "attempt 999: timed out",
                "attempt 1000: HTTP 503",
            ]
        );
        // A long outage with one reason is one line.
        let mut reasons = Vec::new();
        super::keep_reason(&mut reasons, 1, "HTTP 500");
        for attempt in 2..=1000 {
            super::keep_reason(&mut reasons, attempt, "could not connect");
        }
        assert_eq!(
            reasons,
            ["attempt 1: HTTP 500", "attempts 2–1000: could not connect"]
        );
    }

    #[test]
    fn batches_respect_the_record_limit_and_linger() {
        let t0 = Instant::now();
        let fake = Fake { max: 2 };
        let mut lane = lane(&[("a", "a1"), ("b", "b1"), ("c", "c1")], t0);
        // Full batches go at once; the partial one waits for linger unless flushing.
        let batch = lane.next_batch(&fake, t0, 4, LINGER, false).unwrap();
        assert_eq!(names(&lane, &batch), ["a1", "b1"]);
        assert_eq!(lane.next_batch(&fake, t0, 4, LINGER, false), None);
        assert_eq!(lane.next_wakeup(t0, 4, false), Some(t0 + LINGER));
        let batch = lane
            .next_batch(&fake, t0 + LINGER, 4, LINGER, false)
            .unwrap();
        assert_eq!(names(&lane, &batch), ["c1"]);
    }

    /// A `Fake` that counts the records its batchers are offered: the work of planning.
    struct Counting {
        fake: Fake,
        offers: AtomicUsize,
    }

    struct CountingBatcher<'a> {
        inner: LimitsBatcher<'a, Fake>,
        offers: &'a AtomicUsize,
    }

    impl Batcher for CountingBatcher<'_> {
        fn offer(&mut self, record: &Record) -> bool {
            self.offers.fetch_add(1, Ordering::Relaxed);
            self.inner.offer(record)
        }
    }

    impl Destination for Counting {
        fn id(&self) -> &str {
            "counting"
        }
        fn kind(&self) -> &'static str {
            "fake"
        }
        fn map(&self, _: &Event, _: &MapContext) -> Result<Mapped, MappingError> {
            unreachable!()
        }
        fn batch_limits(&self) -> BatchLimits {
            self.fake.batch_limits()
        }
        fn body_size(&self, records: usize, payload_bytes: usize) -> usize {
            self.fake.body_size(records, payload_bytes)
        }
        fn batcher(&self) -> Box<dyn Batcher + '_> {
            Box::new(CountingBatcher {
                inner: LimitsBatcher::new(&self.fake),
                offers: &self.offers,
            })
        }
        fn encode(&self, records: &[&Record], context: &SendContext) -> HttpRequest {
            self.fake.encode(records, context)
        }
        fn judge(&self, records: &[&Record], response: &HttpResponse) -> Vec<Verdict> {
            self.fake.judge(records, response)
        }
    }

    /// Records arriving one by one while a batch lingers (a NATS worker gets a few per message)
    /// do not make the lane walk the whole batch again for each: planning work stays linear. A
    /// batch that reaches the record limit still goes at once, and a partial one at its linger.
    #[test]
    fn a_lingering_batch_is_not_planned_again_for_every_arrival() {
        let t0 = Instant::now();
        let max = 1000;
        let counting = Counting {
            fake: Fake { max },
            offers: AtomicUsize::new(0),
        };
        let mut lane = Lane::new(None);
        // Seven users share the first batch; the later records are other users', who have
        // nothing in flight.
        let record = |i: usize| Record {
            payload: format!("r{i}").into_bytes(),
            order_key: Some(format!("user{}", if i < max { i % 7 } else { i })),
            batch_key: None,
        };
        // A batch is full once the batcher refuses a record: at the limit's first record over.
        for i in 0..max {
            lane.accept(i as u64 + 1, record(i), t0);
            assert_eq!(lane.next_batch(&counting, t0, 4, LINGER, false), None);
            assert_eq!(lane.next_wakeup(t0, 4, false), Some(t0 + LINGER));
        }
        let offers = counting.offers.load(Ordering::Relaxed);
        assert!(
            offers <= 4 * max,
            "{offers} offers to plan {max} records arriving one by one"
        );
        lane.accept(max as u64 + 1, record(max), t0);
        let full = lane.next_batch(&counting, t0, 4, LINGER, false).unwrap();
        assert_eq!(full.len(), max, "the batch went as soon as it was full");

        for i in max + 1..max + 10 {
            lane.accept(i as u64 + 1, record(i), t0);
            assert_eq!(lane.next_batch(&counting, t0, 4, LINGER, false), None);
        }
        let partial = lane
            .next_batch(&counting, t0 + LINGER, 4, LINGER, false)
            .unwrap();
        assert_eq!(names(&lane, &partial).len(), 10);
        // The record left over from the full batch goes first.
        assert_eq!(names(&lane, &partial)[0], format!("r{max}"));
    }

    #[test]
    fn concurrency_and_backoff_gate_requests() {
        let t0 = Instant::now();
        let fake = Fake { max: 1 };
        let mut lane = lane(&[("a", "a1"), ("b", "b1"), ("c", "c1")], t0);
        let first = lane.next_batch(&fake, t0, 1, LINGER, true).unwrap();
        assert_eq!(
            lane.next_batch(&fake, t0, 1, LINGER, true),
            None,
            "one request in flight at most"
        );
        let until = t0 + Duration::from_secs(2);
        let verdicts = vec![Verdict::Retry {
            reason: "HTTP 429".into(),
            after: Some(RetryAfter::Delay(Duration::from_secs(2))),
        }];
        lane.complete(&first, verdicts, t0, retry_at(until));
        // The whole destination waits out the 429, not only the record that got it.
        assert_eq!(
            lane.next_batch(&fake, t0 + Duration::from_secs(1), 1, LINGER, true),
            None
        );
        assert_eq!(lane.next_wakeup(t0, 1, true), Some(until));
        let batch = lane.next_batch(&fake, until, 1, LINGER, true).unwrap();
        assert_eq!(
            names(&lane, &batch),
            ["a1"],
            "the retried record goes first"
        );
    }

    #[test]
    fn pause_keeps_every_record() {
        let t0 = Instant::now();
        let fake = Fake { max: 10 };
        let mut lane = lane(&[("a", "a1"), ("a", "a2")], t0);
        let batch = lane.next_batch(&fake, t0, 4, LINGER, true).unwrap();
        let verdicts = vec![
            Verdict::Pause {
                reason: "HTTP 401".into()
            };
            2
        ];
        let resolved = lane.complete(&batch, verdicts, t0, retry_at(t0));
        assert!(resolved.is_empty());
        assert_eq!(lane.paused(), Some("HTTP 401"));
        assert_eq!(lane.pending(), 2);
        assert_eq!(lane.next_batch(&fake, t0, 4, LINGER, true), None);
    }

    #[test]
    fn a_probe_sends_one_request_and_resumes_or_pauses_again() {
        let t0 = Instant::now();
        let fake = Fake { max: 1 };
        let mut lane = lane(&[("a", "a1"), ("b", "b1"), ("c", "c1")], t0);
        let pause = |n| {
            vec![
                Verdict::Pause {
                    reason: "HTTP 401".into()
                };
                n
            ]
        };
        let first = lane.next_batch(&fake, t0, 4, LINGER, true).unwrap();
        lane.complete(&first, pause(1), t0, retry_at(t0));
        assert!(lane.paused().is_some());
        // On trial: one request only, and its 401 pauses the lane again.
        lane.probe(t0);
        let trial = lane.next_batch(&fake, t0, 4, LINGER, true).unwrap();
        assert_eq!(lane.next_batch(&fake, t0, 4, LINGER, true), None);
        lane.complete(&trial, pause(1), t0, retry_at(t0));
        assert!(lane.paused().is_some());
        // The next trial succeeds: the lane flows with its full concurrency again.
        lane.probe(t0);
        let trial = lane.next_batch(&fake, t0, 4, LINGER, true).unwrap();
        let resolved = lane.complete(&trial, vec![Verdict::Delivered], t0, retry_at(t0));
        assert_eq!(resolved.len(), 1);
        assert!(lane.paused().is_none());
        assert!(lane.next_batch(&fake, t0, 4, LINGER, true).is_some());
        assert!(lane.next_batch(&fake, t0, 4, LINGER, true).is_some());
    }

    #[test]
    fn time_spent_paused_does_not_use_up_the_retry_budget() {
        let t0 = Instant::now();
        let wall = std::time::SystemTime::now();
        let fake = Fake { max: 1 };
        let mut lane = lane(&[("a", "a1")], t0);
        let policy = RetryPolicy {
            max_attempts: 100,
            max_elapsed: Duration::from_secs(60),
            initial: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
        };
        let policy = &policy;
        let decide = |now: Instant| {
            move |pending: &super::Pending, after| {
                policy.decide(
                    pending.attempts,
                    pending.first_attempt.unwrap(),
                    now,
                    after,
                    wall,
                    0.5,
                )
            }
        };
        let unavailable = || {
            vec![Verdict::Retry {
                reason: "HTTP 503".into(),
                after: None,
            }]
        };
        // Sent at t0: a 503, retried a second later, when a 401 pauses the destination.
        let batch = lane.next_batch(&fake, t0, 4, LINGER, true).unwrap();
        assert!(
            lane.complete(&batch, unavailable(), t0, decide(t0))
                .is_empty()
        );
        let t1 = t0 + Duration::from_secs(1);
        let batch = lane.next_batch(&fake, t1, 4, LINGER, true).unwrap();
        let pause = vec![Verdict::Pause {
            reason: "HTTP 401".into(),
        }];
        assert!(lane.complete(&batch, pause, t1, decide(t1)).is_empty());
        // Fifteen minutes later the token works again; the probe meets a 503. The record has
        // spent a second of its minute, not sixteen minutes: it is retried.
        let t2 = t1 + Duration::from_secs(15 * 60);
        lane.probe(t2);
        let batch = lane.next_batch(&fake, t2, 4, LINGER, true).unwrap();
        let resolved = lane.complete(&batch, unavailable(), t2, decide(t2));
        assert!(resolved.is_empty(), "{resolved:?}");
        // Its budget still runs while the destination is not paused.
        let t3 = t2 + Duration::from_secs(61);
        let batch = lane.next_batch(&fake, t3, 4, LINGER, true).unwrap();
        let resolved = lane.complete(&batch, unavailable(), t3, decide(t3));
        assert!(
            matches!(&resolved[..], [(_, Resolution::Exhausted(_))]),
            "{resolved:?}"
        );
    }

    #[test]
    fn exhausted_records_resolve_with_every_reason_and_unblock_their_user() {
        let t0 = Instant::now();
        let fake = Fake { max: 1 };
        let mut lane = lane(&[("a", "a1"), ("a", "a2")], t0);
        let batch = lane.next_batch(&fake, t0, 4, LINGER, true).unwrap();
        assert_eq!(names(&lane, &batch), ["a1"]);
        let verdicts = vec![Verdict::Retry {
            reason: "HTTP 500".into(),
            after: None,
        }];
        let resolved = lane.complete(&batch, verdicts, t0, |_, _| {
            Decision::GiveUp("gave up after 1 attempts".into())
        });
        assert_eq!(
            resolved,
            [(
                1,
                Resolution::Exhausted(vec![
                    "attempt 1: HTTP 500".into(),
                    "gave up after 1 attempts".into()
                ])
            )]
        );
        let batch = lane.next_batch(&fake, t0, 4, LINGER, true).unwrap();
        assert_eq!(names(&lane, &batch), ["a2"]);
    }

    /// Sends `records` (`(user, name)`, accepted in order) to a destination that refuses a whole
    /// request with a split while it holds a record named in `bad`, and delivers it otherwise,
    /// until every record is resolved (flushing: lingering is another test's business). Split
    /// halves must go at once (no backoff). Returns the requests made (their sizes), and each resolution with the record's name in
    /// the order they happened.
    fn run_splits(
        records: &[(String, String)],
        bad: &[&str],
        max: usize,
        concurrency: usize,
    ) -> (Vec<usize>, Vec<(String, Resolution)>) {
        let t0 = Instant::now();
        let fake = Fake { max };
        let records: Vec<(&str, &str)> = records
            .iter()
            .map(|(user, name)| (user.as_str(), name.as_str()))
            .collect();
        let mut lane = lane(&records, t0);
        let name_of = |line: u64| records[line as usize - 1].1.to_owned();
        let mut requests = Vec::new();
        let mut resolutions = Vec::new();
        while lane.pending() > 0 {
            let mut in_flight = Vec::new();
            while let Some(batch) = lane.next_batch(&fake, t0, concurrency, LINGER, true) {
                in_flight.push(batch);
            }
            assert!(!in_flight.is_empty(), "records waited after a split");
            for batch in in_flight {
                requests.push(batch.len());
                let sent = names(&lane, &batch);
                let verdict = if sent.iter().any(|n| bad.contains(&n.as_str())) {
                    Verdict::Split {
                        reason: "HTTP 400: invalid parameter".into(),
                    }
                } else {
                    Verdict::Delivered
                };
                let verdicts = vec![verdict; batch.len()];
                let resolved = lane.complete(&batch, verdicts, t0, |_, _| {
                    panic!("a split must not consult the retry policy")
                });
                resolutions.extend(resolved.into_iter().map(|(line, r)| (name_of(line), r)));
                lane.check_invariants();
            }
        }
        (requests, resolutions)
    }

    /// `n` records of users `u0`…`u{users-1}` in turn, named `r0`…`r{n-1}`.
    fn numbered(n: usize, users: usize) -> Vec<(String, String)> {
        (0..n)
            .map(|i| (format!("u{}", i % users), format!("r{i}")))
            .collect()
    }

    /// The outcome of a split run as one line: requests, delivered, rejected (with names).
    fn split_summary(requests: &[usize], resolutions: &[(String, Resolution)]) -> String {
        let delivered = resolutions
            .iter()
            .filter(|(_, r)| *r == Resolution::Delivered)
            .count();
        let rejected: Vec<String> = resolutions
            .iter()
            .filter_map(|(name, r)| match r {
                Resolution::Rejected(reason) => Some(format!("{name} ({reason})")),
                _ => None,
            })
            .collect();
        format!(
            "{} requests, {delivered} delivered, rejected: {}",
            requests.len(),
            rejected.join(", ")
        )
    }

    #[test]
    fn a_split_corners_one_bad_record_in_at_most_2_log2_n_plus_1_requests() {
        let records = numbered(1000, 1);
        let many_users = numbered(1000, 50);
        for (bad, concurrency, expected) in [
            (
                "r500",
                1,
                "21 requests, 999 delivered, rejected: r500 (HTTP 400: invalid parameter)",
            ),
            (
                "r500",
                4,
                "21 requests, 999 delivered, rejected: r500 (HTTP 400: invalid parameter)",
            ),
            (
                "r0",
                4,
                "21 requests, 999 delivered, rejected: r0 (HTTP 400: invalid parameter)",
            ),
            (
                "r999",
                4,
                "19 requests, 999 delivered, rejected: r999 (HTTP 400: invalid parameter)",
            ),
        ] {
            for records in [&records, &many_users] {
                let (requests, resolutions) = run_splits(records, &[bad], 1000, concurrency);
                assert_eq!(
                    split_summary(&requests, &resolutions),
                    expected,
                    "bad {bad}"
                );
                assert!(requests.len() <= 21, "{requests:?}");
            }
        }
        // The halves, for one user, whose records must stay in order: 1000; the first 500
        // delivered; halves of the rest down to r500 alone; then the records behind it in the
        // sizes their caps allow.
        let (requests, _) = run_splits(&records, &["r500"], 1000, 1);
        assert_eq!(
            requests,
            [
                1000, 500, 500, 250, 125, 63, 32, 16, 8, 4, 2, 1, 1, 2, 4, 8, 16, 31, 62, 125, 250
            ]
        );
    }

    #[test]
    fn two_bad_records_are_each_cornered_and_the_rest_delivered() {
        let records = numbered(1000, 1);
        for (bad, expected) in [
            (
                ["r10", "r900"],
                "39 requests, 998 delivered, rejected: r10 (HTTP 400: invalid parameter), r900 (HTTP 400: invalid parameter)",
            ),
            (
                ["r0", "r999"],
                "37 requests, 998 delivered, rejected: r0 (HTTP 400: invalid parameter), r999 (HTTP 400: invalid parameter)",
            ),
            (
                ["r2", "r3"],
                "21 requests, 998 delivered, rejected: r2 (HTTP 400: invalid parameter), r3 (HTTP 400: invalid parameter)",
            ),
        ] {
            let (requests, resolutions) = run_splits(&records, &bad, 1000, 4);
            // Each bad record costs at most its own 2·⌈log2 n⌉ + 1 requests.
            assert!(requests.len() <= 2 * 21, "{requests:?}");
            assert_eq!(
                split_summary(&requests, &resolutions),
                expected,
                "bad {bad:?}"
            );
        }
    }

    #[test]
    fn splits_keep_each_users_order() {
        // Three users interleaved, a bad record in the middle of u1's; batches of 64.
        let records = numbered(300, 3);
        let (requests, resolutions) = run_splits(&records, &["r151"], 64, 2);
        assert_eq!(
            split_summary(&requests, &resolutions),
            "18 requests, 299 delivered, rejected: r151 (HTTP 400: invalid parameter)"
        );
        // Every user's records resolved in the order they were accepted.
        for user in ["u0", "u1", "u2"] {
            let accepted: Vec<&str> = records
                .iter()
                .filter(|(u, _)| u == user)
                .map(|(_, n)| n.as_str())
                .collect();
            let resolved: Vec<&str> = resolutions
                .iter()
                .map(|(n, _)| n.as_str())
                .filter(|n| accepted.contains(n))
                .collect();
            assert_eq!(resolved, accepted, "{user}");
        }
    }

    #[test]
    fn a_half_waiting_for_the_other_half_goes_when_that_one_is_answered() {
        // The request is a1 a2 | a3 b1: the second half holds a3, which must wait for a2, so the
        // whole half waits (b1 is ready, but goes only with its half), and the lane must not
        // wake up for it before the first half is answered.
        let t0 = Instant::now();
        let fake = Fake { max: 10 };
        let mut lane = lane(&[("a", "a1"), ("b", "b1"), ("a", "a2"), ("a", "a3")], t0);
        let batch = lane.next_batch(&fake, t0, 4, LINGER, true).unwrap();
        assert_eq!(names(&lane, &batch), ["a1", "a2", "a3", "b1"]);
        let split = |n| {
            vec![
                Verdict::Split {
                    reason: "HTTP 400".into()
                };
                n
            ]
        };
        let never = |_: &super::Pending, _| -> Decision { panic!("no retry decision") };
        lane.complete(&batch, split(4), t0, never);
        let first = lane.next_batch(&fake, t0, 4, LINGER, false).unwrap();
        assert_eq!(names(&lane, &first), ["a1", "a2"]);
        assert_eq!(lane.next_batch(&fake, t0, 4, LINGER, false), None);
        assert_eq!(
            lane.next_wakeup(t0, 4, false),
            None,
            "nothing to wake up for"
        );
        lane.complete(&first, vec![Verdict::Delivered; 2], t0, never);
        let second = lane.next_batch(&fake, t0, 4, LINGER, false).unwrap();
        assert_eq!(names(&lane, &second), ["a3", "b1"]);
    }

    #[test]
    fn a_split_costs_no_attempt_and_a_lone_split_record_is_rejected() {
        let t0 = Instant::now();
        let fake = Fake { max: 10 };
        let mut lane = lane(&[("a", "a1"), ("b", "b1"), ("a", "a2")], t0);
        let batch = lane.next_batch(&fake, t0, 4, LINGER, true).unwrap();
        assert_eq!(names(&lane, &batch), ["a1", "a2", "b1"]);
        let split = vec![
            Verdict::Split {
                reason: "HTTP 400: bad".into()
            };
            3
        ];
        let never = |_: &super::Pending, _| -> Decision { panic!("no retry decision") };
        assert!(lane.complete(&batch, split.clone(), t0, never).is_empty());
        assert_eq!(lane.splits(), 1);
        for id in &batch {
            assert_eq!(
                lane.record(*id).attempts,
                0,
                "the split send counts for nothing"
            );
            assert_eq!(lane.record(*id).first_attempt, None);
        }
        // Half of three, rounded up: a1 with a2 behind it, then b1, each at once.
        let first = lane.next_batch(&fake, t0, 4, LINGER, false).unwrap();
        assert_eq!(names(&lane, &first), ["a1", "a2"]);
        let second = lane.next_batch(&fake, t0, 4, LINGER, false).unwrap();
        assert_eq!(names(&lane, &second), ["b1"]);
        assert_eq!(
            lane.complete(&second, split[..1].to_vec(), t0, never),
            [(2, Resolution::Rejected("HTTP 400: bad".into()))]
        );
        assert_eq!(lane.splits(), 1, "a lone record is rejected, not split");
    }
}
