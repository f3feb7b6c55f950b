//! Each destination's progress as the spool opens: its watermark and the resolved ranges above
//! it, made consistent with the events that exist.
//!
//! An event that is not in the spool is resolved for every destination by definition: it was
//! delivered and deleted, or deleted while the destination was out of the configuration (every
//! configured destination was done with it), or it is another destination's replay. Left as
//! they were, such gaps would hold a watermark below them for ever, and with it every event
//! after it (found: a destination removed from the configuration and added back). So at open,
//! every gap above a destination's watermark is recorded as resolved.
//!
//! A destination the spool has not seen starts with the events accepted from now on. A removed
//! destination's progress row stays (a few bytes): added back, it takes the events still in the
//! spool above its watermark, which are those some configured destination had not finished when
//! it returned; the others were deleted meanwhile and are not delivered to it.

use rusqlite::{Connection, OptionalExtension, params};

use crate::resolved::ResolvedSet;

/// What the spool knows at open.
pub(super) struct Progress {
    /// The highest sequence number ever given (deleted events included).
    pub last_seq: u64,
    /// Per destination: what is resolved.
    pub sets: Vec<ResolvedSet>,
    /// Per destination: events in the spool it has not resolved.
    pub depths: Vec<u64>,
}

/// Reads each destination's progress and makes it consistent with the events that exist;
/// `write` stores the result (the spool's owner does; a `hardal dlq` command only reads).
pub(super) fn load(
    connection: &mut Connection,
    destinations: &[String],
    write: bool,
) -> rusqlite::Result<Progress> {
    let transaction = connection.transaction_with_behavior(if write {
        rusqlite::TransactionBehavior::Immediate
    } else {
        rusqlite::TransactionBehavior::Deferred
    })?;
    // `sqlite_sequence` remembers the highest number given even when its event is gone.
    let given: i64 = transaction
        .query_row(
            "SELECT seq FROM sqlite_sequence WHERE name = 'events'",
            [],
            |row| row.get(0),
        )
        .optional()?
        .unwrap_or(0);
    let max: i64 =
        transaction.query_row("SELECT COALESCE(MAX(seq), 0) FROM events", [], |row| {
            row.get(0)
        })?;
    let last_seq = given.max(max).max(0) as u64;
    let mut progress = Progress {
        last_seq,
        sets: Vec::with_capacity(destinations.len()),
        depths: Vec::with_capacity(destinations.len()),
    };
    for destination in destinations {
        let stored: Option<i64> = transaction
            .query_row(
                "SELECT watermark FROM progress WHERE destination = ?1",
                [destination],
                |row| row.get(0),
            )
            .optional()?;
        let mut set = ResolvedSet::new();
        set.watermark = match stored {
            Some(watermark) => watermark.max(1) as u64,
            None => last_seq + 1,
        };
        {
            let mut statement =
                transaction.prepare("SELECT start, end FROM resolved WHERE destination = ?1")?;
            let rows = statement.query_map([destination], |row| {
                Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?))
            })?;
            for row in rows {
                let (start, end) = row?;
                if start >= 1 && end > start {
                    set.insert(start as u64, end as u64);
                }
            }
        }
        // The events this destination is to take, in order (streamed: a large backlog is not
        // held in memory); whatever lies between them is resolved for it.
        let mut depth = 0u64;
        let mut next = set.watermark;
        {
            let mut statement = transaction.prepare(
                "SELECT seq FROM events WHERE seq >= ?1 AND (target IS NULL OR target = ?2)
                 ORDER BY seq",
            )?;
            let mut rows = statement.query(params![set.watermark as i64, destination])?;
            while let Some(row) = rows.next()? {
                let seq = row.get::<_, i64>(0)? as u64;
                set.insert(next, seq);
                next = seq + 1;
                if !set.contains(seq) {
                    depth += 1;
                }
            }
        }
        set.insert(next, last_seq + 1);
        if write {
            transaction.execute(
                "INSERT INTO progress (destination, watermark) VALUES (?1, ?2)
                 ON CONFLICT (destination) DO UPDATE SET watermark = excluded.watermark",
                params![destination, set.watermark as i64],
            )?;
            transaction.execute("DELETE FROM resolved WHERE destination = ?1", [destination])?;
            let mut insert = transaction
                .prepare("INSERT INTO resolved (destination, start, end) VALUES (?1, ?2, ?3)")?;
            for (start, end) in &set.ranges {
                insert.execute(params![destination, *start as i64, *end as i64])?;
            }
        }
        progress.depths.push(depth);
        progress.sets.push(set);
    }
    if write && let Some(low) = progress.sets.iter().map(|s| s.watermark).min() {
        // What every configured destination is done with goes now, not at the next write:
        // a destination removed from the configuration held it until this start.
        super::books::delete_below(&transaction, low, destinations)?;
    }
    transaction.commit()?;
    Ok(progress)
}
