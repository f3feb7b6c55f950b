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
mod retry;

use std::collections::BTreeMap;
use std::future::Future;
use std::io::BufRead;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use hardal_core::{Destination, HttpResponse, Mapped, Record, Verdict};
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
    /// Refused for good: by the destination's rules while mapping, or by the destination's answer.
    pub rejected: u64,
    /// Given up after the retry budget.
    pub dead_lettered: u64,
    /// Still unresolved when the run stopped (interrupted or paused); the next run sends them.
    pub unresolved: u64,
    pub requests: u64,
    pub records_retried: u64,
    pub paused: Option<String>,
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
                "  {}: {} {verb}, {} skipped, {} rejected, {} dead-lettered, {} unresolved · {} requests, {} records retried\n",
                d.id, d.delivered, d.skipped, d.rejected, d.dead_lettered, d.unresolved, d.requests, d.records_retried
            ));
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
        text.push_str(if self.interrupted {
            "  interrupted: run the same command again to continue where this run stopped"
        } else if self.success() {
            "  complete: every event was delivered or skipped"
        } else if self.complete {
            "  complete, with dead letters"
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

struct Completion {
    lane: usize,
    batch: Vec<RecordId>,
    result: Result<Vec<Verdict>, String>,
}

/// Runs `send` to the end of the input, an interrupt (`interrupt` completes), or a pause.
pub async fn send(
    destinations: Vec<Box<dyn Destination>>,
    delivery: &DeliveryConfig,
    options: SendOptions,
    interrupt: impl Future<Output = ()>,
) -> Summary {
    let started = Instant::now();
    let destinations = Arc::new(destinations);
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
        ..Default::default()
    };

    let input_label = options.input.as_ref().map_or("-".to_owned(), |p| {
        std::fs::canonicalize(p)
            .unwrap_or_else(|_| p.clone())
            .display()
            .to_string()
    });
    let (total_bytes, input): (Option<u64>, Box<dyn BufRead + Send>) = match &options.input {
        Some(path) if path.as_os_str() != "-" => match std::fs::File::open(path) {
            Ok(file) => (
                file.metadata().ok().map(|m| m.len()),
                Box::new(std::io::BufReader::with_capacity(1 << 20, file)),
            ),
            Err(e) => {
                summary.error = Some(format!("cannot read {}: {e}", path.display()));
                return summary;
            }
        },
        _ => (
            None,
            Box::new(std::io::BufReader::with_capacity(1 << 20, std::io::stdin())),
        ),
    };

    let (mut checkpoint, mut resolved) = if options.dry_run {
        (
            None,
            vec![
                ResolvedSet {
                    watermark: 1,
                    ..Default::default()
                };
                ids.len()
            ],
        )
    } else {
        let run = checkpoint::fnv1a(&[input_label.as_bytes(), options.identity.as_bytes()]);
        match Checkpoint::open(&options.state, &run, &input_label, &ids, options.restart) {
            Ok((checkpoint, sets)) => (Some(checkpoint), sets),
            Err(e) => {
                summary.error = Some(e);
                return summary;
            }
        }
    };
    let transport = if options.dry_run {
        None
    } else {
        match Transport::new(Duration::from_millis(delivery.request_timeout_ms)) {
            Ok(t) => Some(t),
            Err(e) => {
                summary.error = Some(e);
                return summary;
            }
        }
    };
    let mut dead_letters = DeadLetters::new(&options.dead_letters);

    let stop = Arc::new(AtomicBool::new(false));
    let read = Arc::new(ReadProgress::default());
    let (chunk_tx, mut chunk_rx) =
        tokio::sync::mpsc::channel::<Result<Chunk, String>>(options.workers.max(1) * 2);
    pipeline::spawn(
        input,
        Arc::clone(&destinations),
        Arc::new(resolved.clone()),
        options.workers,
        chunk_tx,
        Arc::clone(&stop),
        Arc::clone(&read),
    );
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel::<Completion>();

    let policy = RetryPolicy::from_config(delivery);
    let linger = Duration::from_millis(delivery.linger_ms);
    let mut lanes: Vec<Lane> = destinations
        .iter()
        .map(|d| Lane::new(d.requests_per_minute()))
        .collect();
    let mut tracks: Vec<HashMap<u64, EventTrack>> =
        destinations.iter().map(|_| HashMap::default()).collect();
    let mut to_record: Vec<Vec<u64>> = destinations.iter().map(|_| Vec::new()).collect();
    let mut reorder: BTreeMap<u64, Vec<MappedLine>> = BTreeMap::new();
    let mut next_seq = 0u64;
    let mut input_done = false;
    let mut stopping = false;
    let mut drain_deadline: Option<tokio::time::Instant> = None;
    let mut progress = Progress::new(Arc::clone(&read), total_bytes, options.progress_every);
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut interrupt = std::pin::pin!(interrupt);

    loop {
        let now = Instant::now();
        let at_capacity = lanes
            .iter()
            .any(|l| l.pending() >= delivery.max_pending_records);
        let flush = input_done || stopping || at_capacity;
        if !stopping {
            for (index, lane) in lanes.iter_mut().enumerate() {
                let destination = destinations[index].as_ref();
                while let Some(batch) =
                    lane.next_batch(destination, now, delivery.concurrency, linger, flush)
                {
                    let records: Vec<&Record> =
                        batch.iter().map(|id| &lane.record(*id).record).collect();
                    let request = destination.encode(&records);
                    summary.destinations[index].requests += 1;
                    let done = done_tx.clone();
                    match &transport {
                        None => {
                            let verdicts = vec![Verdict::Delivered; batch.len()];
                            let _ = done.send(Completion {
                                lane: index,
                                batch,
                                result: Ok(verdicts),
                            });
                        }
                        Some(transport) => {
                            let transport = transport.clone();
                            let destinations = Arc::clone(&destinations);
                            tokio::spawn(async move {
                                let result =
                                    transport.send(request).await.map(|response: HttpResponse| {
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
            }
        }

        let in_flight: usize = lanes.iter().map(Lane::in_flight).sum();
        let pending: usize = lanes.iter().map(Lane::pending).sum();
        if input_done && reorder.is_empty() && pending == 0 {
            summary.complete = summary.error.is_none();
            break;
        }
        if stopping && in_flight == 0 {
            break;
        }

        let wake = lanes
            .iter()
            .filter_map(|lane| lane.next_wakeup(now, delivery.concurrency, flush))
            .min()
            .map(tokio::time::Instant::from_std);
        let accepting = !input_done && !stopping && !at_capacity;

        tokio::select! {
            biased;
            Some(completion) = done_rx.recv() => {
                let now = Instant::now();
                let lane_index = completion.lane;
                let verdicts = match completion.result {
                    Ok(verdicts) => verdicts,
                    Err(reason) => vec![Verdict::Retry { reason, after: None }; completion.batch.len()],
                };
                let retried = verdicts.iter().filter(|v| matches!(v, Verdict::Retry { .. })).count();
                summary.destinations[lane_index].records_retried += retried as u64;
                let lane = &mut lanes[lane_index];
                let wall = SystemTime::now();
                let resolutions = lane.complete(&completion.batch, verdicts, now, |pending, after| {
                    policy.decide(pending.attempts, pending.first_attempt.unwrap_or(now), now, after, wall, fastrand::f64())
                });
                if let Some(reason) = lane.paused() {
                    if summary.destinations[lane_index].paused.is_none() {
                        tracing::error!(destination = %ids[lane_index], %reason, "Destination paused: it refused our credentials; nothing more is sent to it.");
                        summary.destinations[lane_index].paused = Some(reason.to_owned());
                    }
                    stopping = true;
                    stop.store(true, Ordering::Relaxed);
                    drain_deadline.get_or_insert(tokio::time::Instant::now() + options.drain_timeout);
                }
                let mut books = Books { summary: &mut summary, dead_letters: &mut dead_letters, to_record: &mut to_record, ids: &ids, dry_run: options.dry_run };
                for (line, resolution) in resolutions {
                    let track = tracks[lane_index].get_mut(&line).expect("records belong to tracked events");
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
                        let track = tracks[lane_index].remove(&line).expect("present");
                        let outcome = if track.exhausted {
                            Outcome::DeadLettered
                        } else if !track.reasons.is_empty() {
                            Outcome::Rejected
                        } else {
                            Outcome::Delivered
                        };
                        books.finish(lane_index, line, &track.raw, outcome, &track.reasons);
                    }
                }
                if let Err(e) = persist(&mut dead_letters, checkpoint.as_mut(), &mut to_record, &mut resolved) {
                    summary.error.get_or_insert(e);
                    stopping = true;
                    stop.store(true, Ordering::Relaxed);
                }
            }
            chunk = chunk_rx.recv(), if accepting => {
                match chunk {
                    None => input_done = true,
                    Some(Err(e)) => {
                        summary.error.get_or_insert(e);
                        input_done = true;
                    }
                    Some(Ok(chunk)) => {
                        reorder.insert(chunk.seq, chunk.lines);
                        while let Some(lines) = reorder.remove(&next_seq) {
                            next_seq += 1;
                            let now = Instant::now();
                            let mut books = Books { summary: &mut summary, dead_letters: &mut dead_letters, to_record: &mut to_record, ids: &ids, dry_run: options.dry_run };
                            for mapped in lines {
                                accept(mapped, now, &mut lanes, &mut tracks, &mut books);
                            }
                        }
                    }
                }
            }
            () = async { match wake { Some(at) => tokio::time::sleep_until(at).await, None => std::future::pending().await } } => {}
            () = &mut interrupt, if !stopping => {
                tracing::warn!("Interrupted: no more events are read; in-flight requests may finish.");
                summary.interrupted = true;
                stopping = true;
                stop.store(true, Ordering::Relaxed);
                drain_deadline = Some(tokio::time::Instant::now() + options.drain_timeout);
            }
            () = async { match drain_deadline { Some(at) => tokio::time::sleep_until(at).await, None => std::future::pending().await } }, if stopping => {
                tracing::warn!("In-flight requests did not finish in time; the next run sends them again.");
                break;
            }
            _ = tick.tick() => {
                if let Err(e) = persist(&mut dead_letters, checkpoint.as_mut(), &mut to_record, &mut resolved) {
                    summary.error.get_or_insert(e);
                }
                progress.update(counts(&summary), started);
            }
        }
    }

    if let Err(e) = persist(
        &mut dead_letters,
        checkpoint.as_mut(),
        &mut to_record,
        &mut resolved,
    ) {
        summary.error.get_or_insert(e);
    }
    if summary.complete
        && let Some(checkpoint) = &checkpoint
        && let Err(e) = checkpoint.complete()
    {
        summary.error.get_or_insert(e);
    }
    stop.store(true, Ordering::Relaxed);
    progress.finish();
    for (stats, lane) in summary.destinations.iter_mut().zip(&lanes) {
        stats.unresolved = lane.pending() as u64;
    }
    summary.events = read.lines.load(Ordering::Relaxed) - read.already_done.load(Ordering::Relaxed);
    summary.already_done = read.already_done.load(Ordering::Relaxed);
    summary.dead_letters_written = dead_letters.written;
    if dead_letters.written > 0 {
        summary.dead_letters_file = Some(dead_letters.path().display().to_string());
    }
    summary.elapsed_seconds = started.elapsed().as_secs_f64();
    summary
}

// Everything a destination finished with an event goes through here.
struct Books<'a> {
    summary: &'a mut Summary,
    dead_letters: &'a mut DeadLetters,
    to_record: &'a mut Vec<Vec<u64>>,
    ids: &'a [String],
    dry_run: bool,
}
impl Books<'_> {
    fn finish(&mut self, lane: usize, line: u64, raw: &str, outcome: Outcome, reasons: &[String]) {
        let stats = &mut self.summary.destinations[lane];
        match outcome {
            Outcome::Delivered => stats.delivered += 1,
            Outcome::Skipped => stats.skipped += 1,
            Outcome::Rejected => stats.rejected += 1,
            Outcome::DeadLettered => stats.dead_lettered += 1,
        }
        if matches!(outcome, Outcome::Rejected | Outcome::DeadLettered) {
            if self.dry_run {
                eprintln!(
                    "line {line}: destination `{}` would dead-letter it: {}",
                    self.ids[lane],
                    reasons.join(" | ")
                );
            } else if let Err(e) =
                self.dead_letters
                    .write(line, Some(&self.ids[lane]), reasons, raw)
            {
                // Without a dead-letter record the event must not count as resolved.
                self.summary.error.get_or_insert(e);
                return;
            }
        }
        self.to_record[lane].push(line);
    }
}

/// Takes one mapped input line: skips and mapping rejections are resolved at once, records go
/// to their destination's lane.
fn accept(
    mapped: MappedLine,
    now: Instant,
    lanes: &mut [Lane],
    tracks: &mut [HashMap<u64, EventTrack>],
    books: &mut Books<'_>,
) {
    let line = mapped.line;
    match mapped.outcome {
        LineOutcome::Invalid(reason) => {
            books.summary.invalid += 1;
            if books.dry_run {
                eprintln!("line {line}: {reason}");
            } else if let Err(e) =
                books
                    .dead_letters
                    .write(line, None, std::slice::from_ref(&reason), &mapped.raw)
            {
                books.summary.error.get_or_insert(e);
                return;
            }
            for lane in books.to_record.iter_mut() {
                lane.push(line);
            }
        }
        LineOutcome::Mapped(outcomes) => {
            for (index, outcome) in outcomes.into_iter().enumerate() {
                match outcome {
                    None => {}
                    Some(Ok(Mapped::Skipped(_))) => {
                        books.finish(index, line, &mapped.raw, Outcome::Skipped, &[])
                    }
                    Some(Err(error)) => books.finish(
                        index,
                        line,
                        &mapped.raw,
                        Outcome::Rejected,
                        &[error.to_string()],
                    ),
                    Some(Ok(Mapped::Records(records))) => {
                        tracks[index].insert(
                            line,
                            EventTrack {
                                raw: Arc::clone(&mapped.raw),
                                remaining: records.len(),
                                reasons: Vec::new(),
                                exhausted: false,
                            },
                        );
                        for record in records {
                            lanes[index].accept(line, record, now);
                        }
                    }
                }
            }
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Outcome {
    Delivered,
    Skipped,
    Rejected,
    DeadLettered,
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

/// Makes dead letters durable, then records resolved lines in the checkpoint — in that order, so
/// a crash between the two can duplicate a dead letter but never lose one.
fn persist(
    dead_letters: &mut DeadLetters,
    checkpoint: Option<&mut Checkpoint>,
    to_record: &mut [Vec<u64>],
    resolved: &mut [ResolvedSet],
) -> Result<(), String> {
    let Some(checkpoint) = checkpoint else {
        to_record.iter_mut().for_each(Vec::clear);
        return Ok(());
    };
    if to_record.iter().all(Vec::is_empty) {
        return Ok(());
    }
    dead_letters.sync()?;
    checkpoint.record(to_record, resolved)
}
