//! Insider's erasure endpoints: Delete User Profile (`POST /api/user/v1/delete`) and Delete
//! User's PII Data (`POST /api/user/v1/anonymize`), with their documented answers
//! (docs/reference/insider-erasure.md): 200 `{}`; 403 for credentials; 404 `no such user` from
//! anonymize; 429 beyond their own rate limits (10,000 and 500 a minute); the shared faults.
//! An answered request makes the simulator forget the user (see `Record::forget`).
//!
//! A request goes: read the body, ask the fault book (for this endpoint), then credentials, the
//! rate limit, the body (one user's `identifiers`), and the forgetting.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::batch;
use crate::config::ErasureLimits;
use crate::faults::{Endpoint, Fault};
use crate::listener::Cutter;
use crate::record::ErasureLog;
use crate::server::{ReadBody, Shared, authorized, fault_response, json_response, read_body};

/// The path of Insider's Delete User Profile API.
pub const DELETE_PATH: &str = "/api/user/v1/delete";
/// The path of Insider's Delete User's PII Data API (by identifier).
pub const ANONYMIZE_PATH: &str = "/api/user/v1/anonymize";

/// What Insider answers a wrong partner name or token here (documented for delete).
const ACCESS_DENIED: &str = r#"{"success":false,"message":"Access Denied. You do not have sufficient access to perform this action."}"#;
/// What anonymize answers identifiers it has no user for.
const NO_SUCH_USER: &str = r#"{"error":"no such user for these identifiers: no data"}"#;

/// The requests each erasure endpoint took in the last minute.
#[derive(Debug)]
pub struct ErasureRates {
    limits: ErasureLimits,
    delete: VecDeque<Instant>,
    anonymize: VecDeque<Instant>,
}

impl ErasureRates {
    pub fn new(limits: ErasureLimits) -> ErasureRates {
        ErasureRates {
            limits,
            delete: VecDeque::new(),
            anonymize: VecDeque::new(),
        }
    }

    /// Whether `endpoint` takes one more request at `now` (a sliding minute); a taken request
    /// counts, a refused one does not.
    pub fn admit(&mut self, endpoint: Endpoint, now: Instant) -> bool {
        let (window, limit) = match endpoint {
            Endpoint::Anonymize => (&mut self.anonymize, self.limits.anonymize_per_minute),
            _ => (&mut self.delete, self.limits.delete_per_minute),
        };
        while window
            .front()
            .is_some_and(|at| now.duration_since(*at) >= Duration::from_secs(60))
        {
            window.pop_front();
        }
        if window.len() >= limit as usize {
            return false;
        }
        window.push_back(now);
        true
    }

    pub fn reset(&mut self) {
        *self = ErasureRates::new(self.limits);
    }
}

pub(crate) async fn delete(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(cutter): ConnectInfo<Cutter>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    erase(Endpoint::Delete, shared, cutter, headers, body).await
}

pub(crate) async fn anonymize(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(cutter): ConnectInfo<Cutter>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    erase(Endpoint::Anonymize, shared, cutter, headers, body).await
}

