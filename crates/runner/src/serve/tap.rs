//! The service side of `hardal tap`: `GET /v1/tap` on a listener of its own (loopback by
//! default) streams, as NDJSON, what the service does with the events a client asked about —
//! each event as received, each destination's rendered record, and each verdict (delivered,
//! rejected, retried, dead-lettered, skipped, expired).
//!
//! The filters (`destination`, `event_name`, `user`, `sample`) are applied here, so a busy
//! service sends only what was asked. Nobody tapping costs one atomic load per hook: every hook
//! checks [`Tap::active`] before any work. A slow client never slows the service: each tap has a
//! bounded buffer, and what does not fit is dropped and counted, and the client is told how many
//! (a `dropped` line). Every line passes the [`Redactor`], as everything else hardal prints does.

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hardal_core::{Event, Mapped, MappingError, Outcome};
use rustc_hash::FxHashMap as HashMap;
use serde::Serialize;
use serde_json::json;
use serde_json::value::RawValue;
use tokio::sync::mpsc;

use crate::backlog::Incoming;
use crate::config::TapConfig;
use crate::delivery::{Resolved, Retried};
use crate::redact::Redactor;

/// How long a tap may be silent before a blank line is sent: a client that went away is noticed
/// (and its buffer freed) by the write that fails, not by the next event that matches it.
const KEEPALIVE: Duration = Duration::from_secs(15);

/// How long a client has to send its request's head to the tap's listener.
const TAP_HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections the tap's listener holds beyond `max_clients` (those answered "too many taps",
/// and clients reconnecting while their old connection closes).
const TAP_SPARE_CONNECTIONS: usize = 4;

/// The taps of one service, and what the hooks in ingestion and delivery tell them.
pub struct Tap {
    /// Taps connected: the one check every hook makes before any work.
    connected: AtomicUsize,
    subscribers: Mutex<Vec<Arc<Subscriber>>>,
    /// Set when the service stops: new taps are refused, connected ones end.
    closed: AtomicBool,
    /// Who each tapped event in delivery is, by destination index and backlog sequence, from
    /// its mapping until its verdict: verdicts are filtered without parsing the event again on
    /// the delivery loop. Cleared whenever the first tap connects or the last one leaves, so
    /// entries left behind while nobody taps do not accumulate.
    delivering: Mutex<HashMap<(usize, u64), Arc<Who>>>,
    destinations: Vec<String>,
    tokens: Vec<Vec<u8>>,
    redactor: Redactor,
    buffer: usize,
    max_clients: usize,
    next_id: AtomicU64,
}

/// One connected tap.
struct Subscriber {
    id: u64,
    filter: Filter,
    lines: mpsc::Sender<Bytes>,
    /// Lines that did not fit the buffer since the client was last told.
    dropped: Arc<AtomicU64>,
}

/// What a tap asked to see.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    /// Destination ids; empty: every destination.
    pub destinations: Vec<String>,
    /// Event names (`event_name`); empty: every event.
    pub event_names: Vec<String>,
    /// Users (`user_id`, else `user.email`); empty: every user.
    pub users: Vec<String>,
    /// The share of events shown, in (0, 1].
    pub sample: f64,
}

/// What the filters look at in an event.
#[derive(Debug)]
pub struct Who {
    /// The event's identity (its `id`, or a hash of its content), as ingestion computed it.
    identity: u64,
    user: Option<String>,
    event_name: Option<String>,
}

impl Filter {
    /// Whether the event, at `destination` (none for the event as received), is to be shown.
    /// Sampling is decided by the event's identity, so an event sampled in shows all its lines.
    fn matches(&self, who: &Who, destination: Option<&str>) -> bool {
        let listed = |wanted: &[String], found: Option<&str>| {
            wanted.is_empty() || found.is_some_and(|f| wanted.iter().any(|w| w == f))
        };
        (destination.is_none() || listed(&self.destinations, destination))
            && listed(&self.event_names, who.event_name.as_deref())
            && listed(&self.users, who.user.as_deref())
            && sampled(who.identity, self.sample)
    }

