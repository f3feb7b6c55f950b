//! The `ga4` destination as data: configuration and fixture events in, request bodies (or skips,
//! expiries and refusals) and notes out, reviewed in `tests/snapshots/`.

use std::time::{Duration, SystemTime};

use expect_test::expect_file;
use hardal_core::{Destination, Event, MapContext, Mapped, Outcome, Record};
use hardal_ga4::{Ga4, Ga4Config, PRESET_FILES, encode_body};
use serde_json::{Value, json};

/// 2024-12-21T00:00:00Z: within 72 hours of the fixture events of 2024-12-20.
const NOW: u64 = 1_734_739_200;

fn build(config: Value) -> Ga4 {
    let config: Ga4Config = serde_json::from_value(config).unwrap();
    Ga4::build("ga4", config).unwrap()
}

fn base() -> Value {
    json!({"measurement_id": "G-TEST123", "api_secret": "s3cr3t-api-secret", "base_url": "http://127.0.0.1:9"})
}

fn events(text: &str) -> Vec<Value> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// One block per event: a title line, the notes, then the request body of its records
/// pretty-printed, or the skip, expiry or refusal. `now` gives the moment of mapping per event.
fn render(destination: &Ga4, events: &[Value], now: impl Fn(&Value) -> SystemTime) -> String {
    let mut out = String::new();
    for (i, event) in events.iter().enumerate() {
        out.push_str(&format!("## {} {}\n", i + 1, event["event_name"]));
        let context = MapContext::at(now(event));
        let mapped = destination.map(&Event::from_value(event.clone()).unwrap(), &context);
        if let Ok(mapped) = &mapped {
            for note in &mapped.notes {
                out.push_str(&format!("note: {note}\n"));
            }
        }
        match mapped {
            Ok(Mapped {
                outcome: Outcome::Records(records),
                ..
            }) => {
                let batch: Vec<&Record> = records.iter().collect();
                let body: Value = serde_json::from_slice(&encode_body(&batch)).unwrap();
                out.push_str(&serde_json::to_string_pretty(&body).unwrap());
                out.push('\n');
            }
            Ok(Mapped {
                outcome: Outcome::Skipped(reason),
                ..
            }) => out.push_str(&format!("skipped: {reason}\n")),
            Ok(Mapped {
                outcome: Outcome::Expired(rule),
                ..
            }) => out.push_str(&format!("expired: {rule}\n")),
            Err(error) => out.push_str(&format!("refused: {error}\n")),
        }
    }
    out
}

/// An hour after the event's own time, so every example is within GA4's window.
fn an_hour_later(event: &Value) -> SystemTime {
    event
        .get("created_at")
        .and_then(hardal_core::convert::to_system_time)
        .unwrap_or(SystemTime::UNIX_EPOCH + Duration::from_secs(NOW))
        + Duration::from_secs(3600)
}

#[test]
fn the_example_events() {
    let destination = build(base());
    let events = events(include_str!("../../../examples/events.ndjson"));
    expect_file!["snapshots/examples.txt"].assert_eq(&render(&destination, &events, an_hour_later));
}

#[test]
fn limits_and_reserved_names() {
    let destination = build(base());
    let events = events(include_str!("fixtures/limits.ndjson"));
    let now = |_: &Value| SystemTime::UNIX_EPOCH + Duration::from_secs(NOW);
    expect_file!["snapshots/limits.txt"].assert_eq(&render(&destination, &events, now));
}

#[test]
fn the_72_hour_window() {
    let destination = build(base());
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(NOW);
    let event = |hours_ago: i64| {
        let created = NOW as i64 - hours_ago * 3600;
        Event::from_value(json!({"event_name": "login", "user_id": "u1", "created_at": created}))
            .unwrap()
    };
    let outcome = |hours_ago| {
        let mapped = destination
            .map(&event(hours_ago), &MapContext::at(at))
            .unwrap();
        match mapped.outcome {
            Outcome::Records(records) => {
                let body: Value = serde_json::from_slice(&records[0].payload).unwrap();
                match body["events"][0].get("timestamp_micros") {
                    Some(micros) => format!("sent at {micros}"),
                    None => format!("sent without a time ({})", mapped.notes[0]),
                }
            }
            Outcome::Expired(rule) => format!("expired: {rule}"),
            Outcome::Skipped(reason) => format!("skipped: {reason}"),
        }
    };
    let got: Vec<String> = [71, 72, 73, 24 * 365, -1]
        .into_iter()
        .map(outcome)
        .collect();
    assert_eq!(
        got,
        [
            "sent at 1734483600000000",
            "sent at 1734480000000000",
            "expired: GA4 takes events up to 72 hours old (timestamp_micros)",
            "expired: GA4 takes events up to 72 hours old (timestamp_micros)",
            "sent without a time (dropped timestamp_micros: VALUE_INVALID: created_at 1734742800 lies ahead; GA4 uses the time it arrives)",
        ]
    );
}

