//! Erasure in the spool: the jobs (`erasures`: the audit record as JSON, and the identifiers
//! only while the job is pending), the suppression list (`suppressions`: one hash per
//! identifier), and removing an erased user's waiting events and dead letters.
//!
//! Finding the user's rows reads every stored event on the reader connection, a page at a time
//! (a spool of millions takes seconds, and the writer goes on meanwhile); deleting them is one
//! write of the writer, which also resolves the deleted events for every destination. The
//! writer connection runs with `secure_delete = FAST`, so deleted rows leave no text in the
//! pages that held them, and a completed job returns every free page to the file system and
//! truncates the write-ahead log (see `Writer::scrub`): no copy of the identifiers or of the
//! user's events stays in the spool's files.

use rusqlite::{Connection, Transaction, params};

use super::books::Books;
use crate::backlog::{
    ErasedMatcher, ErasureRecord, ErasureState, PendingErasure, Resolution, SuppressionEntry,
};
use crate::delivery::Ending;

/// Rows read at a time while looking for an erased user's events.
const PAGE: i64 = 4096;

/// The tables of erasure, made when the spool opens.
pub(super) const TABLES: &str = "CREATE TABLE IF NOT EXISTS erasures (id TEXT PRIMARY KEY,
         created INTEGER NOT NULL, record TEXT NOT NULL, identifiers TEXT);
     CREATE TABLE IF NOT EXISTS suppressions (hash TEXT PRIMARY KEY, path TEXT,
         created INTEGER NOT NULL);";

/// An erasure write, done inside a group commit of the writer.
pub(in crate::backlog::sqlite) enum ErasureWrite {
    Begin {
        record: ErasureRecord,
        identifiers: String,
        suppress: Vec<SuppressionEntry>,
    },
    Remove {
        record: ErasureRecord,
        events: Vec<u64>,
        letters: Vec<i64>,
    },
    Record(ErasureRecord),
    Prune(u64),
}

/// What an erasure write did.
pub(in crate::backlog::sqlite) enum ErasureDone {
    Written,
    Counted(u64),
    Removed(ErasureRecord),
}

fn record_json(record: &ErasureRecord) -> String {
    serde_json::to_string(record).expect("a record serializes")
}

impl Books {
    pub(super) fn erasure(
        &mut self,
        transaction: &Transaction,
        write: &ErasureWrite,
    ) -> rusqlite::Result<ErasureDone> {
        match write {
            ErasureWrite::Begin {
                record,
                identifiers,
                suppress,
            } => {
                transaction.execute(
                    "INSERT INTO erasures (id, created, record, identifiers) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (id) DO NOTHING",
                    params![
                        record.id,
                        record.created as i64,
                        record_json(record),
                        identifiers
                    ],
                )?;
                let mut insert = transaction.prepare_cached(
                    "INSERT INTO suppressions (hash, path, created) VALUES (?1, ?2, ?3)
                     ON CONFLICT (hash) DO UPDATE SET created = excluded.created",
                )?;
                for entry in suppress {
                    insert.execute(params![entry.hash, entry.path, entry.created as i64])?;
                }
                Ok(ErasureDone::Written)
            }
            ErasureWrite::Remove {
                record,
                events,
                letters,
            } => {
                let mut removed_events = 0u64;
                {
                    let mut delete =
                        transaction.prepare_cached("DELETE FROM events WHERE seq = ?1")?;
                    for seq in events {
                        removed_events += delete.execute([*seq as i64])? as u64;
                    }
                }
                // A deleted event is resolved for every destination: its watermark passes it,
                // and the depth no longer counts it.
                let resolutions: Vec<Resolution> = events
                    .iter()
                    .map(|&seq| Resolution {
                        seq,
                        ending: Ending::Skipped,
                        reasons: Vec::new(),
                    })
                    .collect();
                if !resolutions.is_empty() {
                    for index in 0..self.destinations.len() {
                        self.resolve(transaction, index, &resolutions, true)?;
                    }
                }
                let mut removed_letters = 0u64;
                {
                    let mut delete =
                        transaction.prepare_cached("DELETE FROM dead_letters WHERE id = ?1")?;
                    for id in letters {
                        removed_letters += delete.execute([*id])? as u64;
                    }
                }
                let mut record = record.clone();
                if record.state == ErasureState::Suppressed {
                    record.state = ErasureState::Removed;
                }
                // A job resumed after its removal was recorded adds what it found since.
                record.removed_events = Some(record.removed_events.unwrap_or(0) + removed_events);
                record.removed_dead_letters =
                    Some(record.removed_dead_letters.unwrap_or(0) + removed_letters);
                write_record(transaction, &record)?;
                Ok(ErasureDone::Removed(record))
            }
            ErasureWrite::Record(record) => {
                write_record(transaction, record)?;
                Ok(ErasureDone::Written)
            }
            ErasureWrite::Prune(before) => Ok(ErasureDone::Counted(transaction.execute(
                "DELETE FROM suppressions WHERE created < ?1",
                [*before as i64],
            )? as u64)),
        }
    }
}

