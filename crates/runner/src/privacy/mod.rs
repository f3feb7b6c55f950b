//! Erasure: a user's request to be forgotten, carried through the backlog to every destination.
//!
//! One job, in this order, each step recorded in the backlog before the next starts and each
//! idempotent, so that a restart resumes at the first unfinished step (`serve` resumes pending
//! jobs when it starts):
//! 1. **Record and suppress** ([`Eraser::submit`]): the job (with the identifiers, kept only
//!    while it is pending) and one suppression entry per identifier hash, in one transaction;
//!    from then on ingestion drops the user's new events and delivery drops theirs before
//!    dispatch. The request is answered after this step.
//! 2. **Remove** the user's waiting events and dead letters from the backlog, and have the
//!    delivery engine drop those it holds.
//! 3. **Wait out** every request that was in flight when the engine dropped them: a deletion
//!    must not overtake a request that would create the profile again.
//! 4. **Ask each destination** to erase (`Destination::erasure`), through the transport, with
//!    the destination's retry policy and its erasure rate; a pause waits and tries again (the job
//!    stays pending). Each destination's outcome is recorded as it comes; then the job is
//!    complete, its identifiers wiped, and the audit record keeps only a digest.
//!
//! `request.rs` reads who is to be erased; `suppression.rs` is the list in memory; `send.rs`
//! sends one destination's requests.

pub mod command;
pub mod request;
mod send;
pub mod suppression;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hardal_core::Destination;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use self::request::Who;
use self::suppression::Suppression;
use crate::backlog::{
    Backlog, DestinationOutcome, ErasedMatcher, ErasureRecord, ErasureState, PendingErasure,
    SuppressionEntry,
};
use crate::config::DeliveryConfig;
use crate::redact::Redactor;
use crate::transport::Transport;

/// How old a pending job on a shared backlog must be for another node to take it up.
const ORPHANED_AFTER: Duration = Duration::from_secs(60);

/// Asks the delivery engine to drop the events of suppressed users it holds; the answer comes
/// once every request that was in flight then has finished.
pub type Barrier = mpsc::UnboundedSender<oneshot::Sender<()>>;

/// A test hook: `HARDAL_TEST_ERASURE_ABORT=<step>` aborts the process (as `kill -9` would) once
/// that step is recorded (`suppressed`, `removed`, `sending`, `destination`, `complete`).
fn abort_at(step: &str) {
    if std::env::var("HARDAL_TEST_ERASURE_ABORT").is_ok_and(|s| s == step) {
        tracing::warn!(
            step,
            "Aborting at an erasure step, as the test environment asks."
        );
        std::process::abort();
    }
}

fn now_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The suppression entries of one request: one per identifier hash, custom ones with their path.
pub fn entries(who: &Who, created: u64) -> Vec<SuppressionEntry> {
    let mut entries: Vec<SuppressionEntry> = Vec::new();
    let plain = Who {
        custom: Default::default(),
        ..who.clone()
    };
    for hash in plain.identifiers().hashes() {
        entries.push(SuppressionEntry {
            hash,
            path: None,
            created,
        });
    }
    for (key, values) in &who.custom {
        for value in &values.0 {
            let one = Who {
                custom: [(key.clone(), request::Many(vec![value.clone()]))].into(),
                ..Who::default()
            };
            for hash in one.identifiers().hashes() {
                entries.push(SuppressionEntry {
                    hash,
                    path: Some(key.clone()),
                    created,
                });
            }
        }
    }
    entries
}

/// Runs erasure jobs for one process.
pub struct Eraser {
    pub backlog: Arc<dyn Backlog>,
    pub destinations: Arc<Vec<Box<dyn Destination>>>,
    pub settings: Vec<DeliveryConfig>,
    pub redactor: Redactor,
    pub transport: Transport,
    pub suppression: Arc<Suppression>,
    /// The delivery engine of this process, when it delivers.
    pub barrier: Option<Barrier>,
    /// The longest wait between tries of a destination that paused.
    pub probe_max: Duration,
    /// Jobs submitted, for the task that runs them one after another.
    pub queue: mpsc::UnboundedSender<PendingErasure>,
}

