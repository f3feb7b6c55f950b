//! The spool's writer thread. It gathers what is waiting (appends from many requests,
//! resolutions from delivery, dead-letter commands) into one transaction: a group commit, so
//! `durability: full` pays one fsync for many requests.
//!
//! Every group starts with `BEGIN IMMEDIATE`: it takes the write lock before it reads, so a
//! `hardal dlq` command committing in between makes it wait (the busy timeout), never fail at
//! once with a stale snapshot. A group that still fails is tried again a few times. What fails
//! for good is answered by kind: appends and dead-letter commands get the error (the producer
//! sends again); resolutions are kept and written with a later group, never dropped. When
//! groups keep failing for a reason other than a busy spool (a full disk, an I/O error, a
//! deleted file), the spool declares itself unwritable for good: every later write is answered
//! [`BacklogError::Fatal`] and the service stops on it.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use rusqlite::{Connection, ErrorCode, TransactionBehavior};
use tokio::sync::{Notify, oneshot};

use super::books::Books;
use super::erasure::{ErasureDone, ErasureWrite};
use super::{dead_letters, used_bytes};
use crate::backlog::{
    Appended, BacklogError, DeadLetterFilter, ErasureState, Incoming, Resolution,
};
use crate::delivery::Ending;

/// Most commands one group commit takes.
const GROUP: usize = 512;

/// How many times a group is tried at once while the spool is busy (each try waits for the
/// busy timeout).
const ATTEMPTS: u32 = 2;

/// Groups in a row that may fail for a reason other than a busy spool before the spool is
/// declared unwritable.
const FAILED_GROUPS: u32 = 3;

/// How long the writer waits before it writes kept resolutions again, and how often an idle
/// writer looks at the spool (its file, whether it is writable again).
const RETRY: Duration = Duration::from_secs(1);

/// Bytes an unwritable spool must take in one write to count as writable again: about what a
/// group of appends writes. An empty transaction proves nothing (it succeeds on a full disk).
const PROBE_BYTES: i64 = 256 * 1024;

/// How often the writer looks for a large surplus of free pages to return to the file system.
const VACUUM_EVERY: Duration = Duration::from_secs(1);

/// The most pages one look returns while running. Returning a page at the end of the file that
/// is in use moves it first, inside the writer's transaction: a bound keeps appends from
/// waiting behind a long move (2,048 pages of 4 KiB take a few milliseconds).
const VACUUM_PAGES: i64 = 2048;

/// What the writer is asked to do.
pub(super) enum Command {
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
    /// Write what is waiting, checkpoint the write-ahead log into the file, and stop.
    Close(oneshot::Sender<()>),
    Erasure(
        ErasureWrite,
        oneshot::Sender<Result<ErasureDone, BacklogError>>,
    ),
}

/// What a command did inside a group, answered once the group committed.
enum Done {
    Appended(Appended),
    Counted(u64),
    Refused(BacklogError),
    Written,
    Erased(ErasureDone),
}

/// The writer thread: its connection, and what it keeps in memory about the spool.
pub(super) struct Writer {
    pub(super) connection: Connection,
    pub(super) books: Books,
    /// Per destination: woken after a commit that appended (a permit kept when nobody waits).
    pub(super) appended: Arc<Vec<Notify>>,
    /// The spool's path, for messages.
    pub(super) name: String,
    /// Whether this process owns the spool (`hardal serve`): only the owner deletes what every
    /// destination is done with, prunes the deduplication log and vacuums; a `hardal dlq`
    /// command beside it only writes what it was asked to.
    pub(super) owner: bool,
    /// Why the spool can no longer be written, once it cannot (shared with the readers).
    pub(super) fatal: Arc<Mutex<Option<String>>>,
    /// Resolutions whose write failed: written with the next group, never dropped.
    pub(super) kept: Vec<Command>,
    /// Groups in a row that failed for a reason other than a busy spool.
    pub(super) failures: u32,
    /// The spool file's path and its identity (device, inode) when it opened: a file deleted or
    /// replaced under the service is noticed, not written into as if it were still there.
    pub(super) file: (std::path::PathBuf, Option<(u64, u64)>),
    /// When an unwritable spool was last tried with a real write.
    pub(super) last_probe: Option<Instant>,
    /// Set when the spool is abandoned as in a crash (tests): end without writing more.
    pub(super) abandoned: Arc<std::sync::atomic::AtomicBool>,
    /// The owner's lock on the spool: held until the writer's last write ended.
    pub(super) _lock: Option<std::fs::File>,
}

