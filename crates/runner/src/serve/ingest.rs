//! `POST /v1/events`: one JSON event, a JSON array of events, or NDJSON
//! (`application/x-ndjson`), optionally gzip-compressed (every member of it), a UTF-8 byte order
//! mark allowed at the start; bearer tokens (the scheme in any case) compared in constant time.
//! Inflating and checking run off the async threads.
//!
//! A request is all or nothing: if any event is bad (not JSON as delivery reads it — the same
//! parser, so nesting too deep or a lone surrogate is refused here —, not an object, too large) the
//! answer is 400 naming each bad event and nothing is stored; otherwise the events are appended
//! to the backlog and the answer, 202 `{"accepted": n, "duplicates": d}`, comes only once they
//! are stored durably. Events of erased users (the suppression list) are left out and counted:
//! `"suppressed": n` in the answer. 401 for a missing or wrong token, 413 over the body limit (also after
//! decompression), 408 for a body that did not arrive whole within `body_read_timeout_seconds`,
//! 415 for other content types or encodings, 503 with `Retry-After` when the backlog is full or
//! the service is stopping.

use std::io::Read as _;
use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use subtle::ConstantTimeEq;

use super::App;
use crate::backlog::{BacklogError, Incoming, check_event};
use crate::privacy::suppression::Suppression;

/// The largest plain body checked on the async thread that received it (see `ingest`).
const INLINE_BODY_BYTES: usize = 64 * 1024;

/// How many bad events a 400 lists (the count is always complete).
const LISTED_PROBLEMS: usize = 100;

/// The handler of `POST /v1/events`.
pub async fn post_events(State(app): State<Arc<App>>, headers: HeaderMap, body: Body) -> Response {
    let started = Instant::now();
    let response = ingest(&app, &headers, body).await;
    metrics::histogram!("hardal_ingest_seconds").record(started.elapsed().as_secs_f64());
    response
}

async fn ingest(app: &App, headers: &HeaderMap, body: Body) -> Response {
    let response = answer(app, headers, body).await;
    metrics::counter!("hardal_ingest_requests_total", "status" => response.status().as_str().to_owned())
        .increment(1);
    response
}

async fn answer(app: &App, headers: &HeaderMap, body: Body) -> Response {
    if app.stop.is_cancelled() {
        return unavailable("the service is stopping; try again shortly", 5);
    }
    if !app.ingest {
        return unavailable(
            "this node only delivers (hardal serve --no-ingest); send events to an ingestion node",
            60,
        );
    }
    if !authorized(&app.tokens, headers) {
        let mut response = error(
            StatusCode::UNAUTHORIZED,
            "a valid `Authorization: Bearer <token>` header is required",
        );
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return response;
    }
    let Some(format) = content_format(headers) else {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send application/json (an event or an array of events) or application/x-ndjson",
        );
    };
    let gzip = match headers
        .get(header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("?").trim().to_ascii_lowercase())
        .as_deref()
    {
        None | Some("identity") | Some("") => false,
        Some("gzip") => true,
        Some(_) => {
            return error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "the only content encoding accepted is gzip",
            );
        }
    };
    let limit = app.max_body_bytes;
    let read = tokio::time::timeout(app.body_read_timeout, read_limited(body, limit)).await;
    let Ok(read) = read else {
        // The rest of the body is not read: the connection cannot carry another request.
        let mut response = error(
            StatusCode::REQUEST_TIMEOUT,
            &format!(
                "the request body did not arrive within {} s; nothing of this request was stored",
                app.body_read_timeout.as_secs()
            ),
        );
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        return response;
    };
    let raw = match read {
        Ok(raw) => raw,
        Err(Failed::TooLarge) => return too_large(limit),
        Err(Failed::Broken(e)) => {
            return error(
                StatusCode::BAD_REQUEST,
                &format!("the request body could not be read: {e}"),
            );
        }
    };
    // Inflating and checking a body of megabytes takes milliseconds of CPU: off the async
    // threads, so that health checks and other requests are not held up behind it. A small
    // plain body (a typical batch: tens of microseconds) is checked where it is, which spares
    // the hand-off and the memory each extra thread's allocations keep.
    // Events of erased users are dropped here too, counted, never stored.
    let max_event_bytes = app.max_event_bytes;
    let suppression = Arc::clone(&app.suppression);
    let check = move |raw: &[u8]| {
        decode(raw, gzip, limit, format, max_event_bytes)
            .map(|events| drop_suppressed(&suppression, events))
    };
    let decoded = if !gzip && raw.len() <= INLINE_BODY_BYTES {
        Ok(check(&raw))
    } else {
        tokio::task::spawn_blocking(move || check(&raw)).await
    };
    let (events, suppressed) = match decoded {
        Ok(Ok(checked)) => checked,
        Ok(Err(response)) => return *response,
        Err(e) => {
            tracing::error!(error = %e, "Checking a request's events failed; it was answered 500.");
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the events could not be checked; nothing of this request was stored",
            );
        }
    };
    let tapped = app.tap.received(&events);
    let appended = app.backlog.append(events).await;
    if let (Some(tapped), Err(e)) = (tapped, &appended) {
        app.tap.not_stored(tapped, e);
    }
    match appended {
        Ok(appended) => {
            // Counted once answered: a 503'd request is sent again and would count twice.
            metrics::counter!("hardal_events_received_total")
                .increment((appended.accepted + appended.duplicates + suppressed) as u64);
            metrics::counter!("hardal_events_accepted_total").increment(appended.accepted as u64);
            metrics::counter!("hardal_events_suppressed_total", "stage" => "ingestion")
                .increment(suppressed as u64);
            metrics::counter!("hardal_events_duplicates_total")
                .increment(appended.duplicates as u64);
            let mut body =
                json!({"accepted": appended.accepted, "duplicates": appended.duplicates});
            if suppressed > 0 {
                body["suppressed"] = json!(suppressed);
            }
            (StatusCode::ACCEPTED, axum::Json(body)).into_response()
        }
        Err(BacklogError::Full { .. }) => {
            // Nothing was stored: the producer sends them again.
            unavailable(
                "the backlog is full; events are accepted again once delivery makes room",
                30,
            )
        }
        Err(e) => {
            tracing::error!(error = %e, "Events could not be stored; the request was answered 503.");
            unavailable("the events could not be stored; try again", 5)
        }
    }
}

