//! Dead letters in the spool: each keeps a copy of its event, so that it can be looked at and
//! put back in line after the event itself was deleted. Listing reads on the reader connection;
//! replaying and purging are writes inside the writer's group commits.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, params};

use super::books::Books;
use super::now_seconds;
use crate::backlog::{DeadLetter, DeadLetterFilter};

/// The dead letters `filter` names, oldest first.
pub(super) fn list(
    connection: &Connection,
    filter: &DeadLetterFilter,
) -> rusqlite::Result<Vec<DeadLetter>> {
    let (clause, values) = filter_sql(filter);
    let sql = format!(
        "SELECT id, destination, at, ending, reasons, body FROM dead_letters WHERE {clause} ORDER BY id{}",
        filter
            .limit
            .map_or(String::new(), |n| format!(" LIMIT {n}"))
    );
    let mut statement = connection.prepare(&sql)?;
    let rows = statement.query_map(rusqlite::params_from_iter(values), |row| {
        let reasons: String = row.get(4)?;
        let body: String = row.get(5)?;
        Ok(DeadLetter {
            id: row.get::<_, i64>(0)? as u64,
            destination: row.get(1)?,
            at: row.get::<_, i64>(2)?.max(0) as u64,
            ending: row.get(3)?,
            reasons: serde_json::from_str(&reasons).unwrap_or_default(),
            event: DeadLetter::event_from_text(&body),
        })
    })?;
    rows.collect()
}

/// Deletes the dead letters `filter` names; returns how many.
pub(super) fn purge(
    transaction: &rusqlite::Transaction,
    filter: &DeadLetterFilter,
) -> rusqlite::Result<u64> {
    let (clause, values) = filter_sql(filter);
    let count = transaction.execute(
        &format!("DELETE FROM dead_letters WHERE {clause}"),
        rusqlite::params_from_iter(values),
    )?;
    Ok(count as u64)
}

impl Books {
    /// Puts the dead letters `filter` names back in line for their destination, after every
    /// event there is; returns how many. Letters of destinations not in the configuration are
    /// left as they are.
    pub(super) fn replay(
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
        let mut replayed = 0;
        for (id, destination, body) in &letters {
            // A destination not in the configuration would never take its event: the letter
            // stays, to be replayed under a configuration that has it (or purged).
            let Some(index) = self.destinations.iter().position(|d| d == destination) else {
                continue;
            };
            transaction.execute(
                "INSERT INTO events (accepted_at, target, body) VALUES (?1, ?2, ?3)",
                params![now, destination, body],
            )?;
            self.last_seq = transaction.last_insert_rowid() as u64;
            ::metrics::counter!("hardal_events_replayed_total").increment(1);
            transaction.execute("DELETE FROM dead_letters WHERE id = ?1", [id])?;
            *counts.entry(index).or_default() += 1;
            replayed += 1;
        }
        for (index, count) in counts {
            self.shared.depth[index].fetch_add(count, Ordering::Relaxed);
        }
        Ok(replayed)
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