async fn erase(
    endpoint: Endpoint,
    shared: Arc<Shared>,
    cutter: Cutter,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let number = shared.last_erasure.fetch_add(1, Ordering::Relaxed) + 1;
    let received_at = SystemTime::now();
    let read = read_body(body).await;
    let fault = shared.faults().next_fault_at(endpoint);
    let log = ErasureLog {
        number,
        endpoint: endpoint.as_str(),
        received_at,
        status: None,
        by: Vec::new(),
        found: None,
        fault: fault.as_ref().map(Fault::name),
    };
    let finish = |mut log: ErasureLog, response: Response| {
        log.status = Some(response.status().as_u16());
        shared.record().add_erasure(log);
        response
    };
    match fault {
        Some(Fault::Drop) => {
            shared.record().add_erasure(log);
            cutter.cut();
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
        Some(Fault::Slow { delay }) => tokio::time::sleep(delay).await,
        Some(Fault::Hold) => {
            let holds = shared.faults().holds();
            holds.wait().await;
        }
        Some(other) => return finish(log, fault_response(other, &headers)),
        None => {}
    }
    if !authorized(&shared, &headers) {
        return finish(
            log,
            json_response(StatusCode::FORBIDDEN, ACCESS_DENIED.to_owned()),
        );
    }
    if !shared.erasure_rates().admit(endpoint, Instant::now()) {
        return finish(
            log,
            json_response(
                StatusCode::TOO_MANY_REQUESTS,
                json!({"error": "rejected: too many requests"}).to_string(),
            ),
        );
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let bytes = match read {
        Ok(ReadBody::Complete(bytes)) if batch::is_json_content_type(content_type) => bytes,
        Ok(ReadBody::Complete(_)) => {
            return finish(log, bad_request("content type must be application/json"));
        }
        Ok(ReadBody::TooLarge(seen)) => {
            return finish(
                log,
                bad_request(&format!("request of {seen} bytes is over 5 MB")),
            );
        }
        Err(_) => return finish(log, bad_request("identifiers must be defined")),
    };
    let pairs = match identifiers(&bytes) {
        Ok(pairs) => pairs,
        Err(message) => return finish(log, bad_request(&message)),
    };
    let mut log = log;
    log.by = pairs.iter().map(|(field, _)| field.clone()).collect();
    let found = shared
        .record()
        .forget(&pairs, endpoint == Endpoint::Anonymize);
    log.found = Some(found);
    if endpoint == Endpoint::Anonymize && !found {
        return finish(
            log,
            json_response(StatusCode::NOT_FOUND, NO_SUCH_USER.to_owned()),
        );
    }
    finish(log, json_response(StatusCode::OK, "{}".to_owned()))
}

fn bad_request(message: &str) -> Response {
    json_response(
        StatusCode::BAD_REQUEST,
        json!({ "error": format!("{message}: bad request") }).to_string(),
    )
}

/// The `(field, value)` pairs of a body `{"identifiers": {...}}` (one user: `email`,
/// `phone_number` in E.164, `uuid`, `custom: {NAME: VALUE}`), or what is wrong with it.
fn identifiers(bytes: &[u8]) -> Result<Vec<(String, String)>, String> {
    let body: Value = serde_json::from_slice(bytes).map_err(|_| "body is not JSON".to_owned())?;
    let Some(identifiers) = body.get("identifiers").and_then(Value::as_object) else {
        return Err("identifiers must be defined".into());
    };
    let mut pairs = Vec::new();
    for (field, value) in identifiers {
        match (field.as_str(), value) {
            ("email" | "uuid", Value::String(text)) if !text.is_empty() => {
                pairs.push((field.clone(), text.clone()));
            }
            ("phone_number", Value::String(text)) if crate::patterns::is_phone(text) => {
                pairs.push((field.clone(), text.clone()));
            }
            ("custom", Value::Object(custom)) => {
                for (name, value) in custom {
                    match value {
                        Value::String(text) if !text.is_empty() => {
                            pairs.push((format!("custom.{name}"), text.clone()));
                        }
                        _ => return Err(format!("custom identifier {name} must be a string")),
                    }
                }
            }
            ("email" | "uuid" | "phone_number" | "custom", _) => {
                return Err(format!("identifier {field} is invalid"));
            }
            _ => return Err(format!("{field} is not an identifier")),
        }
    }
    if pairs.is_empty() {
        return Err("identifiers must be defined".into());
    }
    Ok(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_limits_hold_over_a_sliding_minute() {
        let start = Instant::now();
        let mut rates = ErasureRates::new(ErasureLimits::default());
        let taken = |rates: &mut ErasureRates, endpoint, at| {
            (0..20_000)
                .take_while(|_| rates.admit(endpoint, at))
                .count()
        };
        assert_eq!(taken(&mut rates, Endpoint::Delete, start), 10_000);
        assert_eq!(taken(&mut rates, Endpoint::Anonymize, start), 500);
        // Still within the minute: nothing more; a minute later, a full allowance again.
        let later = start + Duration::from_secs(59);
        assert!(!rates.admit(Endpoint::Delete, later));
        let minute = start + Duration::from_secs(60);
        assert_eq!(taken(&mut rates, Endpoint::Anonymize, minute), 500);
    }
}
