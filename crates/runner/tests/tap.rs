//! `hardal tap` end to end: a real `hardal serve` delivering to the Insider simulator (one
//! destination retried once, one refusing every request while echoing our headers), tapped by a
//! real `hardal tap --json` process with filters, while events flow.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::service::{INGEST, Service, block_on, serve_config, wait_until};
use common::{TOKEN, recent, simulator};
use hardal_insider_simulator::{Fault, Scope};
use serde_json::{Value, json};

const TAP_TOKEN: &str = "tap-secret-token";
const WAIT: Duration = Duration::from_secs(60);

/// The address of the service's tap listener, from its log.
fn tap_url(service: &Service) -> String {
    let mut url = None;
    wait_until("the tap listens", WAIT, || {
        url = service
            .log()
            .lines()
            .find(|l| l.contains("Listening for taps."))
            .and_then(|l| l.split("address=").nth(1))
            .and_then(|a| a.split_whitespace().next())
            .map(|a| format!("http://{a}"));
        url.is_some()
    });
    url.unwrap()
}

/// A running `hardal tap --json`, its stdout collected line by line.
struct Tapping {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Tapping {
    fn start(url: &str, token: &str, filters: &[&str]) -> Tapping {
        let mut child = Command::new(env!("CARGO_BIN_EXE_hardal"))
            .args(["tap", "--json", "--url", url])
            .args(filters)
            .env("HARDAL_TAP_TOKEN", token)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("hardal tap starts");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let collected = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                collected.lock().unwrap().push(line);
            }
        });
        Tapping { child, lines }
    }

    fn text(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    fn values(&self) -> Vec<Value> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }

    /// Waits until the tapped stream holds a line for which `found` holds.
    fn wait_for(&self, what: &str, found: impl Fn(&Value) -> bool) {
        wait_until(what, WAIT, || self.values().iter().any(&found));
    }
}

