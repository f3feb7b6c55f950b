//! Where accepted events wait until every destination is done with them. One delivery engine
//! serves every backlog; what differs is only where events are kept and how their resolution is
//! recorded, behind the object-safe [`Backlog`] trait: append durably (ingestion answers 202 only
//! after this returns), take a destination's next events in acceptance order, resolve them, and
//! list, replay and purge dead letters.
//!
//! Implementations: `sqlite/` (an embedded spool in one file, the default), `nats/` (NATS
//! JetStream, for many ingestion nodes and delivery workers).

pub mod nats;
pub mod sqlite;

use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;

use crate::delivery::Ending;

/// An event accepted by ingestion: its text, the identity duplicates are recognised by, and the
/// user it belongs to (backlogs that partition by user keep a user's events together).
#[derive(Debug, Clone)]
pub struct Incoming {
    pub body: String,
    /// A stable 64-bit hash of the event's `id`, or of its content when it has none.
    pub identity: u64,
    /// The event's `user_id`, else `user.email` (as `Event::user_key` reads them).
    pub user: Option<String>,
}

/// What an append did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    pub accepted: usize,
    /// Events whose identity was accepted before, within the deduplication window.
    pub duplicates: usize,
}

/// A stored event, as a destination takes it.
#[derive(Debug, Clone)]
pub struct Stored {
    /// Its place in acceptance order (unique in the backlog).
    pub seq: u64,
    pub body: String,
}

/// How an event ended for a destination.
#[derive(Debug, Clone)]
pub struct Resolution {
    pub seq: u64,
    pub ending: Ending,
    /// Why, for rejected and dead-lettered events.
    pub reasons: Vec<String>,
}

/// Which dead letters a command means.
#[derive(Debug, Clone, Default)]
pub struct DeadLetterFilter {
    pub destination: Option<String>,
    /// Only those with a reason containing this text.
    pub reason: Option<String>,
    pub since: Option<SystemTime>,
    pub until: Option<SystemTime>,
    /// Only this one.
    pub id: Option<u64>,
    pub limit: Option<usize>,
}

/// An event a destination gave up on, with everything needed to look at it and replay it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DeadLetter {
    pub id: u64,
    pub destination: String,
    /// When it was dead-lettered, seconds since the Unix epoch.
    pub at: u64,
    /// `rejected` or `dead_lettered` (retries exhausted).
    pub ending: String,
    pub reasons: Vec<String>,
    /// The event's text as it was accepted, shown as JSON as it is: parsed into a
    /// `serde_json::Value`, an integer beyond 64 bits would print as a float.
    pub event: Box<serde_json::value::RawValue>,
}

impl DeadLetter {
    /// The stored text of an event as a dead letter shows it: the text itself when it is JSON
    /// (it always is, ingestion checks it), else the text as a JSON string, so that nothing
    /// stored is hidden.
    pub fn event_from_text(text: &str) -> Box<serde_json::value::RawValue> {
        serde_json::from_str(text)
            .unwrap_or_else(|_| serde_json::value::to_raw_value(text).expect("a string serializes"))
    }
}

/// What a destination has waiting, for metrics and readiness.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Depth {
    pub destination: String,
    /// Events accepted and not yet resolved for it.
    pub events: u64,
    /// Seconds since the oldest of them was accepted.
    pub oldest_age_seconds: f64,
}

/// What a destination has waiting in one partition (backlogs that partition).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PartitionDepth {
    pub destination: String,
    pub partition: u32,
    pub events: u64,
}

/// The backlog's state as a whole.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BacklogStats {
    pub depths: Vec<Depth>,
    /// Per destination and partition, for backlogs that partition.
    pub partitions: Vec<PartitionDepth>,
    /// The partitions this process delivers, for backlogs that partition and while it delivers.
    pub held: Option<Vec<u32>>,
    /// Bytes in use.
    pub bytes: u64,
    /// Whether the backlog takes writes. `/readyz` follows it (read every second, not only after
    /// a POST: a load balancer sends none to an unready node), so a backlog whose last write
    /// failed is to find out by itself when it can write again.
    pub writable: bool,
}

/// A suppression list entry: the hash of one identifier of an erased user (never the identifier),
/// and for a custom identifier the event path it is read from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SuppressionEntry {
    pub hash: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// When it was written, seconds since the Unix epoch.
    pub created: u64,
}