/// The events of users not erased, and how many were left out.
fn drop_suppressed(suppression: &Suppression, events: Vec<Incoming>) -> (Vec<Incoming>, usize) {
    if suppression.is_empty() {
        return (events, 0);
    }
    let before = events.len();
    let kept: Vec<Incoming> = events
        .into_iter()
        .filter(|e| !suppression.matches_text(&e.body))
        .collect();
    let dropped = before - kept.len();
    (kept, dropped)
}

/// A body's events: inflated if it is gzip, then checked one by one.
fn decode(
    raw: &[u8],
    gzip: bool,
    limit: usize,
    format: Format,
    max_event_bytes: usize,
) -> Result<Vec<Incoming>, Box<Response>> {
    if !gzip {
        return parse(raw, format, max_event_bytes);
    }
    match gunzip(raw, limit) {
        Ok(text) => parse(&text, format, max_event_bytes),
        Err(Failed::TooLarge) => Err(Box::new(too_large(limit))),
        Err(Failed::Broken(e)) => Err(Box::new(error(
            StatusCode::BAD_REQUEST,
            &format!("the body is not valid gzip: {e}"),
        ))),
    }
}

/// What a request's body holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    Ndjson,
}

fn content_format(headers: &HeaderMap) -> Option<Format> {
    let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let media = value.split(';').next()?.trim().to_ascii_lowercase();
    match media.as_str() {
        "application/json" => Some(Format::Json),
        "application/x-ndjson" | "application/ndjson" | "application/jsonl" => Some(Format::Ndjson),
        _ => None,
    }
}

/// Whether the request carries one of the tokens, compared in constant time so that timing
/// tells nothing about how much of a guess was right.
pub(super) fn authorized(tokens: &[Vec<u8>], headers: &HeaderMap) -> bool {
    // The scheme's name is case-insensitive (RFC 9110, section 11.1); the token is not.
    let Some(given) = headers
        .get(header::AUTHORIZATION)
        .map(|v| v.as_bytes())
        .filter(|v| v.len() > 7 && v[..7].eq_ignore_ascii_case(b"bearer "))
        .map(|v| &v[7..])
    else {
        return false;
    };
    let given = given.trim_ascii();
    let mut found = subtle::Choice::from(0);
    for token in tokens {
        found |= token.as_slice().ct_eq(given);
    }
    found.into()
}

#[derive(Debug)]
enum Failed {
    TooLarge,
    Broken(String),
}

