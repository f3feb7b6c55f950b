//! The checkpoint of `hardal send`, in SQLite: per input file, how much of it earlier runs read
//! (a byte count and a hash of those bytes, so a resumed run can prove it reads the same file)
//! and, per destination, which input lines are resolved and the totals of the backfill so far.
//!
//! Progress belongs to a destination, not to a configuration: changing delivery settings or
//! another destination never restarts a destination, and a destination whose settings were fixed
//! (a partner name, a token) continues where it stopped. Resolved lines are kept as a watermark
//! (every line below it is resolved) plus ranges above it; each write adds only the new ranges
//! and drops the rows the watermark passed. A run holds an exclusive lock on the file, so two
//! runs can never deliver from one checkpoint at once.

use std::fs::{File, TryLockError};
use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};

pub use crate::resolved::{ResolvedSet, to_ranges};

use super::summary::Totals;

/// The layout this code writes; other layouts are refused (or replaced on `--restart`).
const SCHEMA_VERSION: i64 = 2;

/// How much of the input earlier runs read: its first `bytes` bytes, whose XXH3 hash is `hash`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Handled {
    pub bytes: u64,
    pub hash: u64,
}

/// What earlier runs left for this one.
#[derive(Debug, Default)]
pub struct Resume {
    /// Per destination, in the order given to `open`.
    pub resolved: Vec<ResolvedSet>,
    pub totals: Vec<Totals>,
    /// `None` when no earlier run read this input.
    pub handled: Option<Handled>,
}

/// Newly resolved lines and the totals after them, for one write.
#[derive(Debug, Default)]
pub struct Progress {
    /// Per destination: lines resolved since the last write.
    pub lines: Vec<Vec<u64>>,
    /// Per destination: the backfill's totals including those lines.
    pub totals: Vec<Totals>,
    pub handled: Handled,
}

pub struct Checkpoint {
    connection: Connection,
    input: String,
    destinations: Vec<String>,
    sets: Vec<ResolvedSet>,
    /// Held for the life of the run: the exclusive lock that keeps a second run out.
    _lock: File,
}

