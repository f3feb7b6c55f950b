//! One configuration with every destination kind hardal ships — `insider`, `custom_api`,
//! `meta_capi` and `ga4` — each pointed at its stand-in on loopback: `hardal send` and `hardal
//! serve` deliver the example events to all four at once, and `hardal render` shows each one's
//! body.

mod common;

use std::process::Command;
use std::time::Duration;

use common::service::{Service, wait_until};
use common::{Run, TOKEN, load, recent};
use hardal_insider_simulator::ga4::{Ga4Config, Ga4Simulator};
use hardal_insider_simulator::{MetaConfig, MetaSimulator, Simulator, SimulatorConfig};
use serde_json::{Value, json};

const PIXEL: &str = "1234567890";
const MEASUREMENT: &str = "G-TEST";

/// The four stand-ins: Insider for `insider`, another Insider for the seed's `custom_api`
/// integration, Meta and GA4.
struct StandIns {
    insider: Simulator,
    custom: Simulator,
    meta: MetaSimulator,
    ga4: Ga4Simulator,
}

impl StandIns {
    fn start() -> StandIns {
        StandIns {
            insider: Simulator::start(SimulatorConfig::new("mybrand", TOKEN)).unwrap(),
            custom: Simulator::start(SimulatorConfig::new("mybrand", TOKEN)).unwrap(),
            meta: MetaSimulator::start(MetaConfig::new(PIXEL, TOKEN)).unwrap(),
            ga4: Ga4Simulator::start(Ga4Config::new(MEASUREMENT, TOKEN)).unwrap(),
        }
    }

    /// What reached each stand-in: Insider's accepted user objects, the user objects of the
    /// custom integration, Meta's and GA4's accepted events.
    fn received(&self) -> [usize; 4] {
        [
            self.insider.accepted_users().len(),
            // The seed's integration sends what it is configured to, and Insider refuses much of
            // it by its rules (tests/seed_vs_insider.rs shows which): every user object arrived.
            {
                let stats = self.custom.stats();
                (stats.users_accepted + stats.users_failed) as usize
            },
            self.meta.accepted().len(),
            self.ga4.events().len(),
        ]
    }

    /// The destinations, their secrets read from `${SECRET}` (a name the caller provides).
    fn destinations(&self, secret: &str) -> Value {
        let secret = format!("${{{secret}}}");
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let seed: Value = serde_json::from_str(
            &std::fs::read_to_string(root.join("examples/custom-api-insider.json")).unwrap(),
        )
        .unwrap();
        let mut custom = seed["destinations"][0].clone();
        custom["endpoint_url"] = json!(self.custom.upsert_url());
        custom["headers"] = json!({"X-PARTNER-NAME": "mybrand", "X-REQUEST-TOKEN": secret});
        json!([
            {"id": "insider", "type": "insider", "consent": {"mode": "off"}, "partner_name": "mybrand",
             "request_token": secret, "endpoint": self.insider.upsert_url()},
            custom,
            {"id": "meta", "type": "meta_capi", "consent": {"mode": "off"}, "pixel_id": PIXEL, "access_token": secret,
             "base_url": self.meta.base_url()},
            {"id": "ga4", "type": "ga4", "consent": {"mode": "off"}, "measurement_id": MEASUREMENT, "api_secret": secret,
             "base_url": self.ga4.base_url()}
        ])
    }
}

/// The example events as a website sends them today: recent, with the browser's user agent and
/// the page (Meta needs both for website events) — except the one from 2019, which Meta and GA4
/// no longer take.
fn example_events() -> String {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    std::fs::read_to_string(root.join("examples/events.ndjson"))
        .unwrap()
        .lines()
        .map(|line| {
            let mut event: Value = serde_json::from_str(line).unwrap();
            if !event["created_at"]
                .as_str()
                .is_some_and(|t| t.starts_with("2019"))
            {
                event["created_at"] = json!(recent());
            }
            event["context"] = json!({"user_agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0",
                                      "ip": "203.0.113.7"});
            if event["page"]["url"].is_null() {
                event["page"]["url"] = json!("https://shop.example/");
            }
            event.to_string() + "\n"
        })
        .collect()
}

/// What reaches each stand-in of the 23 example events: Insider 21 user objects (one event is
/// skipped, the 2019 one expired), the custom integration all 23 (it sends every event as it is
/// configured to), Meta 22 (the 2019 event expired), GA4 21 (expired, and a purchase without a
/// transaction id refused).
const EXPECTED: [usize; 4] = [21, 23, 22, 21];

#[test]
fn hardal_send_delivers_the_examples_to_every_kind_at_once() {
    let stand_ins = StandIns::start();
    let run = Run::new("all-kinds");
    let config = load(&json!({"destinations": stand_ins.destinations("TOKEN"),
                              "delivery": common::fast_delivery()}));
    let summary = run.send(config, &example_events());
    let delivered: Vec<(String, u64)> = summary
        .destinations
        .iter()
        .map(|d| (d.id.clone(), d.totals.delivered))
        .collect();
    assert!(delivered.iter().all(|(_, n)| *n > 0), "{}", summary.text());
    assert_eq!(stand_ins.received(), EXPECTED, "{}", summary.text());
}

#[test]
fn hardal_serve_delivers_the_examples_to_every_kind_at_once() {
    let stand_ins = StandIns::start();
    // The service reads INSIDER_REQUEST_TOKEN from its environment; every stand-in takes it.
    let config = json!({
        "destinations": stand_ins.destinations("INSIDER_REQUEST_TOKEN"),
        "delivery": {"concurrency": 2, "linger_ms": 5, "backoff_initial_ms": 20, "backoff_max_ms": 300},
        "server": {},
        "backlog": {"type": "sqlite"}
    });
    let service = Service::start("all-kinds", &config);
    let events = example_events();
    let (status, answer) = service.post_ndjson(&events);
    assert_eq!(
        (status, answer["accepted"].as_u64()),
        (202, Some(events.lines().count() as u64)),
        "{answer}"
    );
    wait_until(
        "every stand-in received what it keeps of the examples",
        Duration::from_secs(60),
        || stand_ins.received() == EXPECTED,
    );
    let log = service.log();
    assert!(!log.contains(TOKEN), "{log}");
    assert_eq!(service.stop(), Some(0));
}

#[test]
fn hardal_render_shows_every_kinds_body() {
    let stand_ins = StandIns::start();
    let dir = std::env::temp_dir().join(format!("hardal-all-kinds-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("config.json");
    std::fs::write(
        &config,
        json!({"destinations": stand_ins.destinations("TOKEN")}).to_string(),
    )
    .unwrap();
    let events = dir.join("events.ndjson");
    std::fs::write(&events, example_events().lines().next().unwrap()).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_hardal"))
        .arg("render")
        .arg("--config")
        .arg(&config)
        .arg(&events)
        .env("TOKEN", TOKEN)
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(output.status.success(), "{stderr}");
    // One body per destination, each in its API's shape.
    let bodies: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let shapes: Vec<&str> = bodies
        .iter()
        .map(|b| {
            if b["users"].is_array() {
                "users"
            } else if b["data"].is_array() {
                "data"
            } else if b["events"].is_array() {
                "events"
            } else {
                "other"
            }
        })
        .collect();
    assert_eq!(
        shapes,
        ["users", "users", "data", "events"],
        "{stdout}{stderr}"
    );
    assert!(!stdout.contains(TOKEN) && !stderr.contains(TOKEN));
    let _ = std::fs::remove_dir_all(&dir);
}
