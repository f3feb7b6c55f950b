//! The GA4 stand-in: 204 to what GA4 takes and to what it would drop (with the validation
//! messages recorded), the validation server's answer, the two batching bugs refused with 400,
//! wrong credentials kept out, and faults.

mod common;

use common::send;
use hardal_insider_simulator::ga4::{Ga4Config, Ga4Simulator};
use hardal_insider_simulator::{Fault, Scope};
use serde_json::{Value, json};

const COLLECT: &str = "/mp/collect?measurement_id=G-TEST&api_secret=s3cr3t-value";

fn post(sim: &Ga4Simulator, path: &str, body: &str) -> (u16, String) {
    let reply = send(
        sim.addr(),
        "POST",
        path,
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    )
    .expect("an answer");
    (reply.status, reply.body)
}

fn start() -> Ga4Simulator {
    Ga4Simulator::start(Ga4Config::new("G-TEST", "s3cr3t-value")).expect("starts")
}

#[test]
fn takes_events_and_records_what_validation_would_say() {
    let sim = start();
    let ok = json!({"client_id": "c1", "user_id": "u1", "events": [
        {"name": "purchase", "params": {"transaction_id": "T", "value": 3, "currency": "TRY"}},
        {"name": "page_view", "params": {"page_location": "https://x.example/"}}
    ]});
    assert_eq!(post(&sim, COLLECT, &ok.to_string()), (204, String::new()));
    let bad =
        json!({"client_id": "c2", "events": [{"name": "session_start", "params": {"value": 1}}]});
    assert_eq!(
        post(&sim, COLLECT, &bad.to_string()).0,
        204,
        "GA4 answers 2xx to what it drops"
    );
    let events: Vec<(String, String)> = sim
        .events()
        .iter()
        .map(|e| (e.client_id.clone(), e.name.clone()))
        .collect();
    assert_eq!(
        events,
        [
            ("c1".into(), "purchase".into()),
            ("c1".into(), "page_view".into()),
            ("c2".into(), "session_start".into())
        ]
    );
    let requests = sim.requests();
    assert!(requests[0].validation_messages.is_empty());
    let codes: Vec<&str> = requests[1]
        .validation_messages
        .iter()
        .map(|m| m.validation_code.as_str())
        .collect();
    assert_eq!(codes, ["NAME_RESERVED", "VALUE_REQUIRED"]);
}

#[test]
fn the_validation_server_answers_messages() {
    let sim = start();
    let body = json!({"client_id": "c", "events": [{"name": "_badEventName", "params": {}}]});
    let (status, answer) = post(
        &sim,
        "/debug/mp/collect?measurement_id=G-TEST&api_secret=s3cr3t-value",
        &body.to_string(),
    );
    assert_eq!(status, 200);
    let answer: Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(
        answer,
        json!({"validationMessages": [{
            "fieldPath": "events[0].name",
            "description": "Event at index: [0] has invalid name [_badEventName]. Names must start with an alphabetic character.",
            "validationCode": "NAME_INVALID"
        }]})
    );
    assert!(
        sim.events().is_empty(),
        "the validation server keeps nothing"
    );
}

#[test]
fn batching_bugs_are_refused() {
    let sim = start();
    let two_clients = r#"{"client_id":"a","client_id":"b","events":[{"name":"x"}]}"#;
    assert_eq!(post(&sim, COLLECT, two_clients).0, 400);
    let events: Vec<Value> = (0..26).map(|i| json!({"name": format!("e{i}")})).collect();
    let many = json!({"client_id": "a", "events": events});
    assert_eq!(post(&sim, COLLECT, &many.to_string()).0, 400);
    let events: Vec<Value> = (0..25).map(|i| json!({"name": format!("e{i}")})).collect();
    let full = json!({"client_id": "a", "events": events});
    assert_eq!(post(&sim, COLLECT, &full.to_string()).0, 204);
    assert_eq!(sim.events().len(), 25);
}

#[test]
fn wrong_credentials_keep_nothing_and_faults_answer_instead() {
    let sim = start();
    let body = json!({"client_id": "a", "events": [{"name": "x"}]}).to_string();
    assert_eq!(
        post(
            &sim,
            "/mp/collect?measurement_id=G-TEST&api_secret=nope",
            &body
        )
        .0,
        204
    );
    assert!(sim.events().is_empty());
    sim.inject(Fault::Unauthorized, Scope::Next(1)).unwrap();
    assert_eq!(post(&sim, COLLECT, &body).0, 401);
    sim.inject(Fault::ServerError { status: 503 }, Scope::Next(1))
        .unwrap();
    assert_eq!(post(&sim, COLLECT, &body).0, 503);
    assert_eq!(post(&sim, COLLECT, &body).0, 204);
    assert_eq!(sim.events().len(), 1);
    // The control API injects the same faults over HTTP.
    let reply = send(
        sim.addr(),
        "POST",
        "/_simulator/faults",
        &[],
        br#"{"fault":{"kind":"too_many_requests"},"next":1}"#,
    )
    .unwrap();
    assert_eq!(reply.status, 204);
    assert_eq!(post(&sim, COLLECT, &body).0, 429);
}
