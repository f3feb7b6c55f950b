//! Consent mode end to end, with real processes and the Insider simulator: with
//! `"consent": {"mode": "required"}` only events that carry consent reach Insider; the others are
//! counted as skipped for `no consent` (in `send`'s summary, `serve`'s metrics and `render`'s
//! notes), never sent and never dead-lettered.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::service::{self, Service};
use common::{Run, hardal_send, recent, simulator};
use serde_json::{Value, json};

/// Event `i`'s consent, by `i % 5`: Hardal's `properties.consent`, a top-level `consent`, the
/// map form, none, and a refusal.
fn events(n: u64) -> String {
    (0..n)
        .map(|i| {
            let mut event = json!({"id": format!("e{i}"), "event_name": "test_event",
                                   "created_at": recent(), "user_id": format!("u{}", i % 7),
                                   "properties": {"seq": i}});
            match i % 5 {
                0 => event["properties"]["consent"] = json!("true"),
                1 => event["consent"] = json!(true),
                2 => event["consent"] = json!({"marketing": "true", "analytics": false}),
                3 => {}
                _ => event["consent"] = json!("false"),
            }
            event.to_string() + "\n"
        })
        .collect()
}

/// The events of [`events`] that carry consent for a marketing destination.
fn granted(n: u64) -> BTreeSet<u64> {
    (0..n).filter(|i| i % 5 < 3).collect()
}

/// One `insider` destination that forwards only events with consent.
fn required(endpoint: String) -> Value {
    json!({"id": "insider", "type": "insider", "consent": {"mode": "required"},
           "partner_name": "mybrand", "request_token": "${INSIDER_REQUEST_TOKEN}",
           "endpoint": endpoint, "max_users_per_request": 25})
}

#[test]
fn send_delivers_only_events_with_consent_and_counts_the_rest() {
    let sim = simulator();
    let run = Run::new("consent-send");
    let n = 200;
    let mut config = common::binary_config(&sim);
    config["destinations"] = json!([required(sim.upsert_url())]);
    let child = hardal_send(&run, &config, &events(n), &["--json"]);
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary: Value = serde_json::from_slice(&output.stdout).unwrap();
    let insider = &summary["destinations"][0];
    let skipped = n - granted(n).len() as u64;
    assert_eq!(
        (
            &insider["delivered"],
            &insider["skipped"],
            &insider["no_consent"],
            &insider["dead_lettered"]
        ),
        (
            &json!(granted(n).len()),
            &json!(skipped),
            &json!(skipped),
            &json!(0)
        ),
        "{insider}"
    );
    let reached: BTreeSet<u64> = service::delivered(&sim).0.into_keys().collect();
    assert_eq!(reached, granted(n));
    assert!(run.dead_letters().is_empty());
}

#[test]
fn send_prints_the_consent_skips_in_its_summary() {
    let sim = simulator();
    let run = Run::new("consent-send-text");
    let mut config = common::binary_config(&sim);
    config["destinations"] = json!([required(sim.upsert_url())]);
    let output = hardal_send(&run, &config, &events(10), &[])
        .wait_with_output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stderr);
    assert!(
        text.contains("insider: 6 delivered, 4 skipped,")
            && text.contains("skipped: no consent: 4 events"),
        "{text}"
    );
}

#[test]
fn serve_delivers_only_events_with_consent_and_counts_the_rest_in_its_metrics() {
    let sim = simulator();
    let n = 200;
    let config = json!({"destinations": [required(sim.upsert_url())],
                        "delivery": {"concurrency": 2, "linger_ms": 5},
                        "server": {}, "backlog": {"type": "sqlite"}});
    let service = Service::start("consent", &config);
    let (status, answer) = service.post_ndjson(&events(n));
    assert_eq!(status, 202, "{answer}");
    let skipped = (n - granted(n).len() as u64) as f64;
    let wait = Duration::from_secs(60);
    service::wait_until("every event is resolved", wait, || {
        service.spool_depth("insider") == 0
    });
    service::wait_until("the skips are counted", wait, || {
        service.metric("hardal_events_no_consent_total") == skipped
    });
    let reached: BTreeSet<u64> = service::delivered(&sim).0.into_keys().collect();
    assert_eq!(reached, granted(n));
    let scrape = service.get("/metrics").1;
    let scrape = prometheus_parse::Scrape::parse(scrape.lines().map(|l| Ok(l.to_owned()))).unwrap();
    let ending = |name: &str| -> f64 {
        service::samples(&scrape, "hardal_events_resolved_total")
            .iter()
            .filter(|(labels, _)| labels["ending"] == name)
            .map(|(_, v)| v)
            .sum()
    };
    assert_eq!(
        (
            ending("delivered"),
            ending("skipped"),
            ending("dead_lettered")
        ),
        (granted(n).len() as f64, skipped, 0.0)
    );
    assert_eq!(service.stop(), Some(0));
}

#[test]
fn render_notes_each_event_without_consent() {
    let run = Run::new("consent-render");
    let config = json!({"destinations": [required("http://127.0.0.1:9/upsert".to_owned())]});
    std::fs::write(run.dir.join("config.json"), config.to_string()).unwrap();
    std::fs::write(run.dir.join("events.ndjson"), events(5)).unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_hardal"))
        .args(["render", "--config", "config.json", "events.ndjson"])
        .current_dir(&run.dir)
        .output()
        .unwrap();
    assert!(output.status.success());
    let messages = String::from_utf8(output.stderr).unwrap();
    expect_test::expect![[r#"
        event 4 (line 4): destination `insider` skips it: no consent
        event 5 (line 5): destination `insider` skips it: no consent
        rendered 5 events: 3 bodies, 2 skipped (2 without consent), 0 expired, 0 repaired, 0 with fields left out, 0 errors
    "#]].assert_eq(&messages);
    assert_eq!(String::from_utf8(output.stdout).unwrap().lines().count(), 3);
}

#[test]
fn ga4_passes_on_the_consent_it_read() {
    // Consent mode off, so that every event is sent: GA4 is told what each one carried.
    let run = Run::new("consent-ga4");
    let config = json!({"destinations": [{"id": "ga4", "type": "ga4", "consent": {"mode": "off"},
                                          "measurement_id": "G-TEST", "api_secret": "s3cret"}]});
    std::fs::write(run.dir.join("config.json"), config.to_string()).unwrap();
    let events: String = [json!("true"), json!("false"), Value::Null]
        .into_iter()
        .enumerate()
        .map(|(i, consent)| {
            json!({"event_name": "page_view", "created_at": recent(), "user_id": format!("u{i}"),
                   "consent": consent})
            .to_string()
                + "\n"
        })
        .collect();
    std::fs::write(run.dir.join("events.ndjson"), events).unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_hardal"))
        .args(["render", "--config", "config.json", "events.ndjson"])
        .current_dir(&run.dir)
        .output()
        .unwrap();
    assert!(output.status.success());
    let consents: Vec<Value> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|body| serde_json::from_str::<Value>(body).unwrap()["consent"].clone())
        .collect();
    assert_eq!(
        consents,
        [
            json!({"ad_user_data": "GRANTED", "ad_personalization": "GRANTED"}),
            json!({"ad_user_data": "DENIED", "ad_personalization": "DENIED"}),
            Value::Null,
        ]
    );
}
