//! The checkpoint of a `hardal send` run, in SQLite: for each destination, which input lines are
//! resolved (delivered, dead-lettered or skipped). Running the same command again skips them, so
//! a killed or interrupted run resumes without re-sending what the destination already accepted.
//!
//! Resolved lines are kept as a watermark (every line below it is resolved) plus ranges above it;
//! completions are written right after each response, and ranges are folded into the watermark
//! as they join up.

use std::collections::BTreeMap;
use std::path::Path;

use rusqlite::{Connection, params};

/// Which lines of the input are resolved for one destination.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResolvedSet {
    /// Every line below this one is resolved (lines count from 1).
    pub watermark: u64,
    /// Resolved ranges `[start, end)` above the watermark, by start.
    pub ranges: BTreeMap<u64, u64>,
}

impl ResolvedSet {
    pub fn contains(&self, line: u64) -> bool {
        line < self.watermark
            || self
                .ranges
                .range(..=line)
                .next_back()
                .is_some_and(|(_, end)| line < *end)
    }

    /// Folds ranges that reach the watermark into it.
    fn fold(&mut self) {
        while let Some((&start, &end)) = self.ranges.first_key_value() {
            if start > self.watermark {
                break;
            }
            self.watermark = self.watermark.max(end);
            self.ranges.remove(&start);
        }
    }
}

/// Sorted, distinct lines as ranges `[start, end)`.
pub fn to_ranges(lines: &mut [u64]) -> Vec<(u64, u64)> {
    lines.sort_unstable();
    let mut ranges: Vec<(u64, u64)> = Vec::new();
    for &line in lines.iter() {
        match ranges.last_mut() {
            Some((_, end)) if *end >= line => *end = (*end).max(line + 1),
            _ => ranges.push((line, line + 1)),
        }
    }
    ranges
}

pub struct Checkpoint {
    connection: Connection,
    run: String,
    destinations: Vec<String>,
}

impl Checkpoint {
    /// Opens (or creates) the checkpoint store and the run `run` (a stable key of the input and
    /// configuration); `restart` forgets what an earlier run of it resolved.
    pub fn open(
        path: &Path,
        run: &str,
        description: &str,
        destinations: &[String],
        restart: bool,
    ) -> Result<(Checkpoint, Vec<ResolvedSet>), String> {
        let fail = |e: rusqlite::Error| format!("checkpoint {}: {e}", path.display());
        let connection = Connection::open(path).map_err(fail)?;
        connection
            .execute_batch(
                "PRAGMA journal_mode = WAL;
                 PRAGMA synchronous = NORMAL;
                 CREATE TABLE IF NOT EXISTS runs (run TEXT PRIMARY KEY, description TEXT NOT NULL,
                     complete INTEGER NOT NULL DEFAULT 0);
                 CREATE TABLE IF NOT EXISTS watermarks (run TEXT NOT NULL, destination TEXT NOT NULL,
                     watermark INTEGER NOT NULL, PRIMARY KEY (run, destination));
                 CREATE TABLE IF NOT EXISTS resolved (run TEXT NOT NULL, destination TEXT NOT NULL,
                     start INTEGER NOT NULL, end INTEGER NOT NULL);
                 CREATE INDEX IF NOT EXISTS resolved_by_run ON resolved (run, destination, start);",
            )
            .map_err(fail)?;
        if restart {
            for table in ["runs", "watermarks", "resolved"] {
                connection
                    .execute(&format!("DELETE FROM {table} WHERE run = ?1"), [run])
                    .map_err(fail)?;
            }
        }
        connection
            .execute(
                "INSERT OR IGNORE INTO runs (run, description) VALUES (?1, ?2)",
                params![run, description],
            )
            .map_err(fail)?;
        let mut sets = Vec::new();
        for destination in destinations {
            let watermark: u64 = connection
                .query_row(
                    "SELECT watermark FROM watermarks WHERE run = ?1 AND destination = ?2",
                    params![run, destination],
                    |row| row.get(0),
                )
                .unwrap_or(1);
            let mut set = ResolvedSet {
                watermark,
                ranges: BTreeMap::new(),
            };
            let mut statement = connection
                .prepare("SELECT start, end FROM resolved WHERE run = ?1 AND destination = ?2")
                .map_err(fail)?;
            let rows = statement
                .query_map(params![run, destination], |row| {
                    Ok((row.get::<_, u64>(0)?, row.get::<_, u64>(1)?))
                })
                .map_err(fail)?;
            for row in rows {
                let (start, end) = row.map_err(fail)?;
                let slot = set.ranges.entry(start).or_insert(end);
                *slot = (*slot).max(end);
            }
            set.fold();
            sets.push(set);
        }
        let checkpoint = Checkpoint {
            connection,
            run: run.to_owned(),
            destinations: destinations.to_vec(),
        };
        Ok((checkpoint, sets))
    }

