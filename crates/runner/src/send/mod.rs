//! `hardal send`: delivers a file of events (a backfill) to every destination of a configuration.
//!
//! The engine is one task that owns all delivery state. Around it: the pipeline (reader and
//! mapping threads, `pipeline.rs`), request tasks (the transport), and the stores that make a run
//! resumable and lossless: the checkpoint (`checkpoint.rs`) and the dead letters
//! (`dead_letters.rs`). Per destination, a `Lane` decides what may be sent when (batching,
//! per-user order, concurrency, rate limit, backoff) and what each verdict does; `retry.rs` holds
//! the retry policy. Every accepted event ends delivered, skipped, or in the dead letters with its
//! reasons; an interrupted or paused run leaves the rest to the next run of the same command.

pub mod checkpoint;
mod dead_letters;
mod lane;
mod pipeline;
mod progress;
mod rate;
// Public only for the fuzz targets (crates/fuzz), which feed it arbitrary Retry-After values.
#[doc(hidden)]
pub mod retry;

use std::collections::BTreeMap;
use std::future::Future;
use std::io::BufRead;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use hardal_core::{Destination, HttpResponse, Note, Outcome as MappedOutcome, Record, Verdict};
use rustc_hash::FxHashMap as HashMap;

use self::checkpoint::{Checkpoint, ResolvedSet};
use self::dead_letters::DeadLetters;
use self::lane::{Lane, RecordId, Resolution};
use self::pipeline::{Chunk, LineOutcome, MappedLine, ReadProgress};
use self::progress::{Counts, Progress};
use self::retry::RetryPolicy;
use crate::config::schema::DeliveryConfig;
use crate::transport::Transport;

/// How to run `send`.
pub struct SendOptions {
    /// The events; `None` reads standard input.
    pub input: Option<PathBuf>,
    /// What identifies "the same command" for resuming (the configuration text, typically).
    pub identity: String,
    /// The checkpoint store (SQLite).
    pub state: PathBuf,
    pub dead_letters: PathBuf,
    /// Forget an earlier run of the same command and start from the first line.
    pub restart: bool,
    /// Map and batch, but send nothing and write nothing.
    pub dry_run: bool,
    /// How long in-flight requests may finish after an interrupt or pause.
    pub drain_timeout: Duration,
    /// Plain progress lines every this long when stderr is not a terminal (zero: none).
    pub progress_every: Duration,
    /// Mapping threads.
    pub workers: usize,
}

/// What one destination did in this run.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct DestinationSummary {
    pub id: String,
    pub delivered: u64,
    pub skipped: u64,
    /// Not sent: older than the destination keeps such events.
    pub expired: u64,
    /// Refused for good: by the destination's rules while mapping, or by the destination's answer.
    pub rejected: u64,
    /// Given up after the retry budget.
    pub dead_lettered: u64,
    /// Still unresolved when the run stopped (interrupted or paused); the next run sends them.
    pub unresolved: u64,
    pub requests: u64,
    pub records_retried: u64,
    pub paused: Option<String>,
    /// Events with a field repaired, with a field left out, and with some of their parts
    /// expired (the rest was sent).
    pub repaired: u64,
    pub fields_dropped: u64,
    pub partly_expired: u64,
    /// Events per change: `dropped attributes.country: not a country` → count.
    pub field_changes: BTreeMap<String, u64>,
}

/// The outcome of a run.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Summary {
    /// Non-empty input lines read in this run.
    pub events: u64,
    /// Lines an earlier run of the same command had already resolved.
    pub already_done: u64,
    /// Lines that are not JSON objects (dead-lettered).
    pub invalid: u64,
    pub destinations: Vec<DestinationSummary>,
    pub dead_letters_written: u64,
    pub dead_letters_file: Option<String>,
    pub elapsed_seconds: f64,
    pub interrupted: bool,
    /// Whether running the same command again continues this run (false for standard input).
    pub resumable: bool,
    /// Every event read was resolved and the input was read to its end.
    pub complete: bool,
    pub dry_run: bool,
    pub error: Option<String>,
}

