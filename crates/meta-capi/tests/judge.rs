//! Judging Meta's answers, as data: a status and a body in, the verdict every event gets out.

use hardal_core::{HttpResponse, Verdict};
use hardal_meta_capi::judge;
use serde_json::json;

fn response(status: u16, headers: &[(&str, &str)], body: &str) -> HttpResponse {
    HttpResponse {
        status,
        headers: headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect(),
        body: body.as_bytes().to_vec(),
    }
}

fn error(fields: serde_json::Value) -> String {
    json!({ "error": fields }).to_string()
}

/// The verdict's kind and reason (or Retry-After), as one line.
fn shown(verdict: &Verdict) -> String {
    match verdict {
        Verdict::Delivered => "delivered".into(),
        Verdict::Retry { reason, after } => format!("retry after {after:?}: {reason}"),
        Verdict::Rejected { reason } => format!("rejected: {reason}"),
        Verdict::Pause { reason } => format!("pause: {reason}"),
        Verdict::Split { reason } => format!("split: {reason}"),
    }
}

#[test]
fn metas_answers() {
    let invalid = error(
        json!({"message": "Invalid parameter", "type": "OAuthException", "code": 100,
        "error_subcode": 2804003, "is_transient": false, "error_user_title": "Event Timestamp Too Old",
        "error_user_msg": "The timestamp for this event is more than 7 days in the past.", "fbtrace_id": "X"}),
    );
    let cases: Vec<(&str, HttpResponse, &str)> = vec![
        (
            "all received",
            response(
                200,
                &[],
                r#"{"events_received":3,"messages":[],"fbtrace_id":"A"}"#,
            ),
            "delivered",
        ),
        (
            "fewer received",
            response(200, &[], r#"{"events_received":2}"#),
            "retry after None: HTTP 200: Meta received 2 of 3 events",
        ),
        (
            "not Meta's",
            response(200, &[], "<html>portal</html>"),
            "retry after None: HTTP 200: the answer is not Meta's (no events_received), so nothing says the events were received: <html>portal</html>",
        ),
        (
            "one bad event",
            response(400, &[], &invalid),
            "split: HTTP 400: Meta: Event Timestamp Too Old: The timestamp for this event is more than 7 days in the past. — Invalid parameter (OAuthException, code 100, subcode 2804003)",
        ),
        (
            "invalid parameter without subcode",
            response(
                400,
                &[],
                &error(
                    json!({"message": "(#100) Invalid parameter", "type": "OAuthException", "code": 100}),
                ),
            ),
            "split: HTTP 400: Meta: (#100) Invalid parameter (OAuthException, code 100)",
        ),
        (
            "expired token",
            response(
                400,
                &[],
                &error(
                    json!({"message": "Error validating access token", "type": "OAuthException", "code": 190, "error_subcode": 463}),
                ),
            ),
            "pause: HTTP 400: Meta: Error validating access token (OAuthException, code 190, subcode 463)",
        ),
        (
            "unknown pixel",
            response(
                400,
                &[],
                &error(
                    json!({"message": "Unsupported post request.", "type": "GraphMethodException", "code": 100, "error_subcode": 33}),
                ),
            ),
            "pause: HTTP 400: Meta: Unsupported post request. (GraphMethodException, code 100, subcode 33)",
        ),
        (
            "no permission",
            response(
                403,
                &[],
                &error(
                    json!({"message": "(#200) Permissions error", "type": "OAuthException", "code": 200}),
                ),
            ),
            "pause: HTTP 403: Meta: (#200) Permissions error (OAuthException, code 200)",
        ),
        (
            "oauth without subcode",
            response(
                400,
                &[],
                &error(
                    json!({"message": "An active access token must be used", "type": "OAuthException", "code": 2500}),
                ),
            ),
            "pause: HTTP 400: Meta: An active access token must be used (OAuthException, code 2500)",
        ),
        (
            "401 plain",
            response(401, &[], "nope"),
            "pause: HTTP 401: nope",
        ),
        (
            "app throttled",
            response(
                400,
                &[("Retry-After", "30")],
                &error(
                    json!({"message": "(#4) Application request limit reached", "type": "OAuthException", "code": 4, "is_transient": true}),
                ),
            ),
            "retry after Some(Delay(30s)): HTTP 400: Meta: (#4) Application request limit reached (OAuthException, code 4)",
        ),
        (
            "user throttled",
            response(
                400,
                &[],
                &error(
                    json!({"message": "(#17) User request limit reached", "type": "OAuthException", "code": 17, "error_subcode": 2446079}),
                ),
            ),
            "retry after None: HTTP 400: Meta: (#17) User request limit reached (OAuthException, code 17, subcode 2446079)",
        ),
        (
            "page throttled",
            response(
                403,
                &[],
                &error(json!({"message": "(#32) Page request limit reached", "code": 32})),
            ),
            "retry after None: HTTP 403: Meta: (#32) Page request limit reached (code 32)",
        ),
        (
            "too many calls",
            response(
                400,
                &[],
                &error(
                    json!({"message": "(#613) Calls to this api have exceeded the rate limit.", "code": 613}),
                ),
            ),
            "retry after None: HTTP 400: Meta: (#613) Calls to this api have exceeded the rate limit. (code 613)",
        ),
        (
            "transient",
            response(
                400,
                &[],
                &error(
                    json!({"message": "temporary", "code": 100, "error_subcode": 99, "is_transient": true}),
                ),
            ),
            "retry after None: HTTP 400: Meta: temporary (code 100, subcode 99)",
        ),
        (
            "429 plain",
            response(429, &[], "slow down"),
            "retry after None: HTTP 429: slow down",
        ),
        (
            "service",
            response(
                500,
                &[],
                &error(
                    json!({"message": "An unknown error occurred", "type": "OAuthException", "code": 1}),
                ),
            ),
            "retry after None: HTTP 500: Meta: An unknown error occurred (OAuthException, code 1)",
        ),
        (
            "edge 503",
            response(503, &[], "error code: 503"),
            "retry after None: HTTP 503: error code: 503",
        ),
        (
            "other 404",
            response(404, &[], "not found"),
            "rejected: HTTP 404: not found",
        ),
        (
            "control characters",
            response(
                400,
                &[],
                &error(json!({"message": "bad\u{1b}[31m", "code": 100, "error_subcode": 1})),
            ),
            "split: HTTP 400: Meta: bad\\u{1b}[31m (code 100, subcode 1)",
        ),
    ];
    for (name, response, expected) in cases {
        let verdicts = judge(3, &response);
        assert_eq!(verdicts.len(), 3, "{name}");
        assert!(
            verdicts.iter().all(|v| v == &verdicts[0]),
            "{name}: one verdict for all"
        );
        assert_eq!(shown(&verdicts[0]), expected, "{name}");
    }
}