#[test]
fn your_mappings_come_before_the_presets_and_fields_are_templates() {
    let mut config = base();
    config.as_object_mut().unwrap().extend(
        json!({
            "client_id": "##properties.ga_client_id##",
            "user_id": null,
            "user_properties": {"plan": "##properties.plan##"},
            "presets": ["purchase"],
            "mappings": [{"when": {"event_name": "wishlist_add"},
                          "event": {"name": "add_to_wishlist", "params": {"item_id": "##properties.sku##"}}}]
        })
        .as_object()
        .unwrap()
        .clone(),
    );
    let destination = build(config);
    let events = vec![
        json!({"event_name": "wishlist_add", "user_id": "u1", "properties": {"ga_client_id": "123.456", "sku": "S-1", "plan": "pro"}}),
        json!({"event_name": "login", "user_id": "u1", "properties": {"ga_client_id": "123.456"}}),
        json!({"event_name": "wishlist_add", "user_id": "u1", "properties": {"sku": "S-2"}}),
    ];
    let now = |_: &Value| SystemTime::UNIX_EPOCH + Duration::from_secs(NOW);
    expect_file!["snapshots/mappings.txt"].assert_eq(&render(&destination, &events, now));
}

#[test]
fn every_preset_file_parses_and_compiles() {
    for (name, text) in PRESET_FILES {
        let file: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("{name}: {e}"));
        hardal_core::Template::compile(&file["event"]).unwrap_or_else(|e| panic!("{name}: {e:?}"));
    }
}

#[test]
fn configuration_problems_are_reported_together() {
    let config: Ga4Config = serde_json::from_value(json!({
        "measurement_id": "G-1", "api_secret": "has space&more", "base_url": "ftp://x?y",
        "client_id": null, "presets": ["purchase", "purchase"],
        "mappings": [{"when": {"event_name": "x"}, "event": {"name": "##nope | frobnicate##"}}]
    }))
    .unwrap();
    let errors = Ga4::build("ga4", config).unwrap_err();
    let shown: Vec<String> = errors
        .iter()
        .map(|e| format!("{}: {}", e.pointer, e.message))
        .collect();
    expect_file!["snapshots/config-errors.txt"].assert_eq(&(shown.join("\n") + "\n"));
}

#[test]
fn the_secret_is_only_in_the_url_sent() {
    let destination = build(base());
    let endpoint = destination.endpoint().unwrap();
    assert_eq!(
        endpoint,
        "http://127.0.0.1:9/mp/collect?measurement_id=G-TEST123&api_secret="
    );
    let shown = format!("{destination:?}");
    assert!(!shown.contains("s3cr3t-api-secret"), "{shown}");
}

#[test]
fn requests_hold_one_client_and_at_most_25_events() {
    let destination = build(base());
    // The example events of many users, each three times, then 30 more of one user.
    let mut events: Vec<Value> = Vec::new();
    for _ in 0..3 {
        events.extend(self::events(include_str!(
            "../../../examples/events.ndjson"
        )));
    }
    events.extend(
        (0..30).map(|i| json!({"event_name": "tick", "user_id": "busy", "properties": {"i": i}})),
    );
    let records: Vec<Record> = events
        .iter()
        .filter_map(|e| {
            let context = MapContext::at(an_hour_later(e));
            destination
                .map(&Event::from_value(e.clone()).unwrap(), &context)
                .ok()?
                .into_records()
        })
        .flatten()
        .collect();
    // Batched as the runner does: records offered in order to a fresh batcher per request.
    let mut requests: Vec<Vec<&Record>> = Vec::new();
    let mut batcher = destination.batcher();
    let mut current: Vec<&Record> = Vec::new();
    for record in &records {
        if !batcher.offer(record) {
            requests.push(std::mem::take(&mut current));
            batcher = destination.batcher();
            assert!(
                batcher.offer(record),
                "a fresh batcher takes any mapped record"
            );
        }
        current.push(record);
    }
    requests.push(current);
    let context = hardal_core::destination::SendContext::first(SystemTime::UNIX_EPOCH);
    for request in &requests {
        let body = destination.encode(request, &context).body;
        let payloads: usize = request.iter().map(|r| r.payload.len()).sum();
        assert!(body.len() <= destination.body_size(request.len(), payloads));
        let body: Value = serde_json::from_slice(&body).unwrap();
        let events = body["events"].as_array().unwrap();
        assert!(!events.is_empty() && events.len() <= 25, "{body}");
        // Each record's own payload names the same client as the request.
        for record in request {
            let alone: Value = serde_json::from_slice(&record.payload).unwrap();
            assert_eq!(alone["client_id"], body["client_id"]);
        }
    }
    let total: usize = requests.iter().map(Vec::len).sum();
    assert_eq!(total, records.len());
    let busy = requests
        .iter()
        .filter(|r| serde_json::from_slice::<Value>(&r[0].payload).unwrap()["client_id"] == "busy");
    assert_eq!(busy.map(Vec::len).collect::<Vec<_>>(), [25, 5]);
}