impl Summary {
    /// Exit status 0 only when everything was delivered or deliberately skipped.
    pub fn success(&self) -> bool {
        self.complete
            && self.error.is_none()
            && self.invalid == 0
            && self
                .destinations
                .iter()
                .all(|d| d.rejected == 0 && d.dead_lettered == 0 && d.paused.is_none())
    }

    pub fn text(&self) -> String {
        let mut text = format!(
            "{}{} events read in {:.1} s",
            if self.dry_run { "dry run: " } else { "" },
            self.events,
            self.elapsed_seconds
        );
        if self.already_done > 0 {
            text.push_str(&format!(
                " ({} already handled by an earlier run)",
                self.already_done
            ));
        }
        if self.invalid > 0 {
            text.push_str(&format!("; {} invalid lines", self.invalid));
        }
        text.push('\n');
        let verb = if self.dry_run {
            "would deliver"
        } else {
            "delivered"
        };
        for d in &self.destinations {
            text.push_str(&format!(
                "  {}: {} {verb}, {} skipped, {} expired, {} rejected, {} dead-lettered, {} unresolved · {} requests, {} records retried\n",
                d.id, d.delivered, d.skipped, d.expired, d.rejected, d.dead_lettered, d.unresolved, d.requests, d.records_retried
            ));
            for (change, events) in &d.field_changes {
                text.push_str(&format!("    {change}: {events} events\n"));
            }
            if let Some(reason) = &d.paused {
                text.push_str(&format!(
                    "  {}: PAUSED — {reason}; fix the credentials and run the same command again\n",
                    d.id
                ));
            }
        }
        if let Some(file) = &self.dead_letters_file {
            text.push_str(&format!(
                "  dead letters: {} written to {file}\n",
                self.dead_letters_written
            ));
        }
        if let Some(error) = &self.error {
            text.push_str(&format!("  error: {error}\n"));
        }
        text.push_str(if self.success() {
            "  complete: every event was delivered or skipped"
        } else if self.complete {
            "  complete, with dead letters"
        } else if !self.resumable {
            "  incomplete: standard input cannot be resumed; send the events that were not delivered again"
        } else if self.interrupted {
            "  interrupted: run the same command again to continue where this run stopped"
        } else {
            "  incomplete: run the same command again to continue"
        });
        text
    }
}

/// Per-destination bookkeeping of events whose records are on their way.
struct EventTrack {
    raw: Arc<String>,
    remaining: usize,
    reasons: Vec<String>,
    exhausted: bool,
}

/// A finished request: which lane, which records, and the verdicts (or why there was no answer).
struct Completion {
    lane: usize,
    batch: Vec<RecordId>,
    result: Result<Vec<Verdict>, String>,
}

/// How an event ended for one destination.
#[derive(Debug, Clone, Copy)]
enum Ending {
    Delivered,
    Skipped,
    Expired,
    Rejected,
    DeadLettered,
}