impl Drop for Tapping {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn event(id: &str, name: &str, user: &str) -> Value {
    json!({"id": id, "event_name": name, "created_at": recent(), "user_id": user,
           "properties": {"plan": "gold"}})
}

fn ndjson(events: &[Value]) -> String {
    events.iter().map(|e| e.to_string() + "\n").collect()
}

/// Events resolved for `destination` so far, from `/metrics`.
fn resolved(service: &Service, destination: &str) -> f64 {
    let label = format!("destination=\"{destination}\"");
    service
        .get("/metrics")
        .1
        .lines()
        .filter(|l| l.starts_with("hardal_events_resolved_total{") && l.contains(&label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The verdicts the stream shows for one event at one destination, in order.
fn verdicts(lines: &[Value], event_id: &str, destination: &str) -> Vec<String> {
    lines
        .iter()
        .filter(|l| {
            l["type"] == "verdict" && l["event_id"] == event_id && l["destination"] == destination
        })
        .map(|l| l["verdict"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn a_tap_shows_each_matching_event_its_records_and_verdicts_and_nothing_else() {
    let good = simulator();
    // The first request to `good` fails with 503 and is retried.
    good.inject(Fault::ServerError { status: 503 }, Scope::Next(1))
        .unwrap();
    let refusing = simulator();
    refusing
        .inject(Fault::EchoHeaders { status: 400 }, Scope::Always)
        .unwrap();
    let service = Service::start(
        "tap",
        &serve_config(
            &[
                ("good", good.upsert_url()),
                ("refusing", refusing.upsert_url()),
            ],
            json!({"tap": {"listen": "127.0.0.1:0", "auth_tokens": [TAP_TOKEN]}}),
        ),
    );
    let url = tap_url(&service);

    // A wrong token, and the ingestion token, are refused.
    for token in ["wrong-token", INGEST] {
        let status = block_on(async {
            reqwest::Client::new()
                .get(format!("{url}/v1/tap"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        });
        assert_eq!(status, 401, "token {token}");
    }
    let refused = Command::new(env!("CARGO_BIN_EXE_hardal"))
        .args(["tap", "--url", &url])
        .env("HARDAL_TAP_TOKEN", "wrong-token")
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("HTTP 401"), "{said}");

    let tapping = Tapping::start(
        &url,
        TAP_TOKEN,
        &["--user", "alice", "--event-name", "tapped"],
    );
    tapping.wait_for("the tap is connected", |l| l["type"] == "tapping");

    // Alice's first tapped event travels alone, so it is the one the 503 hits.
    let first = event("a1", "tapped", "alice");
    assert_eq!(
        service.post_ndjson(&ndjson(std::slice::from_ref(&first))).0,
        202
    );
    tapping.wait_for("the first event is delivered after a retry", |l| {
        l["verdict"] == "delivered" && l["destination"] == "good"
    });
    tapping.wait_for("the first event is rejected by `refusing`", |l| {
        l["verdict"] == "rejected" && l["destination"] == "refusing"
    });

    // Then a mix: only alice's `tapped` events match.
    let third = event("a3", "tapped", "alice");
    let mix = [
        event("b1", "tapped", "bob"),
        event("a2", "other", "alice"),
        third.clone(),
        event("c1", "other", "carol"),
        event("b2", "other", "bob"),
    ];
    assert_eq!(service.post_ndjson(&ndjson(&mix)).0, 202);
    wait_until(
        "every event is resolved for both destinations",
        WAIT,
        || resolved(&service, "good") == 6.0 && resolved(&service, "refusing") == 6.0,
    );
    // Lines are queued in the order they happen: once the last event's verdicts are in, every
    // earlier line has arrived.
    let last = event("a4", "tapped", "alice");
    assert_eq!(
        service.post_ndjson(&ndjson(std::slice::from_ref(&last))).0,
        202
    );
    let last_id = identity_of("a4");
    for destination in ["good", "refusing"] {
        tapping.wait_for("the last event's verdicts", |l| {
            l["type"] == "verdict"
                && l["destination"] == destination
                && l["event_id"] == last_id.as_str()
        });
    }

    let lines = tapping.values();
    let text = tapping.text();
    assert_eq!(lines[0]["type"], "tapping", "{text}");
    for line in &lines[1..] {
        assert_eq!(line["user"], "alice", "only alice's events: {line}");
        assert_eq!(line["event_name"], "tapped", "only tapped events: {line}");
        assert_ne!(line["type"], "dropped", "nothing dropped: {line}");
    }
    let received: Vec<&Value> = lines.iter().filter(|l| l["type"] == "received").collect();
    assert_eq!(
        received.iter().map(|l| &l["event"]).collect::<Vec<_>>(),
        [&first, &third, &last],
        "each matching event as received: {text}"
    );
    for (index, line) in received.iter().enumerate() {
        let id = line["event_id"].as_str().unwrap();
        for destination in ["good", "refusing"] {
            let records: Vec<&Value> = lines
                .iter()
                .filter(|l| {
                    l["type"] == "record" && l["event_id"] == id && l["destination"] == destination
                })
                .collect();
            assert_eq!(records.len(), 1, "one record for {destination}: {text}");
            assert_eq!(
                records[0]["record"]["identifiers"]["uuid"], "alice",
                "the rendered Insider user: {text}"
            );
        }
        let expected: &[&str] = if index == 0 {
            &["retried", "delivered"]
        } else {
            &["delivered"]
        };
        assert_eq!(verdicts(&lines, id, "good"), expected, "{text}");
        assert_eq!(verdicts(&lines, id, "refusing"), ["rejected"], "{text}");
        // The event comes first, then each destination's record, then that destination's
        // verdicts (destinations go at their own pace).
        for destination in ["good", "refusing"] {
            let kinds: Vec<&str> = lines
                .iter()
                .filter(|l| l["event_id"] == id)
                .filter(|l| l["destination"] == destination || l["type"] == "received")
                .map(|l| l["type"].as_str().unwrap())
                .collect();
            assert_eq!(kinds[..2], ["received", "record"], "{text}");
            assert!(kinds[2..].iter().all(|k| *k == "verdict"), "{text}");
        }
    }
    let rejected = lines
        .iter()
        .find(|l| l["verdict"] == "rejected")
        .unwrap()
        .to_string();
    assert!(rejected.contains("400"), "the reason is shown: {rejected}");
    assert!(
        rejected.contains("[redacted]"),
        "the echoed credentials are redacted: {rejected}"
    );
    for secret in [TOKEN, INGEST, TAP_TOKEN] {
        assert!(!text.contains(secret), "{secret} leaked into the stream");
    }

    // Stopping the service ends the tap, and the client says so.
    assert_eq!(service.stop(), Some(0));
    let mut tapping = tapping;
    let status = tapping.child.wait().unwrap();
    let mut stderr = String::new();
    tapping
        .child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(status.success(), "{stderr}");
    assert!(stderr.contains("closed the tap"), "{stderr}");
}

/// The `event_id` of the tap's lines for an event with this `id` (its identity depends only
/// on the id).
fn identity_of(id: &str) -> String {
    let text = json!({"id": id}).to_string();
    let checked = hardal_runner::backlog::check_event(&text).unwrap();
    format!("{:016x}", checked.identity)
}
