//! The `ga4` destination end to end: `hardal send` against the GA4 stand-in (the example events
//! delivered, one client per request, at most 25 events a request, the 72-hour window, GA4's
//! limits applied with notes so that the stand-in's independent validation finds nothing),
//! `hardal render` naming every repair in GA4's validation terms without the secret, and
//! `hardal validate` naming bad fields.

mod common;

use std::collections::BTreeMap;
use std::process::{Command, Output};

use common::{Run, fast_delivery, recent};
use hardal_insider_simulator::ga4::{Ga4Config, Ga4Simulator};
use hardal_insider_simulator::{Fault, Scope};
use hardal_runner::config::{Config, load_str};
use serde_json::{Value, json};

const SECRET: &str = "ga4-test-api-secret";

fn stand_in() -> Ga4Simulator {
    Ga4Simulator::start(Ga4Config::new("G-TEST", SECRET)).expect("the stand-in starts")
}

fn destination(sim: &Ga4Simulator) -> Value {
    json!({"id": "ga4", "type": "ga4", "consent": {"mode": "off"}, "measurement_id": "G-TEST",
           "api_secret": "${GA4_API_SECRET}", "base_url": sim.base_url()})
}

fn config(sim: &Ga4Simulator) -> Config {
    let text = json!({"destinations": [destination(sim)], "delivery": fast_delivery()}).to_string();
    load_str(&text, &|name| {
        (name == "GA4_API_SECRET").then(|| SECRET.to_owned())
    })
    .expect("the test config is valid")
}

/// The example events made live (an hour old), except the one from 2019, which stays old.
fn live_examples() -> Vec<Value> {
    include_str!("../../../examples/events.ndjson")
        .lines()
        .map(|line| {
            let mut event: Value = serde_json::from_str(line).unwrap();
            if !event["created_at"]
                .as_str()
                .is_some_and(|t| t.starts_with("2019"))
            {
                event["created_at"] = json!(recent());
            }
            event
        })
        .collect()
}

fn ndjson(events: &[Value]) -> String {
    events.iter().map(|e| e.to_string() + "\n").collect()
}

/// The client an event belongs to under the default `client_id` template.
fn client_of(event: &Value) -> Option<String> {
    let id = event.get("user_id").or_else(|| event.get("session_id"))?;
    Some(match id {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    })
}

/// No request the stand-in saw has a validation message: hardal's rules left nothing for GA4 to
/// drop. (The stand-in's rules are an independent reading of GA4's documentation.)
fn assert_nothing_for_ga4_to_drop(sim: &Ga4Simulator) {
    for request in sim.requests() {
        assert!(
            request.validation_messages.is_empty() && request.refused.is_none(),
            "{request:?}"
        );
    }
}

#[test]
fn the_example_events_are_delivered_one_client_per_request() {
    let sim = stand_in();
    let run = Run::new("ga4-examples");
    let events = live_examples();
    let summary = run.send(config(&sim), &ndjson(&events));
    let totals = &summary.destinations[0].totals;
    // 23 examples: the 2019 page view is past GA4's 72 hours, the purchase without any order id
    // is refused (GA4 requires transaction_id), the rest are delivered.
    assert_eq!(
        (totals.delivered, totals.expired, totals.rejected),
        (21, 1, 1),
        "{}",
        summary.text()
    );
    let dead = run.dead_letters();
    assert_eq!(dead.len(), 1);
    assert!(
        dead[0].to_string().contains("transaction_id"),
        "{}",
        dead[0]
    );

    // Every event arrived under its own client, and each client's events in input order.
    let mut expected: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for event in &events[..events.len() - 1] {
        if event["event_name"] == "purchase" && event.get("id").is_none() {
            continue;
        }
        let name = event["event_name"].as_str().unwrap().to_owned();
        expected
            .entry(client_of(event).unwrap())
            .or_default()
            .push(name);
    }
    let mut got: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for event in sim.events() {
        got.entry(event.client_id.clone())
            .or_default()
            .push(event.name);
    }
    let expected_counts: BTreeMap<&String, usize> =
        expected.iter().map(|(k, v)| (k, v.len())).collect();
    let got_counts: BTreeMap<&String, usize> = got.iter().map(|(k, v)| (k, v.len())).collect();
    assert_eq!(got_counts, expected_counts);
    assert_nothing_for_ga4_to_drop(&sim);
    let requests = sim.requests();
    assert!(requests.iter().all(|r| r.status == 204));
    assert_eq!(requests.iter().map(|r| r.events).sum::<usize>(), 21);
}