/// The body, or `TooLarge` as soon as it passes `limit` (the rest is not read).
async fn read_limited(mut body: Body, limit: usize) -> Result<Bytes, Failed> {
    if body.size_hint().lower() > limit as u64 {
        return Err(Failed::TooLarge);
    }
    let mut bytes = Vec::new();
    while let Some(frame) =
        std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx)).await
    {
        let frame = frame.map_err(|e| Failed::Broken(e.to_string()))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if bytes.len() + data.len() > limit {
            return Err(Failed::TooLarge);
        }
        bytes.extend_from_slice(&data);
    }
    Ok(Bytes::from(bytes))
}

/// Decompresses gzip, every member of it (RFC 1952 allows several one after another, as
/// concatenated files make), refusing to inflate past `limit` (a small bomb stays small).
fn gunzip(compressed: &[u8], limit: usize) -> Result<Vec<u8>, Failed> {
    let mut decoder = flate2::read::MultiGzDecoder::new(compressed).take(limit as u64 + 1);
    let mut text = Vec::new();
    decoder
        .read_to_end(&mut text)
        .map_err(|e| Failed::Broken(e.to_string()))?;
    if text.len() > limit {
        return Err(Failed::TooLarge);
    }
    Ok(text)
}

/// The events of a body, or a 400 naming each bad one.
fn parse(
    text: &[u8],
    format: Format,
    max_event_bytes: usize,
) -> Result<Vec<Incoming>, Box<Response>> {
    // A byte order mark is no part of the JSON (RFC 8259 lets a parser ignore it); editors on
    // Windows write one.
    let text = text.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(text);
    let mut events = Vec::new();
    let mut problems: Vec<serde_json::Value> = Vec::new();
    let mut bad = 0usize;
    let mut check = |index: usize, line: Option<usize>, raw: &[u8]| {
        let problem = match checked_event(raw, max_event_bytes) {
            Ok(incoming) => {
                events.push(incoming);
                return;
            }
            Err(problem) => problem,
        };
        bad += 1;
        if problems.len() < LISTED_PROBLEMS {
            let mut entry = json!({"index": index, "error": problem});
            if let Some(line) = line {
                entry["line"] = json!(line);
            }
            problems.push(entry);
        }
    };
    match format {
        Format::Ndjson => {
            let mut index = 0;
            for (number, line) in text.split(|b| *b == b'\n').enumerate() {
                if line.trim_ascii().is_empty() {
                    continue;
                }
                check(index, Some(number + 1), line);
                index += 1;
            }
        }
        Format::Json => match text.trim_ascii_start().first() {
            Some(b'[') => match serde_json::from_slice::<Vec<&serde_json::value::RawValue>>(text) {
                Ok(items) => {
                    for (index, item) in items.iter().enumerate() {
                        check(index, None, item.get().as_bytes());
                    }
                }
                Err(e) => {
                    return Err(Box::new(invalid_body(&format!(
                        "the body is not a JSON array of events: {e}"
                    ))));
                }
            },
            _ => check(0, None, text),
        },
    }
    if bad > 0 {
        let total = events.len() + bad;
        return Err(Box::new(
            (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({
                "error": format!("{bad} of {total} events are not valid; nothing of this request was stored"),
                "invalid": problems,
            })),
        )
            .into_response(),
        ));
    }
    if events.is_empty() {
        return Err(Box::new(invalid_body("the body holds no events")));
    }
    Ok(events)
}

/// One event checked: UTF-8, JSON, an object, within the size bound.
fn checked_event(raw: &[u8], max_event_bytes: usize) -> Result<Incoming, String> {
    let raw = raw.trim_ascii();
    if raw.len() > max_event_bytes {
        return Err(format!(
            "the event is {} bytes, more than the largest allowed ({max_event_bytes})",
            raw.len()
        ));
    }
    let text = std::str::from_utf8(raw)
        .map_err(|e| format!("not valid UTF-8 at byte {}", e.valid_up_to() + 1))?;
    let checked = check_event(text)?;
    Ok(Incoming {
        identity: checked.identity,
        user: checked.user,
        body: text.to_owned(),
    })
}

fn invalid_body(message: &str) -> Response {
    error(StatusCode::BAD_REQUEST, message)
}

fn too_large(limit: usize) -> Response {
    error(
        StatusCode::PAYLOAD_TOO_LARGE,
        &format!(
            "the body is larger than {limit} bytes (after decompression too); send fewer events per request"
        ),
    )
}

