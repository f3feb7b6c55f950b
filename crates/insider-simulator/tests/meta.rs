//! The Meta stand-in over HTTP: the token and the pixel, Meta's answers to good and malformed
//! requests, what it records, the faults and the control API, and the binary's `--kind meta`.

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::SystemTime;

use common::send;
use hardal_insider_simulator::{Fault, MetaConfig, MetaSimulator, RetryAfterSpec, Scope};
use serde_json::{Value, json};

const PIXEL: &str = "1234567890";
const TOKEN: &str = "meta-token";
const HASH: &str = "62a14e44f765419d10fea99367361a727c12365e2520f32218d505ed9aa0f62f";

fn stand_in() -> MetaSimulator {
    MetaSimulator::start(MetaConfig::new(PIXEL, TOKEN)).expect("the stand-in starts")
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn event(id: &str) -> Value {
    json!({"event_name": "PageView", "event_time": now() - 60, "event_id": id, "action_source": "website",
           "event_source_url": "https://shop.example/", "user_data": {"em": [HASH], "client_user_agent": "UA/1"}})
}

fn post(addr: SocketAddr, path: &str, body: &Value) -> (u16, Value) {
    let reply = send(
        addr,
        "POST",
        path,
        &[("Content-Type", "application/json")],
        body.to_string().as_bytes(),
    )
    .unwrap();
    let json = serde_json::from_str(&reply.body).unwrap_or(Value::Null);
    (reply.status, json)
}

fn events_path(pixel: &str, token: &str) -> String {
    format!("/v25.0/{pixel}/events?access_token={token}")
}

#[test]
fn answers_as_meta_does() {
    let meta = stand_in();
    let good = json!({"data": [event("a"), event("b")], "test_event_code": "TEST1"});
    let mut bad_event = event("c");
    bad_event["user_data"]["em"] = json!("ada@example.com");
    let cases: Vec<(&str, String, Value, u16, Value)> = vec![
        (
            "good",
            events_path(PIXEL, TOKEN),
            good.clone(),
            200,
            json!({"events_received": 2}),
        ),
        (
            "wrong token",
            events_path(PIXEL, "nope"),
            good.clone(),
            400,
            json!({"type": "OAuthException", "code": 190}),
        ),
        (
            "no token",
            format!("/v25.0/{PIXEL}/events"),
            good.clone(),
            400,
            json!({"type": "OAuthException", "code": 190}),
        ),
        (
            "wrong pixel",
            events_path("999", TOKEN),
            good.clone(),
            400,
            json!({"type": "OAuthException", "code": 100, "error_subcode": 33}),
        ),
        (
            "one unhashed email",
            events_path(PIXEL, TOKEN),
            json!({"data": [event("d"), bad_event]}),
            400,
            json!({"type": "OAuthException", "code": 100, "error_subcode": 2804015,
                "error_user_title": "Unhashed Customer Information"}),
        ),
    ];
    for (name, path, body, status, expected) in cases {
        let (got, answer) = post(meta.addr(), &path, &body);
        assert_eq!(got, status, "{name}: {answer}");
        let part = if status == 200 {
            &answer
        } else {
            &answer["error"]
        };
        for (key, value) in expected.as_object().unwrap() {
            assert_eq!(&part[key], value, "{name}: {answer}");
        }
    }
    // Only the good request's events were kept; the refused one is logged with its culprit.
    let accepted: Vec<Value> = meta
        .accepted()
        .into_iter()
        .map(|a| a.event["event_id"].clone())
        .collect();
    assert_eq!(accepted, [json!("a"), json!("b")]);
    let requests = meta.requests();
    assert_eq!(requests.len(), 5);
    assert_eq!(requests[0].test_event_code.as_deref(), Some("TEST1"));
    assert_eq!(requests[4].refused_index, Some(1));
    assert_eq!(meta.stats().by_status.get(&400), Some(&4));
}

#[test]
fn faults_answer_like_graph() {
    let meta = stand_in();
    meta.inject(
        Fault::TooManyRequests {
            retry_after: Some(RetryAfterSpec::Seconds(3)),
        },
        Scope::Next(1),
    )
    .unwrap();
    meta.inject(Fault::Unauthorized, Scope::Next(1)).unwrap();
    let path = events_path(PIXEL, TOKEN);
    let body = json!({"data": [event("a")]});
    let reply = send(meta.addr(), "POST", &path, &[], body.to_string().as_bytes()).unwrap();
    assert_eq!(reply.status, 429);
    assert_eq!(reply.header("retry-after"), Some("3"));
    assert_eq!(reply.json()["error"]["code"], 4);
    let (status, answer) = post(meta.addr(), &path, &body);
    assert_eq!((status, answer["error"]["code"].clone()), (400, json!(190)));
    let (status, _) = post(meta.addr(), &path, &body);
    assert_eq!(status, 200);
    assert_eq!(meta.accepted().len(), 1);
}

#[test]
fn control_api_and_binary() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_insider-simulator"))
        .args([
            "--kind",
            "meta",
            "--listen",
            "127.0.0.1:0",
            "--pixel-id",
            PIXEL,
        ])
        .env("META_ACCESS_TOKEN", TOKEN)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("binary starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr: SocketAddr = line
        .trim()
        .strip_prefix("listening on http://")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .parse()
        .unwrap();
    let (status, _) = post(
        addr,
        "/_simulator/faults",
        &json!({"fault": {"kind": "server_error", "status": 503}, "next": 1}),
    );
    assert_eq!(status, 204);
    let path = events_path(PIXEL, TOKEN);
    assert_eq!(post(addr, &path, &json!({"data": [event("a")]})).0, 503);
    assert_eq!(post(addr, &path, &json!({"data": [event("a")]})).0, 200);
    let stats = send(addr, "GET", "/_simulator/stats", &[], b"")
        .unwrap()
        .json();
    assert_eq!(stats["events_received"], 1);
    assert_eq!(stats["by_status"], json!({"200": 1, "503": 1}));
    let accepted = send(addr, "GET", "/_simulator/accepted", &[], b"").unwrap();
    assert_eq!(accepted.body.lines().count(), 1);
    assert_eq!(post(addr, "/_simulator/reset", &json!({})).0, 204);
    let stats = send(addr, "GET", "/_simulator/stats", &[], b"")
        .unwrap()
        .json();
    assert_eq!(stats["requests"], 0);
    // Killed, so waiting cannot hang.
    let _ = child.kill();
    let _ = child.wait();
}
