//! The SQLite spool: accepted events in one file (WAL), each stored once, with per destination a
//! watermark plus resolved ranges (as `hardal send`'s checkpoint keeps input lines), dead letters
//! with a copy of their event, and the identities seen within the deduplication window.
//!
//! All writes go through one thread (`writer.rs`) that gathers what is waiting into one
//! transaction, a group commit; what it keeps in memory and the SQL of each write are in
//! `books.rs`. Reads (a destination taking its next events, listing dead letters) use their own
//! connection and never wait for writes. Events every destination is done with are deleted as
//! the slowest watermark passes them; SQLite reuses their pages, and an incremental vacuum
//! returns a large surplus to the file system, so the file does not grow without bound.
//!
//! Sequence numbers are never reused (`AUTOINCREMENT`): a replayed dead letter must come after
//! every cursor, even when the events before it were all delivered and deleted.
//!
//! Deduplication (`seen.rs`) remembers each accepted identity for the window, bounded in count.
//! Forgetting can only let a producer's late retry be stored twice (delivered twice, identical
//! bytes, which Insider stores once), never take a new event for a duplicate. Dead letters are
//! in `dead_letters.rs`.

mod books;
mod dead_letters;
mod erasure;
mod lock;
mod progress;
mod seen;
mod writer;

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use tokio::sync::{Notify, oneshot};

use self::books::Books;
use self::erasure::{ErasureDone, ErasureWrite};
pub use self::seen::MAX_IDENTITIES;
use self::seen::Seen;
use self::writer::{Command, Writer};
use super::{
    Appended, Backlog, BacklogError, BacklogStats, DeadLetter, DeadLetterFilter, Depth,
    ErasedMatcher, ErasureRecord, Incoming, PendingErasure, Resolution, Stored, SuppressionEntry,
};
use crate::config::Durability;
use crate::resolved::ResolvedSet;

/// How often a destination that caught up looks for events another process appended (a
/// dead-letter replay).
const POLL: Duration = Duration::from_millis(500);

/// How the spool is set up.
#[derive(Debug, Clone)]
pub struct SpoolOptions {
    pub durability: Durability,
    pub max_bytes: u64,
    pub dedup_window: Duration,
    /// How long a write waits for another process's write lock (`hardal dlq`) before it is
    /// tried again.
    pub busy_timeout: Duration,
}

impl SpoolOptions {
    /// The options of a service: `busy_timeout` at 5 seconds.
    pub fn new(durability: Durability, max_bytes: u64, dedup_window: Duration) -> SpoolOptions {
        SpoolOptions {
            durability,
            max_bytes,
            dedup_window,
            busy_timeout: Duration::from_secs(5),
        }
    }
}

/// What the writer thread shares with readers and metrics.
struct Shared {
    /// Per destination: events waiting, and the watermark.
    depth: Vec<AtomicU64>,
    watermark: Vec<AtomicU64>,
    bytes: AtomicU64,
    /// Whether the last write succeeded.
    writable: AtomicBool,
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
    /// Per destination: woken when events were appended, a permit kept when nobody waits.
    appended: Arc<Vec<Notify>>,
    /// Why the spool can no longer be written, once it cannot.
    fatal: Arc<Mutex<Option<String>>>,
    /// The writer thread: dropping the spool waits for it, so that the spool is whole (and its
    /// owner's lock, which the writer holds, free) once the spool is gone.
    writer: Option<std::thread::JoinHandle<()>>,
    /// Set by [`SqliteSpool::crash`]: the writer ends without writing anything more.
    abandoned: Arc<AtomicBool>,
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
    /// Opens (or creates) the spool at `path` for `destinations`, as its owner (`hardal
    /// serve`): a second owner is refused. A destination the spool has not seen before starts
    /// with the events accepted from now on.
    pub fn open(
        path: &Path,
        destinations: &[String],
        options: SpoolOptions,
    ) -> Result<SqliteSpool, BacklogError> {
        check_path(path).map_err(BacklogError::Refused)?;
        let lock = lock::acquire(path)?;
        SqliteSpool::open_as(path, destinations, options, Some(lock))
    }

