//! The SQLite spool: accepted events in one file (WAL), each stored once, with per destination a
//! watermark plus resolved ranges (as `hardal send`'s checkpoint keeps input lines), dead letters
//! with a copy of their event, and the identities seen within the deduplication window.
//!
//! All writes go through one thread that gathers what is waiting (appends from many requests,
//! resolutions from delivery) into one transaction: a group commit, so `durability: full` pays
//! one fsync for many requests. Reads (a destination taking its next events, listing dead
//! letters) use their own connection and never wait for writes. Events every destination is done
//! with are deleted as the slowest watermark passes them; SQLite reuses their pages, and an
//! incremental vacuum returns a large surplus to the file system, so the file does not grow
//! without bound.
//!
//! Sequence numbers are never reused (`AUTOINCREMENT`): a replayed dead letter must come after
//! every cursor, even when the events before it were all delivered and deleted.
//!
//! Deduplication remembers each accepted identity for the window: in memory (a set, and the
//! identities in acceptance order to forget them by age), and on disk as an append-only log that
//! rebuilds them when the spool opens again. A log is written sequentially, where an index of
//! random hashes would dirty a page per event and multiply what every commit writes. Memory is
//! bounded: past [`MAX_IDENTITIES`] the oldest identities are forgotten early. Forgetting can
//! only let a producer's late retry be stored twice (delivered twice, identical bytes, which
//! Insider stores once), never take a new event for a duplicate.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::{Notify, oneshot};

use super::{
    Appended, Backlog, BacklogError, BacklogStats, DeadLetter, DeadLetterFilter, Depth, Incoming,
    Resolution, Stored,
};
use crate::config::Durability;
use crate::delivery::Ending;
use crate::resolved::{ResolvedSet, to_ranges};

/// Most commands one group commit takes.
const GROUP: usize = 512;

/// How often a destination that caught up looks for events another process appended (a
/// dead-letter replay).
const POLL: Duration = Duration::from_millis(500);

/// The most identities deduplication remembers: about 18 bytes each in memory (the set is sized
/// for this many at once, just below a power of two of slots).
pub const MAX_IDENTITIES: usize = 1_800_000;

/// How often identities older than the window are deleted from the log.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// How the spool is set up.
#[derive(Debug, Clone)]
pub struct SpoolOptions {
    pub durability: Durability,
    pub max_bytes: u64,
    pub dedup_window: Duration,
}

/// What the writer thread shares with readers and metrics.
struct Shared {
    /// Per destination: events waiting, and the watermark.
    depth: Vec<AtomicU64>,
    watermark: Vec<AtomicU64>,
    bytes: AtomicU64,
    writable: AtomicBool,
}

enum Command {
    Append(
        Vec<Incoming>,
        oneshot::Sender<Result<Appended, BacklogError>>,
    ),
    Resolve(
        usize,
        Vec<Resolution>,
        oneshot::Sender<Result<(), BacklogError>>,
    ),
    /// Events taken that are meant for another destination (replays): resolved without a word.
    Skip(usize, Vec<u64>),
    Replay(DeadLetterFilter, oneshot::Sender<Result<u64, BacklogError>>),
    Purge(DeadLetterFilter, oneshot::Sender<Result<u64, BacklogError>>),
}

pub struct SqliteSpool {
    destinations: Vec<String>,
    commands: Mutex<mpsc::Sender<Command>>,
    reader: Arc<Mutex<Connection>>,
    /// Per destination: the last sequence number taken in this process.
    cursors: Mutex<Vec<u64>>,
    /// What was resolved when the spool opened: skipped when first read again.
    opened_resolved: Arc<Vec<ResolvedSet>>,
    shared: Arc<Shared>,
    appended: Arc<Notify>,
}

fn io(e: impl std::fmt::Display) -> BacklogError {
    BacklogError::Io(e.to_string())
}

