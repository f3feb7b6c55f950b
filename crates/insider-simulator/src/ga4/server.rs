//! The HTTP side of the GA4 stand-in: `/mp/collect`, `/debug/mp/collect`, the control API and the
//! state behind them.
//!
//! `/mp/collect` answers 204 like GA4, also to payloads GA4 would drop, and records the validation
//! messages GA4's validation server would give. Two things it refuses with 400 instead, which GA4
//! does not do: a body with more than one `client_id` and more than 25 events. They are batching
//! bugs of the sender, and a test should fail on them rather than find them in a log.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::faults::{Fault, FaultBook};
use crate::ga4::rules::{self, ValidationMessage};
use crate::listener::Cutter;
use crate::server::{fault_response, json_response};

/// The collect path.
pub const COLLECT_PATH: &str = "/mp/collect";
/// The validation server's path.
pub const DEBUG_PATH: &str = "/debug/mp/collect";
/// GA4 takes bodies under 130 kB; what is larger is read only this far.
const MAX_BODY: usize = 1024 * 1024;

/// One request as the stand-in saw it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Ga4Request {
    pub number: u64,
    /// `true` for `/debug/mp/collect`.
    pub debug: bool,
    pub status: u16,
    pub client_id: Option<String>,
    pub events: usize,
    pub body_bytes: usize,
    pub fault: Option<String>,
    /// Why the request was refused or ignored (wrong credentials, a batching bug).
    pub refused: Option<String>,
    /// What GA4's validation server would say about the payload.
    pub validation_messages: Vec<ValidationMessage>,
}

/// One event `/mp/collect` took, with its request's user fields.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Ga4Event {
    pub request: u64,
    pub client_id: String,
    pub user_id: Option<String>,
    pub name: String,
    pub params: Value,
    pub timestamp_micros: Option<u64>,
    pub user_properties: Option<Value>,
    pub consent: Option<Value>,
}

#[derive(Debug, Default)]
struct Books {
    requests: Vec<Ga4Request>,
    events: Vec<Ga4Event>,
}

/// State shared by every request of one stand-in.
#[derive(Debug)]
pub struct Ga4Shared {
    measurement_id: String,
    api_secret: String,
    books: Mutex<Books>,
    faults: Mutex<FaultBook>,
    last_request: AtomicU64,
}

impl Ga4Shared {
    pub fn new(measurement_id: String, api_secret: String) -> Ga4Shared {
        Ga4Shared {
            measurement_id,
            api_secret,
            books: Mutex::new(Books::default()),
            faults: Mutex::new(FaultBook::default()),
            last_request: AtomicU64::new(0),
        }
    }

    // A panic elsewhere while holding a lock must not take every later test down with it.
    fn books(&self) -> MutexGuard<'_, Books> {
        self.books.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn faults(&self) -> MutexGuard<'_, FaultBook> {
        self.faults.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn requests(&self) -> Vec<Ga4Request> {
        self.books().requests.clone()
    }

    pub fn events(&self) -> Vec<Ga4Event> {
        self.books().events.clone()
    }

    pub fn reset(&self) {
        self.faults().clear();
        *self.books() = Books::default();
        self.last_request.store(0, Ordering::Relaxed);
    }
}

pub fn router(shared: Arc<Ga4Shared>) -> Router {
    Router::new()
        .route(COLLECT_PATH, post(collect))
        .route(DEBUG_PATH, post(debug))
        .route("/_simulator/requests", get(requests))
        .route("/_simulator/events", get(events))
        .route("/_simulator/faults", post(inject).delete(clear))
        .route("/_simulator/reset", post(reset))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(shared)
}

/// A JSON object read with every member, duplicates included (serde_json keeps the last).
struct Members(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for Members {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Members;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Members, A::Error> {
                let mut members = Vec::new();
                while let Some(entry) = map.next_entry::<String, Value>()? {
                    members.push(entry);
                }
                Ok(Members(members))
            }
        }
        deserializer.deserialize_map(Visitor)
    }
}

/// What reading a payload gave: the body as an object, or why it is refused outright.
enum Payload {
    Body(Map<String, Value>),
    /// Not a JSON object: GA4 answers 2xx and drops it; the validation server says why.
    Unreadable(String),
    /// A batching bug of the sender (see the module's documentation).
    Refused(String),
}

fn read(bytes: &[u8]) -> Payload {
    let members: Members = match serde_json::from_slice(bytes) {
        Ok(members) => members,
        Err(error) => {
            return Payload::Unreadable(format!("the body is not a JSON object: {error}"));
        }
    };
    let client_ids = members.0.iter().filter(|(k, _)| k == "client_id").count();
    if client_ids > 1 {
        return Payload::Refused(format!("{client_ids} client_id members in one request"));
    }
    let body: Map<String, Value> = members.0.into_iter().collect();
    if let Some(Value::Array(events)) = body.get("events")
        && events.len() > 25
    {
        return Payload::Refused(format!(
            "{} events in one request; GA4 takes 25",
            events.len()
        ));
    }
    Payload::Body(body)
}

