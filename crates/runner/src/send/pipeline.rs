//! Reading and mapping: a reader thread streams NDJSON lines (skipping lines an earlier run
//! resolved), worker threads parse and map them for every destination in parallel, and chunks
//! come back numbered so the engine can accept events in input order.

use std::io::BufRead;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};

use std::time::SystemTime;

use hardal_core::{Destination, MapContext, Mapped, MappingError};

use super::checkpoint::ResolvedSet;
use crate::input::parse_line;

/// One input line after mapping.
pub struct MappedLine {
    pub line: u64,
    pub raw: Arc<String>,
    pub outcome: LineOutcome,
}

pub enum LineOutcome {
    /// Not a JSON object: the reason, for the dead letters.
    Invalid(String),
    /// Per destination: `None` when an earlier run already resolved this line there.
    Mapped(Vec<Option<Result<Mapped, MappingError>>>),
}

/// Mapped lines in input order, numbered by `seq`.
pub struct Chunk {
    pub seq: u64,
    pub lines: Vec<MappedLine>,
}

/// Counters the reader shares with progress reporting.
#[derive(Default)]
pub struct ReadProgress {
    pub bytes: AtomicU64,
    pub lines: AtomicU64,
    /// Lines an earlier run resolved for every destination.
    pub already_done: AtomicU64,
}

const CHUNK_LINES: usize = 512;

/// Starts the reader and `workers` mapping threads; chunks arrive on `out` until the input ends,
/// `stop` is set, or the receiver is dropped. Read errors arrive as `Err`.
pub fn spawn(
    input: Box<dyn BufRead + Send>,
    destinations: Arc<Vec<Box<dyn Destination>>>,
    resolved: Arc<Vec<ResolvedSet>>,
    workers: usize,
    out: tokio::sync::mpsc::Sender<Result<Chunk, String>>,
    stop: Arc<AtomicBool>,
    progress: Arc<ReadProgress>,
) {
    let (work_tx, work_rx) = mpsc::sync_channel::<(u64, Vec<(u64, String)>)>(workers * 2);
    let work_rx = Arc::new(Mutex::new(work_rx));
    for _ in 0..workers.max(1) {
        let work_rx = Arc::clone(&work_rx);
        let destinations = Arc::clone(&destinations);
        let resolved = Arc::clone(&resolved);
        let out = out.clone();
        std::thread::spawn(move || {
            loop {
                let next = work_rx
                    .lock()
                    .expect("no worker panics holding the lock")
                    .recv();
                let Ok((seq, lines)) = next else { return };
                let context = MapContext {
                    now: SystemTime::now(),
                };
                let lines = lines
                    .into_iter()
                    .map(|(line, text)| map_line(line, text, &destinations, &resolved, &context))
                    .collect();
                if out.blocking_send(Ok(Chunk { seq, lines })).is_err() {
                    return;
                }
            }
        });
    }
    std::thread::spawn(move || {
        let mut input = input;
        let (mut seq, mut line_no, mut chunk) = (0u64, 0u64, Vec::with_capacity(CHUNK_LINES));
        let mut text = String::new();
        loop {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            text.clear();
            match input.read_line(&mut text) {
                Ok(0) => break,
                Ok(n) => {
                    progress.bytes.fetch_add(n as u64, Ordering::Relaxed);
                    line_no += 1;
                }
                Err(e) => {
                    let _ = out.blocking_send(Err(format!(
                        "reading the events failed after line {line_no}: {e}"
                    )));
                    return;
                }
            }
            if text.trim().is_empty() {
                continue;
            }
            progress.lines.fetch_add(1, Ordering::Relaxed);
            if resolved.iter().all(|set| set.contains(line_no)) {
                progress.already_done.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            // The line moves into the chunk (no copy); the next read gets a fresh buffer.
            let mut line = std::mem::replace(&mut text, String::with_capacity(1024));
            line.truncate(line.trim_end_matches(['\n', '\r']).len());
            chunk.push((line_no, line));
            if chunk.len() == CHUNK_LINES {
                if work_tx.send((seq, std::mem::take(&mut chunk))).is_err() {
                    return;
                }
                seq += 1;
            }
        }
        if !chunk.is_empty() {
            let _ = work_tx.send((seq, chunk));
        }
    });
}

fn map_line(
    line: u64,
    text: String,
    destinations: &[Box<dyn Destination>],
    resolved: &[ResolvedSet],
    context: &MapContext,
) -> MappedLine {
    let outcome = match parse_line(&text) {
        Err(reason) => LineOutcome::Invalid(reason),
        Ok(event) => LineOutcome::Mapped(
            destinations
                .iter()
                .zip(resolved)
                .map(|(destination, set)| {
                    (!set.contains(line)).then(|| destination.map(&event, context))
                })
                .collect(),
        ),
    };
    MappedLine {
        line,
        raw: Arc::new(text),
        outcome,
    }
}
