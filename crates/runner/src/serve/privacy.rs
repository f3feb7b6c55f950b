//! `POST /v1/privacy/erasure` (a user's erasure request: `{"user_id", "email", "phone",
//! "custom"}`, answered 202 with the job once it is recorded and the user suppressed) and
//! `GET /v1/privacy/erasure/{id}` (the job's audit record), with their own bearer tokens
//! (`server.privacy_tokens`); without any configured, both answer 404.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::App;
use super::ingest::authorized;
use crate::privacy::request::Who;

/// The largest erasure request body.
const MAX_BODY: usize = 64 * 1024;

fn answer(status: StatusCode, body: serde_json::Value) -> Response {
    (status, axum::Json(body)).into_response()
}

/// Whether the route exists and the caller may use it.
fn check(app: &App, headers: &HeaderMap) -> Result<(), Box<Response>> {
    if app.privacy_tokens.is_empty() {
        return Err(Box::new(answer(
            StatusCode::NOT_FOUND,
            json!({"error": "erasure requests are off: configure `server.privacy_tokens`"}),
        )));
    }
    if !authorized(&app.privacy_tokens, headers) {
        return Err(Box::new(answer(
            StatusCode::UNAUTHORIZED,
            json!({"error": "a valid `Authorization: Bearer <privacy token>` header is required"}),
        )));
    }
    Ok(())
}

pub async fn post_erasure(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(response) = check(&app, &headers) {
        return *response;
    }
    let Some(eraser) = &app.eraser else {
        return answer(
            StatusCode::NOT_IMPLEMENTED,
            json!({"error": "this backlog does not support erasure requests yet"}),
        );
    };
    if app.stop.is_cancelled() {
        return answer(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"error": "the service is stopping; try again shortly"}),
        );
    }
    if body.len() > MAX_BODY {
        return answer(
            StatusCode::PAYLOAD_TOO_LARGE,
            json!({"error": format!("an erasure request is at most {MAX_BODY} bytes")}),
        );
    }
    let who = match std::str::from_utf8(&body)
        .map_err(|_| "the body is not UTF-8".to_owned())
        .and_then(Who::parse)
    {
        Ok(who) => who,
        Err(problem) => return answer(StatusCode::BAD_REQUEST, json!({"error": problem})),
    };
    match eraser.submit(&who).await {
        Ok(record) => answer(StatusCode::ACCEPTED, json!(record)),
        Err(problem) => {
            tracing::error!(%problem, "An erasure request could not be recorded; it was answered 503.");
            answer(StatusCode::SERVICE_UNAVAILABLE, json!({"error": problem}))
        }
    }
}

pub async fn get_erasure(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(response) = check(&app, &headers) {
        return *response;
    }
    match app.backlog.erasures(Some(&id)).await {
        Ok(records) => match records.into_iter().next() {
            Some(record) => answer(StatusCode::OK, json!(record)),
            None => answer(
                StatusCode::NOT_FOUND,
                json!({"error": format!("no erasure job `{id}`")}),
            ),
        },
        Err(error) => answer(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"error": error.to_string()}),
        ),
    }
}