/// How far an erasure job got: each state is recorded before the next step starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErasureState {
    /// Recorded, the user suppressed: nothing of them is accepted or dispatched any more.
    Suppressed,
    /// Their waiting events and dead letters are removed from the backlog.
    Removed,
    /// Every request in flight when the user was suppressed has finished; the destinations'
    /// deletion requests are under way.
    Sending,
    /// Every destination answered for good (or cannot erase); the identifiers are wiped.
    Complete,
}

/// What one destination did with an erasure.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DestinationOutcome {
    pub destination: String,
    /// `confirmed`, `failed` or `unsupported`.
    pub outcome: String,
    /// Why it failed (redacted), or what the operator must do where it cannot erase.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
    /// Seconds since the Unix epoch.
    pub at: u64,
}

/// The audit record of an erasure: when, how far, what each destination did. It holds a digest
/// of the identifiers, never the identifiers.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ErasureRecord {
    pub id: String,
    /// Seconds since the Unix epoch.
    pub created: u64,
    /// SHA-256 over the identifiers' hashes (`Identifiers::digest`).
    pub digest: String,
    pub state: ErasureState,
    /// Waiting events removed from the backlog (once removed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removed_events: Option<u64>,
    /// Dead letters removed (once removed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removed_dead_letters: Option<u64>,
    #[serde(default)]
    pub destinations: Vec<DestinationOutcome>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed: Option<u64>,
}

/// A pending erasure job as a backlog gives it back to resume it: the record and the
/// identifiers (JSON), which the backlog keeps only until the job completes.
#[derive(Debug, Clone)]
pub struct PendingErasure {
    pub record: ErasureRecord,
    pub identifiers: String,
}

/// Tells whether a stored event's text belongs to an erased user.
pub type ErasedMatcher = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// Why a backlog operation failed. Callers branch on the kind: [`BacklogError::is_transient`]
/// says whether the same operation may succeed later.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BacklogError {
    /// The backlog holds as much as it may; try again after delivery made room.
    #[error(
        "the backlog is full ({bytes} of {max_bytes} bytes); events are accepted again once delivery makes room"
    )]
    Full { bytes: u64, max_bytes: u64 },
    /// Another process holds the backlog's write lock (a `hardal dlq` command, a backup) for
    /// longer than the backlog waits; the same write succeeds once it lets go.
    #[error("the backlog is busy ({0}); try again")]
    Busy(String),
    /// A transient input/output problem (a connection lost, a request timed out).
    #[error("{0}")]
    Io(String),
    /// The backlog cannot be written and will not recover by itself (its file deleted or
    /// replaced, a full disk that stayed full, a write SQLite refuses for good): the service
    /// stops rather than accept events it cannot keep.
    #[error("the backlog cannot be written: {0}")]
    Fatal(String),
    #[error("unknown destination `{0}`")]
    UnknownDestination(String),
    /// The backlog cannot be opened as asked (a path that does not exist, a spool another
    /// process owns, a path that is no file); nothing was changed.
    #[error("{0}")]
    Refused(String),
}

impl BacklogError {
    /// Whether the same operation may succeed when tried again later.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            BacklogError::Full { .. } | BacklogError::Busy(_) | BacklogError::Io(_)
        )
    }
}

/// Where accepted events wait. Methods are async so that implementations may talk to a server
/// (NATS JetStream) as well as to a file; `async_trait` keeps the trait object-safe.
#[async_trait]
pub trait Backlog: Send + Sync {
    /// Stores events durably, in order; recognises events whose identity was accepted within
    /// the deduplication window and stores those not again. All or nothing.
    async fn append(&self, events: Vec<Incoming>) -> Result<Appended, BacklogError>;

    /// The next events for `destination` in acceptance order, at most `limit`: those after what
    /// it took before in this process, and after start-up, those it had not resolved.
    async fn take(&self, destination: &str, limit: usize) -> Result<Vec<Stored>, BacklogError>;

    /// Records how events ended for `destination`; dead-lettered and rejected ones are kept as
    /// dead letters with their reasons.
    async fn resolve(
        &self,
        destination: &str,
        resolved: Vec<Resolution>,
    ) -> Result<(), BacklogError>;

    /// Completes when new events may be there to take (or after a while, for events appended
    /// by another process).
    async fn wait_for_events(&self);

    /// Completes when new events for `destination` may be there to take, or after a while. A
    /// wake-up that comes while the destination's feeder is not waiting is kept for its next
    /// wait, not lost. By default, as [`Backlog::wait_for_events`].
    async fn wait_for(&self, destination: &str) {
        let _ = destination;
        self.wait_for_events().await
    }

