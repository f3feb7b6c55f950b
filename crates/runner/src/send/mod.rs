//! `hardal send`: delivers a file of events (a backfill) to every destination of a configuration.
//!
//! Around the delivery engine (`crate::delivery`): the pipeline (reader and mapping threads,
//! `pipeline.rs`) feeds mapped events in input order; the books (`Books` here) count how each
//! event ended and queue dead letters and resolved lines; the store thread (`store.rs`) makes
//! dead letters durable and then records the lines in the checkpoint (`checkpoint.rs`). Every
//! line read ends delivered, skipped, expired, or in the dead letters with its reasons; an
//! interrupted run, or a destination that paused, leaves the rest to the next run of the same
//! command — which resumes only on the very same input (checked by a hash of what was read).

pub mod checkpoint;
mod dead_letters;
mod notes;
mod pipeline;
mod progress;
mod store;
pub mod summary;

use std::collections::BTreeMap;
use std::future::Future;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hardal_core::Outcome;

use self::checkpoint::{Checkpoint, Handled, Progress, ResolvedSet};
use self::dead_letters::{DeadLetter, DeadLetters};
use self::notes::{Changes, CountedNotes, NoteKinds};
use self::pipeline::{Chunk, ForDestination, LineOutcome, MappedLine, Mapping, ReadProgress};
use self::progress::{Counts, Progress as ProgressDisplay};
use self::store::{Store, Write};
pub use self::summary::{DestinationSummary, Summary, Totals};
use crate::config::Config;
use crate::delivery::{Applied, Delivery, Ending, NOTHING_TO_SEND, Resolved};
use crate::redact::Redactor;
use crate::transport::Transport;

/// How to run `send`.
pub struct SendOptions {
    /// The events; `None` reads standard input.
    pub input: Option<PathBuf>,
    /// The checkpoint store (SQLite).
    pub state: PathBuf,
    pub dead_letters: PathBuf,
    /// Forget what earlier runs did with this input and start from the first line.
    pub restart: bool,
    /// Map and batch, but send nothing and write nothing.
    pub dry_run: bool,
    /// How long in-flight requests may finish after an interrupt.
    pub drain_timeout: Duration,
    /// Plain progress lines every this long when stderr is not a terminal (zero: none).
    pub progress_every: Duration,
    /// Mapping threads.
    pub workers: usize,
    /// The largest event (input line) in bytes; longer lines are dead-lettered unread.
    pub max_event_bytes: usize,
}