fn now_seconds() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl SqliteSpool {
    /// Opens (or creates) the spool at `path` for `destinations`. A destination the spool has
    /// not seen before starts with the events accepted from now on.
    pub fn open(
        path: &Path,
        destinations: &[String],
        options: SpoolOptions,
    ) -> Result<SqliteSpool, BacklogError> {
        let name = path.display().to_string();
        let fail = |e: rusqlite::Error| BacklogError::Io(format!("the spool {name}: {e}"));
        let writer = Connection::open(path).map_err(fail)?;
        writer.busy_timeout(Duration::from_secs(10)).map_err(fail)?;
        // auto_vacuum takes effect only before the first table exists.
        writer
            .execute_batch(
                "PRAGMA auto_vacuum = INCREMENTAL;
                 PRAGMA journal_mode = WAL;
                 CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY AUTOINCREMENT,
                     accepted_at INTEGER NOT NULL, target TEXT, body TEXT NOT NULL);
                 CREATE TABLE IF NOT EXISTS progress (destination TEXT PRIMARY KEY,
                     watermark INTEGER NOT NULL);
                 CREATE TABLE IF NOT EXISTS resolved (destination TEXT NOT NULL,
                     start INTEGER NOT NULL, end INTEGER NOT NULL);
                 CREATE INDEX IF NOT EXISTS resolved_by_destination ON resolved (destination, end);
                 CREATE TABLE IF NOT EXISTS dead_letters (id INTEGER PRIMARY KEY AUTOINCREMENT,
                     destination TEXT NOT NULL, seq INTEGER NOT NULL, at INTEGER NOT NULL,
                     ending TEXT NOT NULL, reasons TEXT NOT NULL, body TEXT NOT NULL);
                 CREATE TABLE IF NOT EXISTS seen_log (id INTEGER PRIMARY KEY, hash INTEGER NOT NULL,
                     at INTEGER NOT NULL);",
            )
            .map_err(fail)?;
        // A page cache of 16 MB (the default 2 MB reads pages back from the file system at every
        // group), and a write-ahead log that may grow to 64 MB between checkpoints, so that
        // checkpoints come in few large writes.
        writer
            .execute_batch("PRAGMA cache_size = -16384; PRAGMA wal_autocheckpoint = 16384;")
            .map_err(fail)?;
        writer
            .pragma_update(
                None,
                "synchronous",
                match options.durability {
                    Durability::Full => "FULL",
                    Durability::Normal => "NORMAL",
                },
            )
            .map_err(fail)?;
        let max_seq: u64 = writer
            .query_row("SELECT COALESCE(MAX(seq), 0) FROM events", [], |row| {
                row.get::<_, i64>(0)
            })
            .map_err(fail)?
            .max(0) as u64;
        let mut sets = Vec::new();
        for destination in destinations {
            let watermark: Option<i64> = writer
                .query_row(
                    "SELECT watermark FROM progress WHERE destination = ?1",
                    [destination],
                    |row| row.get(0),
                )
                .optional()
                .map_err(fail)?;
            let mut set = ResolvedSet::new();
            match watermark {
                Some(watermark) => set.watermark = (watermark.max(1)) as u64,
                None => {
                    set.watermark = max_seq + 1;
                    writer
                        .execute(
                            "INSERT INTO progress (destination, watermark) VALUES (?1, ?2)",
                            params![destination, set.watermark as i64],
                        )
                        .map_err(fail)?;
                }
            }
            let mut statement = writer
                .prepare("SELECT start, end FROM resolved WHERE destination = ?1")
                .map_err(fail)?;
            let rows = statement
                .query_map([destination], |row| {
                    Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?))
                })
                .map_err(fail)?;
            for row in rows {
                let (start, end) = row.map_err(fail)?;
                if start >= 1 && end > start {
                    set.insert(start as u64, end as u64);
                }
            }
            sets.push(set);
        }
        let shared = Arc::new(Shared {
            depth: destinations.iter().map(|_| AtomicU64::new(0)).collect(),
            watermark: sets.iter().map(|s| AtomicU64::new(s.watermark)).collect(),
            bytes: AtomicU64::new(0),
            writable: AtomicBool::new(true),
        });
        for (index, (destination, set)) in destinations.iter().zip(&sets).enumerate() {
            let waiting: i64 = writer
                .query_row(
                    "SELECT count(*) FROM events WHERE seq >= ?1 AND (target IS NULL OR target = ?2)",
                    params![set.watermark as i64, destination],
                    |row| row.get(0),
                )
                .map_err(fail)?;
            let above: u64 = set.ranges.iter().map(|(s, e)| e - s).sum();
            shared.depth[index].store(
                (waiting.max(0) as u64).saturating_sub(above),
                Ordering::Relaxed,
            );
        }
        shared
            .bytes
            .store(used_bytes(&writer).map_err(fail)?, Ordering::Relaxed);
        let seen = Seen::load(&writer, options.dedup_window).map_err(fail)?;
        let reader = Connection::open(path).map_err(fail)?;
        reader.busy_timeout(Duration::from_secs(10)).map_err(fail)?;
        reader
            .execute_batch("PRAGMA cache_size = -8192;")
            .map_err(fail)?;
        let (commands, inbox) = mpsc::channel();
        let appended = Arc::new(Notify::new());
        let mut state = Writer {
            connection: writer,
            books: Books {
                destinations: destinations.to_vec(),
                sets: sets.clone(),
                shared: Arc::clone(&shared),
                options,
                last_seq: max_seq,
                seen,
            },
            appended: Arc::clone(&appended),
        };
        std::thread::Builder::new()
            .name("hardal-spool".into())
            .spawn(move || state.run(inbox))
            .map_err(io)?;
        Ok(SqliteSpool {
            destinations: destinations.to_vec(),
            commands: Mutex::new(commands),
            reader: Arc::new(Mutex::new(reader)),
            cursors: Mutex::new(sets.iter().map(|s| s.watermark - 1).collect()),
            opened_resolved: Arc::new(sets),
            shared,
            appended,
        })
    }

    fn index(&self, destination: &str) -> Result<usize, BacklogError> {
        self.destinations
            .iter()
            .position(|d| d == destination)
            .ok_or_else(|| BacklogError::UnknownDestination(destination.to_owned()))
    }

    fn send(&self, command: Command) -> Result<(), BacklogError> {
        self.commands
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .send(command)
            .map_err(|_| BacklogError::Io("the spool's writer stopped".into()))
    }

    /// Runs `work` with the reader connection off the async threads.
    async fn read<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> Result<T, BacklogError> + Send + 'static,
    ) -> Result<T, BacklogError> {
        let reader = Arc::clone(&self.reader);
        tokio::task::spawn_blocking(move || {
            let connection = reader.lock().unwrap_or_else(|e| e.into_inner());
            work(&connection)
        })
        .await
        .map_err(io)?
    }
}