/// Runs `send` to the end of the input, an interrupt (`interrupt` completes), or a pause.
pub async fn send(
    destinations: Vec<Box<dyn Destination>>,
    delivery: &DeliveryConfig,
    options: SendOptions,
    interrupt: impl Future<Output = ()>,
) -> Summary {
    let started = Instant::now();
    let ids: Vec<String> = destinations.iter().map(|d| d.id().to_owned()).collect();
    let mut summary = Summary {
        destinations: ids
            .iter()
            .map(|id| DestinationSummary {
                id: id.clone(),
                ..Default::default()
            })
            .collect(),
        dry_run: options.dry_run,
        resumable: options.input.is_some() && !options.dry_run,
        ..Default::default()
    };
    let setup = match Setup::open(&options, &ids, delivery) {
        Ok(setup) => setup,
        Err(error) => {
            summary.error = Some(error);
            return summary;
        }
    };
    let destinations = Arc::new(destinations);
    let stop = Arc::new(AtomicBool::new(false));
    let read = Arc::new(ReadProgress::default());
    let (chunk_tx, mut chunk_rx) =
        tokio::sync::mpsc::channel::<Result<Chunk, String>>(options.workers.max(1) * 2);
    pipeline::spawn(
        setup.input,
        Arc::clone(&destinations),
        Arc::new(setup.resolved.clone()),
        options.workers,
        chunk_tx,
        Arc::clone(&stop),
        Arc::clone(&read),
    );
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel::<Completion>();
    let mut engine = Engine {
        lanes: destinations
            .iter()
            .map(|d| Lane::new(d.requests_per_minute()))
            .collect(),
        tracks: destinations.iter().map(|_| HashMap::default()).collect(),
        destinations,
        delivery,
        policy: RetryPolicy::from_config(delivery),
        linger: Duration::from_millis(delivery.linger_ms),
        transport: setup.transport,
        done: done_tx,
        books: Books {
            summary,
            dead_letters: DeadLetters::new(&options.dead_letters),
            to_record: ids.iter().map(|_| Vec::new()).collect(),
            ids,
            dry_run: options.dry_run,
        },
        checkpoint: setup.checkpoint,
        resolved: setup.resolved,
        stop,
    };

    let mut reorder: BTreeMap<u64, Vec<MappedLine>> = BTreeMap::new();
    let mut next_seq = 0u64;
    let mut input_done = false;
    let mut drain_deadline: Option<tokio::time::Instant> = None;
    let mut progress = Progress::new(Arc::clone(&read), setup.total_bytes, options.progress_every);
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut interrupt = std::pin::pin!(interrupt);

    loop {
        let now = Instant::now();
        let stopping = engine.stopping();
        let at_capacity = engine.at_capacity();
        let flush = input_done || stopping || at_capacity;
        if !stopping {
            engine.dispatch(now, flush);
        }
        if input_done && reorder.is_empty() && engine.pending() == 0 {
            engine.books.summary.complete = engine.books.summary.error.is_none();
            break;
        }
        if stopping {
            drain_deadline.get_or_insert(tokio::time::Instant::now() + options.drain_timeout);
            if engine.in_flight() == 0 {
                break;
            }
        }
        let wake = engine
            .next_wakeup(now, flush)
            .map(tokio::time::Instant::from_std);
        let accepting = !input_done && !stopping && !at_capacity;

        tokio::select! {
            biased;
            Some(completion) = done_rx.recv() => engine.complete(completion),
            chunk = chunk_rx.recv(), if accepting => match chunk {
                None => input_done = true,
                Some(Err(error)) => {
                    engine.books.summary.error.get_or_insert(error);
                    input_done = true;
                }
                Some(Ok(chunk)) => {
                    // Workers finish chunks out of order; events are accepted in input order.
                    reorder.insert(chunk.seq, chunk.lines);
                    while let Some(lines) = reorder.remove(&next_seq) {
                        next_seq += 1;
                        engine.accept(lines, Instant::now());
                    }
                }
            },
            () = sleep_until(wake) => {}
            () = &mut interrupt, if !stopping => {
                tracing::warn!("Interrupted: no more events are read; in-flight requests may finish.");
                engine.books.summary.interrupted = true;
                engine.stop_reading();
            }
            () = sleep_until(drain_deadline), if stopping => {
                tracing::warn!("In-flight requests did not finish in time; the next run sends them again.");
                break;
            }
            _ = tick.tick() => {
                engine.persist();
                progress.update(counts(&engine.books.summary), started);
            }
        }
    }

    engine.persist();
    engine.stop_reading();
    progress.finish();
    let mut summary = engine.finish();
    summary.events = read.lines.load(Ordering::Relaxed) - read.already_done.load(Ordering::Relaxed);
    summary.already_done = read.already_done.load(Ordering::Relaxed);
    summary.elapsed_seconds = started.elapsed().as_secs_f64();
    summary
}

/// Sleeps until `at`; never completes for `None`.
async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// What a run opens before it starts: the input, the checkpoint and the transport.
struct Setup {
    input: Box<dyn BufRead + Send>,
    total_bytes: Option<u64>,
    checkpoint: Option<Checkpoint>,
    resolved: Vec<ResolvedSet>,
    transport: Option<Transport>,
}

