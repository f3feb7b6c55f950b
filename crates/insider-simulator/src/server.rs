//! The HTTP side of the simulator: the upsert endpoint, the shared state behind it (and behind the
//! erasure endpoints of `erasure.rs`), and serving.
//!
//! An upsert request goes: read the body (draining oversized ones so the client still gets its 400),
//! ask the fault book, then authentication, content type, the request-level rules, and per-user
//! validation. The answer mirrors Insider's: 200 with per-user failures, 400, 401, or the fault's.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use axum::Router;
use axum::body::{Body, HttpBody};
use axum::extract::{ConnectInfo, DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::json;
use tokio::net::TcpListener;

use crate::batch::{self, BadRequest, MAX_BODY_BYTES};
use crate::config::ErasureLimits;
use crate::control;
use crate::erasure::{self, ErasureRates};
use crate::faults::{Fault, FaultBook};
use crate::listener::{CuttableListener, Cutter};
use crate::record::{PreparedUser, Record, RequestLog};
use crate::rules;

/// The path of Insider's upsert endpoint.
pub const UPSERT_PATH: &str = "/api/user/v1/upsert";

/// Bodies up to this size are read to the end (and discarded past [`MAX_BODY_BYTES`]) so an
/// oversized request is answered 400 rather than cut off mid-upload; beyond it the connection is
/// closed after the 400.
pub(crate) const DRAIN_LIMIT: usize = 64 * 1024 * 1024;

/// State shared by every request of one simulator.
#[derive(Debug)]
pub struct Shared {
    partner_name: String,
    request_token: String,
    record: Mutex<Record>,
    faults: Mutex<FaultBook>,
    /// The number of the last upsert request that arrived.
    last_request: AtomicU64,
    /// The number of the last erasure request that arrived.
    pub(crate) last_erasure: AtomicU64,
    erasure_rates: Mutex<ErasureRates>,
    /// Custom identifiers defined in the account; `None` accepts any.
    custom_identifiers: Option<Vec<String>>,
}

impl Shared {
    pub fn from_config(config: crate::SimulatorConfig) -> Shared {
        Shared::new(
            config.partner_name,
            config.request_token,
            config.record_users,
            config.custom_identifiers,
        )
        .with_erasure_limits(config.erasure_limits)
    }

    /// The same state with other erasure rate limits.
    pub fn with_erasure_limits(self, limits: ErasureLimits) -> Shared {
        Shared {
            erasure_rates: Mutex::new(ErasureRates::new(limits)),
            ..self
        }
    }

    pub fn new(
        partner_name: String,
        request_token: String,
        record_users: bool,
        custom_identifiers: Option<Vec<String>>,
    ) -> Shared {
        Shared {
            custom_identifiers,
            partner_name,
            request_token,
            record: Mutex::new(Record::new(record_users)),
            faults: Mutex::new(FaultBook::default()),
            last_request: AtomicU64::new(0),
            last_erasure: AtomicU64::new(0),
            erasure_rates: Mutex::new(ErasureRates::new(ErasureLimits::default())),
        }
    }

    /// The record; a panic elsewhere while holding the lock must not take every later test down
    /// with it, so a poisoned lock is used as it is.
    pub fn record(&self) -> MutexGuard<'_, Record> {
        self.record.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn faults(&self) -> MutexGuard<'_, FaultBook> {
        self.faults.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn erasure_rates(&self) -> MutexGuard<'_, ErasureRates> {
        self.erasure_rates.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Forgets records, statistics, faults (releasing held requests) and rate windows, and
    /// numbers requests from 1 again.
    pub fn reset(&self) {
        self.faults().clear();
        self.record().reset();
        self.erasure_rates().reset();
        self.last_request.store(0, Ordering::Relaxed);
        self.last_erasure.store(0, Ordering::Relaxed);
    }
}

/// The full router: the upsert and erasure endpoints and the control API.
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route(UPSERT_PATH, post(upsert))
        .route(erasure::DELETE_PATH, post(erasure::delete))
        .route(erasure::ANONYMIZE_PATH, post(erasure::anonymize))
        .merge(control::router())
        // The body is read by hand against Insider's own limit; axum's 2 MB default would turn a
        // legal 5 MB batch into a 413.
        .layer(DefaultBodyLimit::disable())
        .with_state(shared)
}

