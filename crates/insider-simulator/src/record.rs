//! What the simulator saw and kept: every request's log line, the users it accepted, the events
//! they carried (deduplicated like Insider stores them), running statistics, and every erasure
//! request with what it made the simulator forget.
//!
//! Callers prepare everything (dedup keys included) before taking the lock, so the lock only
//! covers pushes and counter updates.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::SystemTime;

use serde::Serialize;
use serde_json::Value;

use crate::lite::Lite;

/// A user object the simulator accepted.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AcceptedUser {
    /// The 1-based number of the upsert request that carried it.
    pub request: u64,
    /// Its position in that request's `users` array.
    pub index: usize,
    #[serde(with = "rfc3339")]
    pub received_at: SystemTime,
    /// The user object exactly as it was sent.
    pub user: Value,
}

/// One distinct event of one user, as Insider stores it: identical events are kept once.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AcceptedEvent {
    /// The user's `identifiers` (or `{"insider_id": ...}`).
    pub identifiers: Value,
    pub event: Value,
    /// The request that first carried it.
    pub first_request: u64,
    /// How many times it arrived in accepted users; above 1 means duplicates were sent.
    pub times_received: u64,
}

/// One upsert request as the simulator answered it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RequestLog {
    /// The 1-based number of the request.
    pub number: u64,
    #[serde(with = "rfc3339")]
    pub received_at: SystemTime,
    /// The status answered; `None` when the connection was dropped without an answer.
    pub status: Option<u16>,
    /// Users in the body; `None` when the body was not read as a batch (a fault, 401 or 400).
    pub users: Option<usize>,
    pub users_accepted: usize,
    pub users_failed: usize,
    pub body_bytes: usize,
    /// The injected fault that shaped the answer, if any.
    pub fault: Option<&'static str>,
}

/// One erasure request (delete or anonymize) as the simulator answered it. It names the
/// identifier fields it was asked by, never their values.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ErasureLog {
    /// The 1-based number of the erasure request (numbered apart from upserts).
    pub number: u64,
    /// `delete` or `anonymize`.
    pub endpoint: &'static str,
    #[serde(with = "rfc3339")]
    pub received_at: SystemTime,
    /// The status answered; `None` when the connection was dropped without an answer.
    pub status: Option<u16>,
    /// The identifier fields of the request (`email`, `uuid`, `custom.hardal_id`, …), when read.
    pub by: Vec<String>,
    /// Whether the simulator had a user for them; `None` when the request was not carried out.
    pub found: Option<bool>,
    /// The injected fault that shaped the answer, if any.
    pub fault: Option<&'static str>,
}

/// Whether the simulator holds a user: how many accepted user objects and distinct events carry
/// the identifier.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Presence {
    pub users: usize,
    pub events: usize,
}

impl Presence {
    pub fn found(&self) -> bool {
        self.users + self.events > 0
    }
}

/// The attributes Insider's Delete User's PII Data API deletes unconditionally.
pub const PII_ATTRIBUTES: [&str; 10] = [
    "gender",
    "birthday",
    "name",
    "surname",
    "age",
    "email",
    "phone_number",
    "city",
    "country",
    "uuid",
];

/// The identifiers an anonymized user loses.
const PII_IDENTIFIERS: [&str; 2] = ["email", "phone_number"];

/// The `(field, value)` pairs of a user's identifiers (`custom.NAME` for custom ones), the keys
/// by which the simulator finds a user.
pub fn identifier_pairs(identifiers: &Value) -> Vec<(String, String)> {
    let text = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    let mut pairs = Vec::new();
    let Some(map) = identifiers.as_object() else {
        return pairs;
    };
    for (key, value) in map {
        if key == "custom" {
            for (name, value) in value.as_object().into_iter().flatten() {
                pairs.extend(text(value).map(|v| (format!("custom.{name}"), v)));
            }
        } else {
            pairs.extend(text(value).map(|v| (key.clone(), v)));
        }
    }
    pairs
}

/// A recorded user object's identifiers: its `identifiers`, or its `insider_id`.
fn user_identifiers(user: &Value) -> Value {
    match (user.get("identifiers"), user.get("insider_id")) {
        (Some(identifiers), _) => identifiers.clone(),
        (None, Some(id)) => serde_json::json!({ "insider_id": id }),
        (None, None) => Value::Null,
    }
}

/// Running totals.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Stats {
    pub requests: u64,
    /// Answered requests by status.
    pub by_status: BTreeMap<u16, u64>,
    /// Requests whose connection was dropped without an answer.
    pub dropped: u64,
    pub users_accepted: u64,
    pub users_failed: u64,
    /// Events in accepted users, duplicates included.
    pub events_received: u64,
    /// Distinct events (per user); `None` when users are not recorded.
    pub events_unique: Option<u64>,
    /// Whether accepted users are kept, or only counted.
    pub recording: bool,
}