/// Runs `send` to the end of the input, or an interrupt (`interrupt` completes).
pub async fn send(
    config: Config,
    options: SendOptions,
    interrupt: impl Future<Output = ()>,
) -> Summary {
    let started = Instant::now();
    let ids: Vec<String> = config
        .destinations
        .iter()
        .map(|d| d.id().to_owned())
        .collect();
    let redactor = config.redactor.clone();
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
        warnings: config
            .warnings
            .iter()
            .map(|w| format!("{}: {}", w.pointer, w.message))
            .collect(),
        ..Default::default()
    };
    let setup = match Setup::open(&options, &ids) {
        Ok(setup) => setup,
        Err(error) => {
            summary.error = Some(redactor.redact(&error).into_owned());
            return summary;
        }
    };
    let destinations = Arc::new(config.destinations);
    let stop = Arc::new(AtomicBool::new(false));
    let read = Arc::new(ReadProgress::default());
    let paused: Arc<Vec<AtomicBool>> =
        Arc::new(ids.iter().map(|_| AtomicBool::new(false)).collect());
    let note_kinds = Arc::new(NoteKinds::default());
    let (chunk_tx, mut chunk_rx) =
        tokio::sync::mpsc::channel::<Result<Chunk, String>>(options.workers.max(1) * 2);
    pipeline::spawn(
        setup.input,
        Mapping {
            destinations: Arc::clone(&destinations),
            consent: config.consent,
            resolved: Arc::new(setup.resolved),
            paused: Arc::clone(&paused),
            max_event_bytes: options.max_event_bytes,
            note_kinds: Arc::clone(&note_kinds),
        },
        options.workers,
        chunk_tx,
        Arc::clone(&stop),
        Arc::clone(&read),
    );
    let mut delivery = config.delivery;
    if options.dry_run {
        // Nothing is sent, so nothing is worth waiting for.
        delivery.iter_mut().for_each(|d| d.linger_ms = 0);
    }
    let (delivery, mut completions) =
        Delivery::new(destinations, delivery, setup.transport, redactor.clone());
    let store = setup
        .checkpoint
        .map(|checkpoint| Store::start(checkpoint, DeadLetters::new(&options.dead_letters)));
    let mut engine = Engine {
        delivery,
        books: Books {
            this_run: vec![Totals::default(); ids.len()],
            changes: Changes::new(note_kinds, ids.len()),
            totals: setup.totals,
            lines: vec![Vec::new(); ids.len()],
            dead_letters: Vec::new(),
            not_taken: vec![0; ids.len()],
            dead_letters_file: options.dead_letters.clone(),
            ids,
            store,
            written: 0,
            redactor,
            dry_run: options.dry_run,
        },
        paused,
        summary,
        stop,
        read: Arc::clone(&read),
    };

    let mut reorder: BTreeMap<u64, Vec<MappedLine>> = BTreeMap::new();
    let mut next_seq = 0u64;
    let mut input_done = false;
    let mut drain_deadline: Option<tokio::time::Instant> = None;
    let mut progress =
        ProgressDisplay::new(Arc::clone(&read), setup.total_bytes, options.progress_every);
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut interrupt = std::pin::pin!(interrupt);

    loop {
        let now = Instant::now();
        let stopping = engine.stopping();
        let at_capacity = engine.delivery.at_capacity();
        let flush = input_done || stopping || at_capacity;
        if !stopping {
            engine.delivery.dispatch(now, flush);
        }
        engine.books.write_if_idle(&engine.read);
        if input_done && reorder.is_empty() && engine.active() == 0 {
            break;
        }
        if stopping {
            drain_deadline.get_or_insert(tokio::time::Instant::now() + options.drain_timeout);
            if engine.delivery.in_flight() == 0 {
                break;
            }
        }
        let wake = engine
            .delivery
            .next_wakeup(now, flush)
            .map(tokio::time::Instant::from_std);
        let accepting = !input_done && !stopping && !at_capacity;
        let storing = engine.books.store.as_ref().is_some_and(Store::busy);

        tokio::select! {
            biased;
            Some(completion) = completions.recv() => {
                let applied = engine.delivery.complete(completion);
                engine.apply(applied);
            }
            answer = recv_answer(&mut engine.books.store), if storing => {
                engine.answered(answer);
            }
            chunk = chunk_rx.recv(), if accepting => match chunk {
                None => input_done = true,
                Some(Err(error)) => {
                    engine.fail(error);
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
                engine.summary.interrupted = true;
                engine.stop_reading();
            }
            () = sleep_until(drain_deadline), if stopping => {
                tracing::warn!("In-flight requests did not finish in time; the next run sends them again.");
                break;
            }
            _ = tick.tick() => {
                progress.update(engine.counts(), started);
            }
        }
    }

    engine.stop_reading();
    let complete = input_done
        && reorder.is_empty()
        && engine.delivery.pending() == 0
        && engine.books.not_taken.iter().all(|n| *n == 0)
        && engine.summary.error.is_none();
    engine.close().await;
    progress.finish();
    let mut summary = engine.finish();
    summary.complete = complete && summary.error.is_none();
    summary.events = read.lines.load(Ordering::Relaxed) - read.already_done.load(Ordering::Relaxed);
    summary.already_done = read.already_done.load(Ordering::Relaxed);
    summary.elapsed_seconds = started.elapsed().as_secs_f64();
    summary
}

/// The next answer of the store thread; never completes without a store.
async fn recv_answer(store: &mut Option<Store>) -> Option<Result<u64, String>> {
    match store {
        Some(store) => store.answers.recv().await,
        None => std::future::pending().await,
    }
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
    totals: Vec<Totals>,
    transport: Option<Transport>,
}

impl Setup {
    fn open(options: &SendOptions, ids: &[String]) -> Result<Setup, String> {
        let buffered = |read: Box<dyn std::io::Read + Send>| -> Box<dyn BufRead + Send> {
            Box::new(std::io::BufReader::with_capacity(1 << 20, read))
        };
        if !options.dry_run {
            check_paths(options)?;
        }
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
        let fresh = || {
            (
                vec![ResolvedSet::new(); ids.len()],
                vec![Totals::default(); ids.len()],
            )
        };
        if options.dry_run {
            let (resolved, totals) = fresh();
            return Ok(Setup {
                input,
                total_bytes,
                checkpoint: None,
                resolved,
                totals,
                transport: None,
            });
        }
        // Standard input is different data each time (a replay of dead letters, say), so it
        // always starts fresh.
        let (checkpoint, resume) = Checkpoint::open(
            &options.state,
            &label,
            ids,
            options.restart || options.input.is_none(),
        )?;
        if let (Some(handled), Some(path)) = (resume.handled, &options.input) {
            verify_same_input(path, handled, &options.state)?;
        }
        let transport = Transport::new()?;
        Ok(Setup {
            input,
            total_bytes,
            checkpoint: Some(checkpoint),
            resolved: resume.resolved,
            totals: resume.totals,
            transport: Some(transport),
        })
    }
}