/// Serves until `shutdown` completes, then lets in-flight requests finish.
pub async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(shared).into_make_service_with_connect_info::<Cutter>();
    axum::serve(CuttableListener::new(listener), app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// What reading a request body gave.
pub(crate) enum ReadBody {
    Complete(Vec<u8>),
    /// Longer than Insider's limit; holds the number of bytes seen.
    TooLarge(usize),
}

pub(crate) async fn read_body(mut body: Body) -> Result<ReadBody, axum::Error> {
    let hint = usize::try_from(body.size_hint().lower()).unwrap_or(usize::MAX);
    let mut bytes = Vec::with_capacity(hint.min(MAX_BODY_BYTES + 1));
    let mut seen = 0usize;
    while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        let Ok(data) = frame?.into_data() else {
            continue;
        };
        seen += data.len();
        if seen <= MAX_BODY_BYTES {
            bytes.extend_from_slice(&data);
        } else {
            // Past the limit the content no longer matters, only its length.
            bytes = Vec::new();
            if seen > DRAIN_LIMIT {
                break;
            }
        }
    }
    Ok(if seen > MAX_BODY_BYTES {
        ReadBody::TooLarge(seen)
    } else {
        ReadBody::Complete(bytes)
    })
}

pub(crate) fn json_response(status: StatusCode, body: String) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

fn error_body(message: &str) -> String {
    json!({ "error": message }).to_string()
}

