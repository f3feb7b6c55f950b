//! The control API under `/_simulator/`, for tests and benchmarks that run the simulator binary in
//! another process: statistics, recorded data, fault injection and reset.
//!
//! `POST /_simulator/faults` takes `{"fault": FAULT}` plus at most one scope: `"next": N`, or
//! `"fraction": F` with an optional `"seed": S` (0 by default); with neither, the fault applies to
//! every request until `DELETE /_simulator/faults`. FAULT is one of
//! `{"kind":"too_many_requests","retry_after":{"seconds":2}}` (or `{"http_date":"..."}`,
//! `{"http_date_in_seconds":5}`, or no `retry_after`), `{"kind":"server_error","status":503}`,
//! `{"kind":"slow","delay_ms":250}`, `{"kind":"drop"}`, `{"kind":"unauthorized"}`, `{"kind":"hold"}`
//! (kept open until `POST /_simulator/release`, `DELETE /_simulator/faults` or a reset; `GET
//! /_simulator/held` counts the requests held). `"endpoints": ["upsert", "delete", "anonymize"]`
//! aims a fault at some endpoints (all by default).
//!
//! Erasure: `GET /_simulator/erasures` lists the erasure requests (fields asked by, never values);
//! `GET /_simulator/user?email=…` (or `uuid`, `phone_number`, `insider_id`, `custom.NAME`) says
//! whether the simulator still has a user: `{"found", "users", "events"}`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;

use crate::faults::{Endpoint, Fault, Scope};
use crate::server::Shared;

/// The wire form of a fault injection.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FaultRequest {
    pub(crate) fault: Fault,
    /// The endpoints the fault applies to; all when absent.
    #[serde(default)]
    pub(crate) endpoints: Vec<Endpoint>,
    next: Option<u64>,
    fraction: Option<f64>,
    seed: Option<u64>,
}

impl FaultRequest {
    pub(crate) fn scope(&self) -> Result<Scope, String> {
        match (self.next, self.fraction, self.seed) {
            (Some(_), Some(_), _) => Err("give either next or fraction, not both".into()),
            (Some(n), None, None) => Ok(Scope::Next(n)),
            (None, Some(fraction), seed) => Ok(Scope::Fraction {
                fraction,
                seed: seed.unwrap_or(0),
            }),
            (None, None, None) => Ok(Scope::Always),
            (_, None, Some(_)) => Err("seed only goes with fraction".into()),
        }
    }
}

/// A fault injection's body (the wire form above) read into the fault and its scope; shared with
/// the GA4 stand-in's control API.
pub(crate) fn parse_fault(body: &[u8]) -> Result<(Fault, Scope, Vec<Endpoint>), String> {
    let request: FaultRequest = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let scope = request.scope()?;
    Ok((request.fault, scope, request.endpoints))
}

pub fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/_simulator/stats", get(stats))
        .route("/_simulator/accepted", get(accepted))
        .route("/_simulator/events", get(events))
        .route("/_simulator/requests", get(requests))
        .route("/_simulator/faults", post(inject).delete(clear))
        .route("/_simulator/reset", post(reset))
        .route("/_simulator/release", post(release))
        .route("/_simulator/held", get(held))
        .route("/_simulator/erasures", get(erasures))
        .route("/_simulator/user", get(user))
}

fn json_ok(body: String) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

fn to_json<T: serde::Serialize>(value: &T) -> Response {
    match serde_json::to_string(value) {
        Ok(body) => json_ok(body),
        Err(error) => (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()).into_response(),
    }
}

async fn stats(State(shared): State<Arc<Shared>>) -> Response {
    to_json(&shared.record().stats())
}

/// Accepted user objects as NDJSON, one object per line, in the order they were accepted.
async fn accepted(State(shared): State<Arc<Shared>>) -> Response {
    let users = shared.record().users();
    let mut body = String::new();
    for accepted in users {
        body.push_str(&accepted.user.to_string());
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

async fn events(State(shared): State<Arc<Shared>>) -> Response {
    to_json(&shared.record().events())
}

async fn requests(State(shared): State<Arc<Shared>>) -> Response {
    to_json(&shared.record().requests())
}

async fn inject(State(shared): State<Arc<Shared>>, body: axum::body::Bytes) -> Response {
    let refuse = |message: String| {
        (
            StatusCode::BAD_REQUEST,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            json!({ "error": message }).to_string(),
        )
            .into_response()
    };
    let (fault, scope, endpoints) = match parse_fault(&body) {
        Ok(parsed) => parsed,
        Err(message) => return refuse(message),
    };
    match shared.faults().inject_at(fault, scope, &endpoints) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(error) => refuse(error.to_string()),
    }
}

async fn clear(State(shared): State<Arc<Shared>>) -> StatusCode {
    shared.faults().clear();
    StatusCode::NO_CONTENT
}

async fn reset(State(shared): State<Arc<Shared>>) -> StatusCode {
    shared.reset();
    StatusCode::NO_CONTENT
}

async fn release(State(shared): State<Arc<Shared>>) -> StatusCode {
    shared.faults().holds().release();
    StatusCode::NO_CONTENT
}

async fn held(State(shared): State<Arc<Shared>>) -> Response {
    let held = shared.faults().holds().held();
    to_json(&json!({ "held": held }))
}

async fn erasures(State(shared): State<Arc<Shared>>) -> Response {
    to_json(&shared.record().erasures())
}

/// `?FIELD=VALUE`, exactly one pair.
async fn user(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    let mut pairs = query.iter();
    let (Some((field, value)), None) = (pairs.next(), pairs.next()) else {
        return (
            StatusCode::BAD_REQUEST,
            "give one identifier: ?email=…, ?uuid=…, ?phone_number=…, ?insider_id=… or ?custom.NAME=…",
        )
            .into_response();
    };
    let presence = shared.record().presence(field, value);
    to_json(&json!({
        "found": presence.found(),
        "users": presence.users,
        "events": presence.events,
    }))
}