/// Refuses to resume on an input whose already-read part changed: its line numbers would name
/// other events, and "already handled" would skip events that were never sent.
fn verify_same_input(path: &Path, handled: Handled, state: &Path) -> Result<(), String> {
    let why = match checkpoint::hash_prefix(path, handled.bytes) {
        Ok(hash) if hash == handled.hash => return Ok(()),
        Ok(_) => format!(
            "{} is not the file an earlier run read: its first {} bytes changed (was it regenerated?)",
            path.display(),
            handled.bytes
        ),
        Err(why) => why,
    };
    Err(format!(
        "{why}. Nothing was sent. To send it from the first line as a new backfill, run with --restart; to keep the earlier run's checkpoint, give this one its own --state FILE (now {}).",
        state.display()
    ))
}

/// Refuses `--dead-letters` and `--state` paths that are the same file as each other or as the
/// input: writing one would destroy the other.
fn check_paths(options: &SendOptions) -> Result<(), String> {
    let mut state_files = vec![options.state.clone()];
    for sidecar in ["-wal", "-shm"] {
        let mut path = options.state.as_os_str().to_owned();
        path.push(sidecar);
        state_files.push(PathBuf::from(path));
    }
    let dead = same_file_key(&options.dead_letters);
    for state in &state_files {
        if dead == same_file_key(state) {
            return Err(format!(
                "--dead-letters {} and --state {} name the same file; give them different paths",
                options.dead_letters.display(),
                options.state.display()
            ));
        }
    }
    if let Some(input) = &options.input {
        let input_key = same_file_key(input);
        if input_key == dead {
            return Err(format!(
                "--dead-letters {} is the input file; give the dead letters another path",
                options.dead_letters.display()
            ));
        }
        if state_files.iter().any(|s| same_file_key(s) == input_key) {
            return Err(format!(
                "--state {} is the input file; give the checkpoint another path",
                options.state.display()
            ));
        }
    }
    Ok(())
}

/// A path made absolute with its directory resolved (the file itself may not exist yet), so that
/// two spellings of one file compare equal.
fn same_file_key(path: &Path) -> PathBuf {
    if let Ok(resolved) = std::fs::canonicalize(path) {
        return resolved;
    }
    let parent = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let parent = std::fs::canonicalize(&parent).unwrap_or(parent);
    parent.join(path.file_name().unwrap_or_default())
}

/// The delivery engine with what `send` keeps around it.
struct Engine {
    delivery: Delivery<CountedNotes>,
    books: Books,
    /// Per destination, shared with the mappers: set once the destination paused.
    paused: Arc<Vec<AtomicBool>>,
    summary: Summary,
    stop: Arc<AtomicBool>,
    read: Arc<ReadProgress>,
}