    /// The filter of a `GET /v1/tap` query; `Err` says what is wrong with it.
    fn from_query(pairs: Vec<(String, String)>, known: &[String]) -> Result<Filter, String> {
        let mut filter = Filter {
            sample: 1.0,
            ..Filter::default()
        };
        for (key, value) in pairs {
            match key.as_str() {
                "destination" if known.contains(&value) => filter.destinations.push(value),
                "destination" => {
                    return Err(format!(
                        "no destination `{value}` is configured; the destinations are: {}",
                        known.join(", ")
                    ));
                }
                "event_name" => filter.event_names.push(value),
                "user" => filter.users.push(value),
                "sample" => {
                    filter.sample = value
                        .parse::<f64>()
                        .ok()
                        .filter(|s| *s > 0.0 && *s <= 1.0)
                        .ok_or_else(|| {
                            format!(
                                "`sample` is a share of events above 0 and at most 1, not `{value}`"
                            )
                        })?;
                }
                other => {
                    return Err(format!(
                        "unknown parameter `{other}`; filters are destination, event_name, user and sample"
                    ));
                }
            }
        }
        Ok(filter)
    }
}

/// Whether an event with this identity is in a sample of `share` of all events. Identities are
/// xxh3 hashes, evenly spread over the 64-bit range.
fn sampled(identity: u64, share: f64) -> bool {
    share >= 1.0 || (identity as f64) < share * u64::MAX as f64
}

/// One line of the stream.
#[derive(Serialize)]
struct Line<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    time: String,
    /// The event's identity in hex: the lines of one event share it.
    event_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    event_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    destination: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    event: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    record: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    verdict: Option<&'a str>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    reasons: &'a [String],
    #[serde(skip_serializing_if = "Vec::is_empty")]
    notes: Vec<String>,
}

impl<'a> Line<'a> {
    fn new(kind: &'a str, who: &'a Who, destination: Option<&'a str>) -> Line<'a> {
        Line {
            kind,
            time: now(),
            event_id: format!("{:016x}", who.identity),
            event_name: who.event_name.as_deref(),
            user: who.user.as_deref(),
            destination,
            event: None,
            record: None,
            verdict: None,
            reasons: &[],
            notes: Vec::new(),
        }
    }
}

fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// JSON text as a raw value (the backlog and the destinations only hold valid JSON; anything
/// else is shown as a JSON string).
fn raw(text: &str) -> Box<RawValue> {
    RawValue::from_string(text.to_owned()).unwrap_or_else(|_| {
        RawValue::from_string(serde_json::to_string(text).expect("a string serializes"))
            .expect("a JSON string is JSON")
    })
}

impl Tap {
    /// The taps of a service with these destinations; `config` gives the tokens and bounds
    /// (without it nobody can ever tap, and every hook stays a single load).
    pub fn new(config: Option<&TapConfig>, destinations: Vec<String>, redactor: Redactor) -> Tap {
        Tap {
            connected: AtomicUsize::new(0),
            subscribers: Mutex::new(Vec::new()),
            closed: AtomicBool::new(false),
            delivering: Mutex::new(HashMap::default()),
            destinations,
            tokens: config
                .map(|c| {
                    c.auth_tokens
                        .iter()
                        .map(|t| t.expose().as_bytes().to_vec())
                        .collect()
                })
                .unwrap_or_default(),
            redactor,
            buffer: config.map_or(1, |c| c.buffer_messages),
            max_clients: config.map_or(0, |c| c.max_clients),
            next_id: AtomicU64::new(0),
        }
    }

    /// Whether anyone taps: every hook asks this first.
    #[inline]
    pub fn active(&self) -> bool {
        self.connected.load(Ordering::Relaxed) > 0
    }

