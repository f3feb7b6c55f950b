//! Judging Meta's answers. Meta takes or refuses a request as a whole: a 2xx with
//! `events_received` equal to the number of events sent delivered them all; a Graph API error
//! body (`{"error": {"type", "code", "error_subcode", "message", …}}`) says why not:
//! - throttling (codes 4, 17, 32, 613, or `is_transient`) and server trouble (codes 1, 2, 5xx,
//!   429) are retried, after `Retry-After` when given;
//! - the token or permissions (code 190, 102, 10, 200–299, an OAuthException without a subcode,
//!   401, 403) pause the destination, as does an unknown pixel (subcode 33);
//! - an invalid parameter (code 100, or any 400 with an `error_subcode`) refuses the whole
//!   request for an event the answer does not name: `Split`, so the engine halves the request
//!   until the bad event stands alone and is refused with Meta's words.
//!
//! A 2xx whose body is not Meta's answer (a captive portal, a proxy's `{}`) proves nothing, so it
//! is retried, never counted as delivered.

use hardal_core::{HttpResponse, Verdict};
use serde_json::Value;

/// Graph API error codes that mean "slow down" (Meta's error handling guide and rate limits).
const THROTTLING: [i64; 4] = [4, 17, 32, 613];

/// The longest reason quoted from Meta's answer, in characters.
const REASON_CHARS: usize = 400;

/// One verdict per event of the request.
pub fn judge(records: usize, response: &HttpResponse) -> Vec<Verdict> {
    vec![verdict(records, response); records]
}

/// The verdict every event of the request shares.
fn verdict(records: usize, response: &HttpResponse) -> Verdict {
    let status = response.status;
    let body = serde_json::from_slice::<Value>(&response.body).ok();
    if (200..300).contains(&status) {
        let received = body
            .as_ref()
            .and_then(|b| b.get("events_received"))
            .and_then(Value::as_u64);
        return match received {
            Some(n) if n == records as u64 => Verdict::Delivered,
            Some(n) => Verdict::Retry {
                // Meta deduplicates by event_id, so sending again cannot double what it kept.
                reason: format!("HTTP {status}: Meta received {n} of {records} events"),
                after: response.retry_after(),
            },
            None => Verdict::Retry {
                reason: format!(
                    "HTTP {status}: the answer is not Meta's (no events_received), so nothing says the events were received: {}",
                    response.body_excerpt()
                ),
                after: response.retry_after(),
            },
        };
    }
    let Some(error) = body
        .as_ref()
        .and_then(|b| b.get("error"))
        .filter(|e| e.is_object())
    else {
        return response.status_verdict();
    };
    let code = error.get("code").and_then(Value::as_i64);
    let subcode = error.get("error_subcode").and_then(Value::as_i64);
    let kind = error.get("type").and_then(Value::as_str).unwrap_or("");
    let transient = error.get("is_transient").and_then(Value::as_bool) == Some(true);
    let reason = format!("HTTP {status}: {}", describe(error));
    let retry = || Verdict::Retry {
        reason: reason.clone(),
        after: response.retry_after(),
    };
    if code.is_some_and(|c| THROTTLING.contains(&c)) || transient {
        return retry();
    }
    if matches!(code, Some(1 | 2)) || status == 429 || (500..=599).contains(&status) {
        return retry();
    }
    let token_or_permission = matches!(code, Some(190 | 102 | 10 | 200..=299));
    let no_such_pixel = subcode == Some(33);
    let unexplained_oauth = kind == "OAuthException" && subcode.is_none() && code != Some(100);
    if matches!(status, 401 | 403) || token_or_permission || no_such_pixel || unexplained_oauth {
        return Verdict::Pause { reason };
    }
    if status == 400 && (code == Some(100) || subcode.is_some()) {
        return Verdict::Split { reason };
    }
    Verdict::Rejected { reason }
}

/// Meta's words for an error: the message for people when there is one, the technical message,
/// and the codes, with control characters escaped and the length bounded.
fn describe(error: &Value) -> String {
    let text = |key: &str| {
        error
            .get(key)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let mut out = String::from("Meta: ");
    match (text("error_user_title"), text("error_user_msg")) {
        (Some(title), Some(message)) => out.push_str(&format!("{title}: {message}")),
        (Some(one), None) | (None, Some(one)) => out.push_str(one),
        (None, None) => {}
    }
    if let Some(message) = text("message") {
        if out.len() > "Meta: ".len() {
            out.push_str(" — ");
        }
        out.push_str(message);
    }
    let mut codes = Vec::new();
    if let Some(kind) = text("type") {
        codes.push(kind.to_owned());
    }
    if let Some(code) = error.get("code").and_then(Value::as_i64) {
        codes.push(format!("code {code}"));
    }
    if let Some(subcode) = error.get("error_subcode").and_then(Value::as_i64) {
        codes.push(format!("subcode {subcode}"));
    }
    if !codes.is_empty() {
        out.push_str(&format!(" ({})", codes.join(", ")));
    }
    escape_bounded(&out)
}

/// Control characters escaped (a hostile answer must not rewrite a terminal or forge log lines)
/// and the text cut at [`REASON_CHARS`].
fn escape_bounded(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(REASON_CHARS * 4));
    for (i, c) in text.chars().enumerate() {
        if i == REASON_CHARS {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}
