//! Reading and mapping: worker threads take turns reading a chunk of NDJSON lines (skipping lines
//! an earlier run resolved), each parses and maps its chunk for every destination while the others
//! do theirs, and chunks come back numbered so the engine can accept events in input order.
//!
//! Every line read ends in a bucket: a line that is not UTF-8, not JSON, not an object, or longer
//! than the largest event is an `Invalid` line with its reason (and its first bytes, never the
//! whole of an over-long line); a destination that panics while mapping rejects that event with
//! the panic's message. A destination that has paused is not mapped for at all: its events stay
//! unresolved for the next run.

use std::io::BufRead;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use hardal_core::{Consent, Destination, MapContext, MappingError, Outcome};
use smallvec::SmallVec;

use super::checkpoint::{Handled, ResolvedSet};
use super::notes::{CountedNotes, NoteKinds, Numbering};
use crate::input::{Appended, LineReader, parse_line, parse_shared, too_long};
use crate::mapping::map_event;

/// One input line after mapping.
pub struct MappedLine {
    pub line: u64,
    pub raw: Arc<str>,
    pub outcome: LineOutcome,
}

pub enum LineOutcome {
    /// Not an event: the reason, for the dead letters, and per destination whether the line
    /// was still unresolved there.
    Invalid(String, Vec<bool>),
    /// Per destination, what this run does with the line (kept inline for one destination, the
    /// common case: the engine's thread frees what the mappers allocate, at a cost to both).
    Mapped(SmallVec<[ForDestination; 1]>),
}

/// One line for one destination.
pub enum ForDestination {
    /// An earlier run resolved it.
    Done,
    /// The destination paused in this run: the line stays unresolved for the next one.
    Paused,
    /// Mapped, with its notes counted.
    Mapped(Result<(Outcome, CountedNotes), MappingError>),
}

/// Mapped lines in input order, numbered by `seq`.
pub struct Chunk {
    pub seq: u64,
    pub lines: Vec<MappedLine>,
}

/// Counters the reader shares with progress reporting and the checkpoint.
#[derive(Default)]
pub struct ReadProgress {
    pub bytes: AtomicU64,
    pub lines: AtomicU64,
    /// Lines an earlier run resolved for every destination.
    pub already_done: AtomicU64,
    /// How much of the input was read, with the hash of those bytes, as of the last chunk handed
    /// to the mappers: every line the engine has seen lies within it.
    pub handled: Mutex<Handled>,
}

/// The lines of one chunk as read: their bytes one after another in one buffer, so a chunk costs
/// one allocation rather than one per line.
struct RawLines {
    text: Vec<u8>,
    lines: Vec<RawLine>,
}

/// One line of [`RawLines`]: its bytes start where the previous line's end.
struct RawLine {
    line: u64,
    end: usize,
    /// For a line longer than the largest event: its length (its bytes are its first ones).
    too_long: Option<u64>,
}

impl RawLines {
    fn with_capacity(text: usize) -> RawLines {
        RawLines {
            text: Vec::with_capacity(text),
            lines: Vec::with_capacity(CHUNK_LINES),
        }
    }

    /// Each line's number, bytes and, if it was too long, its length.
    fn iter(&self) -> impl Iterator<Item = (&RawLine, &[u8])> {
        let mut start = 0;
        self.lines.iter().map(move |raw| {
            let bytes = &self.text[start..raw.end];
            start = raw.end;
            (raw, bytes)
        })
    }
}

/// The most text a chunk's buffer is given at once: room for the lines of a chunk like the last
/// one, but not for a chunk of giant lines again.
const CHUNK_TEXT_ROOM: usize = 8 << 20;

const CHUNK_LINES: usize = 512;

/// What the mappers share.
pub struct Mapping {
    pub destinations: Arc<Vec<Box<dyn Destination>>>,
    /// Per destination: its consent settings, checked before an event is mapped for it.
    pub consent: Vec<Consent>,
    pub resolved: Arc<Vec<ResolvedSet>>,
    /// Per destination: set once it paused, so its events are no longer mapped.
    pub paused: Arc<Vec<AtomicBool>>,
    pub max_event_bytes: usize,
    /// The kinds of note the mappers number.
    pub note_kinds: Arc<NoteKinds>,
}

/// Starts `workers` mapping threads; chunks arrive on `out` until the input ends, `stop` is set,
/// or the receiver is dropped. A read error arrives as `Err`.
pub fn spawn(
    input: Box<dyn BufRead + Send>,
    mapping: Mapping,
    workers: usize,
    out: tokio::sync::mpsc::Sender<Result<Chunk, String>>,
    stop: Arc<AtomicBool>,
    progress: Arc<ReadProgress>,
) {
    let mapping = Arc::new(mapping);
    let input = Arc::new(Mutex::new(Input {
        reader: LineReader::new(input, mapping.max_event_bytes).hashing(),
        seq: 0,
        room: 1 << 16,
        ended: false,
    }));
    for _ in 0..workers.max(1) {
        let input = Arc::clone(&input);
        let mapping = Arc::clone(&mapping);
        let (out, stop, progress) = (out.clone(), Arc::clone(&stop), Arc::clone(&progress));
        std::thread::spawn(move || {
            let mut numbering = Numbering::new(Arc::clone(&mapping.note_kinds));
            loop {
                let next = input.lock().unwrap_or_else(|e| e.into_inner()).next_chunk(
                    &mapping.resolved,
                    &stop,
                    &progress,
                );
                let (seq, lines) = match next {
                    Ok(Some(chunk)) => chunk,
                    Ok(None) => return,
                    Err(error) => {
                        let _ = out.blocking_send(Err(error));
                        return;
                    }
                };
                // Counted, not listed: the summary counts changes per field and rule.
                let context = MapContext {
                    notes: hardal_core::Notes::Counted,
                    ..MapContext::at(SystemTime::now())
                };
                let lines = lines
                    .iter()
                    .map(|(raw, bytes)| map_line(raw, bytes, &mapping, &context, &mut numbering))
                    .collect();
                if out.blocking_send(Ok(Chunk { seq, lines })).is_err() {
                    return;
                }
            }
        });
    }
}