/// A user ready to be recorded, with the dedup keys of its events computed outside the lock.
#[derive(Debug)]
pub struct PreparedUser {
    pub index: usize,
    pub user: Value,
    pub events: Vec<PreparedEvent>,
}

#[derive(Debug)]
pub struct PreparedEvent {
    pub key: String,
    pub identifiers: Value,
    pub event: Value,
}

impl PreparedUser {
    /// Prepares a validated user; `record` false keeps only the event count.
    pub fn new(index: usize, user: &Lite<'_>, record: bool) -> (Option<PreparedUser>, u64) {
        let count = user
            .get("events")
            .and_then(Lite::as_array)
            .map_or(0, |events| events.len() as u64);
        if !record {
            return (None, count);
        }
        let user = user.to_value();
        let identifiers = match (user.get("identifiers"), user.get("insider_id")) {
            (Some(identifiers), _) => identifiers.clone(),
            (None, Some(id)) => serde_json::json!({ "insider_id": id }),
            (None, None) => Value::Null,
        };
        let who = canonical(&identifiers);
        let events = user
            .get("events")
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice)
            .iter()
            .map(|event| PreparedEvent {
                key: format!("{who}\u{0}{}", canonical(event)),
                identifiers: identifiers.clone(),
                event: event.clone(),
            })
            .collect();
        (
            Some(PreparedUser {
                index,
                user,
                events,
            }),
            count,
        )
    }
}

/// JSON text with object keys sorted, so two encodings of the same data give the same key.
fn canonical(value: &Value) -> String {
    fn write(value: &Value, out: &mut String) {
        match value {
            Value::Object(map) => {
                let mut entries: Vec<_> = map.iter().collect();
                entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
                out.push('{');
                for (i, (key, item)) in entries.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&Value::String(key.clone()).to_string());
                    out.push(':');
                    write(item, out);
                }
                out.push('}');
            }
            Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(item, out);
                }
                out.push(']');
            }
            scalar => out.push_str(&scalar.to_string()),
        }
    }
    let mut out = String::new();
    write(value, &mut out);
    out
}

/// Everything recorded since the start or the last reset.
#[derive(Debug)]
pub struct Record {
    recording: bool,
    stats: Stats,
    requests: Vec<RequestLog>,
    users: Vec<AcceptedUser>,
    events: Vec<AcceptedEvent>,
    event_index: HashMap<String, usize>,
    erasures: Vec<ErasureLog>,
}

impl Record {
    pub fn new(recording: bool) -> Record {
        Record {
            recording,
            stats: Stats {
                recording,
                events_unique: recording.then_some(0),
                ..Stats::default()
            },
            requests: Vec::new(),
            users: Vec::new(),
            events: Vec::new(),
            event_index: HashMap::new(),
            erasures: Vec::new(),
        }
    }

    pub fn recording(&self) -> bool {
        self.recording
    }

    /// Forgets everything, keeping the recording mode.
    pub fn reset(&mut self) {
        *self = Record::new(self.recording);
    }

    /// Logs one request and keeps its accepted users.
    pub fn add(
        &mut self,
        log: RequestLog,
        accepted: Vec<PreparedUser>,
        accepted_count: usize,
        events_received: u64,
    ) {
        self.stats.requests += 1;
        match log.status {
            Some(status) => *self.stats.by_status.entry(status).or_default() += 1,
            None => self.stats.dropped += 1,
        }
        self.stats.users_accepted += accepted_count as u64;
        self.stats.users_failed += log.users_failed as u64;
        self.stats.events_received += events_received;
        for prepared in accepted {
            for event in prepared.events {
                match self.event_index.get(&event.key) {
                    Some(&at) => self.events[at].times_received += 1,
                    None => {
                        self.event_index.insert(event.key, self.events.len());
                        self.events.push(AcceptedEvent {
                            identifiers: event.identifiers,
                            event: event.event,
                            first_request: log.number,
                            times_received: 1,
                        });
                    }
                }
            }
            self.users.push(AcceptedUser {
                request: log.number,
                index: prepared.index,
                received_at: log.received_at,
                user: prepared.user,
            });
        }
        if self.recording {
            self.stats.events_unique = Some(self.events.len() as u64);
        }
        self.requests.push(log);
    }

    pub fn stats(&self) -> Stats {
        self.stats.clone()
    }

    pub fn requests(&self) -> Vec<RequestLog> {
        self.requests.clone()
    }

    pub fn users(&self) -> Vec<AcceptedUser> {
        self.users.clone()
    }

    pub fn events(&self) -> Vec<AcceptedEvent> {
        self.events.clone()
    }

    pub fn add_erasure(&mut self, log: ErasureLog) {
        self.erasures.push(log);
    }