    /// Sends a line to every tap whose filter matches; `line` is built (and redacted) only when
    /// one does. A tap whose buffer is full misses the line, and the miss is counted.
    fn publish(&self, who: &Who, destination: Option<&str>, line: impl FnOnce() -> String) {
        // The line is built outside the lock: ingestion and mapping threads publish too.
        let matching: Vec<Arc<Subscriber>> = self
            .subscribers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|s| s.filter.matches(who, destination))
            .cloned()
            .collect();
        if matching.is_empty() {
            return;
        }
        let mut text = self.redactor.redact(&line()).into_owned();
        text.push('\n');
        let text = Bytes::from(text);
        for subscriber in matching {
            if let Err(mpsc::error::TrySendError::Full(_)) = subscriber.lines.try_send(text.clone())
            {
                subscriber.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn wanted(&self, who: &Who, destination: Option<&str>) -> bool {
        self.subscribers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .any(|s| s.filter.matches(who, destination))
    }

    /// Shows events as received, before they are appended (so that a record or verdict never
    /// comes before its event); returns who they are for [`Tap::not_stored`], `None` when
    /// nobody taps them.
    pub fn received(&self, events: &[Incoming]) -> Option<Vec<Who>> {
        if !self.active() {
            return None;
        }
        let mut tapped = Vec::new();
        for incoming in events {
            let who = Who {
                identity: incoming.identity,
                user: incoming.user.clone(),
                event_name: event_name(&incoming.body),
            };
            if self.wanted(&who, None) {
                self.publish(&who, None, || {
                    let event = raw(&incoming.body);
                    let mut line = Line::new("received", &who, None);
                    line.event = Some(&event);
                    serde_json::to_string(&line).expect("a line serializes")
                });
                tapped.push(who);
            }
        }
        (!tapped.is_empty()).then_some(tapped)
    }

    /// Shows that events shown as received were not stored (the request was answered 503, and
    /// the producer sends them again).
    pub fn not_stored(&self, tapped: Vec<Who>, reason: &dyn std::fmt::Display) {
        let reasons = [reason.to_string()];
        for who in &tapped {
            self.publish(who, None, || {
                let mut line = Line::new("verdict", who, None);
                line.verdict = Some("not_stored");
                line.reasons = &reasons;
                serde_json::to_string(&line).expect("a line serializes")
            });
        }
    }

    /// Shows an event's records for destination `lane` (or why it has none) and remembers who
    /// the event is until its verdict. Called off the async threads, after mapping.
    pub fn mapped(
        &self,
        lane: usize,
        seq: u64,
        body: &str,
        event: Option<&Event>,
        mapped: &Result<Mapped, MappingError>,
    ) {
        if !self.active() {
            return;
        }
        let destination = self.destinations[lane].as_str();
        let who = Who {
            identity: crate::backlog::check_event(body).map_or(0, |c| c.identity),
            user: event.and_then(Event::user_key),
            event_name: event.and_then(|e| e.event_name().map(str::to_owned)),
        };
        if !self.wanted(&who, Some(destination)) {
            return;
        }
        if let Ok(Mapped {
            outcome: Outcome::Records(records),
            notes,
        }) = mapped
        {
            let notes: Vec<String> = notes.iter().map(ToString::to_string).collect();
            for record in records {
                self.publish(&who, Some(destination), || {
                    let record = raw(&String::from_utf8_lossy(&record.payload));
                    let mut line = Line::new("record", &who, Some(destination));
                    line.record = Some(&record);
                    line.notes = notes.clone();
                    serde_json::to_string(&line).expect("a line serializes")
                });
            }
        }
        self.delivering
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert((lane, seq), Arc::new(who));
    }

    /// Shows the records that will be tried again, with the reason.
    pub fn retried(&self, retried: &[Retried]) {
        if !self.active() || retried.is_empty() {
            return;
        }
        for one in retried {
            let who = self
                .delivering
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(&(one.lane, one.key))
                .cloned();
            if let Some(who) = who {
                let destination = self.destinations[one.lane].as_str();
                self.publish(&who, Some(destination), || {
                    let reasons = [one.reason.clone()];
                    let mut line = Line::new("verdict", &who, Some(destination));
                    line.verdict = Some("retried");
                    line.reasons = &reasons;
                    serde_json::to_string(&line).expect("a line serializes")
                });
            }
        }
    }

    /// Shows how an event ended for a destination.
    pub fn resolved(&self, resolved: &Resolved) {
        if !self.active() {
            return;
        }
        let who = self
            .delivering
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&(resolved.lane, resolved.key));
        if let Some(who) = who {
            let destination = self.destinations[resolved.lane].as_str();
            self.publish(&who, Some(destination), || {
                let mut line = Line::new("verdict", &who, Some(destination));
                line.verdict = Some(resolved.ending.as_str());
                line.reasons = &resolved.reasons;
                line.notes = resolved.notes.iter().map(ToString::to_string).collect();
                serde_json::to_string(&line).expect("a line serializes")
            });
        }
    }

    /// Adds a tap, or says why not (the service cannot take it now).
    fn subscribe(self: &Arc<Self>, filter: Filter) -> Result<Streaming, String> {
        let mut subscribers = self.subscribers.lock().unwrap_or_else(|e| e.into_inner());
        if self.closed.load(Ordering::Relaxed) {
            return Err("the service is stopping".to_owned());
        }
        if subscribers.len() >= self.max_clients {
            return Err(format!(
                "{} taps are connected, the most `server.tap.max_clients` allows; try again when one has left",
                subscribers.len()
            ));
        }
        let hello = json!({
            "type": "tapping",
            "time": now(),
            "destinations": if filter.destinations.is_empty() { &self.destinations } else { &filter.destinations },
            "event_names": filter.event_names,
            "users": filter.users,
            "sample": filter.sample,
            "buffer_messages": self.buffer,
        });
        let mut hello = self.redactor.redact(&hello.to_string()).into_owned();
        hello.push('\n');
        let (lines, receiver) = mpsc::channel(self.buffer);
        let subscriber = Arc::new(Subscriber {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            filter,
            lines,
            dropped: Arc::new(AtomicU64::new(0)),
        });
        if subscribers.is_empty() {
            self.forget_delivering();
        }
        subscribers.push(Arc::clone(&subscriber));
        self.connected.fetch_add(1, Ordering::Relaxed);
        tracing::info!(
            tap = subscriber.id,
            taps = subscribers.len(),
            "A tap connected."
        );
        Ok(Streaming {
            hello: Some(Bytes::from(hello)),
            held: None,
            receiver,
            dropped: Arc::clone(&subscriber.dropped),
            _leaving: Leaving {
                tap: Arc::clone(self),
                id: subscriber.id,
            },
        })
    }

    fn forget_delivering(&self) {
        self.delivering
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// Ends every tap and refuses new ones (the service is stopping).
    pub fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
        // Dropping the senders ends each stream once its buffer is read.
        self.subscribers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}

/// The event name of JSON text, read only as far as needed.
fn event_name(body: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Probe {
        #[serde(default)]
        event_name: Option<serde_json::Value>,
    }
    serde_json::from_str::<Probe>(body)
        .ok()?
        .event_name
        .and_then(|v| v.as_str().map(str::to_owned))
}

/// Removes a tap when its response ends (the client left, or the service stops).
struct Leaving {
    tap: Arc<Tap>,
    id: u64,
}

impl Drop for Leaving {
    fn drop(&mut self) {
        let mut subscribers = self
            .tap
            .subscribers
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        subscribers.retain(|s| s.id != self.id);
        if self.tap.connected.fetch_sub(1, Ordering::Relaxed) == 1 {
            self.tap.forget_delivering();
        }
        tracing::info!(tap = self.id, "A tap left.");
    }
}

/// A tap's response body as it is produced.
struct Streaming {
    hello: Option<Bytes>,
    /// A line held back while the client is told what was dropped before it.
    held: Option<Bytes>,
    receiver: mpsc::Receiver<Bytes>,
    /// Its subscriber's count of dropped lines (not the subscriber itself, whose sender would
    /// keep the stream open after the tap is closed).
    dropped: Arc<AtomicU64>,
    _leaving: Leaving,
}

impl Streaming {
    /// The next chunk: a line, a `dropped` notice, or a blank keep-alive line; `None` once the
    /// tap is closed.
    async fn next(&mut self) -> Option<Bytes> {
        if let Some(line) = self.hello.take().or_else(|| self.held.take()) {
            return Some(line);
        }
        let line = tokio::time::timeout(KEEPALIVE, self.receiver.recv()).await;
        let dropped = self.dropped.swap(0, Ordering::Relaxed);
        let line = match line {
            Ok(None) => return None,
            Ok(Some(line)) => Some(line),
            Err(_) => None,
        };
        if dropped > 0 {
            self.held = line;
            let notice = json!({"type": "dropped", "time": now(), "count": dropped});
            return Some(Bytes::from(notice.to_string() + "\n"));
        }
        Some(line.unwrap_or_else(|| Bytes::from_static(b"\n")))
    }

    fn into_body(self) -> Body {
        Body::from_stream(futures_util::stream::unfold(self, |mut streaming| async {
            let chunk = streaming.next().await?;
            Some((Ok::<_, Infallible>(chunk), streaming))
        }))
    }
}

fn refusal(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({"error": message}))).into_response()
}

/// The handler of `GET /v1/tap`.
async fn tap(
    State(tap): State<Arc<Tap>>,
    headers: HeaderMap,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    if !super::ingest::authorized(&tap.tokens, &headers) {
        let mut response = refusal(
            StatusCode::UNAUTHORIZED,
            "a tap token is required (`Authorization: Bearer <token>`, one of `server.tap.auth_tokens`)",
        );
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return response;
    }
    let filter = match Filter::from_query(query, &tap.destinations) {
        Ok(filter) => filter,
        Err(message) => return refusal(StatusCode::BAD_REQUEST, &message),
    };
    match tap.subscribe(filter) {
        Ok(streaming) => {
            let mut response = streaming.into_body().into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/x-ndjson"),
            );
            response
        }
        Err(message) => refusal(StatusCode::SERVICE_UNAVAILABLE, &message),
    }
}