/// The input, shared by the mapping threads: each reads its next chunk itself, in turn, and maps
/// it on the core that has just read it. A thread of its own for reading made one more busy
/// thread than cores on a small machine, and handed every chunk to another core.
struct Input {
    reader: LineReader<Box<dyn BufRead + Send>>,
    /// The number of the next chunk.
    seq: u64,
    /// Room for the next chunk's text at once: growing by doubling would move it again and again.
    room: usize,
    ended: bool,
}

impl Input {
    /// The next chunk of lines not resolved for every destination by an earlier run, numbered;
    /// `None` once the input ended or `stop` was set, `Err` when reading failed.
    fn next_chunk(
        &mut self,
        resolved: &[ResolvedSet],
        stop: &AtomicBool,
        progress: &ReadProgress,
    ) -> Result<Option<(u64, RawLines)>, String> {
        if self.ended {
            return Ok(None);
        }
        let reader = &mut self.reader;
        let mut chunk = RawLines::with_capacity(self.room);
        while chunk.lines.len() < CHUNK_LINES {
            if stop.load(Ordering::Relaxed) {
                self.ended = true;
                break;
            }
            let before = reader.bytes();
            let start = chunk.text.len();
            let appended = match reader.append_line(&mut chunk.text) {
                Ok(None) => {
                    self.ended = true;
                    break;
                }
                Ok(Some(appended)) => appended,
                Err(e) => {
                    self.ended = true;
                    return Err(format!(
                        "reading the events failed after line {}: {e}",
                        reader.line()
                    ));
                }
            };
            progress
                .bytes
                .fetch_add(reader.bytes() - before, Ordering::Relaxed);
            let line_no = reader.line();
            let too_long = match appended {
                Appended::Line if chunk.text[start..].trim_ascii().is_empty() => {
                    chunk.text.truncate(start);
                    continue;
                }
                Appended::Line => None,
                Appended::TooLong { bytes } => Some(bytes),
            };
            progress.lines.fetch_add(1, Ordering::Relaxed);
            if resolved.iter().all(|set| set.contains(line_no)) {
                progress.already_done.fetch_add(1, Ordering::Relaxed);
                chunk.text.truncate(start);
                continue;
            }
            chunk.lines.push(RawLine {
                line: line_no,
                end: chunk.text.len(),
                too_long,
            });
        }
        // Every line the engine will see lies within what was read so far.
        *progress.handled.lock().unwrap_or_else(|e| e.into_inner()) = Handled {
            bytes: reader.bytes(),
            hash: reader.hash(),
        };
        if chunk.lines.is_empty() {
            return Ok(None);
        }
        self.room = (chunk.text.len() + chunk.text.len() / 4).min(CHUNK_TEXT_ROOM);
        self.seq += 1;
        Ok(Some((self.seq - 1, chunk)))
    }
}

fn map_line(
    raw: &RawLine,
    bytes: &[u8],
    mapping: &Mapping,
    context: &MapContext,
    numbering: &mut Numbering,
) -> MappedLine {
    let (line, too_long_by) = (raw.line, raw.too_long);
    // Bytes that are not UTF-8 are kept as lossy text for the dead letter; the verdict on the
    // line is taken from the original bytes.
    let (text, not_utf8): (Arc<str>, _) = match std::str::from_utf8(bytes) {
        Ok(text) => (text.into(), None),
        Err(_) => (
            String::from_utf8_lossy(bytes).into(),
            parse_line(bytes).err(),
        ),
    };
    let unresolved = || {
        mapping
            .resolved
            .iter()
            .map(|set| !set.contains(line))
            .collect()
    };
    let outcome = match (too_long_by, not_utf8) {
        (Some(bytes), _) => {
            LineOutcome::Invalid(too_long(bytes, mapping.max_event_bytes), unresolved())
        }
        (None, Some(reason)) => LineOutcome::Invalid(reason, unresolved()),
        (None, None) => match parse_shared(&text) {
            Err(reason) => LineOutcome::Invalid(reason, unresolved()),
            Ok(event) => LineOutcome::Mapped(
                mapping
                    .destinations
                    .iter()
                    .zip(mapping.consent.iter())
                    .zip(mapping.resolved.iter())
                    .zip(mapping.paused.iter())
                    .map(|(((destination, consent), set), paused)| {
                        if set.contains(line) {
                            ForDestination::Done
                        } else if paused.load(Ordering::Relaxed) {
                            ForDestination::Paused
                        } else {
                            ForDestination::Mapped(
                                map_event(destination.as_ref(), consent, &event, context)
                                    .map(|mapped| (mapped.outcome, numbering.count(mapped.notes))),
                            )
                        }
                    })
                    .collect(),
            ),
        },
    };
    MappedLine {
        line,
        raw: text,
        outcome,
    }
}
