//! The HTTP control API under `/_simulator/`, used by out-of-process benchmarks.

mod common;

use common::{batch, send, simulator, upsert, user};
use hardal_insider_simulator::Simulator;
use serde_json::{Value, json};

fn control(sim: &Simulator, method: &str, path: &str, body: &str) -> common::Reply {
    send(
        sim.addr(),
        method,
        path,
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    )
    .unwrap()
}

#[test]
fn stats_and_accepted_users() {
    let sim = simulator();
    let bad = json!({"identifiers": {"uuid": 3}, "attributes": {"name": "A"}});
    upsert(&sim, &batch(&[user(1), bad, user(2)]));
    let stats = control(&sim, "GET", "/_simulator/stats", "");
    assert_eq!(stats.status, 200);
    let stats = stats.json();
    assert_eq!(stats["requests"], 1);
    assert_eq!(stats["by_status"], json!({"200": 1}));
    assert_eq!(stats["users_accepted"], 2);
    assert_eq!(stats["users_failed"], 1);
    assert_eq!(stats["recording"], true);

    let accepted = control(&sim, "GET", "/_simulator/accepted", "");
    assert_eq!(
        accepted.header("content-type"),
        Some("application/x-ndjson")
    );
    let lines: Vec<Value> = accepted
        .body
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines, vec![user(1), user(2)]);

    let requests = control(&sim, "GET", "/_simulator/requests", "").json();
    assert_eq!(requests[0]["users"], 3);
    assert_eq!(requests[0]["status"], 200);
    let at = requests[0]["received_at"].as_str().expect("a string");
    assert!(at.ends_with('Z') && at.contains('T'), "{at}");
}

#[test]
fn faults_are_injected_and_cleared() {
    let sim = simulator();
    let one = batch(&[user(0)]);
    // (injection body, statuses of the next three upserts, Retry-After of the first)
    let cases: &[(&str, [u16; 3], Option<&str>)] = &[
        (
            r#"{"fault":{"kind":"too_many_requests","retry_after":{"seconds":7}},"next":2}"#,
            [429, 429, 200],
            Some("7"),
        ),
        (
            r#"{"fault":{"kind":"too_many_requests"},"next":1}"#,
            [429, 200, 200],
            None,
        ),
        (
            r#"{"fault":{"kind":"server_error","status":522},"next":1}"#,
            [522, 200, 200],
            None,
        ),
        (
            r#"{"fault":{"kind":"unauthorized"}}"#,
            [401, 401, 401],
            None,
        ),
        (
            r#"{"fault":{"kind":"slow","delay_ms":50},"fraction":1.0,"seed":3}"#,
            [200, 200, 200],
            None,
        ),
        (
            r#"{"fault":{"kind":"server_error","status":503},"fraction":0.0}"#,
            [200, 200, 200],
            None,
        ),
    ];
    for (injection, statuses, retry_after) in cases {
        let reply = control(&sim, "POST", "/_simulator/faults", injection);
        assert_eq!(reply.status, 204, "{injection}: {}", reply.body);
        let first = upsert(&sim, &one);
        let rest = [upsert(&sim, &one).status, upsert(&sim, &one).status];
        assert_eq!([first.status, rest[0], rest[1]], *statuses, "{injection}");
        assert_eq!(first.header("retry-after"), *retry_after, "{injection}");
        assert_eq!(
            control(&sim, "DELETE", "/_simulator/faults", "").status,
            204
        );
    }

    let dropped = control(
        &sim,
        "POST",
        "/_simulator/faults",
        r#"{"fault":{"kind":"drop"},"next":1}"#,
    );
    assert_eq!(dropped.status, 204);
    assert!(common::try_upsert(&sim, &one).is_err());
}

#[test]
fn bad_injections_are_refused() {
    let sim = simulator();
    let cases = [
        r#"{"fault":{"kind":"server_error","status":501}}"#,
        r#"{"fault":{"kind":"explode"}}"#,
        r#"{"fault":{"kind":"drop"},"next":1,"fraction":0.5}"#,
        r#"{"fault":{"kind":"drop"},"fraction":2}"#,
        r#"{"fault":{"kind":"drop"},"seed":2}"#,
        r#"{"fault":{"kind":"drop"},"next":0}"#,
        r#"{"fault":{"kind":"drop"},"nxt":1}"#,
        "not json",
    ];
    for body in cases {
        let reply = control(&sim, "POST", "/_simulator/faults", body);
        assert_eq!(reply.status, 400, "{body}");
        assert!(reply.json()["error"].is_string(), "{body}");
    }
    assert_eq!(upsert(&sim, &batch(&[user(0)])).status, 200);
}

#[test]
fn reset_clears_records_and_faults() {
    let sim = simulator();
    upsert(&sim, &batch(&[user(0)]));
    control(
        &sim,
        "POST",
        "/_simulator/faults",
        r#"{"fault":{"kind":"unauthorized"}}"#,
    );
    assert_eq!(control(&sim, "POST", "/_simulator/reset", "").status, 204);
    assert_eq!(control(&sim, "GET", "/_simulator/accepted", "").body, "");
    assert_eq!(
        control(&sim, "GET", "/_simulator/stats", "").json()["requests"],
        0
    );
    assert_eq!(upsert(&sim, &batch(&[user(0)])).status, 200);
}

#[test]
fn accepted_events_are_listed() {
    let sim = simulator();
    let e = json!({"event_name": "homepage_view", "timestamp": "2024-05-01T10:00:00Z"});
    let u = json!({"identifiers": {"uuid": "a"}, "events": [e]});
    upsert(&sim, &batch(&[u.clone(), u]));
    let events = control(&sim, "GET", "/_simulator/events", "").json();
    assert_eq!(events.as_array().unwrap().len(), 1);
    assert_eq!(events[0]["times_received"], 2);
    assert_eq!(events[0]["event"], e);
}