/// Opens the tap's listener when the configuration enables it and serves taps until `stop`
/// turns true; the task ends once every tap is closed.
pub async fn listen(
    tap: &Arc<Tap>,
    config: Option<&TapConfig>,
    stop: tokio_util::sync::CancellationToken,
) -> Result<Option<tokio::task::JoinHandle<()>>, String> {
    let Some(config) = config.filter(|c| c.enabled) else {
        return Ok(None);
    };
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .map_err(|e| format!("the tap cannot listen on {}: {e}", config.listen))?;
    let address = listener
        .local_addr()
        .map_err(|e| format!("the tap cannot listen on {}: {e}", config.listen))?;
    if !address.ip().is_loopback() {
        tracing::warn!(%address, "The tap listens beyond this machine: whoever holds a tap token sees events as they arrive.");
    }
    tracing::info!(%address, "Listening for taps.");
    let router = Router::new()
        .route("/v1/tap", get(self::tap))
        .with_state(Arc::clone(tap));
    let closing = Arc::clone(tap);
    let closed = stop.clone();
    tokio::spawn(async move {
        closed.cancelled().await;
        closing.close();
    });
    // The same hold as ingestion's server: a request head within a deadline, and a bound on
    // connections (taps beyond `max_clients` are answered and closed; these are the rest).
    let limits = super::http::Limits {
        header_read_timeout: TAP_HEADER_TIMEOUT,
        max_connections: config.max_clients + TAP_SPARE_CONNECTIONS,
    };
    Ok(Some(tokio::spawn(super::http::serve(
        listener, router, limits, stop,
    ))))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use hardal_core::{Mapped, Outcome, Record};

    use super::{Filter, Tap, Who, sampled};
    use crate::backlog::Incoming;
    use crate::config::TapConfig;
    use crate::redact::Redactor;

    fn config(buffer: usize) -> TapConfig {
        serde_json::from_value(serde_json::json!({
            "auth_tokens": ["tap-token"], "buffer_messages": buffer
        }))
        .unwrap()
    }

    fn incoming(body: &str) -> Incoming {
        let checked = crate::backlog::check_event(body).unwrap();
        Incoming {
            body: body.to_owned(),
            identity: checked.identity,
            user: checked.user,
        }
    }

    fn everything() -> Filter {
        Filter {
            sample: 1.0,
            ..Filter::default()
        }
    }

    #[test]
    fn nothing_is_built_while_nobody_taps() {
        let tap = Tap::new(Some(&config(16)), vec!["a".into()], Redactor::default());
        assert!(!tap.active());
        assert!(tap.received(&[incoming(r#"{"id":"e1"}"#)]).is_none());
        let who = Who {
            identity: 1,
            user: None,
            event_name: None,
        };
        tap.publish(&who, None, || panic!("a line was built for nobody"));
    }

    #[tokio::test]
    async fn a_slow_tap_loses_lines_counted_and_is_told_how_many() {
        let tap = Arc::new(Tap::new(
            Some(&config(2)),
            vec!["a".into()],
            Redactor::default(),
        ));
        let mut streaming = tap.subscribe(everything()).ok().unwrap();
        assert!(tap.active());
        let hello = streaming.next().await.unwrap();
        assert!(hello.starts_with(b"{\"type\":\"tapping\""));
        let events: Vec<Incoming> = (0..5)
            .map(|i| incoming(&format!(r#"{{"id":"e{i}"}}"#)))
            .collect();
        // Nothing reads while five lines come: two fit, three are dropped, and counted.
        tap.received(&events).unwrap();
        let lines: Vec<serde_json::Value> = [
            streaming.next().await,
            streaming.next().await,
            streaming.next().await,
        ]
        .into_iter()
        .map(|l| serde_json::from_slice(&l.unwrap()).unwrap())
        .collect();
        assert_eq!(lines[0]["type"], "dropped");
        assert_eq!(lines[0]["count"], 3);
        assert_eq!(lines[1]["event"]["id"], "e0");
        assert_eq!(lines[2]["event"]["id"], "e1");
        drop(streaming);
        assert!(!tap.active(), "a tap that left is forgotten");
    }

    #[tokio::test]
    async fn filters_choose_events_and_destinations_on_the_service_side() {
        let tap = Arc::new(Tap::new(
            Some(&config(64)),
            vec!["a".into(), "b".into()],
            Redactor::new(["s3cr3t-value".to_owned()]),
        ));
        let filter = Filter::from_query(
            vec![
                ("destination".into(), "b".into()),
                ("user".into(), "alice".into()),
                ("event_name".into(), "buy".into()),
            ],
            &tap.destinations,
        )
        .unwrap();
        let mut streaming = tap.subscribe(filter).ok().unwrap();
        streaming.next().await.unwrap();
        let bodies = [
            r#"{"id":"1","event_name":"buy","user_id":"alice","note":"s3cr3t-value"}"#,
            r#"{"id":"2","event_name":"buy","user_id":"bob"}"#,
            r#"{"id":"3","event_name":"look","user_id":"alice"}"#,
        ];
        let events: Vec<Incoming> = bodies.iter().map(|b| incoming(b)).collect();
        tap.received(&events).unwrap();
        for (lane, body) in [(0, bodies[0]), (1, bodies[0]), (1, bodies[1])] {
            let event = crate::input::parse_text(body).unwrap();
            let mapped = Ok(Mapped {
                outcome: Outcome::Records(vec![Record::new(br#"{"x":1}"#.to_vec())]),
                notes: Vec::new(),
            });
            tap.mapped(lane, 7, body, Some(&event), &mapped);
        }
        tap.close();
        let mut lines = Vec::new();
        while let Some(line) = streaming.next().await {
            lines.push(serde_json::from_slice::<serde_json::Value>(&line).unwrap());
        }
        let kinds: Vec<(&str, &str)> = lines
            .iter()
            .map(|l| {
                (
                    l["type"].as_str().unwrap(),
                    l["destination"].as_str().unwrap_or("-"),
                )
            })
            .collect();
        assert_eq!(kinds, [("received", "-"), ("record", "b")]);
        assert_eq!(lines[0]["event"]["note"], "[redacted]");
    }

    #[tokio::test]
    async fn taps_beyond_the_limit_and_after_closing_are_refused() {
        let mut limited = config(16);
        limited.max_clients = 1;
        let tap = Arc::new(Tap::new(
            Some(&limited),
            vec!["a".into()],
            Redactor::default(),
        ));
        let first = tap.subscribe(everything()).ok().unwrap();
        let refused = tap.subscribe(everything()).err().unwrap();
        assert!(refused.contains("max_clients"), "{refused}");
        drop(first);
        let mut second = tap.subscribe(everything()).ok().unwrap();
        tap.close();
        assert!(tap.subscribe(everything()).is_err());
        second.next().await.unwrap();
        assert!(second.next().await.is_none(), "a closed tap's stream ends");
    }

    #[tokio::test]
    async fn an_event_the_backlog_refused_is_shown_as_not_stored() {
        let tap = Arc::new(Tap::new(
            Some(&config(16)),
            vec!["a".into()],
            Redactor::default(),
        ));
        let mut streaming = tap.subscribe(everything()).ok().unwrap();
        streaming.next().await.unwrap();
        let tapped = tap.received(&[incoming(r#"{"id":"e1"}"#)]).unwrap();
        tap.not_stored(tapped, &"the backlog is full");
        let received: serde_json::Value =
            serde_json::from_slice(&streaming.next().await.unwrap()).unwrap();
        let refused: serde_json::Value =
            serde_json::from_slice(&streaming.next().await.unwrap()).unwrap();
        assert_eq!(received["type"], "received");
        assert_eq!(refused["verdict"], "not_stored");
        assert_eq!(refused["reasons"][0], "the backlog is full");
        assert_eq!(refused["event_id"], received["event_id"]);
    }

    #[test]
    fn bad_queries_are_refused_with_the_reason() {
        let known = vec!["a".to_owned()];
        let refused = |pairs: &[(&str, &str)]| {
            Filter::from_query(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                &known,
            )
            .unwrap_err()
        };
        assert!(refused(&[("destination", "zz")]).contains("the destinations are: a"));
        assert!(refused(&[("sample", "0")]).contains("above 0"));
        assert!(refused(&[("sample", "1.5")]).contains("at most 1"));
        assert!(refused(&[("colour", "red")]).contains("unknown parameter `colour`"));
    }

    #[test]
    fn a_sample_takes_about_its_share_and_always_the_same_events() {
        let share = (0..10_000u64)
            .filter(|i| sampled(xxhash_rust::xxh3::xxh3_64(&i.to_le_bytes()), 0.1))
            .count();
        assert!((800..1200).contains(&share), "{share} of 10000");
        assert!(sampled(u64::MAX, 1.0));
    }
}