/// The answer to a fault that replaces the normal one (shared with the GA4 and Meta stand-ins).
pub(crate) fn fault_response(fault: Fault, headers: &HeaderMap) -> Response {
    match fault {
        Fault::Redirect { status, location } => {
            let code = StatusCode::from_u16(status).unwrap_or(StatusCode::FOUND);
            let mut response = (code, "").into_response();
            if let Ok(value) = HeaderValue::from_str(&location) {
                response.headers_mut().insert(header::LOCATION, value);
            }
            response
        }
        Fault::OddAnswer {
            status,
            content_type,
            body,
        } => {
            let code = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            let content_type = HeaderValue::from_str(&content_type)
                .unwrap_or(HeaderValue::from_static("text/html"));
            (code, [(header::CONTENT_TYPE, content_type)], body).into_response()
        }
        Fault::EchoHeaders { status } => {
            let code = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
            let echoed: Vec<String> = headers
                .iter()
                .map(|(name, value)| {
                    format!("{name}: {}", String::from_utf8_lossy(value.as_bytes()))
                })
                .collect();
            let body = format!("bad request; you sent:\n{}", echoed.join("\n"));
            (code, body).into_response()
        }
        Fault::TooManyRequests { retry_after } => {
            let mut response = json_response(
                StatusCode::TOO_MANY_REQUESTS,
                error_body("rejected: too many requests"),
            );
            if let Some(spec) = retry_after
                && let Ok(value) = HeaderValue::from_str(&spec.header_value(SystemTime::now()))
            {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            response
        }
        Fault::ServerError { status } => {
            let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            match status {
                // Cloudflare's edge answers its 52x codes with a short text page, not JSON.
                520..=524 => (
                    code,
                    [(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"))],
                    format!("error code: {status}"),
                )
                    .into_response(),
                _ => json_response(
                    code,
                    error_body(code.canonical_reason().unwrap_or("server error")),
                ),
            }
        }
        Fault::Unauthorized => unauthorized(),
        // Slow, Hold and Drop do not replace the answer; they are handled before this is reached.
        Fault::Slow { .. } | Fault::Hold | Fault::Drop => {
            json_response(StatusCode::INTERNAL_SERVER_ERROR, error_body("unreachable"))
        }
    }
}

fn unauthorized() -> Response {
    json_response(
        StatusCode::UNAUTHORIZED,
        error_body("unauthorized: invalid partner name or request token"),
    )
}

fn bad_request(reason: &BadRequest) -> Response {
    json_response(StatusCode::BAD_REQUEST, error_body(&reason.to_string()))
}

/// Compares credentials; the simulator does not need constant-time comparison, since it never
/// guards anything real.
pub(crate) fn authorized(shared: &Shared, headers: &HeaderMap) -> bool {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    header("x-partner-name") == Some(shared.partner_name.as_str())
        && header("x-request-token") == Some(shared.request_token.as_str())
}

async fn upsert(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(cutter): ConnectInfo<Cutter>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let number = shared.last_request.fetch_add(1, Ordering::Relaxed) + 1;
    let received_at = SystemTime::now();
    let read = read_body(body).await;
    let body_bytes = match &read {
        Ok(ReadBody::Complete(bytes)) => bytes.len(),
        Ok(ReadBody::TooLarge(seen)) => *seen,
        Err(_) => 0,
    };
    let fault = shared.faults().next_fault();
    let mut log = RequestLog {
        number,
        received_at,
        status: None,
        users: None,
        users_accepted: 0,
        users_failed: 0,
        body_bytes,
        fault: fault.as_ref().map(Fault::name),
    };
    let finish = |mut log: RequestLog, response: Response| {
        log.status = Some(response.status().as_u16());
        shared.record().add(log, Vec::new(), 0, 0);
        response
    };
    match fault {
        Some(Fault::Drop) => {
            // Logged before the cut, so whoever sees the connection close also sees the log.
            shared.record().add(log, Vec::new(), 0, 0);
            cutter.cut();
            // Nothing reaches the client any more; hyper fails to write this and closes.
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
        return finish(log, unauthorized());
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !batch::is_json_content_type(content_type) {
        return finish(log, bad_request(&BadRequest::NotJson));
    }
    let bytes = match read {
        Ok(ReadBody::Complete(bytes)) => bytes,
        Ok(ReadBody::TooLarge(seen)) => {
            return finish(log, bad_request(&BadRequest::TooLarge(seen)));
        }
        // The client stopped sending mid-body; it will not read this, but the log shows it.
        Err(_) => return finish(log, bad_request(&BadRequest::UsersUndefined)),
    };
    let users = match batch::parse_users(&bytes) {
        Ok(users) => users,
        Err(reason) => return finish(log, bad_request(&reason)),
    };
    log.users = Some(users.len());

    let recording = shared.record().recording();
    let mut accepted = Vec::new();
    let mut accepted_count = 0usize;
    let mut events_received = 0u64;
    // Sorted by key, as Insider's (Go) encoder writes a map, so responses match its byte order.
    let mut errors: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (index, user) in users.iter().enumerate() {
        let mut violations = rules::validate_user(user);
        violations.extend(undefined_custom_identifiers(
            user,
            shared.custom_identifiers.as_deref(),
        ));
        if violations.is_empty() {
            accepted_count += 1;
            let (prepared, events) = PreparedUser::new(index, user, recording);
            events_received += events;
            accepted.extend(prepared);
            continue;
        }
        log.users_failed += 1;
        for violation in violations {
            let key = format!("users.{index}.{}", violation.path);
            // Several broken rules can share a key (two missing parameters of one event); the
            // key then lists every message, as Insider's arrays of messages allow.
            errors.entry(key).or_default().push(violation.message);
        }
    }
    log.users_accepted = accepted_count;
    let fail = if errors.is_empty() {
        json!({})
    } else {
        json!({ "count": log.users_failed, "errors": errors })
    };
    let body = json!({ "data": { "successful": { "count": accepted_count }, "fail": fail } });
    let response = json_response(StatusCode::OK, body.to_string());
    log.status = Some(200);
    shared
        .record()
        .add(log, accepted, accepted_count, events_received);
    response
}

/// Insider rejects custom identifiers that the account does not define.
fn undefined_custom_identifiers(
    user: &crate::Lite<'_>,
    defined: Option<&[String]>,
) -> Vec<rules::Violation> {
    let Some(defined) = defined else {
        return Vec::new();
    };
    let custom = user
        .get("identifiers")
        .and_then(|i| i.get("custom"))
        .and_then(|c| c.as_object());
    custom
        .into_iter()
        .flatten()
        .filter(|(name, _)| !defined.iter().any(|d| d == name.as_ref()))
        .map(|(name, _)| rules::Violation {
            path: format!("identifiers.custom.{name}.defined"),
            message: format!("custom identifier {name} is not defined for this partner"),
        })
        .collect()
}