#[async_trait]
impl Backlog for SqliteSpool {
    async fn append(&self, events: Vec<Incoming>) -> Result<Appended, BacklogError> {
        if events.is_empty() {
            return Ok(Appended::default());
        }
        let (reply, answer) = oneshot::channel();
        self.send(Command::Append(events, reply))?;
        answer
            .await
            .map_err(|_| BacklogError::Io("the spool's writer stopped".into()))?
    }

    async fn take(&self, destination: &str, limit: usize) -> Result<Vec<Stored>, BacklogError> {
        let index = self.index(destination)?;
        let start = self.cursors.lock().unwrap_or_else(|e| e.into_inner())[index];
        let opened = Arc::clone(&self.opened_resolved);
        let name = destination.to_owned();
        let (taken, last, skipped) = self
            .read(move |connection| {
                let mut statement = connection
                    .prepare_cached(
                        "SELECT seq, target, body FROM events WHERE seq > ?1 ORDER BY seq LIMIT ?2",
                    )
                    .map_err(io)?;
                let (mut taken, mut skipped, mut last) = (Vec::new(), Vec::new(), start);
                // Pages of events meant for others (or resolved before a restart) are passed
                // over until some are this destination's, or there are no more.
                while taken.is_empty() {
                    let mut rows = statement
                        .query(params![last as i64, limit.max(1) as i64])
                        .map_err(io)?;
                    let mut any = false;
                    while let Some(row) = rows.next().map_err(io)? {
                        any = true;
                        let seq = row.get::<_, i64>(0).map_err(io)? as u64;
                        last = seq;
                        if opened[index].contains(seq) {
                            continue;
                        }
                        let target: Option<String> = row.get(1).map_err(io)?;
                        if target.is_some_and(|t| t != name) {
                            skipped.push(seq);
                            continue;
                        }
                        taken.push(Stored {
                            seq,
                            body: row.get(2).map_err(io)?,
                        });
                    }
                    if !any {
                        break;
                    }
                }
                Ok((taken, last, skipped))
            })
            .await?;
        self.cursors.lock().unwrap_or_else(|e| e.into_inner())[index] = last;
        if !skipped.is_empty() {
            self.send(Command::Skip(index, skipped))?;
        }
        Ok(taken)
    }

    async fn resolve(
        &self,
        destination: &str,
        resolved: Vec<Resolution>,
    ) -> Result<(), BacklogError> {
        if resolved.is_empty() {
            return Ok(());
        }
        let index = self.index(destination)?;
        let (reply, answer) = oneshot::channel();
        self.send(Command::Resolve(index, resolved, reply))?;
        answer
            .await
            .map_err(|_| BacklogError::Io("the spool's writer stopped".into()))?
    }

    async fn wait_for_events(&self) {
        let _ = tokio::time::timeout(POLL, self.appended.notified()).await;
    }