    /// Opens an existing spool for the dead-letter commands (`hardal dlq`), beside its owner if
    /// one runs: nothing is created, and nothing is written but what the command asks.
    pub fn open_for_commands(
        path: &Path,
        destinations: &[String],
        durability: Durability,
    ) -> Result<SqliteSpool, BacklogError> {
        check_path(path).map_err(BacklogError::Refused)?;
        if !path.exists() {
            return Err(BacklogError::Refused(format!(
                "the spool {} does not exist (check `backlog.path` in the configuration; a spool is made by hardal serve)",
                path.display()
            )));
        }
        let options = SpoolOptions::new(durability, u64::MAX, Duration::ZERO);
        SqliteSpool::open_as(path, destinations, options, None)
    }

    /// Opens the spool; `lock` is the owner's lock, none for a command.
    fn open_as(
        path: &Path,
        destinations: &[String],
        options: SpoolOptions,
        lock: Option<std::fs::File>,
    ) -> Result<SqliteSpool, BacklogError> {
        let owner = lock.is_some();
        let name = path.display().to_string();
        let fail = |e: rusqlite::Error| BacklogError::Io(format!("the spool {name}: {e}"));
        let flags = if owner {
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE
        } else {
            OpenFlags::SQLITE_OPEN_READ_WRITE
        } | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut writer = Connection::open_with_flags(path, flags).map_err(fail)?;
        writer.busy_timeout(options.busy_timeout).map_err(fail)?;
        if !owner {
            let tables: i64 = writer
                .query_row(
                    "SELECT count(*) FROM sqlite_master WHERE name IN ('events', 'dead_letters', 'progress')",
                    [],
                    |row| row.get(0),
                )
                .map_err(fail)?;
            if tables != 3 {
                return Err(BacklogError::Refused(format!(
                    "{name} is not a hardal spool (check `backlog.path` in the configuration)"
                )));
            }
        }
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
                     at INTEGER NOT NULL);
                 CREATE TABLE IF NOT EXISTS probe (id INTEGER PRIMARY KEY, data BLOB NOT NULL);",
            )
            .map_err(fail)?;
        writer.execute_batch(erasure::TABLES).map_err(fail)?;
        // A page cache of 16 MB (the default 2 MB reads pages back from the file system at every
        // group), and a write-ahead log that may grow to 64 MB between checkpoints, so that
        // checkpoints come in few large writes.
        writer
            .execute_batch(
                "PRAGMA cache_size = -16384; PRAGMA wal_autocheckpoint = 16384;
                 PRAGMA secure_delete = FAST;",
            )
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
        let progress::Progress {
            last_seq,
            sets,
            depths,
        } = progress::load(&mut writer, destinations, owner).map_err(fail)?;
        let shared = Arc::new(Shared {
            depth: depths.into_iter().map(AtomicU64::new).collect(),
            watermark: sets.iter().map(|s| AtomicU64::new(s.watermark)).collect(),
            bytes: AtomicU64::new(0),
            writable: AtomicBool::new(true),
        });
        shared
            .bytes
            .store(used_bytes(&writer).map_err(fail)?, Ordering::Relaxed);
        let seen = Seen::load(&writer, options.dedup_window).map_err(fail)?;
        let reader = Connection::open_with_flags(path, flags).map_err(fail)?;
        reader.busy_timeout(options.busy_timeout).map_err(fail)?;
        reader
            .execute_batch("PRAGMA cache_size = -8192;")
            .map_err(fail)?;
        let (commands, inbox) = mpsc::channel();
        let appended = Arc::new(destinations.iter().map(|_| Notify::new()).collect());
        let fatal = Arc::new(Mutex::new(None));
        let abandoned = Arc::new(AtomicBool::new(false));
        let state = Writer {
            connection: writer,
            books: Books {
                destinations: destinations.to_vec(),
                sets: sets.clone(),
                shared: Arc::clone(&shared),
                options,
                last_seq,
                seen,
            },
            appended: Arc::clone(&appended),
            name,
            file: (
                path.to_path_buf(),
                std::fs::metadata(path)
                    .ok()
                    .filter(|_| owner)
                    .map(|m| writer::file_identity(&m)),
            ),
            owner,
            fatal: Arc::clone(&fatal),
            kept: Vec::new(),
            failures: 0,
            last_probe: None,
            abandoned: Arc::clone(&abandoned),
            _lock: lock,
        };
        let writer = std::thread::Builder::new()
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
            fatal,
            writer: Some(writer),
            abandoned,
        })
    }

    /// Stops the spool as a crash of the process would, for tests of what survives one: the
    /// writer ends without writing what is queued or kept and without checkpointing. Returns
    /// once it ended (and the owner's lock is free).
    #[doc(hidden)]
    pub fn crash(self) {
        self.abandoned.store(true, Ordering::Relaxed);
        drop(self);
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
            .map_err(|_| self.stopped())
    }

    /// Why the writer no longer answers: the reason it stopped writing, or that it closed.
    fn stopped(&self) -> BacklogError {
        match self.fatal.lock().unwrap_or_else(|e| e.into_inner()).clone() {
            Some(reason) => BacklogError::Fatal(reason),
            None => BacklogError::Io("the spool is closed".into()),
        }
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

impl SqliteSpool {
    /// Has the writer do an erasure write and answers what it did.
    async fn erasure(&self, write: ErasureWrite) -> Result<ErasureDone, BacklogError> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Erasure(write, reply))?;
        answer.await.map_err(|_| self.stopped())?
    }
}