#[test]
fn a_busy_client_is_sent_25_events_a_request() {
    let sim = stand_in();
    let run = Run::new("ga4-batching");
    // 60 events of two clients, interleaved.
    let events: Vec<Value> = (0..60)
        .map(|i| {
            json!({"id": format!("e{i}"), "event_name": "test_event", "created_at": recent(),
                   "user_id": format!("u{}", i % 2), "properties": {"seq": i}})
        })
        .collect();
    let summary = run.send(config(&sim), &ndjson(&events));
    assert!(summary.success(), "{}", summary.text());
    let requests = sim.requests();
    // The stand-in answers 400 to more than 25 events; every request was taken.
    assert!(
        requests.iter().all(|r| r.status == 204 && r.events <= 25),
        "{requests:?}"
    );
    assert!(
        requests.len() >= 4,
        "60 events of two clients need at least 4 requests"
    );
    // Each client's events arrived in input order.
    for client in ["u0", "u1"] {
        let seqs: Vec<u64> = sim
            .events()
            .iter()
            .filter(|e| e.client_id == client)
            .map(|e| e.params["seq"].as_u64().unwrap())
            .collect();
        assert_eq!(seqs.len(), 30);
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{client}: {seqs:?}");
    }
    assert_nothing_for_ga4_to_drop(&sim);
}

#[test]
fn limits_are_trimmed_with_notes_and_ga4_finds_nothing_to_drop() {
    let sim = stand_in();
    let run = Run::new("ga4-limits");
    let events: Vec<Value> = include_str!("../../ga4/tests/fixtures/limits.ndjson")
        .lines()
        .map(|line| {
            let mut event: Value = serde_json::from_str(line).unwrap();
            if event["created_at"] != "not a time" {
                event["created_at"] = json!(recent());
            }
            event
        })
        .collect();
    let summary = run.send(config(&sim), &ndjson(&events));
    let totals = &summary.destinations[0].totals;
    // Two of eleven cannot be sent: a name without a letter, an event without a client.
    assert_eq!(
        (totals.delivered, totals.rejected),
        (9, 2),
        "{}",
        summary.text()
    );
    assert!(
        totals.repaired > 0 && totals.fields_dropped > 0,
        "{}",
        summary.text()
    );
    let changes: Vec<&String> = totals.field_changes.keys().collect();
    for expected in [
        "NAME_RESERVED",
        "NAME_INVALID",
        "VALUE_OUT_OF_BOUNDS",
        "EXCEEDED_MAX_ENTITIES",
    ] {
        assert!(
            changes.iter().any(|c| c.contains(expected)),
            "{expected} not among {changes:?}"
        );
    }
    assert_nothing_for_ga4_to_drop(&sim);
}

#[test]
fn credentials_refused_pause_the_destination() {
    let sim = stand_in();
    sim.inject(Fault::Unauthorized, Scope::Always).unwrap();
    let run = Run::new("ga4-pause");
    let events = ndjson(&live_examples()[..3]);
    let summary = run.send(config(&sim), &events);
    let destination = &summary.destinations[0];
    assert!(destination.paused.is_some(), "{}", summary.text());
    assert_eq!(destination.totals.delivered, 0);
    // The URL carries the secret; nothing the run reports shows it.
    assert!(!summary.text().contains(SECRET), "{}", summary.text());
}

fn hardal(args: &[&str], secret: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_hardal"));
    command
        .args(args)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    match secret {
        Some(secret) => command.env("GA4_API_SECRET", secret),
        None => command.env_remove("GA4_API_SECRET"),
    };
    command.output().expect("hardal runs")
}