    async fn dead_letters(
        &self,
        filter: &DeadLetterFilter,
    ) -> Result<Vec<DeadLetter>, BacklogError> {
        let filter = filter.clone();
        self.read(move |connection| {
            let (clause, values) = filter_sql(&filter);
            let sql = format!(
                "SELECT id, destination, at, ending, reasons, body FROM dead_letters WHERE {clause} ORDER BY id{}",
                filter
                    .limit
                    .map_or(String::new(), |n| format!(" LIMIT {n}"))
            );
            let mut statement = connection.prepare(&sql).map_err(io)?;
            let rows = statement
                .query_map(rusqlite::params_from_iter(values), |row| {
                    let reasons: String = row.get(4)?;
                    let body: String = row.get(5)?;
                    Ok(DeadLetter {
                        id: row.get::<_, i64>(0)? as u64,
                        destination: row.get(1)?,
                        at: row.get::<_, i64>(2)?.max(0) as u64,
                        ending: row.get(3)?,
                        reasons: serde_json::from_str(&reasons).unwrap_or_default(),
                        event: serde_json::from_str(&body)
                            .unwrap_or(serde_json::Value::String(body)),
                    })
                })
                .map_err(io)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(io)
        })
        .await
    }

    async fn replay(&self, filter: &DeadLetterFilter) -> Result<u64, BacklogError> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Replay(filter.clone(), reply))?;
        answer
            .await
            .map_err(|_| BacklogError::Io("the spool's writer stopped".into()))?
    }

    async fn purge(&self, filter: &DeadLetterFilter) -> Result<u64, BacklogError> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Purge(filter.clone(), reply))?;
        answer
            .await
            .map_err(|_| BacklogError::Io("the spool's writer stopped".into()))?
    }

    async fn stats(&self) -> Result<BacklogStats, BacklogError> {
        let watermarks: Vec<u64> = self
            .shared
            .watermark
            .iter()
            .map(|w| w.load(Ordering::Relaxed))
            .collect();
        let oldest = self
            .read(move |connection| {
                let mut statement = connection
                    .prepare_cached(
                        "SELECT accepted_at FROM events WHERE seq >= ?1 ORDER BY seq LIMIT 1",
                    )
                    .map_err(io)?;
                watermarks
                    .iter()
                    .map(|w| {
                        statement
                            .query_row([*w as i64], |row| row.get::<_, i64>(0))
                            .optional()
                            .map_err(io)
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .await?;
        let now = now_seconds();
        let depths = self
            .destinations
            .iter()
            .zip(&self.shared.depth)
            .zip(oldest)
            .map(|((destination, depth), oldest)| {
                let events = depth.load(Ordering::Relaxed);
                Depth {
                    destination: destination.clone(),
                    events,
                    oldest_age_seconds: match oldest {
                        Some(at) if events > 0 => (now - at).max(0) as f64,
                        _ => 0.0,
                    },
                }
            })
            .collect();
        Ok(BacklogStats {
            depths,
            bytes: self.shared.bytes.load(Ordering::Relaxed),
            writable: self.shared.writable.load(Ordering::Relaxed),
            ..BacklogStats::default()
        })
    }
}

/// The SQL condition and its values for a dead-letter filter.
fn filter_sql(filter: &DeadLetterFilter) -> (String, Vec<rusqlite::types::Value>) {
    use rusqlite::types::Value;
    let mut clauses = vec!["1 = 1".to_owned()];
    let mut values = Vec::new();
    if let Some(destination) = &filter.destination {
        clauses.push("destination = ?".into());
        values.push(Value::Text(destination.clone()));
    }
    if let Some(reason) = &filter.reason {
        clauses.push("instr(reasons, ?) > 0".into());
        let escaped = serde_json::to_string(reason).expect("a string serializes");
        values.push(Value::Text(escaped[1..escaped.len() - 1].to_owned()));
    }
    let seconds = |t: &SystemTime| {
        t.duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64)
    };
    if let Some(since) = &filter.since {
        clauses.push("at >= ?".into());
        values.push(Value::Integer(seconds(since)));
    }
    if let Some(until) = &filter.until {
        clauses.push("at <= ?".into());
        values.push(Value::Integer(seconds(until)));
    }
    if let Some(id) = filter.id {
        clauses.push("id = ?".into());
        values.push(Value::Integer(id as i64));
    }
    (clauses.join(" AND "), values)
}

/// Bytes the spool's pages hold (free pages excluded).
fn used_bytes(connection: &Connection) -> rusqlite::Result<u64> {
    let pages: i64 = connection.query_row("PRAGMA page_count", [], |r| r.get(0))?;
    let free: i64 = connection.query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
    let size: i64 = connection.query_row("PRAGMA page_size", [], |r| r.get(0))?;
    Ok(((pages - free).max(0) * size) as u64)
}

/// The writer thread: its connection, and what it keeps in memory about the spool.
struct Writer {
    connection: Connection,
    books: Books,
    appended: Arc<Notify>,
}

/// What the writer keeps in memory: resolved sets, depths, the highest sequence number.
struct Books {
    destinations: Vec<String>,
    sets: Vec<ResolvedSet>,
    shared: Arc<Shared>,
    options: SpoolOptions,
    /// The highest sequence number this process knows of.
    last_seq: u64,
    seen: Seen,
}

/// The identities accepted within the deduplication window: a hash set (identities are already
/// uniform 64-bit hashes, so the set uses them as they are), the identities in acceptance order,
/// and a mark of the time every second, to forget them by age.
struct Seen {
    set: HashSet<u64, std::hash::BuildHasherDefault<Passthrough>>,
    order: VecDeque<u64>,
    /// (number of the first identity admitted in that second, the second).
    marks: VecDeque<(u64, i64)>,
    /// Identities admitted so far (the number the next one gets).
    admitted: u64,
    window: i64,
    /// Identities added by the group being written: forgotten again if it fails.
    pending: usize,
    last_prune: std::time::Instant,
}

/// A hasher that passes a `u64` through: the identities are xxh3 hashes already.
#[derive(Default)]
struct Passthrough(u64);

impl std::hash::Hasher for Passthrough {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = (self.0 << 8) | u64::from(*byte);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }
}

impl Seen {
    fn new(window: i64) -> Seen {
        Seen {
            // Sized once: a set that doubles holds both sizes at once while it grows.
            set: HashSet::with_capacity_and_hasher(
                if window > 0 { MAX_IDENTITIES } else { 0 },
                Default::default(),
            ),
            order: VecDeque::new(),
            marks: VecDeque::new(),
            admitted: 0,
            window,
            pending: 0,
            last_prune: std::time::Instant::now(),
        }
    }

    /// Rebuilds the identities from the log's rows within the window (the newest, up to the
    /// bound).
    fn load(connection: &Connection, window: Duration) -> rusqlite::Result<Seen> {
        let mut seen = Seen::new(window.as_secs() as i64);
        if seen.window == 0 {
            return Ok(seen);
        }
        let mut statement = connection.prepare(
            "SELECT at, hash FROM (SELECT id, at, hash FROM seen_log WHERE at >= ?1
                 ORDER BY id DESC LIMIT ?2) ORDER BY id",
        )?;
        let rows = statement.query_map(
            params![now_seconds() - seen.window, MAX_IDENTITIES as i64],
            |row| Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)? as u64)),
        )?;
        for row in rows {
            let (at, hash) = row?;
            seen.admit(hash, at);
        }
        seen.committed();
        Ok(seen)
    }

    /// Whether `hash` is new (and now remembered); false for a duplicate.
    fn admit(&mut self, hash: u64, at: i64) -> bool {
        if !self.set.insert(hash) {
            return false;
        }
        if self.marks.back().is_none_or(|(_, second)| *second < at) {
            self.marks.push_back((self.admitted, at));
        }
        self.order.push_back(hash);
        self.admitted += 1;
        self.pending += 1;
        true
    }

    /// The group was written: its identities stay; those older than the window, or past the
    /// bound, are forgotten.
    fn committed(&mut self) {
        self.pending = 0;
        let cutoff = now_seconds() - self.window;
        loop {
            let first = self.admitted - self.order.len() as u64;
            // The second of the oldest identity, and where the next second starts.
            while self.marks.len() > 1 && self.marks[1].0 <= first {
                self.marks.pop_front();
            }
            let old = self.marks.front().is_some_and(|(_, at)| *at < cutoff);
            if !old && self.order.len() <= MAX_IDENTITIES {
                break;
            }
            let Some(hash) = self.order.pop_front() else {
                break;
            };
            self.set.remove(&hash);
        }
    }

    /// The group failed: its identities were never accepted.
    fn rolled_back(&mut self) {
        for _ in 0..self.pending {
            if let Some(hash) = self.order.pop_back() {
                self.set.remove(&hash);
                self.admitted -= 1;
            }
        }
        self.pending = 0;
        while self
            .marks
            .back()
            .is_some_and(|(first, _)| *first >= self.admitted)
        {
            self.marks.pop_back();
        }
    }

    /// Deletes the log's identities older than the window, at most once a minute.
    fn prune(&mut self, transaction: &rusqlite::Transaction) -> rusqlite::Result<()> {
        if self.last_prune.elapsed() < PRUNE_EVERY {
            return Ok(());
        }
        self.last_prune = std::time::Instant::now();
        // `at` grows with `id`, so the first young row bounds the old ones.
        transaction.execute(
            "DELETE FROM seen_log WHERE id < COALESCE(
                 (SELECT id FROM seen_log WHERE at >= ?1 ORDER BY id LIMIT 1),
                 (SELECT COALESCE(MAX(id), 0) + 1 FROM seen_log))",
            [now_seconds() - self.window],
        )?;
        Ok(())
    }
}