impl Checkpoint {
    /// Opens (or creates) the checkpoint at `path` for the input named `input`, locks it, and
    /// reads what earlier runs resolved for `destinations`; `restart` forgets everything about
    /// this input first.
    pub fn open(
        path: &Path,
        input: &str,
        destinations: &[String],
        restart: bool,
    ) -> Result<(Checkpoint, Resume), String> {
        let name = path.display();
        let lock = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| format!("cannot open the checkpoint {name}: {e}"))?;
        match crate::exclusive::lock(&lock, crate::exclusive::PATIENCE) {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(format!(
                    "the checkpoint {name} is in use by another hardal send; wait for it to finish, or give this run its own --state FILE"
                ));
            }
            Err(TryLockError::Error(e)) => {
                return Err(format!("cannot lock the checkpoint {name}: {e}"));
            }
        }
        let fail = |e: rusqlite::Error| {
            format!(
                "the checkpoint {name} cannot be used ({e}); run with --restart to start over, or give another --state FILE"
            )
        };
        let mut connection = Connection::open(path).map_err(fail)?;
        let layout = read_layout(&connection);
        match layout {
            Ok((_, 0)) | Ok((SCHEMA_VERSION, _)) => {}
            Ok(_) if restart => {
                connection
                    .execute_batch(
                        "DROP TABLE IF EXISTS runs; DROP TABLE IF EXISTS watermarks;
                         DROP TABLE IF EXISTS resolved; DROP TABLE IF EXISTS inputs;
                         DROP TABLE IF EXISTS progress;",
                    )
                    .map_err(fail)?;
            }
            Ok(_) => {
                return Err(format!(
                    "the checkpoint {name} was written by another version of hardal; run with --restart to start over, or give another --state FILE"
                ));
            }
            Err(_) if restart => {
                // Not a database at all: with --restart its content is worth nothing.
                drop(connection);
                lock.set_len(0)
                    .map_err(|e| format!("cannot reset the checkpoint {name}: {e}"))?;
                for sidecar in ["-wal", "-shm"] {
                    let mut side = path.as_os_str().to_owned();
                    side.push(sidecar);
                    let _ = std::fs::remove_file(side);
                }
                connection = Connection::open(path).map_err(fail)?;
            }
            Err(e) => return Err(fail(e)),
        }
        connection
            .busy_timeout(std::time::Duration::from_secs(5))
            .map_err(fail)?;
        connection
            .execute_batch(
                "PRAGMA journal_mode = WAL;
                 PRAGMA synchronous = NORMAL;
                 CREATE TABLE IF NOT EXISTS inputs (input TEXT PRIMARY KEY,
                     handled_bytes INTEGER NOT NULL, handled_hash TEXT NOT NULL);
                 CREATE TABLE IF NOT EXISTS progress (input TEXT NOT NULL, destination TEXT NOT NULL,
                     watermark INTEGER NOT NULL, totals TEXT NOT NULL,
                     PRIMARY KEY (input, destination));
                 CREATE TABLE IF NOT EXISTS resolved (input TEXT NOT NULL, destination TEXT NOT NULL,
                     start INTEGER NOT NULL, end INTEGER NOT NULL);
                 CREATE INDEX IF NOT EXISTS resolved_by_destination ON resolved (input, destination, end);",
            )
            .map_err(fail)?;
        connection
            .pragma_update(None, "user_version", SCHEMA_VERSION)
            .map_err(fail)?;
        if restart {
            for table in ["inputs", "progress", "resolved"] {
                connection
                    .execute(&format!("DELETE FROM {table} WHERE input = ?1"), [input])
                    .map_err(fail)?;
            }
        }
        let handled = connection
            .query_row(
                "SELECT handled_bytes, handled_hash FROM inputs WHERE input = ?1",
                [input],
                |row| Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?)),
            )
            .optional()
            .map_err(fail)?
            .map(|(bytes, hash)| {
                Some(Handled {
                    bytes: u64::try_from(bytes).ok()?,
                    hash: u64::from_str_radix(&hash, 16).ok()?,
                })
            });
        let handled = match handled {
            None => None,
            Some(Some(handled)) => Some(handled),
            Some(None) => {
                return Err(format!(
                    "the checkpoint {name} holds an unreadable record of what was read; run with --restart to start over, or give another --state FILE"
                ));
            }
        };
        let mut resume = Resume {
            handled,
            ..Resume::default()
        };
        for destination in destinations {
            let row = connection
                .query_row(
                    "SELECT watermark, totals FROM progress WHERE input = ?1 AND destination = ?2",
                    params![input, destination],
                    |row| Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?)),
                )
                .optional()
                .map_err(fail)?;
            let mut set = ResolvedSet::new();
            let mut totals = Totals::default();
            if let Some((watermark, text)) = row {
                set.watermark = u64::try_from(watermark).unwrap_or(1).max(1);
                totals = serde_json::from_str(&text).map_err(|e| {
                    format!(
                        "the checkpoint {name} holds unreadable totals for `{destination}` ({e}); run with --restart to start over"
                    )
                })?;
            }
            let mut statement = connection
                .prepare("SELECT start, end FROM resolved WHERE input = ?1 AND destination = ?2")
                .map_err(fail)?;
            let rows = statement
                .query_map(params![input, destination], |row| {
                    Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?))
                })
                .map_err(fail)?;
            for row in rows {
                let (start, end) = row.map_err(fail)?;
                // Rows that are not ranges of line numbers are not ours; they resolve nothing.
                if let (Ok(start), Ok(end)) = (u64::try_from(start), u64::try_from(end)) {
                    set.insert(start.max(1), end);
                }
            }
            resume.resolved.push(set);
            resume.totals.push(totals);
        }
        let checkpoint = Checkpoint {
            connection,
            input: input.to_owned(),
            destinations: destinations.to_vec(),
            sets: resume.resolved.clone(),
            _lock: lock,
        };
        Ok((checkpoint, resume))
    }

    /// Records newly resolved lines, the totals after them and how much of the input was read,
    /// in one transaction that touches only what changed.
    pub fn record(&mut self, progress: &mut Progress) -> Result<(), String> {
        let fail = |e: rusqlite::Error| format!("writing the checkpoint: {e}");
        let transaction = self.connection.transaction().map_err(fail)?;
        transaction
            .prepare_cached(
                "INSERT INTO inputs (input, handled_bytes, handled_hash) VALUES (?1, ?2, ?3)
                 ON CONFLICT (input) DO UPDATE SET handled_bytes = excluded.handled_bytes,
                     handled_hash = excluded.handled_hash",
            )
            .and_then(|mut statement| {
                statement.execute(params![
                    self.input,
                    i64::try_from(progress.handled.bytes).unwrap_or(i64::MAX),
                    format!("{:016x}", progress.handled.hash)
                ])
            })
            .map_err(fail)?;
        for (index, destination) in self.destinations.iter().enumerate() {
            let lines = &mut progress.lines[index];
            if lines.is_empty() {
                continue;
            }
            let set = &mut self.sets[index];
            let before = set.watermark;
            {
                let mut insert = transaction
                    .prepare_cached(
                        "INSERT INTO resolved (input, destination, start, end) VALUES (?1, ?2, ?3, ?4)",
                    )
                    .map_err(fail)?;
                for (start, end) in to_ranges(lines) {
                    set.insert(start, end);
                    insert
                        .execute(params![self.input, destination, start as i64, end as i64])
                        .map_err(fail)?;
                }
            }
            lines.clear();
            if set.watermark != before {
                transaction
                    .prepare_cached(
                        "DELETE FROM resolved WHERE input = ?1 AND destination = ?2 AND end <= ?3",
                    )
                    .and_then(|mut statement| {
                        statement.execute(params![self.input, destination, set.watermark as i64])
                    })
                    .map_err(fail)?;
            }
            let totals = serde_json::to_string(&progress.totals[index]).expect("totals serialize");
            transaction
                .prepare_cached(
                    "INSERT INTO progress (input, destination, watermark, totals) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (input, destination) DO UPDATE SET watermark = excluded.watermark,
                         totals = excluded.totals",
                )
                .and_then(|mut statement| {
                    statement.execute(params![self.input, destination, set.watermark as i64, totals])
                })
                .map_err(fail)?;
        }
        transaction.commit().map_err(fail)
    }
}