/// Writes a job's record; a complete job's identifiers are wiped.
fn write_record(transaction: &Transaction, record: &ErasureRecord) -> rusqlite::Result<()> {
    if record.state == ErasureState::Complete {
        transaction.execute(
            "UPDATE erasures SET record = ?2, identifiers = NULL WHERE id = ?1",
            params![record.id, record_json(record)],
        )?;
    } else {
        transaction.execute(
            "UPDATE erasures SET record = ?2 WHERE id = ?1",
            params![record.id, record_json(record)],
        )?;
    }
    Ok(())
}

/// The suppression list.
pub(super) fn suppressions(connection: &Connection) -> rusqlite::Result<Vec<SuppressionEntry>> {
    let mut statement = connection.prepare("SELECT hash, path, created FROM suppressions")?;
    let rows = statement.query_map([], |row| {
        Ok(SuppressionEntry {
            hash: row.get(0)?,
            path: row.get(1)?,
            created: row.get::<_, i64>(2)?.max(0) as u64,
        })
    })?;
    rows.collect()
}

/// Audit records, oldest first, or the one named.
pub(super) fn records(
    connection: &Connection,
    id: Option<&str>,
) -> rusqlite::Result<Vec<ErasureRecord>> {
    let mut statement = connection
        .prepare("SELECT record FROM erasures WHERE ?1 IS NULL OR id = ?1 ORDER BY created, id")?;
    let rows = statement.query_map([id], |row| row.get::<_, String>(0))?;
    let mut records = Vec::new();
    for text in rows {
        if let Ok(record) = serde_json::from_str(&text?) {
            records.push(record);
        }
    }
    Ok(records)
}

/// Jobs not complete, with their identifiers.
pub(super) fn pending(connection: &Connection) -> rusqlite::Result<Vec<PendingErasure>> {
    let mut statement = connection.prepare(
        "SELECT record, identifiers FROM erasures WHERE identifiers IS NOT NULL ORDER BY created, id",
    )?;
    let rows = statement.query_map([], |row| {
        Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
    })?;
    let mut pending = Vec::new();
    for row in rows {
        let (record, identifiers) = row?;
        if let Ok(record) = serde_json::from_str::<ErasureRecord>(&record)
            && record.state != ErasureState::Complete
        {
            pending.push(PendingErasure {
                record,
                identifiers,
            });
        }
    }
    Ok(pending)
}

/// One page of the events (`letters`: of the dead letters) after `after` that `erased` matches:
/// their keys, and the last key read (`None` when there were no more rows).
pub(super) fn scan_page(
    connection: &Connection,
    letters: bool,
    after: i64,
    erased: &ErasedMatcher,
) -> rusqlite::Result<(Vec<i64>, Option<i64>)> {
    let sql = if letters {
        "SELECT id, body FROM dead_letters WHERE id > ?1 ORDER BY id LIMIT ?2"
    } else {
        "SELECT seq, body FROM events WHERE seq > ?1 ORDER BY seq LIMIT ?2"
    };
    let mut statement = connection.prepare_cached(sql)?;
    let mut rows = statement.query(params![after, PAGE])?;
    let (mut found, mut last) = (Vec::new(), None);
    while let Some(row) = rows.next()? {
        let key: i64 = row.get(0)?;
        last = Some(key);
        let body: String = row.get(1)?;
        if erased(&body) {
            found.push(key);
        }
    }
    Ok((found, last))
}