impl Setup {
    fn open(
        options: &SendOptions,
        ids: &[String],
        delivery: &DeliveryConfig,
    ) -> Result<Setup, String> {
        let buffered = |read: Box<dyn std::io::Read + Send>| -> Box<dyn BufRead + Send> {
            Box::new(std::io::BufReader::with_capacity(1 << 20, read))
        };
        let (label, total_bytes, input) = match &options.input {
            Some(path) => {
                let file = std::fs::File::open(path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                let label = std::fs::canonicalize(path)
                    .unwrap_or_else(|_| path.clone())
                    .display()
                    .to_string();
                (
                    label,
                    file.metadata().ok().map(|m| m.len()),
                    buffered(Box::new(file)),
                )
            }
            None => ("-".to_owned(), None, buffered(Box::new(std::io::stdin()))),
        };
        if options.dry_run {
            let resolved = vec![
                ResolvedSet {
                    watermark: 1,
                    ..Default::default()
                };
                ids.len()
            ];
            return Ok(Setup {
                input,
                total_bytes,
                checkpoint: None,
                resolved,
                transport: None,
            });
        }
        // "The same command" is the same input file and the same configuration. Standard input
        // is different data each time (a replay of dead letters, say), so it always starts fresh.
        let run = checkpoint::fnv1a(&[label.as_bytes(), options.identity.as_bytes()]);
        let (checkpoint, resolved) = Checkpoint::open(
            &options.state,
            &run,
            &label,
            ids,
            options.restart || options.input.is_none(),
        )?;
        let transport = Transport::new(Duration::from_millis(delivery.request_timeout_ms))?;
        Ok(Setup {
            input,
            total_bytes,
            checkpoint: Some(checkpoint),
            resolved,
            transport: Some(transport),
        })
    }
}

/// All delivery state of a run, owned by the engine task.
struct Engine<'a> {
    destinations: Arc<Vec<Box<dyn Destination>>>,
    delivery: &'a DeliveryConfig,
    policy: RetryPolicy,
    linger: Duration,
    lanes: Vec<Lane>,
    tracks: Vec<HashMap<u64, EventTrack>>,
    /// `None` in a dry run: every batch is "delivered" without a request.
    transport: Option<Transport>,
    done: tokio::sync::mpsc::UnboundedSender<Completion>,
    books: Books,
    checkpoint: Option<Checkpoint>,
    resolved: Vec<ResolvedSet>,
    stop: Arc<AtomicBool>,
}