fn unavailable(message: &str, retry_after_seconds: u64) -> Response {
    let mut response = error(StatusCode::SERVICE_UNAVAILABLE, message);
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_seconds));
    response
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({"error": message}))).into_response()
}

#[cfg(test)]
mod tests {
    use axum::http::{HeaderMap, HeaderValue, header};

    use super::{Format, authorized, gunzip, parse};

    #[test]
    fn tokens_are_checked_whole() {
        let tokens = vec![b"alpha-token".to_vec(), b"beta-token".to_vec()];
        let check = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
            authorized(&tokens, &headers)
        };
        assert!(check("Bearer alpha-token"));
        assert!(check("Bearer beta-token"));
        assert!(!check("Bearer alpha"));
        assert!(!check("Bearer alpha-token-and-more"));
        assert!(!check("Basic alpha-token"));
        assert!(!authorized(&tokens, &HeaderMap::new()));
        // The scheme is case-insensitive (RFC 9110 §11.1); the token is not.
        assert!(check("bearer alpha-token"));
        assert!(check("BEARER beta-token"));
        assert!(!check("bearer ALPHA-TOKEN"));
    }

    #[test]
    fn every_gzip_member_is_decoded() {
        let mut both = gzip(b"{\"a\":1}\n");
        both.extend(gzip(b"{\"b\":2}\n"));
        assert_eq!(gunzip(&both, 1000).unwrap(), b"{\"a\":1}\n{\"b\":2}\n");
        // The bound holds over all members together.
        assert!(gunzip(&both, 10).is_err());
    }

    #[test]
    fn a_byte_order_mark_at_the_start_is_accepted() {
        let events = parse(b"\xEF\xBB\xBF{\"a\":1}\n{\"b\":2}", Format::Ndjson, 1000).unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].body, "{\"a\":1}");
        let events = parse(b"\xEF\xBB\xBF[{\"a\":1}]", Format::Json, 1000).unwrap();
        assert_eq!(events.len(), 1);
        let events = parse(b"\xEF\xBB\xBF{\"a\":1}", Format::Json, 1000).unwrap();
        assert_eq!(events[0].body, "{\"a\":1}");
    }

    #[test]
    fn what_delivery_would_refuse_as_not_json_is_refused_here() {
        let deep = format!("{{\"a\":{}1{}}}", "[".repeat(100_000), "]".repeat(100_000));
        let shallow = format!("{{\"a\":{}1{}}}", "[".repeat(100), "]".repeat(100));
        let cases = [
            deep.as_str(),
            shallow.as_str(),
            r#"{"name": "\ud800"}"#,
            r#"{"name": "\ud83d\ude00"}"#,
            r#"{"name": "\udc00\ud800"}"#,
            r#"{"id": "e3", "id": "e4"}"#,
            r#"{"n": 1e400}"#,
            r#"{"user_id": 123456789012345678901234567890}"#,
        ];
        for text in cases {
            let delivery = crate::input::parse_text(text);
            let ingestion = parse(text.as_bytes(), Format::Ndjson, 10_000_000);
            assert_eq!(
                ingestion.is_ok(),
                delivery.is_ok(),
                "ingestion and delivery disagree on {:.60}",
                text
            );
            if delivery.is_err() {
                assert_eq!(ingestion.err().unwrap().status(), 400);
            }
        }
        assert!(crate::input::parse_text(&deep).is_err());
        assert!(crate::input::parse_text(r#"{"name": "\ud800"}"#).is_err());
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn bad_events_are_named_by_index_and_line() {
        let ndjson = b"{\"a\":1}\n\nnot json\n[1]\n{\"b\":2}\n";
        let response = parse(ndjson, Format::Ndjson, 1000).err().unwrap();
        assert_eq!(response.status(), 400);
        let events = parse(b"[{\"a\":1},{\"b\":2}]", Format::Json, 1000).unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(events[1].body, "{\"b\":2}");
        assert!(parse(b"[{\"a\":1}, 5]", Format::Json, 1000).is_err());
        assert!(parse(b"{\"a\":1}", Format::Json, 3).is_err());
    }

    #[test]
    fn a_gzip_bomb_stops_at_the_limit() {
        use std::io::Write;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(&vec![b' '; 10_000_000]).unwrap();
        let compressed = encoder.finish().unwrap();
        assert!(compressed.len() < 100_000);
        assert!(gunzip(&compressed, 1_000_000).is_err());
        assert_eq!(gunzip(&compressed, 10_000_000).unwrap().len(), 10_000_000);
    }
}
