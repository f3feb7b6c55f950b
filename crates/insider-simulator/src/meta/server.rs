//! The HTTP side of the Meta stand-in: `POST /{version}/{pixel_id}/events?access_token=…`, the
//! state behind it, and the control API (`/_simulator/…`, as the Insider simulator has).
//!
//! A request goes: read the body, ask the fault book, then the token and the pixel, then Meta's
//! rules ([`super::rules`]). The answers have the Graph API's shape: 200
//! `{"events_received", "messages", "fbtrace_id"}`, or 400 `{"error": {"message", "type",
//! "code", "error_subcode", "error_user_title", "error_user_msg", "fbtrace_id"}}`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::record::{AcceptedServerEvent, MetaRecord, MetaRequestLog};
use super::rules;
use crate::control::FaultRequest;
use crate::faults::{Fault, FaultBook};
use crate::listener::Cutter;
use crate::server::{ReadBody, fault_response, json_response, read_body};

/// State shared by every request of one stand-in.
#[derive(Debug)]
pub struct MetaShared {
    pub(crate) pixel_id: String,
    pub(crate) access_token: String,
    record: Mutex<MetaRecord>,
    faults: Mutex<FaultBook>,
    last_request: AtomicU64,
}

impl MetaShared {
    pub fn new(pixel_id: String, access_token: String) -> MetaShared {
        MetaShared {
            pixel_id,
            access_token,
            record: Mutex::new(MetaRecord::default()),
            faults: Mutex::new(FaultBook::default()),
            last_request: AtomicU64::new(0),
        }
    }

    /// The record; a poisoned lock is used as it is, so one panicking test does not take the
    /// others down.
    pub fn record(&self) -> MutexGuard<'_, MetaRecord> {
        self.record.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn faults(&self) -> MutexGuard<'_, FaultBook> {
        self.faults.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn reset(&self) {
        self.faults().clear();
        *self.record() = MetaRecord::default();
        self.last_request.store(0, Ordering::Relaxed);
    }
}

/// The events endpoint and the control API.
pub fn router(shared: Arc<MetaShared>) -> Router {
    Router::new()
        .route("/{version}/{pixel}/events", post(events))
        .route("/_simulator/stats", get(stats))
        .route("/_simulator/requests", get(requests))
        .route("/_simulator/accepted", get(accepted))
        .route("/_simulator/faults", post(inject).delete(clear))
        .route("/_simulator/reset", post(reset))
        .layer(DefaultBodyLimit::disable())
        .with_state(shared)
}

/// A Graph API error answer.
fn graph_error(status: StatusCode, error: Value) -> Response {
    json_response(status, json!({ "error": error }).to_string())
}

fn trace_id(number: u64) -> String {
    format!("SIM{number:08}")
}

/// Graph's answer to a token it cannot use.
fn bad_token(number: u64) -> Response {
    graph_error(
        StatusCode::BAD_REQUEST,
        json!({"message": "Invalid OAuth access token - Cannot parse access token",
               "type": "OAuthException", "code": 190, "fbtrace_id": trace_id(number)}),
    )
}