impl Engine<'_> {
    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Stops reading input; in-flight requests may still finish.
    fn stop_reading(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    fn pending(&self) -> usize {
        self.lanes.iter().map(Lane::pending).sum()
    }

    fn in_flight(&self) -> usize {
        self.lanes.iter().map(Lane::in_flight).sum()
    }

    /// Reading waits while any destination is this far behind.
    fn at_capacity(&self) -> bool {
        self.lanes
            .iter()
            .any(|l| l.pending() >= self.delivery.max_pending_records)
    }

    fn next_wakeup(&self, now: Instant, flush: bool) -> Option<Instant> {
        self.lanes
            .iter()
            .filter_map(|lane| lane.next_wakeup(now, self.delivery.concurrency, flush))
            .min()
    }

    /// Sends every batch the lanes allow now.
    fn dispatch(&mut self, now: Instant, flush: bool) {
        for (index, lane) in self.lanes.iter_mut().enumerate() {
            let destination = self.destinations[index].as_ref();
            while let Some(batch) = lane.next_batch(
                destination,
                now,
                self.delivery.concurrency,
                self.linger,
                flush,
            ) {
                let records: Vec<&Record> =
                    batch.iter().map(|id| &lane.record(*id).record).collect();
                let request = destination.encode(&records);
                self.books.summary.destinations[index].requests += 1;
                let done = self.done.clone();
                let Some(transport) = &self.transport else {
                    let verdicts = vec![Verdict::Delivered; batch.len()];
                    let _ = done.send(Completion {
                        lane: index,
                        batch,
                        result: Ok(verdicts),
                    });
                    continue;
                };
                let transport = transport.clone();
                let destinations = Arc::clone(&self.destinations);
                tokio::spawn(async move {
                    let result = transport.send(request).await.map(|response: HttpResponse| {
                        destinations[index].judge(batch.len(), &response)
                    });
                    let _ = done.send(Completion {
                        lane: index,
                        batch,
                        result,
                    });
                });
            }
        }
    }

    /// Applies a finished request's verdicts, then makes what resolved durable.
    fn complete(&mut self, completion: Completion) {
        let now = Instant::now();
        let index = completion.lane;
        let verdicts = match completion.result {
            Ok(verdicts) => verdicts,
            Err(reason) => vec![
                Verdict::Retry {
                    reason,
                    after: None
                };
                completion.batch.len()
            ],
        };
        let retried = verdicts
            .iter()
            .filter(|v| matches!(v, Verdict::Retry { .. }))
            .count();
        self.books.summary.destinations[index].records_retried += retried as u64;
        let lane = &mut self.lanes[index];
        let (policy, wall) = (&self.policy, SystemTime::now());
        let resolutions = lane.complete(&completion.batch, verdicts, now, |pending, after| {
            let first = pending.first_attempt.unwrap_or(now);
            policy.decide(pending.attempts, first, now, after, wall, fastrand::f64())
        });
        if let Some(reason) = lane.paused() {
            let stats = &mut self.books.summary.destinations[index];
            if stats.paused.is_none() {
                tracing::error!(destination = %stats.id, %reason, "Destination paused: it refused our credentials; nothing more is sent to it.");
                stats.paused = Some(reason.to_owned());
            }
            self.stop_reading();
        }
        for (line, resolution) in resolutions {
            let track = self.tracks[index]
                .get_mut(&line)
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
                let track = self.tracks[index].remove(&line).expect("present");
                let outcome = match (track.exhausted, track.reasons.is_empty()) {
                    (true, _) => Ending::DeadLettered,
                    (false, false) => Ending::Rejected,
                    (false, true) => Ending::Delivered,
                };
                self.books
                    .finish(index, line, &track.raw, outcome, &track.reasons);
            }
        }
        self.persist();
    }

    /// Takes mapped input lines, in input order: skips and mapping rejections are resolved at
    /// once, records go to their destination's lane.
    fn accept(&mut self, lines: Vec<MappedLine>, now: Instant) {
        for mapped in lines {
            let line = mapped.line;
            let outcomes = match mapped.outcome {
                LineOutcome::Mapped(outcomes) => outcomes,
                LineOutcome::Invalid(reason) => {
                    self.books.invalid(line, reason, &mapped.raw);
                    continue;
                }
            };
            for (index, outcome) in outcomes.into_iter().enumerate() {
                let mapped_event = match outcome {
                    None => continue,
                    Some(Err(error)) => {
                        self.books.finish(
                            index,
                            line,
                            &mapped.raw,
                            Ending::Rejected,
                            &[error.to_string()],
                        );
                        continue;
                    }
                    Some(Ok(mapped_event)) => mapped_event,
                };
                self.books.note(index, &mapped_event.notes);
                match mapped_event.outcome {
                    MappedOutcome::Skipped(_) => {
                        self.books
                            .finish(index, line, &mapped.raw, Ending::Skipped, &[])
                    }
                    MappedOutcome::Expired(_) => {
                        self.books
                            .finish(index, line, &mapped.raw, Ending::Expired, &[])
                    }
                    MappedOutcome::Records(records) => {
                        let track = EventTrack {
                            raw: Arc::clone(&mapped.raw),
                            remaining: records.len(),
                            reasons: Vec::new(),
                            exhausted: false,
                        };
                        self.tracks[index].insert(line, track);
                        for record in records {
                            self.lanes[index].accept(line, record, now);
                        }
                    }
                }
            }
        }
    }

    /// Makes dead letters durable, then records resolved lines in the checkpoint — in that order,
    /// so a crash between the two can duplicate a dead letter but never lose one. A failure stops
    /// the run: without a checkpoint, a resumed run could not know what was delivered.
    fn persist(&mut self) {
        let to_record = &mut self.books.to_record;
        let Some(checkpoint) = &mut self.checkpoint else {
            to_record.iter_mut().for_each(Vec::clear);
            return;
        };
        if to_record.iter().all(Vec::is_empty) {
            return;
        }
        let written = self
            .books
            .dead_letters
            .sync()
            .and_then(|()| checkpoint.record(&mut self.books.to_record, &mut self.resolved));
        if let Err(error) = written {
            self.books.summary.error.get_or_insert(error);
            self.stop_reading();
        }
    }

    /// The summary, with what is still unresolved and where the dead letters went.
    fn finish(self) -> Summary {
        let mut summary = self.books.summary;
        if summary.complete
            && let Some(checkpoint) = &self.checkpoint
            && let Err(error) = checkpoint.complete()
        {
            summary.error.get_or_insert(error);
        }
        for (stats, lane) in summary.destinations.iter_mut().zip(&self.lanes) {
            stats.unresolved = lane.pending() as u64;
        }
        summary.dead_letters_written = self.books.dead_letters.written;
        if self.books.dead_letters.written > 0 {
            summary.dead_letters_file = Some(self.books.dead_letters.path().display().to_string());
        }
        summary
    }
}

