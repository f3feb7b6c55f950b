//! What the spool's writer keeps in memory about the spool (per destination the resolved set
//! and the depth, the highest sequence number, the identities seen) and the SQL each command
//! writes inside a group commit: appends, resolutions, and deleting what every destination is
//! done with.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use rusqlite::params;

use super::seen::Seen;
use super::{Shared, SpoolOptions, now_seconds};
use crate::backlog::{Appended, Incoming, Resolution};
use crate::delivery::Ending;
use crate::resolved::{ResolvedSet, to_ranges};

/// What the writer keeps in memory: resolved sets, depths, the highest sequence number.
pub(super) struct Books {
    pub(super) destinations: Vec<String>,
    pub(super) sets: Vec<ResolvedSet>,
    pub(super) shared: Arc<Shared>,
    pub(super) options: SpoolOptions,
    /// The highest sequence number this process knows of.
    pub(super) last_seq: u64,
    pub(super) seen: Seen,
}

impl Books {
    pub(super) fn append(
        &mut self,
        transaction: &rusqlite::Transaction,
        events: &[Incoming],
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
            insert_event.execute(params![now, &event.body])?;
            self.last_seq = transaction.last_insert_rowid() as u64;
            appended.accepted += 1;
        }
        for depth in &self.shared.depth {
            depth.fetch_add(appended.accepted as u64, Ordering::Relaxed);
        }
        Ok(appended)
    }

    /// Counts events another process appended (replays) since this one last looked.
    pub(super) fn reconcile(
        &mut self,
        transaction: &rusqlite::Transaction,
    ) -> rusqlite::Result<()> {
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

    pub(super) fn resolve(
        &mut self,
        transaction: &rusqlite::Transaction,
        index: usize,
        resolved: &[Resolution],
        counted: bool,
    ) -> rusqlite::Result<()> {
        let destination = &self.destinations[index];
        let now = now_seconds();
        {
            let mut dead = transaction.prepare_cached(
                "INSERT INTO dead_letters (destination, seq, at, ending, reasons, body)
                 SELECT ?1, seq, ?2, ?3, ?4, body FROM events WHERE seq = ?5",
            )?;
            for resolution in resolved {
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
    pub(super) fn collect_garbage(
        &mut self,
        transaction: &rusqlite::Transaction,
    ) -> rusqlite::Result<()> {
        if let Some(low) = self.sets.iter().map(|s| s.watermark).min() {
            delete_below(transaction, low, &self.destinations)?;
        }
        Ok(())
    }
}

/// Deletes the events below `low`, which every configured destination is done with; a replay
/// meant for a destination this configuration does not have (put back in line by `hardal dlq
/// replay` run with another configuration, or whose destination was removed since) goes back to
/// the dead letters instead, for nothing here would ever send it and deleting it would lose the
/// letter — unless that destination resolved it before it was removed (its recorded progress
/// says so), which would make a delivered event a dead letter again.
pub(super) fn delete_below(
    transaction: &rusqlite::Transaction,
    low: u64,
    destinations: &[String],
) -> rusqlite::Result<()> {
    let configured = serde_json::to_string(destinations).expect("strings serialize");
    transaction
        .prepare_cached(
            "INSERT INTO dead_letters (destination, seq, at, ending, reasons, body)
             SELECT target, seq, ?2, 'dead_lettered', ?3, body FROM events
             WHERE seq < ?1 AND target IS NOT NULL
                 AND target NOT IN (SELECT value FROM json_each(?4))
                 AND NOT EXISTS (SELECT 1 FROM progress p
                                 WHERE p.destination = events.target AND events.seq < p.watermark)
                 AND NOT EXISTS (SELECT 1 FROM resolved r
                                 WHERE r.destination = events.target
                                     AND events.seq >= r.start AND events.seq < r.end)",
        )?
        .execute(params![
            low as i64,
            now_seconds(),
            serde_json::to_string(&[
                "replayed for a destination the running service's configuration does not have; kept as a dead letter (replay it once the service has that destination)"
            ])
            .expect("strings serialize"),
            configured
        ])?;
    transaction
        .prepare_cached("DELETE FROM events WHERE seq < ?1")?
        .execute([low as i64])?;
    Ok(())
}
