//! Deduplication's memory: the identities accepted within the window, in memory (a set, and the
//! identities in acceptance order to forget them by age and by count), and on disk as an
//! append-only log that rebuilds them when the spool opens again. A log is written sequentially,
//! where an index of random hashes would dirty a page per event and multiply what every commit
//! writes. Memory is bounded: past [`MAX_IDENTITIES`] the oldest identities are forgotten early,
//! and the log keeps no more rows than that either.

use std::collections::{HashSet, VecDeque};
use std::time::Duration;

use rusqlite::{Connection, params};

use super::now_seconds;

/// The most identities deduplication remembers: about 18 bytes each in memory (the set is sized
/// for this many at once, just below a power of two of slots).
pub const MAX_IDENTITIES: usize = 1_800_000;

/// How often identities older than the window are deleted from the log.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// The identities accepted within the deduplication window: a hash set (identities are already
/// uniform 64-bit hashes, so the set uses them as they are), the identities in acceptance order,
/// and a mark of the time every second, to forget them by age.
pub(super) struct Seen {
    set: HashSet<u64, std::hash::BuildHasherDefault<Passthrough>>,
    order: VecDeque<u64>,
    /// (number of the first identity admitted in that second, the second).
    marks: VecDeque<(u64, i64)>,
    /// Identities admitted so far (the number the next one gets).
    admitted: u64,
    pub(super) window: i64,
    /// Identities added by the group being written: forgotten again if it fails.
    pending: usize,
    last_prune: std::time::Instant,
    /// `admitted` when the log was last pruned.
    admitted_at_prune: u64,
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
    pub(super) fn new(window: i64) -> Seen {
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
            admitted_at_prune: 0,
        }
    }

    /// Rebuilds the identities from the log's rows within the window (the newest, up to the
    /// bound).
    pub(super) fn load(connection: &Connection, window: Duration) -> rusqlite::Result<Seen> {
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
    pub(super) fn admit(&mut self, hash: u64, at: i64) -> bool {
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
    pub(super) fn committed(&mut self) {
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
    pub(super) fn rolled_back(&mut self) {
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

    /// Deletes the log's identities older than the window or beyond the bound, once a minute or
    /// once a good part of the bound was admitted since the last time, whichever comes first.
    pub(super) fn prune(&mut self, transaction: &rusqlite::Transaction) -> rusqlite::Result<()> {
        if self.last_prune.elapsed() < PRUNE_EVERY
            && self.admitted - self.admitted_at_prune < (MAX_IDENTITIES / 8) as u64
        {
            return Ok(());
        }
        self.last_prune = std::time::Instant::now();
        self.admitted_at_prune = self.admitted;
        prune_log(transaction, now_seconds() - self.window, MAX_IDENTITIES)
    }
}

/// Deletes the log's rows from before `cutoff` and all but the newest `bound`: the log then
/// holds no more than memory can (what is loaded at start is the newest `bound` anyway).
fn prune_log(connection: &Connection, cutoff: i64, bound: usize) -> rusqlite::Result<()> {
    // `at` grows with `id`, and ids are given in order, so the first young row bounds the old
    // ones and the newest rows are the highest ids.
    connection.execute(
        "DELETE FROM seen_log WHERE id < MAX(
             COALESCE((SELECT id FROM seen_log WHERE at >= ?1 ORDER BY id LIMIT 1),
                      (SELECT COALESCE(MAX(id), 0) + 1 FROM seen_log)),
             (SELECT COALESCE(MAX(id), 0) FROM seen_log) - ?2 + 1)",
        params![cutoff, bound as i64],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::now_seconds;
    use super::{MAX_IDENTITIES, Seen, prune_log};

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

    #[test]
    fn the_log_keeps_neither_old_identities_nor_more_than_the_bound() {
        let connection = rusqlite::Connection::open_in_memory().unwrap();
        connection
            .execute_batch(
                "CREATE TABLE seen_log (id INTEGER PRIMARY KEY, hash INTEGER NOT NULL,
                     at INTEGER NOT NULL);",
            )
            .unwrap();
        let count = |c: &rusqlite::Connection| -> i64 {
            c.query_row("SELECT count(*) FROM seen_log", [], |r| r.get(0))
                .unwrap()
        };
        // 100 young identities, above a bound of 10: the newest 10 stay.
        for hash in 0..100 {
            connection
                .execute("INSERT INTO seen_log (hash, at) VALUES (?1, 1000)", [hash])
                .unwrap();
        }
        prune_log(&connection, 500, 10).unwrap();
        assert_eq!(count(&connection), 10);
        let oldest: i64 = connection
            .query_row("SELECT min(hash) FROM seen_log", [], |r| r.get(0))
            .unwrap();
        assert_eq!(oldest, 90);
        // By age, within the bound.
        prune_log(&connection, 2000, 10).unwrap();
        assert_eq!(count(&connection), 0);
    }
}