impl Engine {
    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Stops reading input; in-flight requests may still finish.
    fn stop_reading(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    fn fail(&mut self, error: String) {
        let error = self.books.redactor.redact(&error).into_owned();
        self.summary.error.get_or_insert(error);
        self.stop_reading();
    }

    /// Records the run still has to finish: those of destinations that can make progress, and
    /// requests in flight.
    fn active(&self) -> usize {
        (0..self.delivery.lanes())
            .filter(|&lane| self.delivery.paused(lane).is_none())
            .map(|lane| self.delivery.pending_in(lane))
            .sum::<usize>()
            + self.delivery.in_flight()
    }

    /// Takes mapped input lines, in input order: skips, expiries and mapping rejections are
    /// resolved at once, records go to their destination's lane.
    fn accept(&mut self, lines: Vec<MappedLine>, now: Instant) {
        for mapped in lines {
            let line = mapped.line;
            let outcomes = match mapped.outcome {
                LineOutcome::Mapped(outcomes) => outcomes,
                LineOutcome::Invalid(reason, unresolved) => {
                    self.books.invalid(line, reason, &mapped.raw, &unresolved);
                    continue;
                }
            };
            for (lane, outcome) in outcomes.into_iter().enumerate() {
                let resolved = |ending, reasons: Vec<String>, notes: CountedNotes| Resolved {
                    lane,
                    key: line,
                    ending,
                    reasons,
                    raw: Arc::clone(&mapped.raw),
                    notes,
                };
                let done = match outcome {
                    ForDestination::Done => continue,
                    ForDestination::Paused => {
                        self.books.not_taken[lane] += 1;
                        continue;
                    }
                    ForDestination::Mapped(Err(error)) => resolved(
                        Ending::Rejected,
                        vec![error.to_string()],
                        CountedNotes::default(),
                    ),
                    ForDestination::Mapped(Ok((outcome, notes))) => match outcome {
                        outcome @ Outcome::Skipped(_) => {
                            if crate::mapping::no_consent(&outcome) {
                                self.books.no_consent(lane);
                            }
                            resolved(Ending::Skipped, Vec::new(), notes)
                        }
                        Outcome::Expired(rule) => {
                            self.books.expired(lane, &rule);
                            resolved(Ending::Expired, Vec::new(), notes)
                        }
                        Outcome::Records(records) if records.is_empty() => {
                            resolved(Ending::Skipped, vec![NOTHING_TO_SEND.to_owned()], notes)
                        }
                        Outcome::Records(records) => {
                            let raw = Arc::clone(&mapped.raw);
                            if !self.delivery.accept(lane, line, raw, records, notes, now) {
                                self.books.not_taken[lane] += 1;
                            }
                            continue;
                        }
                    },
                };
                self.books.finish(done);
            }
        }
    }

    /// What an answer resolved, and a pause if it brought one.
    fn apply(&mut self, applied: Applied<CountedNotes>) {
        if let Some((lane, reason)) = applied.paused {
            let id = &self.books.ids[lane];
            tracing::error!(destination = %id, %reason, "Destination paused: nothing more is sent to it in this run, and nothing is dropped; the other destinations go on.");
            self.paused[lane].store(true, Ordering::Relaxed);
            self.summary.destinations[lane].paused = Some(reason);
            if self.paused.iter().all(|p| p.load(Ordering::Relaxed)) {
                self.stop_reading();
            }
        }
        for resolved in applied.resolved {
            self.books.finish(resolved);
        }
    }

    fn answered(&mut self, answer: Option<Result<u64, String>>) {
        if let Some(store) = &mut self.books.store {
            store.answered();
        }
        match answer {
            Some(Ok(written)) => self.books.written += written,
            Some(Err(error)) => self.fail(error),
            None => self.fail("the checkpoint writer stopped".to_owned()),
        }
    }

    fn counts(&self) -> Counts {
        let mut counts = Counts::default();
        for (lane, totals) in self.books.this_run.iter().enumerate() {
            let lane_counts = self.delivery.counts(lane);
            counts.delivered += totals.delivered;
            counts.retried += lane_counts.records_retried;
            counts.dead_lettered += totals.rejected + totals.dead_lettered;
            counts.requests += lane_counts.requests;
        }
        counts
    }

    /// Writes what is left and waits for the store thread to finish.
    async fn close(&mut self) {
        loop {
            if let Some(store) = &mut self.books.store
                && store.busy()
            {
                let answer = store.answers.recv().await;
                self.answered(answer);
                continue;
            }
            if !self.books.pending() || self.summary.error.is_some() {
                break;
            }
            self.books.write_if_idle(&self.read);
        }
        if let Some(store) = &mut self.books.store {
            store.close();
        }
    }

    /// The summary, with what is still unresolved and where the dead letters went.
    fn finish(self) -> Summary {
        let mut summary = self.summary;
        let mut books = self.books;
        books.changes.settle(&mut books.totals, &mut books.this_run);
        for (lane, stats) in summary.destinations.iter_mut().enumerate() {
            stats.totals = books.totals[lane].clone();
            stats.this_run = books.this_run[lane].clone();
            stats.unresolved = self.delivery.pending_in(lane) as u64 + books.not_taken[lane];
            let counts = self.delivery.counts(lane);
            stats.requests = counts.requests;
            stats.records_retried = counts.records_retried;
            stats.batch_splits = counts.splits;
        }
        summary.invalid = books.totals.iter().map(|t| t.invalid).max().unwrap_or(0);
        summary.dead_letters_written = books.written;
        if books.written > 0 {
            summary.dead_letters_file = Some(books.dead_letters_path());
        }
        summary
    }
}

/// How events ended, the dead letters and resolved lines waiting for the store, and the store:
/// everything a destination finished with an event goes through here.
struct Books {
    ids: Vec<String>,
    /// The whole backfill (earlier runs included) and this run, per destination.
    totals: Vec<Totals>,
    this_run: Vec<Totals>,
    /// What the destinations changed in events, counted but not yet in `totals` and `this_run`.
    changes: Changes,
    /// Per destination: lines resolved since the last write.
    lines: Vec<Vec<u64>>,
    dead_letters: Vec<DeadLetter>,
    /// Per destination: events this run read but did not give it (it had paused).
    not_taken: Vec<u64>,
    dead_letters_file: PathBuf,
    store: Option<Store>,
    /// Dead letters the store made durable.
    written: u64,
    redactor: Redactor,
    dry_run: bool,
}

impl Books {
    /// Counts an event not sent at all because it is older than the destination keeps it, by the
    /// rule that applied.
    fn expired(&mut self, lane: usize, rule: &str) {
        let key = format!("expired (whole event): {rule}");
        for totals in [&mut self.totals[lane], &mut self.this_run[lane]] {
            *totals.field_changes.entry(key.clone()).or_default() += 1;
        }
    }