    async fn dead_letters(
        &self,
        filter: &DeadLetterFilter,
    ) -> Result<Vec<DeadLetter>, BacklogError>;

    /// Puts dead letters back in line for their destination; returns how many.
    async fn replay(&self, filter: &DeadLetterFilter) -> Result<u64, BacklogError>;

    /// Deletes dead letters for good; returns how many.
    async fn purge(&self, filter: &DeadLetterFilter) -> Result<u64, BacklogError>;

    async fn stats(&self) -> Result<BacklogStats, BacklogError>;

    /// Step 1 of an erasure, in one transaction: records the job with its identifiers (kept
    /// until it completes) and adds its hashes to the suppression list.
    async fn begin_erasure(
        &self,
        record: ErasureRecord,
        identifiers: String,
        suppress: Vec<SuppressionEntry>,
    ) -> Result<(), BacklogError> {
        let _ = (record, identifiers, suppress);
        Err(unsupported())
    }

    /// The suppression list.
    async fn suppressions(&self) -> Result<Vec<SuppressionEntry>, BacklogError> {
        Err(unsupported())
    }

    /// Deletes suppression entries written before `before` (seconds since the Unix epoch);
    /// returns how many.
    async fn prune_suppressions(&self, before: u64) -> Result<u64, BacklogError> {
        let _ = before;
        Err(unsupported())
    }

    /// Step 2 of an erasure: removes every waiting event and every dead letter `erased` matches,
    /// and records the job as `removed` with the counts, durably. Idempotent.
    async fn remove_erased(
        &self,
        record: ErasureRecord,
        erased: ErasedMatcher,
    ) -> Result<ErasureRecord, BacklogError> {
        let _ = (record, erased);
        Err(unsupported())
    }

    /// Records how far an erasure job got; a complete one loses its identifiers (and the
    /// backlog makes sure no copy of them is left in its files).
    async fn record_erasure(&self, record: ErasureRecord) -> Result<(), BacklogError> {
        let _ = record;
        Err(unsupported())
    }

    /// How long a new suppression entry may take to reach every process delivering from this
    /// backlog (zero when one process owns it).
    fn suppression_delay(&self) -> std::time::Duration {
        std::time::Duration::ZERO
    }

    /// Erasure jobs not complete, with their identifiers, to resume them.
    async fn pending_erasures(&self) -> Result<Vec<PendingErasure>, BacklogError> {
        Ok(Vec::new())
    }

    /// The audit records, oldest first, or the one named.
    async fn erasures(&self, id: Option<&str>) -> Result<Vec<ErasureRecord>, BacklogError> {
        let _ = id;
        Err(unsupported())
    }

    /// Lets go of what this process holds for delivery (leases, events taken and not
    /// resolved), so that others take it over at once; called once delivery stopped. It is to
    /// return within a bound of its own (the service stops waiting after its drain timeout).
    async fn close(&self) {}
}

/// What a backlog without erasure answers.
fn unsupported() -> BacklogError {
    BacklogError::Refused("this backlog does not support erasure requests yet".into())
}

/// The stable identity of an event: its `id` when it has a non-empty one (a string or a number),
/// else its text.
pub fn identity(id: Option<&serde_json::value::RawValue>, text: &str) -> u64 {
    match id.and_then(scalar_text) {
        Some(id) => xxhash_rust::xxh3::xxh3_64_with_seed(id.as_bytes(), 1),
        None => xxhash_rust::xxh3::xxh3_64_with_seed(text.as_bytes(), 2),
    }
}

/// A JSON scalar as a key: a non-empty string's text, or a number's digits as written.
fn scalar_text(raw: &serde_json::value::RawValue) -> Option<String> {
    let raw = raw.get();
    if raw.starts_with('"') {
        serde_json::from_str::<String>(raw)
            .ok()
            .filter(|s| !s.is_empty())
    } else if raw.starts_with(|c: char| c == '-' || c.is_ascii_digit()) {
        Some(raw.to_owned())
    } else {
        None
    }
}

/// What ingestion learns of an event without building it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    pub identity: u64,
    pub user: Option<String>,
}