impl Eraser {
    /// Step 1: records the job and suppresses the user; the rest runs in [`Eraser::run`].
    pub async fn submit(&self, who: &Who) -> Result<ErasureRecord, String> {
        who.check()?;
        let created = now_seconds();
        let identifiers = who.identifiers();
        let record = ErasureRecord {
            id: format!("er-{created}-{:08x}", fastrand::u32(..)),
            created,
            digest: identifiers.digest(),
            state: ErasureState::Suppressed,
            removed_events: None,
            removed_dead_letters: None,
            destinations: Vec::new(),
            completed: None,
        };
        let suppress = entries(who, created);
        let text = serde_json::to_string(who).expect("identifiers serialize");
        self.backlog
            .begin_erasure(record.clone(), text.clone(), suppress.clone())
            .await
            .map_err(|e| format!("the erasure could not be recorded: {e}"))?;
        self.suppression.add(&suppress);
        ::metrics::counter!("hardal_erasure_jobs_total", "outcome" => "accepted").increment(1);
        tracing::info!(job = %record.id, digest = %record.digest, "An erasure was recorded: the user is suppressed.");
        let _ = self.queue.send(PendingErasure {
            record: record.clone(),
            identifiers: text,
        });
        Ok(record)
    }

    /// Runs the jobs left pending by an earlier process (or recorded by [`Eraser::submit`]
    /// in this one without a running task); false when `stop` cut one off.
    pub async fn resume(&self, stop: &CancellationToken) -> bool {
        match self.backlog.pending_erasures().await {
            Ok(pending) => {
                for job in pending {
                    tracing::info!(job = %job.record.id, "Resuming a pending erasure.");
                    if !self.execute(job, stop).await {
                        return false;
                    }
                }
                true
            }
            Err(error) => {
                tracing::error!(%error, "Pending erasures could not be read; they are resumed at the next start.");
                true
            }
        }
    }

    /// Runs the pending jobs, then those submitted, one at a time, until `stop`; a job cut off
    /// by the stop stays pending for the next start.
    pub async fn run(
        self: Arc<Self>,
        mut queue: mpsc::UnboundedReceiver<PendingErasure>,
        stop: CancellationToken,
    ) {
        if !self.resume(&stop).await {
            return;
        }
        // On a shared backlog, a job whose node died is taken up by the others after a while
        // (two nodes running one job is harmless: every step is idempotent).
        let mut orphans = tokio::time::interval(ORPHANED_AFTER);
        orphans.reset();
        loop {
            let job = tokio::select! {
                job = queue.recv() => match job {
                    Some(job) => job,
                    None => return,
                },
                _ = orphans.tick(), if !self.backlog.suppression_delay().is_zero() => {
                    if !self.resume_orphans(&stop).await {
                        return;
                    }
                    continue;
                }
                () = stop.cancelled() => return,
            };
            if !self.execute(job, &stop).await {
                return;
            }
        }
    }

    /// Runs the pending jobs made more than [`ORPHANED_AFTER`] ago; false when `stop` cut one
    /// off.
    async fn resume_orphans(&self, stop: &CancellationToken) -> bool {
        let Ok(pending) = self.backlog.pending_erasures().await else {
            return true;
        };
        let before = now_seconds().saturating_sub(ORPHANED_AFTER.as_secs());
        for job in pending
            .into_iter()
            .filter(|job| job.record.created < before)
        {
            tracing::info!(job = %job.record.id, "Taking up a pending erasure another node left.");
            if !self.execute(job, stop).await {
                return false;
            }
        }
        true
    }