/// A command's answer, sent once its transaction committed.
enum Reply {
    Appended(oneshot::Sender<Result<Appended, BacklogError>>, Appended),
    Resolved(oneshot::Sender<Result<(), BacklogError>>),
    Counted(oneshot::Sender<Result<u64, BacklogError>>, u64),
    Failed(Failure),
    None,
}

/// A command refused on its own (the others of its group go on).
enum Failure {
    Append(
        oneshot::Sender<Result<Appended, BacklogError>>,
        BacklogError,
    ),
}

impl Writer {
    fn run(&mut self, inbox: mpsc::Receiver<Command>) {
        let mut last_vacuum = std::time::Instant::now();
        while let Ok(first) = inbox.recv() {
            let mut group = vec![first];
            while group.len() < GROUP {
                match inbox.try_recv() {
                    Ok(command) => group.push(command),
                    Err(_) => break,
                }
            }
            let result = self.apply(group);
            self.books
                .shared
                .writable
                .store(result.is_ok(), Ordering::Relaxed);
            if last_vacuum.elapsed() > Duration::from_secs(10) {
                last_vacuum = std::time::Instant::now();
                self.vacuum();
            }
        }
    }

    /// Applies a group of commands in one transaction and answers each.
    fn apply(&mut self, group: Vec<Command>) -> Result<(), ()> {
        let books = &mut self.books;
        let sets_before = books.sets.clone();
        let last_before = books.last_seq;
        let depth_before: Vec<u64> = books
            .shared
            .depth
            .iter()
            .map(|d| d.load(Ordering::Relaxed))
            .collect();
        let mut replies = Vec::with_capacity(group.len());
        let mut appended_any = false;
        let outcome = (|| -> rusqlite::Result<()> {
            let transaction = self.connection.transaction()?;
            books.reconcile(&transaction)?;
            let mut bytes = used_bytes(&transaction)?;
            for command in group {
                let reply = match command {
                    Command::Append(events, reply) => {
                        if bytes >= books.options.max_bytes {
                            Reply::Failed(Failure::Append(
                                reply,
                                BacklogError::Full {
                                    bytes,
                                    max_bytes: books.options.max_bytes,
                                },
                            ))
                        } else {
                            let size: usize = events.iter().map(|e| e.body.len() + 32).sum();
                            let appended = books.append(&transaction, events)?;
                            bytes += size as u64;
                            appended_any |= appended.accepted > 0;
                            Reply::Appended(reply, appended)
                        }
                    }
                    Command::Resolve(index, resolved, reply) => {
                        books.resolve(&transaction, index, resolved, true)?;
                        Reply::Resolved(reply)
                    }
                    Command::Skip(index, seqs) => {
                        let resolved = seqs
                            .into_iter()
                            .map(|seq| Resolution {
                                seq,
                                ending: Ending::Skipped,
                                reasons: Vec::new(),
                            })
                            .collect();
                        books.resolve(&transaction, index, resolved, false)?;
                        Reply::None
                    }
                    Command::Replay(filter, reply) => {
                        let count = books.replay(&transaction, &filter)?;
                        appended_any |= count > 0;
                        Reply::Counted(reply, count)
                    }
                    Command::Purge(filter, reply) => {
                        let (clause, values) = filter_sql(&filter);
                        let count = transaction.execute(
                            &format!("DELETE FROM dead_letters WHERE {clause}"),
                            rusqlite::params_from_iter(values),
                        )?;
                        Reply::Counted(reply, count as u64)
                    }
                };
                replies.push(reply);
            }
            books.collect_garbage(&transaction)?;
            books.seen.prune(&transaction)?;
            transaction.commit()?;
            Ok(())
        })();
        match outcome {
            Ok(()) => books.seen.committed(),
            Err(_) => books.seen.rolled_back(),
        }
        if outcome.is_ok()
            && let Ok(bytes) = used_bytes(&self.connection)
        {
            books.shared.bytes.store(bytes, Ordering::Relaxed);
        }
        match outcome {
            Ok(()) => {
                if appended_any {
                    self.appended.notify_waiters();
                }
                for reply in replies {
                    match reply {
                        Reply::Appended(reply, appended) => {
                            let _ = reply.send(Ok(appended));
                        }
                        Reply::Resolved(reply) => {
                            let _ = reply.send(Ok(()));
                        }
                        Reply::Counted(reply, count) => {
                            let _ = reply.send(Ok(count));
                        }
                        Reply::Failed(Failure::Append(reply, error)) => {
                            let _ = reply.send(Err(error));
                        }
                        Reply::None => {}
                    }
                }
                Ok(())
            }
            Err(e) => {
                // Nothing of the group happened: the memory of it goes too.
                books.sets = sets_before;
                books.last_seq = last_before;
                for (depth, before) in books.shared.depth.iter().zip(depth_before) {
                    depth.store(before, Ordering::Relaxed);
                }
                for (watermark, set) in books.shared.watermark.iter().zip(&books.sets) {
                    watermark.store(set.watermark, Ordering::Relaxed);
                }
                let error = BacklogError::Io(format!("writing the spool: {e}"));
                tracing::error!(%error, "A write to the spool failed; the requests of that write were answered with errors.");
                for reply in replies {
                    match reply {
                        Reply::Appended(reply, _) | Reply::Failed(Failure::Append(reply, _)) => {
                            let _ = reply.send(Err(error.clone()));
                        }
                        Reply::Resolved(reply) => {
                            let _ = reply.send(Err(error.clone()));
                        }
                        Reply::Counted(reply, _) => {
                            let _ = reply.send(Err(error.clone()));
                        }
                        Reply::None => {}
                    }
                }
                Err(())
            }
        }
    }