/// Checks that `text` is one event as delivery will read it (the same parser and limits, so
/// that nothing accepted is dead-lettered later as not JSON: nesting too deep, a lone surrogate)
/// and returns its identity and user. Ingestion runs this for every event, so it builds nothing:
/// one pass checks the syntax, one borrowing pass reads the three members it needs.
pub fn check_event(text: &str) -> Result<Checked, String> {
    use serde_json::value::RawValue;
    #[derive(serde::Deserialize)]
    struct User<'a> {
        #[serde(borrow, default)]
        email: Option<&'a RawValue>,
    }
    #[derive(serde::Deserialize)]
    struct Probe<'a> {
        #[serde(borrow, default)]
        id: Option<&'a RawValue>,
        #[serde(borrow, default)]
        user_id: Option<&'a RawValue>,
        #[serde(borrow, default)]
        user: Option<User<'a>>,
    }
    let from_event = |event: hardal_core::Event| {
        let id = event
            .as_value()
            .get("id")
            .and_then(|id| serde_json::value::to_raw_value(id).ok());
        Checked {
            identity: identity(id.as_deref(), text),
            user: event.user_key(),
        }
    };
    // Anything the quick passes refuse (not an object, bad syntax, an `id` twice, a `user` that
    // is not an object) goes through the full parser, which names what is wrong or reads the
    // rare object the probe cannot.
    let full = || crate::input::parse_text(text).map(from_event);
    if !text.trim_start().starts_with('{') || hardal_core::event::check_event_syntax(text).is_err()
    {
        return full();
    }
    match serde_json::from_str::<Probe>(text) {
        Ok(probe) => Ok(Checked {
            identity: identity(probe.id, text),
            user: probe
                .user_id
                .and_then(scalar_text)
                .or_else(|| probe.user.and_then(|u| u.email.and_then(scalar_text))),
        }),
        Err(_) => full(),
    }
}

#[cfg(test)]
mod tests {
    use super::check_event;

    #[test]
    fn identity_and_user_are_read_as_delivery_reads_them() {
        for text in [
            r#"{"id": "e1", "user_id": "u1", "user": {"email": "a@b.co"}}"#,
            r#"{"id": 7, "user_id": 12345678901234567890123, "properties": {"id": "x"}}"#,
            r#"{"user": {"email": "a@b.co"}, "event_name": "x"}"#,
            r#"{"user_id": "", "user": {"email": ""}}"#,
            r#"{"user": "not an object", "id": "e2"}"#,
            r#"{"id": "e3", "id": "e4"}"#,
        ] {
            let checked = check_event(text).unwrap();
            let event = crate::input::parse_text(text).unwrap();
            assert_eq!(checked.user, event.user_key(), "{text}");
        }
        assert_eq!(
            check_event(r#"{"id":"a","x":1}"#).unwrap().identity,
            check_event(r#"{"x":2,"id":"a"}"#).unwrap().identity,
            "the id is the identity, whatever else differs"
        );
        assert!(check_event("[1]").unwrap_err().contains("found an array"));
        assert!(
            check_event("{\"a\":")
                .unwrap_err()
                .contains("not valid JSON")
        );
    }

    /// Ingestion accepts exactly what delivery can parse: deep nesting, lone surrogates, huge
    /// numbers and broken syntax are decided the same way by both.
    #[test]
    fn ingestion_accepts_exactly_what_delivery_parses() {
        let deep = |n: usize| format!("{{\"a\":{}1{}}}", "[".repeat(n), "]".repeat(n));
        let mut cases = vec![
            deep(120),
            deep(126),
            deep(127),
            deep(128),
            deep(100_000),
            format!("{{\"n\":1{}}}", "0".repeat(400)),
            format!("{{\"n\":1{}.5}}", "0".repeat(400)),
            "{\"n\":1e400}".to_owned(),
            "{\"n\":-0.0e-400}".to_owned(),
        ];
        for escape in [
            "\\ud800",
            "\\udc00",
            "\\ud800\\udc00",
            "\\ud800x",
            "\\u00e9",
            "\\x",
        ] {
            cases.push(format!("{{\"s\":\"{escape}\"}}"));
            cases.push(format!("{{\"{escape}\":1}}"));
            cases.push(format!("{{\"id\":\"{escape}\"}}"));
        }
        for text in [
            "{}",
            "{\"a\":1,}",
            "{\"a\" 1}",
            "{\"a\":tru}",
            "{\"a\":1} x",
            " {\"a\":1} ",
        ] {
            cases.push(text.to_owned());
        }
        for text in &cases {
            let checked = check_event(text).is_ok();
            let parsed = crate::input::parse_text(text).is_ok();
            assert_eq!(checked, parsed, "{}", &text[..text.len().min(80)]);
        }
    }
}