/// Counts, dead letters and the lines waiting for the checkpoint: everything a destination
/// finished with an event goes through here.
struct Books {
    summary: Summary,
    dead_letters: DeadLetters,
    to_record: Vec<Vec<u64>>,
    ids: Vec<String>,
    dry_run: bool,
}

impl Books {
    /// Counts what a destination changed in an event, per field and rule.
    fn note(&mut self, lane: usize, notes: &[Note]) {
        let stats = &mut self.summary.destinations[lane];
        let mut counted = [false; 3];
        for note in notes {
            let key = format!("{} {}: {}", note.action.as_str(), note.field, note.rule);
            *stats.field_changes.entry(key).or_default() += 1;
            let slot = note.action as usize;
            if !counted[slot] {
                counted[slot] = true;
                match note.action {
                    hardal_core::NoteAction::Repaired => stats.repaired += 1,
                    hardal_core::NoteAction::Dropped => stats.fields_dropped += 1,
                    hardal_core::NoteAction::Expired => stats.partly_expired += 1,
                }
            }
        }
    }

    fn finish(&mut self, lane: usize, line: u64, raw: &str, outcome: Ending, reasons: &[String]) {
        let stats = &mut self.summary.destinations[lane];
        match outcome {
            Ending::Delivered => stats.delivered += 1,
            Ending::Skipped => stats.skipped += 1,
            Ending::Expired => stats.expired += 1,
            Ending::Rejected => stats.rejected += 1,
            Ending::DeadLettered => stats.dead_lettered += 1,
        }
        if matches!(outcome, Ending::Rejected | Ending::DeadLettered) {
            if self.dry_run {
                eprintln!(
                    "line {line}: destination `{}` would dead-letter it: {}",
                    self.ids[lane],
                    reasons.join(" | ")
                );
            } else if let Err(error) =
                self.dead_letters
                    .write(line, Some(&self.ids[lane]), reasons, raw)
            {
                // Without a dead-letter record the event must not count as resolved.
                self.summary.error.get_or_insert(error);
                return;
            }
        }
        self.to_record[lane].push(line);
    }

    /// A line that is not a JSON object: one dead letter, resolved for every destination.
    fn invalid(&mut self, line: u64, reason: String, raw: &str) {
        self.summary.invalid += 1;
        if self.dry_run {
            eprintln!("line {line}: {reason}");
        } else if let Err(error) =
            self.dead_letters
                .write(line, None, std::slice::from_ref(&reason), raw)
        {
            self.summary.error.get_or_insert(error);
            return;
        }
        for lines in &mut self.to_record {
            lines.push(line);
        }
    }
}

fn counts(summary: &Summary) -> Counts {
    let mut counts = Counts::default();
    for d in &summary.destinations {
        counts.delivered += d.delivered;
        counts.retried += d.records_retried;
        counts.dead_lettered += d.rejected + d.dead_lettered;
        counts.requests += d.requests;
    }
    counts
}