    pub fn erasures(&self) -> Vec<ErasureLog> {
        self.erasures.clone()
    }

    /// The user objects and distinct events that carry identifier `field` = `value`.
    pub fn presence(&self, field: &str, value: &str) -> Presence {
        let carries = |identifiers: &Value| {
            identifier_pairs(identifiers)
                .iter()
                .any(|(f, v)| f == field && v == value)
        };
        Presence {
            users: self
                .users
                .iter()
                .filter(|u| carries(&user_identifiers(&u.user)))
                .count(),
            events: self
                .events
                .iter()
                .filter(|e| carries(&e.identifiers))
                .count(),
        }
    }

    /// Forgets the user the `(field, value)` pairs name, as Insider's profile unification sees
    /// one: every user object and event that shares an identifier with them, and, in turn, with
    /// those. `anonymize` removes the email and phone number identifiers and the PII attributes
    /// and keeps the rest; otherwise everything of the user goes. Returns whether there was one.
    pub fn forget(&mut self, pairs: &[(String, String)], anonymize: bool) -> bool {
        let mut keys: HashSet<(String, String)> = pairs.iter().cloned().collect();
        let mut users = vec![false; self.users.len()];
        let mut events = vec![false; self.events.len()];
        loop {
            let mut grew = false;
            let mut take = |identifiers: &Value, marked: &mut bool| {
                if *marked {
                    return;
                }
                let own = identifier_pairs(identifiers);
                if own.iter().any(|pair| keys.contains(pair)) {
                    *marked = true;
                    keys.extend(own);
                    grew = true;
                }
            };
            for (user, marked) in self.users.iter().zip(users.iter_mut()) {
                take(&user_identifiers(&user.user), marked);
            }
            for (event, marked) in self.events.iter().zip(events.iter_mut()) {
                take(&event.identifiers, marked);
            }
            if !grew {
                break;
            }
        }
        let found = users.iter().chain(&events).any(|m| *m);
        if anonymize {
            let strip = |identifiers: &mut Value| {
                if let Some(map) = identifiers.as_object_mut() {
                    for key in PII_IDENTIFIERS {
                        map.remove(key);
                    }
                }
            };
            for (user, _) in self.users.iter_mut().zip(&users).filter(|(_, m)| **m) {
                if let Some(identifiers) = user.user.get_mut("identifiers") {
                    strip(identifiers);
                }
                if let Some(attributes) = user
                    .user
                    .get_mut("attributes")
                    .and_then(Value::as_object_mut)
                {
                    for key in PII_ATTRIBUTES {
                        attributes.remove(key);
                    }
                }
            }
            for (event, _) in self.events.iter_mut().zip(&events).filter(|(_, m)| **m) {
                strip(&mut event.identifiers);
            }
        } else {
            let mut marks = users.iter();
            self.users
                .retain(|_| !marks.next().copied().unwrap_or(false));
            let mut marks = events.iter();
            self.events
                .retain(|_| !marks.next().copied().unwrap_or(false));
        }
        self.reindex();
        found
    }

    /// Rebuilds the event index after events were removed or changed; events that became
    /// identical are kept once, as Insider would store them.
    fn reindex(&mut self) {
        let events = std::mem::take(&mut self.events);
        self.event_index.clear();
        for event in events {
            let key = format!(
                "{}\u{0}{}",
                canonical(&event.identifiers),
                canonical(&event.event)
            );
            match self.event_index.get(&key) {
                Some(&at) => self.events[at].times_received += event.times_received,
                None => {
                    self.event_index.insert(key, self.events.len());
                    self.events.push(event);
                }
            }
        }
        if self.recording {
            self.stats.events_unique = Some(self.events.len() as u64);
        }
    }
}

/// Serialises a `SystemTime` as RFC 3339 in UTC, the form a script reading the control API expects.
mod rfc3339 {
    use std::time::SystemTime;

    use serde::{Serializer, ser::Error};
    use time::OffsetDateTime;
    use time::format_description::well_known::Rfc3339;

    pub fn serialize<S: Serializer>(at: &SystemTime, serializer: S) -> Result<S::Ok, S::Error> {
        let text = OffsetDateTime::from(*at)
            .format(&Rfc3339)
            .map_err(S::Error::custom)?;
        serializer.serialize_str(&text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_form_ignores_key_order_only() {
        let cases = [
            (
                json!({"a": 1, "b": [1, {"d": 2, "c": 3}]}),
                r#"{"a":1,"b":[1,{"c":3,"d":2}]}"#,
            ),
            (json!({"b": "x\"y", "a": null}), r#"{"a":null,"b":"x\"y"}"#),
            (json!([2, 1]), "[2,1]"),
        ];
        for (value, expected) in cases {
            assert_eq!(canonical(&value), expected);
        }
    }
}