    /// Records newly resolved lines (per destination, in the order of `open`'s destinations)
    /// in one transaction, and folds what joins up into the watermarks of `sets`.
    pub fn record(
        &mut self,
        lines: &mut [Vec<u64>],
        sets: &mut [ResolvedSet],
    ) -> Result<(), String> {
        if lines.iter().all(Vec::is_empty) {
            return Ok(());
        }
        let fail = |e: rusqlite::Error| format!("writing the checkpoint: {e}");
        let transaction = self.connection.transaction().map_err(fail)?;
        for ((destination, lines), set) in self
            .destinations
            .iter()
            .zip(lines.iter_mut())
            .zip(sets.iter_mut())
        {
            if lines.is_empty() {
                continue;
            }
            let before = set.watermark;
            for (start, end) in to_ranges(lines) {
                let slot = set.ranges.entry(start).or_insert(end);
                *slot = (*slot).max(end);
            }
            lines.clear();
            set.fold();
            // Store the ranges still above the watermark; rows below it are dropped as folded.
            transaction
                .execute(
                    "DELETE FROM resolved WHERE run = ?1 AND destination = ?2",
                    params![self.run, destination],
                )
                .map_err(fail)?;
            {
                let mut insert = transaction
                    .prepare_cached("INSERT INTO resolved (run, destination, start, end) VALUES (?1, ?2, ?3, ?4)")
                    .map_err(fail)?;
                for (start, end) in &set.ranges {
                    insert
                        .execute(params![self.run, destination, start, end])
                        .map_err(fail)?;
                }
            }
            if set.watermark != before {
                transaction
                    .execute(
                        "INSERT INTO watermarks (run, destination, watermark) VALUES (?1, ?2, ?3)
                         ON CONFLICT (run, destination) DO UPDATE SET watermark = excluded.watermark",
                        params![self.run, destination, set.watermark],
                    )
                    .map_err(fail)?;
            }
        }
        transaction.commit().map_err(fail)
    }

    /// Marks the run complete (everything read was resolved).
    pub fn complete(&self) -> Result<(), String> {
        self.connection
            .execute("UPDATE runs SET complete = 1 WHERE run = ?1", [&self.run])
            .map(|_| ())
            .map_err(|e| format!("writing the checkpoint: {e}"))
    }
}

/// A stable 64-bit FNV-1a hash, for run keys that must not change between builds.
pub fn fnv1a(parts: &[&[u8]]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for byte in part.iter().chain(std::iter::once(&0xff)) {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::{Checkpoint, ResolvedSet, to_ranges};

    #[test]
    fn ranges_and_membership() {
        assert_eq!(to_ranges(&mut [5, 3, 4, 9, 10, 4]), [(3, 6), (9, 11)]);
        let mut set = ResolvedSet {
            watermark: 1,
            ..Default::default()
        };
        set.ranges.insert(3, 6);
        assert!(
            !set.contains(1)
                && !set.contains(2)
                && set.contains(3)
                && set.contains(5)
                && !set.contains(6)
        );
        set.ranges.insert(1, 3);
        set.fold();
        assert_eq!((set.watermark, set.ranges.len()), (6, 0));
    }

    #[test]
    fn resolved_lines_survive_a_reopen_and_restart_forgets_them() {
        let dir = std::env::temp_dir().join(format!("hardal-checkpoint-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("state.db");
        let destinations = vec!["a".to_owned(), "b".to_owned()];
        let (mut checkpoint, mut sets) =
            Checkpoint::open(&path, "run1", "test", &destinations, true).unwrap();
        checkpoint
            .record(&mut [vec![1, 2, 3, 7], vec![2]], &mut sets)
            .unwrap();
        checkpoint
            .record(&mut [vec![4], vec![]], &mut sets)
            .unwrap();
        drop(checkpoint);
        let (_, sets) = Checkpoint::open(&path, "run1", "test", &destinations, false).unwrap();
        assert_eq!(sets[0].watermark, 5);
        assert!(sets[0].contains(7) && !sets[0].contains(6) && !sets[0].contains(8));
        assert_eq!(sets[1].watermark, 1);
        assert!(sets[1].contains(2) && !sets[1].contains(1));
        let (_, other) = Checkpoint::open(&path, "run2", "test", &destinations, false).unwrap();
        assert_eq!(
            other[0],
            ResolvedSet {
                watermark: 1,
                ..Default::default()
            }
        );
        let (_, restarted) = Checkpoint::open(&path, "run1", "test", &destinations, true).unwrap();
        assert_eq!(restarted[0].watermark, 1);
        assert!(restarted[0].ranges.is_empty());
    }
}
