//! Authentication, content type and the request-level limits, over real HTTP.

mod common;

use common::{PARTNER, TOKEN, UPSERT, batch, send, simulator, upsert, user};
use serde_json::json;

#[test]
fn credentials_are_checked() {
    let sim = simulator();
    let body = batch(&[user(0)]);
    let json = ("Content-Type", "application/json");
    type Headers<'a> = &'a [(&'a str, &'a str)];
    let cases: &[(&str, Headers, u16)] = &[
        (
            "right",
            &[
                ("X-PARTNER-NAME", PARTNER),
                ("X-REQUEST-TOKEN", TOKEN),
                json,
            ],
            200,
        ),
        ("no partner", &[("X-REQUEST-TOKEN", TOKEN), json], 401),
        ("no token", &[("X-PARTNER-NAME", PARTNER), json], 401),
        ("no headers", &[json], 401),
        (
            "wrong partner",
            &[
                ("X-PARTNER-NAME", "other"),
                ("X-REQUEST-TOKEN", TOKEN),
                json,
            ],
            401,
        ),
        (
            "wrong token",
            &[
                ("X-PARTNER-NAME", PARTNER),
                ("X-REQUEST-TOKEN", "nope"),
                json,
            ],
            401,
        ),
        (
            "partner is case-sensitive",
            &[
                ("X-PARTNER-NAME", "MyBrand"),
                ("X-REQUEST-TOKEN", TOKEN),
                json,
            ],
            401,
        ),
    ];
    for (name, headers, status) in cases {
        let reply = send(sim.addr(), "POST", UPSERT, headers, body.as_bytes()).unwrap();
        assert_eq!(reply.status, *status, "{name}: {}", reply.body);
        if *status == 401 {
            assert_eq!(
                reply.json(),
                json!({"error": "unauthorized: invalid partner name or request token"}),
                "{name}"
            );
        }
    }
    // Only the one authorised request may have recorded its user.
    assert_eq!(sim.accepted_users().len(), 1);
}

#[test]
fn content_type_must_be_json() {
    let sim = simulator();
    let body = batch(&[user(0)]);
    let cases: &[(&str, Option<&str>, u16)] = &[
        ("json", Some("application/json"), 200),
        (
            "json with charset",
            Some("application/json; charset=utf-8"),
            200,
        ),
        ("text", Some("text/plain"), 400),
        ("form", Some("application/x-www-form-urlencoded"), 400),
        ("missing", None, 400),
    ];
    for (name, content_type, status) in cases {
        let mut headers = vec![("X-PARTNER-NAME", PARTNER), ("X-REQUEST-TOKEN", TOKEN)];
        if let Some(value) = content_type {
            headers.push(("Content-Type", value));
        }
        let reply = send(sim.addr(), "POST", UPSERT, &headers, body.as_bytes()).unwrap();
        assert_eq!(reply.status, *status, "{name}: {}", reply.body);
    }
}

/// A body of exactly `size` bytes: the users, then JSON whitespace to fill up.
fn padded(users: &[serde_json::Value], size: usize) -> String {
    let mut body = batch(users);
    assert!(body.len() <= size);
    body.push_str(&" ".repeat(size - body.len()));
    body
}

#[test]
fn malformed_and_oversized_requests_are_400() {
    let sim = simulator();
    let thousand: Vec<_> = (0..1000).map(user).collect();
    let thousand_and_one: Vec<_> = (0..1001).map(user).collect();
    let undefined = r#"{"error":"users must be defined: bad request"}"#;
    let cases: Vec<(&str, String, u16, Option<&str>)> = vec![
        ("not json", "{\"users\": [".into(), 400, Some(undefined)),
        ("not an object", "[1]".into(), 400, Some(undefined)),
        ("no users", "{}".into(), 400, Some(undefined)),
        ("users not an array", r#"{"users":{"a":1}}"#.into(), 400, Some(undefined)),
        ("empty users", r#"{"users":[]}"#.into(), 400, Some(undefined)),
        ("empty body", String::new(), 400, Some(undefined)),
        ("1,000 users", batch(&thousand), 200, None),
        (
            "1,001 users",
            batch(&thousand_and_one),
            400,
            Some(r#"{"error":"users must contain at most 1000 items, got 1001: bad request"}"#),
        ),
        ("exactly 5,000,000 bytes", padded(&thousand, 5_000_000), 200, None),
        ("just under 5 MB", padded(&[user(0)], 4_999_999), 200, None),
        (
            "5,000,001 bytes",
            padded(&[user(0)], 5_000_001),
            400,
            Some(
                r#"{"error":"request body must be at most 5000000 bytes, got 5000001: bad request"}"#,
            ),
        ),
        // Far past axum's own 2 MB default: still our 400, not a transport error.
        ("8 MB", padded(&[user(0)], 8_000_000), 400, None),
        (
            "skip_hook not a boolean",
            r#"{"skip_hook":"no","users":[{"identifiers":{"uuid":"u"},"attributes":{"name":"A"}}]}"#
                .into(),
            400,
            Some(r#"{"error":"skip_hook must be a boolean: bad request"}"#),
        ),
        (
            "skip_hook true",
            r#"{"skip_hook":true,"users":[{"identifiers":{"uuid":"u"},"attributes":{"name":"A"}}]}"#
                .into(),
            200,
            None,
        ),
        (
            "unknown top-level key",
            r#"{"user":[],"users":[{"identifiers":{"uuid":"u"},"attributes":{"name":"A"}}]}"#
                .into(),
            400,
            Some(
                r#"{"error":"unknown top-level key user; a request holds users and skip_hook: bad request"}"#,
            ),
        ),
    ];
    for (name, body, status, expected_body) in cases {
        let reply = upsert(&sim, &body);
        assert_eq!(reply.status, status, "{name}: {}", reply.body);
        if let Some(expected) = expected_body {
            assert_eq!(reply.body, expected, "{name}");
        }
        if status == 400 {
            assert!(reply.json()["error"].is_string(), "{name}");
        }
    }
    // 1,000 + 1,000 + 1 + 1 users were accepted, nothing from the refused requests.
    assert_eq!(sim.stats().users_accepted, 2002);
}