impl Drop for SqliteSpool {
    fn drop(&mut self) {
        // The writer ends once its inbox is closed and it wrote what was queued.
        let (closed, _) = mpsc::channel();
        *self.commands.lock().unwrap_or_else(|e| e.into_inner()) = closed;
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
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
        answer.await.map_err(|_| self.stopped())?
    }

    async fn take(&self, destination: &str, limit: usize) -> Result<Vec<Stored>, BacklogError> {
        let index = self.index(destination)?;
        let mut last = self.cursors.lock().unwrap_or_else(|e| e.into_inner())[index];
        let mut skipped = Vec::new();
        // Pages of events meant for others (or resolved before a restart) are passed over until
        // some are this destination's, or there are no more. Each page is its own read, so that
        // a long pass (millions of rows after a restart) does not hold the one reader connection
        // that the other destinations' takes and the health endpoints' statistics also need.
        let taken = loop {
            let opened = Arc::clone(&self.opened_resolved);
            let name = destination.to_owned();
            let (taken, page_last, page_skipped, any) = self
                .read(move |connection| {
                    let mut statement = connection
                        .prepare_cached(
                            "SELECT seq, target, body FROM events WHERE seq > ?1 ORDER BY seq LIMIT ?2",
                        )
                        .map_err(io)?;
                    let mut rows = statement
                        .query(params![last as i64, limit.max(1) as i64])
                        .map_err(io)?;
                    let (mut taken, mut skipped, mut last, mut any) =
                        (Vec::new(), Vec::new(), last, false);
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
                    Ok((taken, last, skipped, any))
                })
                .await?;
            last = page_last;
            skipped.extend(page_skipped);
            if !taken.is_empty() || !any {
                break taken;
            }
        };
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
        answer.await.map_err(|_| self.stopped())?
    }

    async fn wait_for_events(&self) {
        // Without a destination, the first one's wake-ups (every destination gets each).
        if let Some(appended) = self.appended.first() {
            let _ = tokio::time::timeout(POLL, appended.notified()).await;
        }
    }

    async fn wait_for(&self, destination: &str) {
        match self.destinations.iter().position(|d| d == destination) {
            Some(index) => {
                let _ = tokio::time::timeout(POLL, self.appended[index].notified()).await;
            }
            None => tokio::time::sleep(POLL).await,
        }
    }

    async fn dead_letters(
        &self,
        filter: &DeadLetterFilter,
    ) -> Result<Vec<DeadLetter>, BacklogError> {
        let filter = filter.clone();
        self.read(move |connection| dead_letters::list(connection, &filter).map_err(io))
            .await
    }