    /// Steps 2 to 4 of a job, from where it stands; false when `stop` cut it off.
    async fn execute(&self, job: PendingErasure, stop: &CancellationToken) -> bool {
        let who = match serde_json::from_str::<Who>(&job.identifiers) {
            Ok(who) => who,
            Err(error) => {
                tracing::error!(job = %job.record.id, %error, "A pending erasure's identifiers cannot be read; it is left pending.");
                return true;
            }
        };
        // Its latest record: a job queued while it was also resumed may be further on already.
        let mut record = match self.backlog.erasures(Some(&job.record.id)).await {
            Ok(records) => records.into_iter().next().unwrap_or(job.record),
            Err(_) => job.record,
        };
        if record.state == ErasureState::Complete {
            return true;
        }
        abort_at("suppressed");
        loop {
            let step = self.step(&who, &mut record, stop).await;
            match step {
                Ok(true) => {}
                Ok(false) => return true,
                Err(error) => {
                    tracing::error!(job = %record.id, %error, "An erasure step failed; it is tried again.");
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_secs(1)) => {}
                        () = stop.cancelled() => return false,
                    }
                }
            }
            if stop.is_cancelled() {
                return false;
            }
        }
    }

    /// Does the next step of a job and records it; false once the job is complete.
    async fn step(
        &self,
        who: &Who,
        record: &mut ErasureRecord,
        stop: &CancellationToken,
    ) -> Result<bool, String> {
        match record.state {
            ErasureState::Suppressed | ErasureState::Removed => {
                // The engine drops what it holds first (nothing more of the user is dispatched
                // after this), then the backlog's rows go; the engine answers once the
                // requests in flight at the drop have finished.
                let waited = self.barrier.as_ref().and_then(|barrier| {
                    let (tx, rx) = oneshot::channel();
                    barrier.send(tx).ok().map(|()| rx)
                });
                let removed = self
                    .backlog
                    .remove_erased(record.clone(), matcher(who))
                    .await
                    .map_err(|e| e.to_string())?;
                ::metrics::counter!("hardal_events_erased_total")
                    .increment(removed.removed_events.unwrap_or(0));
                *record = removed;
                abort_at("removed");
                if let Some(waited) = waited {
                    tokio::select! {
                        answered = waited => if answered.is_err() {
                            // Delivery stopped: the job goes on at the next start.
                            return Ok(false);
                        },
                        () = stop.cancelled() => return Ok(false),
                    }
                }
                // Other processes delivering from a shared backlog learn of the suppression
                // within its delay, drop what they hold, and finish their requests in flight
                // within a request timeout.
                let delay = self.backlog.suppression_delay();
                if !delay.is_zero() {
                    let longest = self
                        .settings
                        .iter()
                        .map(|s| Duration::from_millis(s.request_timeout_ms))
                        .max()
                        .unwrap_or_default();
                    tokio::select! {
                        () = tokio::time::sleep(delay + longest) => {}
                        () = stop.cancelled() => return Ok(false),
                    }
                }
                record.state = ErasureState::Sending;
                self.backlog
                    .record_erasure(record.clone())
                    .await
                    .map_err(|e| e.to_string())?;
                abort_at("sending");
                Ok(true)
            }
            ErasureState::Sending => {
                let identifiers = who.identifiers();
                for (lane, destination) in self.destinations.iter().enumerate() {
                    if record
                        .destinations
                        .iter()
                        .any(|o| o.destination == destination.id())
                    {
                        continue;
                    }
                    let Some(outcome) = self.erase_at(lane, &identifiers, who, stop).await else {
                        return Ok(false);
                    };
                    ::metrics::counter!(
                        "hardal_erasure_requests_total",
                        "destination" => destination.id().to_owned(),
                        "outcome" => outcome.0
                    )
                    .increment(1);
                    record.destinations.push(DestinationOutcome {
                        destination: destination.id().to_owned(),
                        outcome: outcome.0.to_owned(),
                        detail: outcome.1,
                        at: now_seconds(),
                    });
                    self.backlog
                        .record_erasure(record.clone())
                        .await
                        .map_err(|e| e.to_string())?;
                    abort_at("destination");
                }
                record.state = ErasureState::Complete;
                record.completed = Some(now_seconds());
                self.backlog
                    .record_erasure(record.clone())
                    .await
                    .map_err(|e| e.to_string())?;
                let failed = record.destinations.iter().any(|o| o.outcome == "failed");
                ::metrics::counter!("hardal_erasure_jobs_total", "outcome" => if failed { "failed" } else { "complete" }).increment(1);
                tracing::info!(job = %record.id, failed, "An erasure is complete.");
                abort_at("complete");
                Ok(false)
            }
            ErasureState::Complete => Ok(false),
        }
    }
}

/// Tells whether an event's text belongs to the user `who` names.
pub fn matcher(who: &Who) -> ErasedMatcher {
    let suppression = Suppression::new(&entries(who, 0));
    Arc::new(move |text: &str| suppression.matches_text(text))
}

/// A runner of erasure jobs with its queue.
pub fn eraser(
    backlog: Arc<dyn Backlog>,
    destinations: Arc<Vec<Box<dyn Destination>>>,
    settings: Vec<DeliveryConfig>,
    redactor: Redactor,
    suppression: Arc<Suppression>,
    barrier: Option<Barrier>,
    probe_max: Duration,
) -> Result<(Arc<Eraser>, mpsc::UnboundedReceiver<PendingErasure>), String> {
    let transport = Transport::new()?;
    let (queue, jobs) = mpsc::unbounded_channel();
    Ok((
        Arc::new(Eraser {
            backlog,
            destinations,
            settings,
            redactor,
            transport,
            suppression,
            barrier,
            probe_max,
            queue,
        }),
        jobs,
    ))
}