async fn collect(
    State(shared): State<Arc<Ga4Shared>>,
    ConnectInfo(cutter): ConnectInfo<Cutter>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Response {
    let number = shared.last_request.fetch_add(1, Ordering::Relaxed) + 1;
    let fault = shared.faults().next_fault();
    let mut log = Ga4Request {
        number,
        debug: false,
        status: 204,
        client_id: None,
        events: 0,
        body_bytes: bytes.len(),
        fault: fault.as_ref().map(|f| f.name().to_owned()),
        refused: None,
        validation_messages: Vec::new(),
    };
    match fault {
        Some(Fault::Drop) => {
            // Logged before the cut, so whoever sees the connection close also sees the log.
            shared.books().requests.push(log);
            cutter.cut();
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
        Some(Fault::Slow { delay }) => tokio::time::sleep(delay).await,
        Some(Fault::Hold) => {
            let holds = shared.faults().holds();
            holds.wait().await;
        }
        Some(other) => {
            let response = fault_response(other, &headers);
            log.status = response.status().as_u16();
            shared.books().requests.push(log);
            return response;
        }
        None => {}
    }
    let credentials = query.get("measurement_id") == Some(&shared.measurement_id)
        && query.get("api_secret") == Some(&shared.api_secret);
    let body = match read(&bytes) {
        Payload::Body(body) => body,
        Payload::Unreadable(why) => {
            log.refused = Some(why);
            shared.books().requests.push(log);
            return StatusCode::NO_CONTENT.into_response();
        }
        Payload::Refused(why) => {
            log.status = 400;
            log.refused = Some(why.clone());
            shared.books().requests.push(log);
            return json_response(StatusCode::BAD_REQUEST, json!({ "error": why }).to_string());
        }
    };
    log.client_id = body
        .get("client_id")
        .and_then(Value::as_str)
        .map(str::to_owned);
    log.validation_messages = rules::validate(&body, SystemTime::now());
    let events = body.get("events").and_then(Value::as_array);
    log.events = events.map_or(0, Vec::len);
    if !credentials {
        // GA4 answers 2xx to a wrong secret too and keeps nothing.
        log.refused = Some("unknown measurement_id or api_secret".into());
        shared.books().requests.push(log);
        return StatusCode::NO_CONTENT.into_response();
    }
    let mut books = shared.books();
    if let (Some(events), Some(client_id)) = (events, &log.client_id) {
        for event in events {
            books.events.push(Ga4Event {
                request: number,
                client_id: client_id.clone(),
                user_id: body
                    .get("user_id")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                name: event
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned(),
                params: event.get("params").cloned().unwrap_or(Value::Null),
                timestamp_micros: event.get("timestamp_micros").and_then(Value::as_u64),
                user_properties: body.get("user_properties").cloned(),
                consent: body.get("consent").cloned(),
            });
        }
    }
    books.requests.push(log);
    StatusCode::NO_CONTENT.into_response()
}

/// The validation server: the messages, and nothing kept.
async fn debug(State(shared): State<Arc<Ga4Shared>>, bytes: Bytes) -> Response {
    let number = shared.last_request.fetch_add(1, Ordering::Relaxed) + 1;
    let messages = match read(&bytes) {
        Payload::Body(body) => rules::validate(&body, SystemTime::now()),
        Payload::Unreadable(why) | Payload::Refused(why) => vec![ValidationMessage {
            field_path: String::new(),
            description: why,
            validation_code: "VALUE_INVALID".into(),
        }],
    };
    let answer = json!({ "validationMessages": messages }).to_string();
    shared.books().requests.push(Ga4Request {
        number,
        debug: true,
        status: 200,
        client_id: None,
        events: 0,
        body_bytes: bytes.len(),
        fault: None,
        refused: None,
        validation_messages: messages,
    });
    json_response(StatusCode::OK, answer)
}

async fn requests(State(shared): State<Arc<Ga4Shared>>) -> Response {
    json_response(StatusCode::OK, json!(shared.requests()).to_string())
}

async fn events(State(shared): State<Arc<Ga4Shared>>) -> Response {
    json_response(StatusCode::OK, json!(shared.events()).to_string())
}

async fn inject(State(shared): State<Arc<Ga4Shared>>, body: Bytes) -> Response {
    let refuse = |message: String| {
        json_response(
            StatusCode::BAD_REQUEST,
            json!({ "error": message }).to_string(),
        )
    };
    let (fault, scope, endpoints) = match crate::control::parse_fault(&body) {
        Ok(parsed) => parsed,
        Err(message) => return refuse(message),
    };
    match shared.faults().inject_at(fault, scope, &endpoints) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(error) => refuse(error.to_string()),
    }
}

async fn clear(State(shared): State<Arc<Ga4Shared>>) -> StatusCode {
    shared.faults().clear();
    StatusCode::NO_CONTENT
}

async fn reset(State(shared): State<Arc<Ga4Shared>>) -> StatusCode {
    shared.reset();
    StatusCode::NO_CONTENT
}