    async fn replay(&self, filter: &DeadLetterFilter) -> Result<u64, BacklogError> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Replay(filter.clone(), reply))?;
        answer.await.map_err(|_| self.stopped())?
    }

    async fn purge(&self, filter: &DeadLetterFilter) -> Result<u64, BacklogError> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Purge(filter.clone(), reply))?;
        answer.await.map_err(|_| self.stopped())?
    }

    async fn begin_erasure(
        &self,
        record: ErasureRecord,
        identifiers: String,
        suppress: Vec<SuppressionEntry>,
    ) -> Result<(), BacklogError> {
        self.erasure(ErasureWrite::Begin {
            record,
            identifiers,
            suppress,
        })
        .await
        .map(|_| ())
    }

    async fn suppressions(&self) -> Result<Vec<SuppressionEntry>, BacklogError> {
        self.read(|connection| erasure::suppressions(connection).map_err(io))
            .await
    }

    async fn prune_suppressions(&self, before: u64) -> Result<u64, BacklogError> {
        match self.erasure(ErasureWrite::Prune(before)).await? {
            ErasureDone::Counted(count) => Ok(count),
            _ => Ok(0),
        }
    }

    async fn remove_erased(
        &self,
        record: ErasureRecord,
        erased: ErasedMatcher,
    ) -> Result<ErasureRecord, BacklogError> {
        let mut found = [Vec::new(), Vec::new()];
        for (letters, found) in [false, true].into_iter().zip(&mut found) {
            let mut after = 0i64;
            loop {
                let erased = std::sync::Arc::clone(&erased);
                let (keys, last) = self
                    .read(move |connection| {
                        erasure::scan_page(connection, letters, after, &erased).map_err(io)
                    })
                    .await?;
                found.extend(keys);
                match last {
                    Some(last) => after = last,
                    None => break,
                }
            }
        }
        let [events, letters] = found;
        match self
            .erasure(ErasureWrite::Remove {
                record: record.clone(),
                events: events.into_iter().map(|seq| seq as u64).collect(),
                letters,
            })
            .await?
        {
            ErasureDone::Removed(record) => Ok(record),
            _ => Ok(record),
        }
    }

    async fn record_erasure(&self, record: ErasureRecord) -> Result<(), BacklogError> {
        self.erasure(ErasureWrite::Record(record)).await.map(|_| ())
    }

    async fn pending_erasures(&self) -> Result<Vec<PendingErasure>, BacklogError> {
        self.read(|connection| erasure::pending(connection).map_err(io))
            .await
    }

    async fn erasures(&self, id: Option<&str>) -> Result<Vec<ErasureRecord>, BacklogError> {
        let id = id.map(str::to_owned);
        self.read(move |connection| erasure::records(connection, id.as_deref()).map_err(io))
            .await
    }

    /// Writes what is waiting, checkpoints the write-ahead log into the file and stops the
    /// writer; later writes are refused.
    async fn close(&self) {
        let (reply, answer) = oneshot::channel();
        if self.send(Command::Close(reply)).is_ok() {
            let _ = answer.await;
        }
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

/// Whether `path` can be a spool file: a path on the file system (not empty, not SQLite's
/// `:memory:` or a `file:` URI, which would keep events nowhere or elsewhere) that is not a
/// directory.
pub fn check_path(path: &Path) -> Result<(), String> {
    let text = path.to_string_lossy();
    if text.trim().is_empty() {
        return Err("the spool's path is empty; give a file such as `hardal-spool.db`".into());
    }
    if text.starts_with(':') {
        return Err(format!(
            "`{text}` is not a file: the spool must be a file, or accepted events would be kept nowhere"
        ));
    }
    if text.starts_with("file:") {
        return Err(format!(
            "`{text}` is a URI; give the spool's path as a plain file path"
        ));
    }
    if path.is_dir() {
        return Err(format!(
            "`{text}` is a directory; give a file in it, such as `{}`",
            path.join("hardal-spool.db").display()
        ));
    }
    Ok(())
}

/// Bytes the spool's pages hold (free pages excluded).
fn used_bytes(connection: &Connection) -> rusqlite::Result<u64> {
    let pages: i64 = connection.query_row("PRAGMA page_count", [], |r| r.get(0))?;
    let free: i64 = connection.query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
    let size: i64 = connection.query_row("PRAGMA page_size", [], |r| r.get(0))?;
    Ok(((pages - free).max(0) * size) as u64)
}