    /// Returns a large surplus of free pages to the file system.
    fn vacuum(&self) {
        let free: i64 = self
            .connection
            .query_row("PRAGMA freelist_count", [], |r| r.get(0))
            .unwrap_or(0);
        if free > 10_000 {
            let _ = self
                .connection
                .execute_batch(&format!("PRAGMA incremental_vacuum({})", free / 2));
        }
    }
}

impl Books {
    fn append(
        &mut self,
        transaction: &rusqlite::Transaction,
        events: Vec<Incoming>,
    ) -> rusqlite::Result<Appended> {
        let dedup = self.seen.window > 0;
        let mut appended = Appended::default();
        let now = now_seconds();
        let mut log =
            transaction.prepare_cached("INSERT INTO seen_log (hash, at) VALUES (?1, ?2)")?;
        let mut insert_event = transaction.prepare_cached(
            "INSERT INTO events (accepted_at, target, body) VALUES (?1, NULL, ?2)",
        )?;
        for event in events {
            if dedup {
                if !self.seen.admit(event.identity, now) {
                    appended.duplicates += 1;
                    continue;
                }
                log.execute(params![event.identity as i64, now])?;
            }
            insert_event.execute(params![now, event.body])?;
            self.last_seq = transaction.last_insert_rowid() as u64;
            appended.accepted += 1;
        }
        for depth in &self.shared.depth {
            depth.fetch_add(appended.accepted as u64, Ordering::Relaxed);
        }
        Ok(appended)
    }