    /// Counts an event skipped because it lacks the consent the destination requires.
    fn no_consent(&mut self, lane: usize) {
        self.totals[lane].no_consent += 1;
        self.this_run[lane].no_consent += 1;
    }

    fn finish(&mut self, mut resolved: Resolved<CountedNotes>) {
        let lane = resolved.lane;
        self.totals[lane].add(resolved.ending);
        self.this_run[lane].add(resolved.ending);
        self.changes.add(
            lane,
            &resolved.notes,
            [&mut self.totals[lane], &mut self.this_run[lane]],
        );
        if matches!(resolved.ending, Ending::Rejected | Ending::DeadLettered) {
            resolved
                .reasons
                .iter_mut()
                .for_each(|r| self.redactor.scrub(r));
            if self.dry_run {
                eprintln!(
                    "line {}: destination `{}` would dead-letter it: {}",
                    resolved.key,
                    self.ids[lane],
                    resolved.reasons.join(" | ")
                );
            } else {
                self.dead_letters.push(DeadLetter {
                    line: resolved.key,
                    destination: Some(self.ids[lane].clone()),
                    reasons: resolved.reasons,
                    raw: resolved.raw,
                });
            }
        }
        self.lines[lane].push(resolved.key);
    }

    /// A line that is not an event: one dead letter, resolved for every destination that had
    /// not resolved it yet.
    fn invalid(&mut self, line: u64, reason: String, raw: &Arc<str>, unresolved: &[bool]) {
        for (lane, _) in unresolved.iter().enumerate().filter(|(_, u)| **u) {
            self.totals[lane].invalid += 1;
            self.this_run[lane].invalid += 1;
            self.lines[lane].push(line);
        }
        if self.dry_run {
            eprintln!("line {line}: {reason}");
        } else {
            self.dead_letters.push(DeadLetter {
                line,
                destination: None,
                reasons: vec![reason],
                raw: Arc::clone(raw),
            });
        }
    }

    fn pending(&self) -> bool {
        !self.dead_letters.is_empty() || self.lines.iter().any(|l| !l.is_empty())
    }

    /// Hands what resolved to the store when it is free (what resolves meanwhile goes with the
    /// next write).
    fn write_if_idle(&mut self, read: &ReadProgress) {
        let Some(store) = &mut self.store else {
            self.lines.iter_mut().for_each(Vec::clear);
            return;
        };
        if store.busy() || (self.dead_letters.is_empty() && self.lines.iter().all(Vec::is_empty)) {
            return;
        }
        let handled = *read.handled.lock().unwrap_or_else(|e| e.into_inner());
        self.changes.settle(&mut self.totals, &mut self.this_run);
        store.write(Write {
            dead_letters: std::mem::take(&mut self.dead_letters),
            progress: Progress {
                lines: self.lines.iter_mut().map(std::mem::take).collect(),
                totals: self.totals.clone(),
                handled,
            },
        });
    }

    fn dead_letters_path(&self) -> String {
        self.dead_letters_file.display().to_string()
    }
}
