//! Judging every documented Insider answer, as data: status, headers and body in, one verdict per
//! user out.

use expect_test::{Expect, expect};
use hardal_core::{HttpResponse, Verdict};

fn check(users: usize, status: u16, headers: &[(&str, &str)], body: &str, expected: Expect) {
    let response = HttpResponse {
        status,
        headers: headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect(),
        body: body.as_bytes().to_vec(),
    };
    let actual: String = hardal_insider::judge(users, &response)
        .into_iter()
        .enumerate()
        .map(|(i, verdict)| match verdict {
            Verdict::Delivered => format!("{i}: delivered\n"),
            Verdict::Retry { reason, after } => format!("{i}: retry after {after:?}: {reason}\n"),
            Verdict::Rejected { reason } => format!("{i}: rejected: {reason}\n"),
            Verdict::Pause { reason } => format!("{i}: pause: {reason}\n"),
            Verdict::Split { reason } => format!("{i}: split: {reason}\n"),
        })
        .collect();
    expected.assert_eq(&actual);
}

#[test]
fn success() {
    check(
        2,
        200,
        &[],
        r#"{"data":{"successful":{"count":2},"fail":{}}}"#,
        expect![[r#"
        0: delivered
        1: delivered
    "#]],
    );
}

#[test]
fn http_200_with_failed_users_rejects_only_those() {
    check(
        3,
        200,
        &[],
        r#"{"data":{"successful":{"count":1},"fail":{"count":2,"errors":{
            "users.1.events.0.event_params.*.required":["event_group_id parameter is required on purchase event"],
            "users.1.identifiers.*.regexp(^\\+[1-9]\\d{6,14}$)":["user has an invalid phone number: 12345"],
            "users.2.attributes.email_optin.type(bool)":["email_optin must be a boolean"]}}}}"#,
        expect![[r#"
            0: delivered
            1: rejected: Insider: users.1.events.0.event_params.*.required: event_group_id parameter is required on purchase event | users.1.identifiers.*.regexp(^\+[1-9]\d{6,14}$): user has an invalid phone number: 12345
            2: rejected: Insider: users.2.attributes.email_optin.type(bool): email_optin must be a boolean
        "#]],
    );
}

#[test]
fn failures_insider_does_not_attribute_reject_the_whole_request() {
    check(
        2,
        200,
        &[],
        r#"{"data":{"successful":{"count":0},"fail":{"count":2}}}"#,
        expect![[r#"
        0: rejected: Insider reported 2 failed user(s) without saying which: {"data":{"successful":{"count":0},"fail":{"count":2}}}
        1: rejected: Insider reported 2 failed user(s) without saying which: {"data":{"successful":{"count":0},"fail":{"count":2}}}
    "#]],
    );
}

#[test]
fn bad_request_is_rejected() {
    check(
        1,
        400,
        &[],
        r#"{"error":"users must be defined: bad request"}"#,
        expect![[r#"
        0: rejected: HTTP 400: {"error":"users must be defined: bad request"}
    "#]],
    );
}

#[test]
fn credentials_pause() {
    check(
        1,
        401,
        &[],
        r#"{"error":"unauthorized"}"#,
        expect![[r#"
        0: pause: HTTP 401: {"error":"unauthorized"}
    "#]],
    );
    check(
        1,
        403,
        &[],
        "forbidden",
        expect![[r#"
        0: pause: HTTP 403: forbidden
    "#]],
    );
}

#[test]
fn throttling_and_server_errors_retry() {
    check(
        1,
        429,
        &[("Retry-After", "12")],
        r#"{"error":"rejected: too many requests"}"#,
        expect![[r#"
        0: retry after Some(Delay(12s)): HTTP 429: {"error":"rejected: too many requests"}
    "#]],
    );
    check(
        1,
        429,
        &[],
        r#"{"error":"rejected: too many requests"}"#,
        expect![[r#"
        0: retry after None: HTTP 429: {"error":"rejected: too many requests"}
    "#]],
    );
    for status in [500, 502, 503, 504, 520, 522, 524] {
        let response = HttpResponse {
            status,
            headers: vec![],
            body: b"oops".to_vec(),
        };
        assert!(
            matches!(
                hardal_insider::judge(1, &response)[..],
                [Verdict::Retry { .. }]
            ),
            "HTTP {status} must be retried"
        );
    }
}

#[test]
fn a_2xx_that_is_not_insiders_answer_is_retried_not_delivered() {
    // A captive portal, a proxy's empty object, an empty body, a JSON string: none says that
    // Insider stored the users.
    for body in [
        "<html><body>Please log in to the Wi-Fi</body></html>",
        "{}",
        "",
        "\"ok\"",
        r#"{"data":{}}"#,
        r#"{"data":"ok"}"#,
    ] {
        let response = HttpResponse {
            status: 200,
            headers: vec![],
            body: body.as_bytes().to_vec(),
        };
        let verdicts = hardal_insider::judge(2, &response);
        assert_eq!(verdicts.len(), 2);
        for verdict in verdicts {
            let Verdict::Retry { reason, .. } = verdict else {
                panic!("{body:?} must be retried, got {verdict:?}");
            };
            assert!(reason.contains("not Insider's"), "{reason}");
        }
    }
}