    /// Counts events another process appended (replays) since this one last looked.
    fn reconcile(&mut self, transaction: &rusqlite::Transaction) -> rusqlite::Result<()> {
        let max: i64 =
            transaction.query_row("SELECT COALESCE(MAX(seq), 0) FROM events", [], |r| r.get(0))?;
        if max as u64 <= self.last_seq {
            return Ok(());
        }
        let mut statement = transaction.prepare("SELECT target FROM events WHERE seq > ?1")?;
        let targets =
            statement.query_map([self.last_seq as i64], |r| r.get::<_, Option<String>>(0))?;
        for target in targets {
            ::metrics::counter!("hardal_events_replayed_total").increment(1);
            match target? {
                None => self
                    .shared
                    .depth
                    .iter()
                    .for_each(|d| _ = d.fetch_add(1, Ordering::Relaxed)),
                Some(target) => {
                    if let Some(index) = self.destinations.iter().position(|d| *d == target) {
                        self.shared.depth[index].fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
        self.last_seq = max as u64;
        Ok(())
    }

    fn resolve(
        &mut self,
        transaction: &rusqlite::Transaction,
        index: usize,
        resolved: Vec<Resolution>,
        counted: bool,
    ) -> rusqlite::Result<()> {
        let destination = &self.destinations[index];
        let now = now_seconds();
        {
            let mut dead = transaction.prepare_cached(
                "INSERT INTO dead_letters (destination, seq, at, ending, reasons, body)
                 SELECT ?1, seq, ?2, ?3, ?4, body FROM events WHERE seq = ?5",
            )?;
            for resolution in &resolved {
                let ending = match resolution.ending {
                    Ending::Rejected => "rejected",
                    Ending::DeadLettered => "dead_lettered",
                    _ => continue,
                };
                let reasons = serde_json::to_string(&resolution.reasons).expect("serializes");
                dead.execute(params![
                    destination,
                    now,
                    ending,
                    reasons,
                    resolution.seq as i64
                ])?;
            }
        }
        let mut seqs: Vec<u64> = resolved.iter().map(|r| r.seq).collect();
        let set = &mut self.sets[index];
        let before = set.watermark;
        let mut newly = 0u64;
        {
            let mut insert = transaction.prepare_cached(
                "INSERT INTO resolved (destination, start, end) VALUES (?1, ?2, ?3)",
            )?;
            for (start, end) in to_ranges(&mut seqs) {
                let new_here = (start..end).filter(|s| !set.contains(*s)).count() as u64;
                newly += new_here;
                set.insert(start, end);
                insert.execute(params![destination, start as i64, end as i64])?;
            }
        }
        if set.watermark != before {
            transaction.execute(
                "UPDATE progress SET watermark = ?2 WHERE destination = ?1",
                params![destination, set.watermark as i64],
            )?;
            transaction.execute(
                "DELETE FROM resolved WHERE destination = ?1 AND end <= ?2",
                params![destination, set.watermark as i64],
            )?;
            self.shared.watermark[index].store(set.watermark, Ordering::Relaxed);
        }
        if counted {
            let depth = &self.shared.depth[index];
            let _ = depth.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |d| {
                Some(d.saturating_sub(newly))
            });
        }
        Ok(())
    }

    /// Deletes events every configured destination is done with.
    fn collect_garbage(&mut self, transaction: &rusqlite::Transaction) -> rusqlite::Result<()> {
        if let Some(low) = self.sets.iter().map(|s| s.watermark).min() {
            transaction
                .prepare_cached("DELETE FROM events WHERE seq < ?1")?
                .execute([low as i64])?;
        }
        Ok(())
    }

    fn replay(
        &mut self,
        transaction: &rusqlite::Transaction,
        filter: &DeadLetterFilter,
    ) -> rusqlite::Result<u64> {
        let (clause, values) = filter_sql(filter);
        let letters: Vec<(i64, String, String)> = {
            let mut statement = transaction.prepare(&format!(
                "SELECT id, destination, body FROM dead_letters WHERE {clause} ORDER BY id"
            ))?;
            let rows = statement.query_map(rusqlite::params_from_iter(values), |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?))
            })?;
            rows.collect::<Result<_, _>>()?
        };
        let now = now_seconds();
        let mut counts: HashMap<usize, u64> = HashMap::new();
        for (id, destination, body) in &letters {
            transaction.execute(
                "INSERT INTO events (accepted_at, target, body) VALUES (?1, ?2, ?3)",
                params![now, destination, body],
            )?;
            self.last_seq = transaction.last_insert_rowid() as u64;
            ::metrics::counter!("hardal_events_replayed_total").increment(1);
            transaction.execute("DELETE FROM dead_letters WHERE id = ?1", [id])?;
            if let Some(index) = self.destinations.iter().position(|d| d == destination) {
                *counts.entry(index).or_default() += 1;
            }
        }
        for (index, count) in counts {
            self.shared.depth[index].fetch_add(count, Ordering::Relaxed);
        }
        Ok(letters.len() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::{MAX_IDENTITIES, Seen, now_seconds};

    #[test]
    fn identities_are_remembered_within_the_window_and_the_bound() {
        let now = now_seconds();
        let mut seen = Seen::new(3600);
        assert!(seen.admit(1, now - 7200));
        assert!(!seen.admit(1, now), "a duplicate within one group");
        seen.committed();
        assert!(seen.admit(1, now), "forgotten: older than the window");
        seen.committed();
        assert!(!seen.admit(1, now), "a duplicate of a committed group");
        // A failed group's identities were never accepted.
        assert!(seen.admit(2, now));
        seen.rolled_back();
        assert!(seen.admit(2, now));
        seen.committed();
        // Past the bound, the oldest go first.
        for hash in 10..10 + MAX_IDENTITIES as u64 {
            seen.admit(hash, now);
        }
        seen.committed();
        assert_eq!(seen.order.len(), MAX_IDENTITIES);
        assert!(seen.admit(1, now), "the oldest was forgotten");
        assert!(!seen.admit(10 + MAX_IDENTITIES as u64 - 1, now));
    }
}
