//! What the simulator records: accepted users, deduplicated events, the request log, statistics,
//! the counting-only mode, and the async start.

mod common;

use common::{PARTNER, TOKEN, UPSERT, batch, send, simulator, upsert, upsert_to};
use hardal_insider_simulator::{Simulator, SimulatorConfig};
use serde_json::json;

fn event(name: &str, ts: &str) -> serde_json::Value {
    json!({"event_name": name, "timestamp": ts})
}

#[test]
fn identical_events_are_stored_once_per_user() {
    let sim = simulator();
    let a = event("homepage_view", "2024-05-01T10:00:00Z");
    let b = event("homepage_view", "2024-05-01T10:00:01Z");
    // The same event with its keys in another order is still the same event.
    let a_reordered = json!({"timestamp": "2024-05-01T10:00:00Z", "event_name": "homepage_view"});
    let ana = json!({"email": "ana@example.com"});
    let bob = json!({"email": "bob@example.com"});
    let first = batch(&[
        json!({"identifiers": ana, "events": [a, b]}),
        json!({"identifiers": bob, "events": [a]}),
    ]);
    let retry = batch(&[json!({"identifiers": ana, "events": [a_reordered]})]);
    assert_eq!(upsert(&sim, &first).status, 200);
    assert_eq!(upsert(&sim, &retry).status, 200);

    let stats = sim.stats();
    assert_eq!(stats.events_received, 4);
    assert_eq!(stats.events_unique, Some(3));
    let mut seen: Vec<_> = sim
        .accepted_events()
        .into_iter()
        .map(|e| (e.identifiers, e.event, e.first_request, e.times_received))
        .collect();
    seen.sort_by_key(|e| e.0.to_string() + &e.1.to_string());
    assert_eq!(
        seen,
        vec![
            (ana.clone(), a.clone(), 1, 2),
            (ana, b, 1, 1),
            (bob, a, 1, 1),
        ]
    );
}

#[test]
fn accepted_users_carry_request_number_index_and_time() {
    let sim = simulator();
    let before = std::time::SystemTime::now();
    let u = |id: &str| json!({"identifiers": {"uuid": id}, "attributes": {"name": "A"}});
    let bad = json!({"identifiers": {"uuid": 1}, "attributes": {"name": "A"}});
    upsert(&sim, &batch(&[u("a"), bad, u("b")]));
    upsert(&sim, &batch(&[u("c")]));
    let users: Vec<_> = sim
        .accepted_users()
        .into_iter()
        .map(|a| {
            assert!(a.received_at >= before);
            (a.request, a.index, a.user)
        })
        .collect();
    assert_eq!(users, vec![(1, 0, u("a")), (1, 2, u("b")), (2, 0, u("c"))]);

    let log = sim.requests();
    let summary: Vec<_> = log
        .iter()
        .map(|r| {
            (
                r.number,
                r.status,
                r.users,
                r.users_accepted,
                r.users_failed,
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![(1, Some(200), Some(3), 2, 1), (2, Some(200), Some(1), 1, 0)]
    );
}

#[test]
fn every_request_is_logged_with_its_status() {
    let sim = simulator();
    let body = batch(&[json!({"identifiers": {"uuid": "a"}, "attributes": {"name": "A"}})]);
    upsert(&sim, &body);
    upsert(&sim, "{}");
    send(sim.addr(), "POST", UPSERT, &[], body.as_bytes()).unwrap();
    let stats = sim.stats();
    assert_eq!(stats.requests, 3);
    assert_eq!(
        stats.by_status.into_iter().collect::<Vec<_>>(),
        vec![(200, 1), (400, 1), (401, 1)]
    );
    let sizes: Vec<_> = sim.requests().iter().map(|r| r.body_bytes).collect();
    assert_eq!(sizes, vec![body.len(), 2, body.len()]);
}

#[test]
fn counting_mode_keeps_no_users() {
    let sim = Simulator::start(SimulatorConfig {
        record_users: false,
        ..SimulatorConfig::new(PARTNER, TOKEN)
    })
    .unwrap();
    let e = event("homepage_view", "2024-05-01T10:00:00Z");
    let user = json!({"identifiers": {"uuid": "a"}, "events": [e, e]});
    assert_eq!(upsert(&sim, &batch(&[user.clone(), user])).status, 200);
    assert!(sim.accepted_users().is_empty());
    assert!(sim.accepted_events().is_empty());
    let stats = sim.stats();
    assert!(!stats.recording);
    assert_eq!(
        (
            stats.users_accepted,
            stats.events_received,
            stats.events_unique
        ),
        (2, 4, None)
    );
}

#[test]
fn reset_forgets_everything() {
    let sim = simulator();
    let body = batch(&[json!({"identifiers": {"uuid": "a"}, "attributes": {"name": "A"}})]);
    upsert(&sim, &body);
    sim.inject(
        hardal_insider_simulator::Fault::Unauthorized,
        hardal_insider_simulator::Scope::Always,
    )
    .unwrap();
    sim.reset();
    assert_eq!(sim.stats().requests, 0);
    assert!(sim.accepted_users().is_empty());
    assert_eq!(upsert(&sim, &body).status, 200);
    assert_eq!(sim.accepted_users()[0].request, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_async_start_serves_on_the_callers_runtime() {
    let sim = Simulator::start_async(SimulatorConfig::new(PARTNER, TOKEN))
        .await
        .unwrap();
    assert!(sim.upsert_url().starts_with("http://127.0.0.1:"));
    assert!(sim.upsert_url().ends_with(UPSERT));
    let body = batch(&[json!({"identifiers": {"uuid": "a"}, "attributes": {"name": "A"}})]);
    let addr = sim.addr();
    // The helper client blocks, so it runs off the runtime's workers.
    let reply = tokio::task::spawn_blocking(move || upsert_to(addr, &body))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(sim.accepted_users().len(), 1);
}

#[test]
fn dropping_the_simulator_stops_the_server() {
    let sim = simulator();
    let addr = sim.addr();
    drop(sim);
    assert!(std::net::TcpStream::connect(addr).is_err());
}

#[test]
fn only_loopback_addresses_are_bound() {
    let cases = ["0.0.0.0:0", "10.0.0.1:0", "localhost:0"];
    for listen in cases {
        let config = SimulatorConfig {
            listen: listen.into(),
            ..SimulatorConfig::new(PARTNER, TOKEN)
        };
        assert!(Simulator::start(config).is_err(), "{listen}");
    }
}
