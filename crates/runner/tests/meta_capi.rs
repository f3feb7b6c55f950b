//! `hardal send` and `hardal serve` to Meta's Conversions API, against the Meta stand-in
//! (loopback): the example events delivered, and a request Meta refuses as a whole for one event
//! it does not name split until that event stands alone.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use common::service::{Service, wait_until};
use common::{Run, TOKEN, load, recent};
use hardal_insider_simulator::{Fault, MetaConfig, MetaSimulator, RetryAfterSpec, Scope};
use serde_json::{Value, json};

const PIXEL: &str = "1234567890";

fn stand_in() -> MetaSimulator {
    MetaSimulator::start(MetaConfig::new(PIXEL, TOKEN)).expect("the Meta stand-in starts")
}

/// A `meta_capi` destination pointed at the stand-in; `extra` overrides fields.
fn meta(meta: &MetaSimulator, extra: Value) -> Value {
    let mut destination = json!({"id": "meta", "type": "meta_capi", "consent": {"mode": "off"}, "pixel_id": PIXEL,
                                 "access_token": "${TOKEN}", "base_url": meta.base_url()});
    destination
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    destination
}

/// The example events as a website sends them today: an hour old, with the browser's user agent
/// and the page (Meta needs both for website events) — except the one from 2019, which Meta no
/// longer takes.
fn example_events_from_browsers() -> String {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    std::fs::read_to_string(root.join("examples/events.ndjson"))
        .unwrap()
        .lines()
        .map(|line| {
            let mut event: Value = serde_json::from_str(line).unwrap();
            if event["id"] != "evt-0023" {
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

#[test]
fn the_example_events_are_delivered() {
    let meta_api = stand_in();
    let run = Run::new("meta-examples");
    let config = load(&json!({"destinations": [meta(&meta_api, json!({}))],
                              "delivery": common::fast_delivery()}));
    let summary = run.send(config, &example_events_from_browsers());
    let totals = &summary.destinations[0].totals;
    assert_eq!(
        (
            totals.delivered,
            totals.expired,
            totals.rejected,
            totals.dead_lettered
        ),
        (22, 1, 0, 0),
        "{}",
        summary.text()
    );
    assert!(summary.success(), "{}", summary.text());
    // Every event Meta kept is one of ours, once, with its event_id and hashed customer data.
    let accepted = meta_api.accepted();
    let names: BTreeSet<String> = accepted
        .iter()
        .map(|a| a.event["event_name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        names.into_iter().collect::<Vec<_>>(),
        [
            "AddToCart",
            "Cart Viewed",
            "CompleteRegistration",
            "InitiateCheckout",
            "PageView",
            "Purchase",
            "ViewContent",
            "identify",
            "login",
            "newsletter_subscribe",
            "remove_from_cart",
            "search"
        ]
    );
    let ids: BTreeSet<&str> = accepted
        .iter()
        .filter_map(|a| a.event["event_id"].as_str())
        .collect();
    assert_eq!(
        ids.len(),
        21,
        "every example with an id, once (one has none)"
    );
    // SHA-256 of `ada@example.com` (`printf %s ada@example.com | sha256sum`).
    let ada = "b5fc85e55755f9e0d030a10ab4429b6b2944855f9a0d60077fe832becbc41d72";
    assert!(
        accepted
            .iter()
            .any(|a| a.event["user_data"]["em"] == json!([ada])),
        "Ada's email arrives hashed"
    );
    assert!(!meta_api.requests().is_empty());
}

/// `n` page views of `n` users, an hour old; the event `bad` carries a date of birth that the
/// mapping below passes on unhashed — a parameter hardal does not know, which Meta refuses
/// with the whole request, without saying which event it was.
fn page_views(n: usize, bad: usize) -> String {
    page_views_from(0, n, bad)
}

/// Like [`page_views`], numbered from `first`.
fn page_views_from(first: usize, n: usize, bad: usize) -> String {
    (first..first + n)
        .map(|i| {
            let mut event = json!({"id": format!("e{i}"), "event_name": "page_view",
                                   "created_at": recent(), "user_id": format!("u{i}"),
                                   "page": {"url": "https://shop.example/"},
                                   "context": {"user_agent": "Mozilla/5.0"}});
            if i == bad {
                event["user"] = json!({"birthday": "19901210"});
            }
            event.to_string() + "\n"
        })
        .collect()
}

/// A mapping of page views that passes `user.birthday` on as `db`, unhashed: hardal does not know
/// the parameter, Meta refuses it.
fn mapping_with_unhashed_birthday() -> Value {
    json!({"when": {"event_name": "page_view"},
                         "event": {"event_name": "PageView", "event_time": "##created_at##",
                                   "event_id": "##id##", "event_source_url": "##page.url##",
                                   "user_data": {"external_id": "##user_id##",
                                                 "client_user_agent": "##context.user_agent##",
                                                 "db": "##user.birthday##"}}})
}

#[test]
fn a_batch_of_1000_with_one_malformed_event_is_split_until_it_stands_alone() {
    let meta_api = stand_in();
    let run = Run::new("meta-split");
    let mapping = mapping_with_unhashed_birthday();
    // One request at a time, so the stand-in's count is the number of requests the split took.
    let mut delivery = common::fast_delivery();
    delivery["concurrency"] = json!(1);
    delivery["linger_ms"] = json!(60_000);
    let config = load(
        &json!({"destinations": [meta(&meta_api, json!({"mappings": [mapping]}))],
                              "delivery": delivery}),
    );
    let started = SystemTime::now();
    let summary = run.send(config, &page_views(1000, 613));
    let destination = &summary.destinations[0];
    assert_eq!(
        (
            destination.totals.delivered,
            destination.totals.rejected,
            destination.totals.dead_lettered
        ),
        (999, 1, 0),
        "{}",
        summary.text()
    );
    let requests = meta_api.requests();
    assert_eq!(
        requests[0].events,
        Some(1000),
        "the first request carried the whole batch"
    );
    assert_eq!(requests[0].refused_index, Some(613));
    // 2·⌈log2 1000⌉ + 1 = 21.
    assert!(
        requests.len() <= 21,
        "{} requests: {requests:?}",
        requests.len()
    );
    assert!(destination.batch_splits >= 10, "{}", summary.text());
    assert_eq!(meta_api.stats().events_received, 999);
    let dead = run.dead_letters();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0]["event"]["id"], "e613");
    let reason = dead[0]["reasons"][0].as_str().unwrap();
    assert!(
        reason.starts_with(
            "HTTP 400: Meta: Unhashed Customer Information: user_data.db must be a SHA-256 hash"
        ),
        "{reason}"
    );
    assert!(!reason.contains(TOKEN), "{reason}");
    assert!(
        started.elapsed().unwrap().as_secs() < 60,
        "splits wait for no backoff"
    );
}

#[test]
fn a_token_meta_refuses_pauses_and_is_never_shown() {
    let meta_api = stand_in();
    let run = Run::new("meta-token");
    let config = load(
        &json!({"destinations": [meta(&meta_api, json!({"access_token": "wrong-token-value"}))],
                              "delivery": common::fast_delivery()}),
    );
    let summary = run.send(config, &page_views(3, usize::MAX));
    let destination = &summary.destinations[0];
    let paused = destination.paused.as_deref().unwrap_or_default();
    assert!(paused.contains("code 190"), "{}", summary.text());
    assert!(
        !summary.text().contains("wrong-token-value"),
        "{}",
        summary.text()
    );
    assert_eq!(destination.totals.delivered, 0);
    assert_eq!(meta_api.accepted().len(), 0);
}

#[test]
fn throttling_and_server_errors_are_retried_until_delivered() {
    let meta_api = stand_in();
    let run = Run::new("meta-throttled");
    // Meta's throttling answer (code 4, transient), then an edge's 503, then Meta takes them.
    meta_api
        .inject(
            Fault::TooManyRequests {
                retry_after: Some(RetryAfterSpec::Seconds(0)),
            },
            Scope::Next(2),
        )
        .unwrap();
    meta_api
        .inject(Fault::ServerError { status: 503 }, Scope::Next(1))
        .unwrap();
    let mut delivery = common::fast_delivery();
    delivery["concurrency"] = json!(1);
    let config = load(&json!({"destinations": [meta(&meta_api, json!({}))], "delivery": delivery}));
    let summary = run.send(config, &page_views(20, usize::MAX));
    let destination = &summary.destinations[0];
    assert_eq!(destination.totals.delivered, 20, "{}", summary.text());
    assert!(destination.records_retried >= 20, "{}", summary.text());
    let by_status = meta_api.stats().by_status;
    assert_eq!(
        (by_status.get(&429), by_status.get(&503)),
        (Some(&2), Some(&1))
    );
    assert_eq!(meta_api.stats().events_received, 20);
}

#[test]
fn hardal_serve_delivers_to_meta_and_splits_around_a_malformed_event() {
    let meta_api = stand_in();
    let mut destination = meta(
        &meta_api,
        json!({"mappings": [mapping_with_unhashed_birthday()]}),
    );
    destination["access_token"] = json!("${INSIDER_REQUEST_TOKEN}");
    let config = json!({"destinations": [destination],
                        "delivery": {"concurrency": 2, "linger_ms": 200, "backoff_initial_ms": 20,
                                     "backoff_max_ms": 300, "max_attempts": 1000, "max_retry_seconds": 3600},
                        "server": {}, "backlog": {"type": "sqlite"}});
    let service = Service::start("meta", &config);
    let (status, answer) = service.post_ndjson(&example_events_from_browsers());
    assert_eq!(
        (status, answer["accepted"].as_u64()),
        (202, Some(23)),
        "{answer}"
    );
    let (status, _) = service.post_ndjson(&page_views_from(100, 200, 177));
    assert_eq!(status, 202);
    // 22 examples (one is from 2019) and 199 page views.
    wait_until(
        "Meta received every good event",
        Duration::from_secs(60),
        || meta_api.stats().events_received == 221,
    );
    wait_until(
        "the malformed event was dead-lettered",
        Duration::from_secs(30),
        || service.dlq(&["list", "--json"]).0.contains("\"e177\""),
    );
    // Every refused request of more than one event was split (how the events fell into
    // requests depends on timing); the last refused request held the bad event alone.
    let refused: Vec<usize> = meta_api
        .requests()
        .iter()
        .filter(|r| r.status == Some(400))
        .map(|r| r.events.unwrap_or(0))
        .collect();
    assert_eq!(refused.last(), Some(&1), "{refused:?}");
    let split = refused.iter().filter(|n| **n > 1).count();
    // /metrics takes the engine's counts when the service reports, about once a second.
    wait_until(
        "/metrics counts every split",
        Duration::from_secs(10),
        || service.metric("hardal_batch_splits_total") == split as f64,
    );
    let (listed, _) = service.dlq(&["list"]);
    assert_eq!(listed.lines().count(), 1, "{listed}");
    assert!(listed.contains("Unhashed Customer Information"), "{listed}");
    assert!(!listed.contains(TOKEN), "{listed}");
    assert_eq!(service.stop(), Some(0));
}