fn is_busy(error: &rusqlite::Error) -> bool {
    matches!(
        error.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

impl Writer {
    pub(super) fn run(mut self, inbox: mpsc::Receiver<Command>) {
        let mut last_vacuum = Instant::now();
        loop {
            if self.abandoned.load(Ordering::Relaxed) {
                return;
            }
            let first = match inbox.recv_timeout(RETRY) {
                Ok(command) => Some(command),
                Err(mpsc::RecvTimeoutError::Timeout) => None,
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            };
            if self.abandoned.load(Ordering::Relaxed) {
                return;
            }
            let mut group = std::mem::take(&mut self.kept);
            group.extend(first);
            while group.len() < GROUP {
                match inbox.try_recv() {
                    Ok(command) => group.push(command),
                    Err(_) => break,
                }
            }
            let close = group
                .iter()
                .position(|c| matches!(c, Command::Close(_)))
                .map(|at| group.remove(at));
            self.check_file();
            if let Some(Command::Close(reply)) = close {
                // Written once with what is kept, so that the stop does not wait long.
                self.kept.extend(group);
                self.close();
                let _ = reply.send(());
                return;
            }
            if !self.writable() {
                // Tried on its own, so that readiness does not wait for the next request (a
                // load balancer that gates on it sends none).
                self.probe();
            }
            if !group.is_empty() {
                self.write(group, ATTEMPTS);
            }
            if self.owner && last_vacuum.elapsed() > VACUUM_EVERY {
                last_vacuum = Instant::now();
                self.vacuum(false);
            }
        }
        self.close();
    }

    /// Declares the spool unwritable when its file is no longer the one it opened: events
    /// written on would be kept nowhere anyone looks.
    fn check_file(&mut self) {
        let (path, Some(opened)) = &self.file else {
            return;
        };
        if self.fatal().is_some() {
            return;
        }
        let now = std::fs::metadata(path).ok().map(|m| file_identity(&m));
        if now == Some(*opened) {
            return;
        }
        let reason = format!(
            "the spool file {} was deleted or replaced while the service ran; the events it held are gone with it, and nothing more is accepted",
            path.display()
        );
        tracing::error!(spool = %self.name, %reason, "The spool cannot be written: it refuses every write from now on, and the service stops.");
        self.books.shared.writable.store(false, Ordering::Relaxed);
        *self.fatal.lock().unwrap_or_else(|e| e.into_inner()) = Some(reason);
    }

    fn writable(&self) -> bool {
        self.books.shared.writable.load(Ordering::Relaxed)
    }

    fn fatal(&self) -> Option<String> {
        self.fatal.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Writes a group, trying again while the spool is busy (up to `attempts` times); answers
    /// what cannot be written and keeps the resolutions among it.
    fn write(&mut self, mut group: Vec<Command>, attempts: u32) {
        let mut attempt = 0;
        loop {
            if let Some(reason) = self.fatal() {
                self.refuse(group, &BacklogError::Fatal(reason));
                return;
            }
            attempt += 1;
            // Resolutions take a few bytes and succeed on a nearly full disk where appends fail:
            // only a group that added events shows that events can be accepted again.
            let adds = group
                .iter()
                .any(|c| matches!(c, Command::Append(..) | Command::Replay(..)));
            let error = match self.apply(group) {
                Ok(()) => {
                    self.failures = 0;
                    if adds {
                        self.books.shared.writable.store(true, Ordering::Relaxed);
                    }
                    return;
                }
                Err((error, back)) => {
                    group = back;
                    error
                }
            };
            self.books.shared.writable.store(false, Ordering::Relaxed);
            if is_busy(&error) {
                if attempt < attempts {
                    continue;
                }
                tracing::error!(spool = %self.name, %error, kept = group.iter().filter(|c| keeps(c)).count(), "The spool stayed busy (another process holds its write lock): appends were answered 503, resolutions are kept and written again.");
                let refused = BacklogError::Busy(error.to_string());
                self.refuse_or_keep(group, &refused);
                return;
            }
            self.failures += 1;
            tracing::error!(spool = %self.name, %error, failures = self.failures, "A write to the spool failed.");
            if self.failures >= FAILED_GROUPS {
                let reason = format!(
                    "the spool {} failed {} writes in a row ({error}); events it could not record are delivered again after a restart",
                    self.name, self.failures
                );
                tracing::error!(spool = %self.name, %reason, "The spool cannot be written: it refuses every write from now on, and the service stops.");
                *self.fatal.lock().unwrap_or_else(|e| e.into_inner()) = Some(reason);
                continue;
            }
            // What adds to the spool is answered (the producer or the operator sends it again);
            // the resolutions are tried again at once on their own, as they may well fit.
            let refused = BacklogError::Io(format!("writing the spool {}: {error}", self.name));
            let (adds, rest): (Vec<Command>, Vec<Command>) = group
                .into_iter()
                .partition(|c| matches!(c, Command::Append(..) | Command::Replay(..)));
            if adds.is_empty() {
                self.refuse_or_keep(rest, &refused);
                return;
            }
            self.refuse(adds, &refused);
            group = rest;
        }
    }

    /// Tries an unwritable spool with a write of a group's size (at most once per [`RETRY`]);
    /// when it succeeds, the spool takes events again.
    fn probe(&mut self) {
        if self.fatal().is_some() || self.last_probe.is_some_and(|at| at.elapsed() < RETRY) {
            return;
        }
        self.last_probe = Some(Instant::now());
        let written = (|| -> rusqlite::Result<()> {
            let transaction = self
                .connection
                .transaction_with_behavior(TransactionBehavior::Immediate)?;
            transaction.execute(
                "INSERT OR REPLACE INTO probe (id, data) VALUES (1, zeroblob(?1))",
                [PROBE_BYTES],
            )?;
            transaction.commit()
        })();
        match written {
            Ok(()) => {
                // Only the events' side is proven: the failures of groups in a row still count
                // until a group is written (a write SQLite refuses for good stays fatal).
                self.books.shared.writable.store(true, Ordering::Relaxed);
                tracing::info!(spool = %self.name, "The spool takes writes again.");
            }
            Err(error) => {
                tracing::debug!(spool = %self.name, %error, "The spool still cannot be written.");
            }
        }
    }

    /// Answers every command with `error`, resolutions included (the spool is unwritable).
    fn refuse(&mut self, group: Vec<Command>, error: &BacklogError) {
        for command in group {
            answer(command, error);
        }
    }

    /// Keeps the resolutions to write them with a later group, and answers the rest.
    fn refuse_or_keep(&mut self, group: Vec<Command>, error: &BacklogError) {
        for command in group {
            if keeps(&command) {
                self.kept.push(command);
            } else {
                answer(command, error);
            }
        }
    }

    /// Applies a group of commands in one transaction and answers each; on failure nothing of
    /// it happened, and the commands come back to be tried again or answered.
    fn apply(&mut self, group: Vec<Command>) -> Result<(), (rusqlite::Error, Vec<Command>)> {
        let books = &mut self.books;
        let sets_before = books.sets.clone();
        let last_before = books.last_seq;
        let depth_before: Vec<u64> = books
            .shared
            .depth
            .iter()
            .map(|d| d.load(Ordering::Relaxed))
            .collect();
        let mut done = Vec::with_capacity(group.len());
        let mut appended_any = false;
        let mut scrub = false;
        let owner = self.owner;
        let outcome = (|| -> rusqlite::Result<()> {
            let transaction = self
                .connection
                .transaction_with_behavior(TransactionBehavior::Immediate)?;
            books.reconcile(&transaction)?;
            let mut bytes = used_bytes(&transaction)?;
            for command in &group {
                done.push(match command {
                    Command::Append(events, _) => {
                        if bytes >= books.options.max_bytes {
                            Done::Refused(BacklogError::Full {
                                bytes,
                                max_bytes: books.options.max_bytes,
                            })
                        } else {
                            let size: usize = events.iter().map(|e| e.body.len() + 32).sum();
                            let appended = books.append(&transaction, events)?;
                            bytes += size as u64;
                            appended_any |= appended.accepted > 0;
                            Done::Appended(appended)
                        }
                    }
                    Command::Resolve(index, resolved, _) => {
                        books.resolve(&transaction, *index, resolved, true)?;
                        Done::Written
                    }
                    Command::Skip(index, seqs) => {
                        let resolved: Vec<Resolution> = seqs
                            .iter()
                            .map(|&seq| Resolution {
                                seq,
                                ending: Ending::Skipped,
                                reasons: Vec::new(),
                            })
                            .collect();
                        books.resolve(&transaction, *index, &resolved, false)?;
                        Done::Written
                    }
                    Command::Replay(filter, _) => {
                        let count = books.replay(&transaction, filter)?;
                        appended_any |= count > 0;
                        Done::Counted(count)
                    }
                    Command::Purge(filter, _) => {
                        Done::Counted(dead_letters::purge(&transaction, filter)?)
                    }
                    Command::Close(_) => Done::Written,
                    Command::Erasure(write, _) => {
                        if matches!(
                            write,
                            ErasureWrite::Record(record) if record.state == ErasureState::Complete
                        ) {
                            scrub = true;
                        }
                        Done::Erased(books.erasure(&transaction, write)?)
                    }
                });
            }
            if owner {
                books.collect_garbage(&transaction)?;
                books.seen.prune(&transaction)?;
            }
            transaction.commit()
        })();
        if let Err(error) = outcome {
            // Nothing of the group happened: the memory of it goes too.
            books.seen.rolled_back();
            books.sets = sets_before;
            books.last_seq = last_before;
            for (depth, before) in books.shared.depth.iter().zip(depth_before) {
                depth.store(before, Ordering::Relaxed);
            }
            for (watermark, set) in books.shared.watermark.iter().zip(&books.sets) {
                watermark.store(set.watermark, Ordering::Relaxed);
            }
            return Err((error, group));
        }
        books.seen.committed();
        if let Ok(bytes) = used_bytes(&self.connection) {
            books.shared.bytes.store(bytes, Ordering::Relaxed);
        }
        if appended_any {
            self.appended.iter().for_each(Notify::notify_one);
        }
        for (command, done) in group.into_iter().zip(done) {
            match (command, done) {
                (Command::Append(_, reply), Done::Appended(appended)) => {
                    let _ = reply.send(Ok(appended));
                }
                (Command::Append(_, reply), Done::Refused(error)) => {
                    let _ = reply.send(Err(error));
                }
                (Command::Resolve(_, _, reply), _) => {
                    let _ = reply.send(Ok(()));
                }
                (Command::Replay(_, reply) | Command::Purge(_, reply), Done::Counted(count)) => {
                    let _ = reply.send(Ok(count));
                }
                (Command::Erasure(_, reply), Done::Erased(done)) => {
                    let _ = reply.send(Ok(done));
                }
                _ => {}
            }
        }
        if scrub && owner {
            self.scrub();
        }
        Ok(())
    }

    /// Writes what is kept one last time, and checkpoints the write-ahead log into the file
    /// and truncates it, so that the spool at rest is one file.
    fn close(&mut self) {
        // Once: a spool another process keeps locked must not hold the stop for long.
        let kept = std::mem::take(&mut self.kept);
        if !kept.is_empty() {
            self.write(kept, 1);
        }
        if !self.kept.is_empty() {
            tracing::error!(spool = %self.name, events = self.kept.len(), "Resolutions could not be recorded before the spool closed; their events are delivered again after a restart.");
        }
        if !self.owner {
            // A command beside the owner leaves checkpoints to it.
            return;
        }
        self.vacuum(true);
        if let Err(error) = self
            .connection
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        {
            tracing::warn!(spool = %self.name, %error, "The spool's write-ahead log could not be checkpointed at close; it stays beside the file and is read at the next start.");
        }
    }

    /// Leaves no copy of an erased user's data in the spool's files once a job completed:
    /// deleted rows left no text in their pages (`secure_delete`), free pages (which may hold
    /// text of rows deleted before) go back to the file system, and the write-ahead log (which
    /// holds the pages as they were) is checkpointed into the file and truncated. A reader in the
    /// middle of a read holds the checkpoint back: it is tried again for a while.
    fn scrub(&self) {
        self.vacuum(true);
        for _ in 0..100 {
            let busy = self
                .connection
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| {
                    row.get::<_, i64>(0)
                });
            match busy {
                Ok(0) => return,
                Ok(_) => std::thread::sleep(Duration::from_millis(20)),
                Err(error) => {
                    tracing::warn!(spool = %self.name, %error, "The spool's write-ahead log could not be truncated after an erasure; it is at the next checkpoint.");
                    return;
                }
            }
        }
        tracing::warn!(spool = %self.name, "Readers kept the spool's write-ahead log from being truncated after an erasure; it is at the next checkpoint.");
    }

    /// Returns free pages to the file system: `all` of them, or (while running) half of a
    /// surplus over a quarter of the file, keeping the rest to be reused without growing again.
    fn vacuum(&self, all: bool) {
        let count = |pragma: &str| -> i64 {
            self.connection
                .query_row(pragma, [], |r| r.get(0))
                .unwrap_or(0)
        };
        let (free, pages) = (count("PRAGMA freelist_count"), count("PRAGMA page_count"));
        // While running, only a surplus worth the moves: the pages in use are at most a
        // quarter of the free ones. A draining backlog frees the pages of its oldest events at
        // the start of the file while it still uses those at its end, so returning pages
        // sooner would move (write again) the events it is about to delete; once it has
        // drained this far, what is moved is at most a quarter of what is returned.
        let release = if all {
            free
        } else if free > 256 && (pages - free) * 4 <= free {
            free.min(VACUUM_PAGES)
        } else {
            0
        };
        if release == 0 {
            return;
        }
        // The pragma frees one page per row it returns: every row is stepped, or it stops
        // after the first page.
        let vacuumed = self
            .connection
            .prepare(&format!("PRAGMA incremental_vacuum({release})"))
            .and_then(|mut statement| {
                let mut rows = statement.query([])?;
                while rows.next()?.is_some() {}
                Ok(())
            });
        if let Err(error) = vacuumed {
            tracing::warn!(spool = %self.name, %error, "Free pages of the spool could not be returned to the file system; they are reused.");
        }
    }
}

/// A file's device and inode.
#[cfg(unix)]
pub(super) fn file_identity(metadata: &std::fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (metadata.dev(), metadata.ino())
}

/// Elsewhere a deleted file is noticed only when it is missing.
#[cfg(not(unix))]
pub(super) fn file_identity(_: &std::fs::Metadata) -> (u64, u64) {
    (0, 0)
}

/// Whether a command is a resolution, kept rather than answered when its write fails.
fn keeps(command: &Command) -> bool {
    matches!(command, Command::Resolve(..) | Command::Skip(..))
}

/// Answers a command with an error.
fn answer(command: Command, error: &BacklogError) {
    match command {
        Command::Append(_, reply) => {
            let _ = reply.send(Err(error.clone()));
        }
        Command::Resolve(_, _, reply) => {
            let _ = reply.send(Err(error.clone()));
        }
        Command::Replay(_, reply) | Command::Purge(_, reply) => {
            let _ = reply.send(Err(error.clone()));
        }
        Command::Skip(..) => {}
        Command::Erasure(_, reply) => {
            let _ = reply.send(Err(error.clone()));
        }
        Command::Close(reply) => {
            let _ = reply.send(());
        }
    }
}