/// Meta's answers to faults: throttling as the Graph API says it (code 4, transient), a revoked
/// token as code 190; the rest as the Insider simulator answers them (they stand for the network
/// and the edge, not for Meta).
fn meta_fault_response(fault: Fault, headers: &HeaderMap, number: u64) -> Response {
    match fault {
        Fault::TooManyRequests { retry_after } => {
            let mut response = graph_error(
                StatusCode::TOO_MANY_REQUESTS,
                json!({"message": "(#4) Application request limit reached", "type": "OAuthException",
                       "code": 4, "is_transient": true, "fbtrace_id": trace_id(number)}),
            );
            if let Some(spec) = retry_after
                && let Ok(value) = HeaderValue::from_str(&spec.header_value(SystemTime::now()))
            {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            response
        }
        Fault::Unauthorized => bad_token(number),
        other => fault_response(other, headers),
    }
}

async fn events(
    State(shared): State<Arc<MetaShared>>,
    ConnectInfo(cutter): ConnectInfo<Cutter>,
    Path((_version, pixel)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let number = shared.last_request.fetch_add(1, Ordering::Relaxed) + 1;
    let read = read_body(body).await;
    let fault = shared.faults().next_fault();
    let mut log = MetaRequestLog {
        number,
        status: None,
        events: None,
        refused_index: None,
        fault: fault.as_ref().map(Fault::name),
        test_event_code: None,
        partner_agent: None,
    };
    let finish = |mut log: MetaRequestLog, response: Response| {
        log.status = Some(response.status().as_u16());
        shared.record().add(log, Vec::new());
        response
    };
    match fault {
        Some(Fault::Drop) => {
            shared.record().add(log, Vec::new());
            cutter.cut();
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
        Some(Fault::Slow { delay }) => tokio::time::sleep(delay).await,
        Some(Fault::Hold) => {
            let holds = shared.faults().holds();
            holds.wait().await;
        }
        Some(other) => return finish(log, meta_fault_response(other, &headers, number)),
        None => {}
    }
    if query.get("access_token") != Some(&shared.access_token) {
        return finish(log, bad_token(number));
    }
    let refuse = |message: String, subcode: Option<u32>, title: &str| {
        let mut error = json!({"message": message, "type": "OAuthException", "code": 100,
                               "fbtrace_id": trace_id(number)});
        if let Some(subcode) = subcode {
            error["error_subcode"] = json!(subcode);
            error["is_transient"] = json!(false);
            error["error_user_title"] = json!(title);
            error["error_user_msg"] = json!(error["message"].clone());
            error["message"] = json!("Invalid parameter");
        }
        graph_error(StatusCode::BAD_REQUEST, error)
    };
    if pixel != shared.pixel_id {
        let message = format!(
            "Unsupported post request. Object with ID '{pixel}' does not exist, cannot be loaded due to missing permissions, or does not support this operation."
        );
        return finish(log, refuse(message, Some(33), "Unknown Object"));
    }
    let bytes = match read {
        Ok(ReadBody::Complete(bytes)) => bytes,
        Ok(ReadBody::TooLarge(seen)) => {
            return finish(
                log,
                refuse(
                    format!("the request body is {seen} bytes, too large"),
                    None,
                    "",
                ),
            );
        }
        Err(_) => return finish(log, refuse("the request body was cut off".into(), None, "")),
    };
    let Ok(body) = serde_json::from_slice::<Value>(&bytes) else {
        return finish(log, refuse("the request body is not JSON".into(), None, ""));
    };
    log.test_event_code = body["test_event_code"].as_str().map(str::to_owned);
    log.partner_agent = body["partner_agent"].as_str().map(str::to_owned);
    log.events = body["data"].as_array().map(Vec::len);
    match rules::check_request(&body, SystemTime::now()) {
        Ok(events) => {
            let received = events.len();
            let accepted = events
                .into_iter()
                .enumerate()
                .map(|(index, event)| AcceptedServerEvent {
                    request: number,
                    index,
                    event,
                })
                .collect();
            log.status = Some(200);
            shared.record().add(log, accepted);
            json_response(
                StatusCode::OK,
                json!({"events_received": received, "messages": [], "fbtrace_id": trace_id(number)})
                    .to_string(),
            )
        }
        Err(invalid) => {
            log.refused_index = invalid.index;
            finish(
                log,
                refuse(invalid.message, Some(invalid.subcode), invalid.title),
            )
        }
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> Response {
    match serde_json::to_string(value) {
        Ok(body) => json_response(StatusCode::OK, body),
        Err(error) => (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()).into_response(),
    }
}

async fn stats(State(shared): State<Arc<MetaShared>>) -> Response {
    to_json(&shared.record().stats)
}

async fn requests(State(shared): State<Arc<MetaShared>>) -> Response {
    to_json(&shared.record().requests)
}

/// Accepted server events as NDJSON, in the order they were accepted.
async fn accepted(State(shared): State<Arc<MetaShared>>) -> Response {
    let mut body = String::new();
    for accepted in &shared.record().accepted {
        body.push_str(&accepted.event.to_string());
        body.push('\n');
    }
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-ndjson"),
        )],
        body,
    )
        .into_response()
}

async fn inject(State(shared): State<Arc<MetaShared>>, body: axum::body::Bytes) -> Response {
    let refuse = |message: String| {
        json_response(
            StatusCode::BAD_REQUEST,
            json!({ "error": message }).to_string(),
        )
    };
    let request: FaultRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(error) => return refuse(error.to_string()),
    };
    let scope = match request.scope() {
        Ok(scope) => scope,
        Err(message) => return refuse(message),
    };
    match shared
        .faults()
        .inject_at(request.fault, scope, &request.endpoints)
    {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(error) => refuse(error.to_string()),
    }
}

async fn clear(State(shared): State<Arc<MetaShared>>) -> StatusCode {
    shared.faults().clear();
    StatusCode::NO_CONTENT
}

async fn reset(State(shared): State<Arc<MetaShared>>) -> StatusCode {
    shared.reset();
    StatusCode::NO_CONTENT
}