/// The layout version and the number of tables of a database (an error when it is not one, or
/// is damaged: an index that disagrees with its table would make resolved lines vanish, so the
/// whole file is checked; a checkpoint holds ranges, not lines, and stays small).
fn read_layout(connection: &Connection) -> rusqlite::Result<(i64, i64)> {
    let version = connection.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    let tables =
        connection.query_row("SELECT count(*) FROM sqlite_master", [], |row| row.get(0))?;
    let verdict: String =
        connection.query_row("PRAGMA integrity_check(1)", [], |row| row.get(0))?;
    if verdict != "ok" {
        return Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CORRUPT),
            Some(format!("the file is damaged: {verdict}")),
        ));
    }
    Ok((version, tables))
}

/// The XXH3 hash of the first `bytes` bytes of a file, or why it cannot be had (the file is
/// shorter, or unreadable).
pub fn hash_prefix(path: &Path, bytes: u64) -> Result<u64, String> {
    use std::io::Read;
    let file = File::open(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut reader = std::io::BufReader::with_capacity(1 << 20, file).take(bytes);
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    let mut buffer = vec![0u8; 1 << 20];
    let mut read = 0u64;
    loop {
        let n = reader
            .read(&mut buffer)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        read += n as u64;
    }
    if read < bytes {
        return Err(format!(
            "{} is shorter ({read} bytes) than the {bytes} bytes an earlier run already read",
            path.display()
        ));
    }
    Ok(hasher.digest())
}

#[cfg(test)]
mod tests {
    use super::{Checkpoint, Handled, Progress, ResolvedSet, to_ranges};
    use crate::send::summary::Totals;

    #[test]
    fn ranges_and_membership() {
        assert_eq!(to_ranges(&mut [5, 3, 4, 9, 10, 4]), [(3, 6), (9, 11)]);
        let mut set = ResolvedSet::new();
        set.insert(3, 6);
        assert!(
            !set.contains(1)
                && !set.contains(2)
                && set.contains(3)
                && set.contains(5)
                && !set.contains(6)
        );
        // Overlapping and touching ranges merge, whatever order they come in.
        set.insert(8, 10);
        set.insert(5, 8);
        assert_eq!(set.ranges.len(), 1);
        assert!(set.contains(9) && !set.contains(10));
        set.insert(1, 3);
        assert_eq!((set.watermark, set.ranges.len()), (10, 0));
        set.insert(7, 4);
        assert_eq!(set.watermark, 10);
    }

    fn progress(lines: Vec<Vec<u64>>, bytes: u64) -> Progress {
        Progress {
            totals: lines
                .iter()
                .map(|l| Totals {
                    delivered: l.len() as u64,
                    ..Totals::default()
                })
                .collect(),
            lines,
            handled: Handled { bytes, hash: 42 },
        }
    }

    #[test]
    fn a_damaged_checkpoint_is_refused_and_restart_starts_over() {
        // Found by fuzzing: a file whose index disagrees with its table lost resolved lines.
        let damaged = include_bytes!("../../../../fuzz/regressions/checkpoint_open/damaged-index");
        let dir = std::env::temp_dir().join(format!("hardal-damaged-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("state.db");
        std::fs::write(&path, damaged).unwrap();
        let destinations = ["a".to_owned()];
        let refused = Checkpoint::open(&path, "run", &destinations, false)
            .err()
            .expect("a damaged checkpoint is refused");
        assert!(
            refused.contains("damaged") && refused.contains("--restart"),
            "{refused}"
        );
        let (_, resume) = Checkpoint::open(&path, "run", &destinations, true).unwrap();
        assert_eq!(resume.handled, None);
        assert!(!resume.resolved[0].contains(5));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn resolved_lines_and_totals_survive_a_reopen_and_restart_forgets_them() {
        let dir = std::env::temp_dir().join(format!("hardal-checkpoint-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("state.db");
        let _ = std::fs::remove_file(&path);
        let destinations = vec!["a".to_owned(), "b".to_owned()];
        let (mut checkpoint, resume) =
            Checkpoint::open(&path, "in.ndjson", &destinations, false).unwrap();
        assert_eq!(resume.handled, None);
        checkpoint
            .record(&mut progress(vec![vec![1, 2, 3, 7], vec![2]], 100))
            .unwrap();
        checkpoint
            .record(&mut progress(vec![vec![4], vec![]], 120))
            .unwrap();
        // A second run cannot open it while the first holds it.
        let busy = Checkpoint::open(&path, "in.ndjson", &destinations, false).err();
        assert!(busy.unwrap().contains("in use by another hardal send"));
        drop(checkpoint);
        let (_, resume) = Checkpoint::open(&path, "in.ndjson", &destinations, false).unwrap();
        assert_eq!(
            resume.handled,
            Some(Handled {
                bytes: 120,
                hash: 42
            })
        );
        let sets = &resume.resolved;
        assert_eq!(sets[0].watermark, 5);
        assert!(sets[0].contains(7) && !sets[0].contains(6) && !sets[0].contains(8));
        assert_eq!(sets[1].watermark, 1);
        assert!(sets[1].contains(2) && !sets[1].contains(1));
        assert_eq!(resume.totals[0].delivered, 1);
        // Progress is per destination: a destination added later starts alone, and the order
        // of destinations does not matter.
        let others = vec!["b".to_owned(), "c".to_owned()];
        let (_, other) = Checkpoint::open(&path, "in.ndjson", &others, false).unwrap();
        assert!(other.resolved[0].contains(2));
        assert_eq!(other.resolved[1], ResolvedSet::new());
        let (_, restarted) = Checkpoint::open(&path, "in.ndjson", &destinations, true).unwrap();
        assert_eq!(restarted.resolved[0], ResolvedSet::new());
        assert_eq!(restarted.handled, None);
    }

    #[test]
    fn each_write_touches_only_what_changed() {
        let dir =
            std::env::temp_dir().join(format!("hardal-checkpoint-rows-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("state.db");
        let _ = std::fs::remove_file(&path);
        let destinations = vec!["a".to_owned()];
        let (mut checkpoint, _) = Checkpoint::open(&path, "in", &destinations, false).unwrap();
        // Many resolved lines with gaps between them: many ranges above the watermark.
        let scattered: Vec<u64> = (0..2000).map(|i| 3 + 2 * i).collect();
        checkpoint
            .record(&mut progress(vec![scattered], 10))
            .unwrap();
        // One more line: one range row, the input and the destination's progress — not a
        // rewrite of the two thousand ranges already stored.
        let before = checkpoint.connection.total_changes();
        checkpoint
            .record(&mut progress(vec![vec![10_000]], 11))
            .unwrap();
        assert_eq!(checkpoint.connection.total_changes() - before, 3);
        // Filling the gaps folds the ranges into the watermark and drops their rows.
        let gaps: Vec<u64> = std::iter::once(1)
            .chain((0..2000).map(|i| 2 + 2 * i))
            .collect();
        checkpoint.record(&mut progress(vec![gaps], 12)).unwrap();
        let rows: i64 = checkpoint
            .connection
            .query_row("SELECT count(*) FROM resolved", [], |row| row.get(0))
            .unwrap();
        assert_eq!(rows, 1, "only the range above the watermark is left");
    }

    #[test]
    fn a_file_that_is_not_a_checkpoint_is_refused_with_the_way_out() {
        let dir =
            std::env::temp_dir().join(format!("hardal-checkpoint-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("state.db");
        std::fs::write(&path, b"this is not a database, it is a shopping list").unwrap();
        let error = Checkpoint::open(&path, "x", &["a".to_owned()], false)
            .err()
            .unwrap();
        assert!(
            error.contains("--restart") && error.contains("--state"),
            "{error}"
        );
        let (mut checkpoint, resume) =
            Checkpoint::open(&path, "x", &["a".to_owned()], true).unwrap();
        assert_eq!(resume.resolved[0], ResolvedSet::new());
        checkpoint.record(&mut progress(vec![vec![1]], 10)).unwrap();
    }
}