#[test]
fn render_names_every_change_in_ga4_terms_and_never_the_secret() {
    let run = Run::new("ga4-render");
    let dir = &run.dir;
    let events = dir.join("limits.ndjson");
    std::fs::write(
        &events,
        include_str!("../../ga4/tests/fixtures/limits.ndjson"),
    )
    .unwrap();
    // The example with consent mode off: the fixture's events are about GA4's limits, and most
    // carry no consent (`tests/consent.rs` tests consent).
    let mut config: Value =
        serde_json::from_str(include_str!("../../../examples/ga4.json")).unwrap();
    config["destinations"][0]["consent"] = json!({"mode": "off"});
    let config_path = dir.join("ga4.json");
    std::fs::write(&config_path, config.to_string()).unwrap();
    let output = hardal(
        &[
            "render",
            "--config",
            config_path.to_str().unwrap(),
            "--now",
            "2024-12-21T00:00:00Z",
            events.to_str().unwrap(),
        ],
        Some(SECRET),
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    for expected in [
        "repaired name: NAME_RESERVED: `session_start` is reserved by GA4; sent as `hardal_session_start`",
        "dropped params: EXCEEDED_MAX_ENTITIES: 5 parameters over the limit left out",
        "repaired params.description: VALUE_OUT_OF_BOUNDS: `description` cut from 130 to 100 characters",
        "NAME_INVALID: `1234` has no letter",
    ] {
        assert!(stderr.contains(expected), "{expected}\nnot in\n{stderr}");
    }
    assert!(stdout.lines().count() >= 8, "{stdout}");
    assert!(!stdout.contains(SECRET) && !stderr.contains(SECRET));
}

#[test]
fn validate_names_the_bad_fields_of_a_ga4_destination() {
    let run = Run::new("ga4-validate");
    let dir = &run.dir;
    let path = dir.join("bad.json");
    std::fs::write(
        &path,
        json!({"destinations": [{"id": "ga4", "type": "ga4", "consent": {"mode": "off"}, "measurement_id": "G 1",
               "api_secret": "${GA4_API_SECRET}", "max_events_per_request": 26,
               "presets": ["purchase", "refund"], "client_idd": "x"}]})
        .to_string(),
    )
    .unwrap();
    let output = hardal(
        &["validate", "--config", path.to_str().unwrap()],
        Some(SECRET),
    );
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    for pointer in [
        "/destinations/0/measurement_id",
        "/destinations/0/max_events_per_request",
        "/destinations/0/presets/1",
        "/destinations/0/client_idd",
    ] {
        assert!(stderr.contains(pointer), "{pointer} not in\n{stderr}");
    }
    assert!(!stderr.contains(SECRET));
    let good = hardal(&["validate", "--config", "examples/ga4.json"], Some(SECRET));
    assert!(
        good.status.success(),
        "{}",
        String::from_utf8_lossy(&good.stderr)
    );
}

#[test]
fn an_unreachable_ga4_never_shows_the_secret_in_dead_letters() {
    // A port nothing listens on: every attempt fails with the transport's error, whose text
    // could name the URL, and the URL carries the secret.
    let base_url = format!("http://127.0.0.1:{}", common::service::free_port());
    let mut delivery = fast_delivery();
    delivery["max_attempts"] = json!(2);
    let text = json!({"destinations": [{"id": "ga4", "type": "ga4", "consent": {"mode": "off"}, "measurement_id": "G-TEST",
                      "api_secret": "${GA4_API_SECRET}", "base_url": base_url}],
                      "delivery": delivery})
    .to_string();
    let config = load_str(&text, &|name| {
        (name == "GA4_API_SECRET").then(|| SECRET.to_owned())
    })
    .unwrap();
    let run = Run::new("ga4-unreachable");
    let summary = run.send(config, &ndjson(&live_examples()[..2]));
    assert_eq!(
        summary.destinations[0].totals.dead_lettered,
        2,
        "{}",
        summary.text()
    );
    let dead = run.dead_letters();
    let reasons = dead.iter().map(Value::to_string).collect::<String>();
    assert!(!reasons.contains(SECRET), "{reasons}");
    assert!(!summary.text().contains(SECRET), "{}", summary.text());
}

#[test]
fn hardal_serve_forwards_the_examples_to_ga4() {
    use common::service::{Service, wait_until};
    // The service reads INSIDER_REQUEST_TOKEN from its environment; the stand-in takes it as
    // the API secret.
    let sim = Ga4Simulator::start(Ga4Config::new("G-TEST", common::TOKEN)).unwrap();
    let config = json!({
        "destinations": [{"id": "ga4", "type": "ga4", "consent": {"mode": "off"}, "measurement_id": "G-TEST",
                          "api_secret": "${INSIDER_REQUEST_TOKEN}", "base_url": sim.base_url()}],
        "delivery": {"concurrency": 2, "linger_ms": 5, "backoff_initial_ms": 20, "backoff_max_ms": 300},
        "server": {},
        "backlog": {"type": "sqlite"}
    });
    let service = Service::start("ga4", &config);
    let (status, answer) = service.post_ndjson(&ndjson(&live_examples()));
    assert_eq!(
        (status, answer["accepted"].as_u64()),
        (202, Some(23)),
        "{answer}"
    );
    wait_until(
        "GA4 took the 21 sendable examples",
        std::time::Duration::from_secs(30),
        || sim.events().len() == 21,
    );
    assert_nothing_for_ga4_to_drop(&sim);
    let log = service.log();
    assert!(!log.contains(common::TOKEN), "{log}");
    assert_eq!(service.stop(), Some(0));
}
