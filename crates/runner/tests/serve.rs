//! `hardal serve` end to end, as a real process against the Insider simulator: the promise that an
//! event answered with 202 reaches its destination or is dead-lettered, through outages, pauses,
//! bad requests, duplicates, dead-letter commands, kills and restarts; and metrics that add up.

mod common;

use std::time::{Duration, Instant};

use common::service::{
    INGEST, Service, block_on, dead_letters_are_listed_replayed_and_purged, delivered,
    delivered_in_user_order, free_port, ndjson_batches, samples, serve_config, wait_until,
};
use common::{TOKEN, events, recent, simulator};
use hardal_insider_simulator::{Fault, Scope, Simulator, SimulatorConfig};
use serde_json::{Value, json};

#[test]
fn events_posted_while_insider_is_down_are_delivered_in_per_user_order_when_it_comes_back() {
    let port = free_port();
    let endpoint = format!("http://127.0.0.1:{port}/api/user/v1/upsert");
    let service = Service::start("down", &serve_config(&[("insider", endpoint)], json!({})));
    let input = events(600, 13);
    for batch in ndjson_batches(&input, 100) {
        let (status, answer) = service.post_ndjson(&batch);
        assert_eq!(
            (status, answer["accepted"].as_u64()),
            (202, Some(100)),
            "{answer}"
        );
    }
    // Insider comes back only after delivery found it down (attempts failed and were retried).
    wait_until(
        "delivery retried against the absent Insider",
        Duration::from_secs(30),
        || service.metric("hardal_records_retried_total") > 0.0,
    );
    let sim = Simulator::start(SimulatorConfig {
        listen: format!("127.0.0.1:{port}"),
        ..SimulatorConfig::new("mybrand", TOKEN)
    })
    .unwrap();
    let times = delivered_in_user_order(&sim, 600, Duration::from_secs(60));
    assert!(times.values().all(|n| *n == 1), "an event arrived twice");
    assert_eq!(service.stop(), Some(0));
}

#[test]
fn a_401_pauses_only_that_destination_and_delivery_resumes_by_itself() {
    let good = simulator();
    let locked = simulator();
    locked.inject(Fault::Unauthorized, Scope::Always).unwrap();
    let service = Service::start(
        "pause",
        &serve_config(
            &[("locked", locked.upsert_url()), ("good", good.upsert_url())],
            json!({"probe_interval_seconds": 1}),
        ),
    );
    let (status, _) = service.post_ndjson(&events(100, 9));
    assert_eq!(status, 202);
    wait_until(
        "the good destination got everything",
        Duration::from_secs(30),
        || delivered(&good).0.len() == 100,
    );
    wait_until(
        "/readyz names the paused destination",
        Duration::from_secs(10),
        || {
            service.ready()["paused"]
                .as_array()
                .is_some_and(|p| p.len() == 1 && p[0]["id"] == "locked")
        },
    );
    let ready = service.ready();
    assert_eq!(
        ready["ready"], true,
        "a paused destination does not make the service unready"
    );
    assert!(
        ready["paused"][0]["paused"]
            .as_str()
            .unwrap()
            .contains("HTTP 401")
    );
    // Events accepted during the pause are kept for it too (and go on to the other at once).
    let later: String = events(150, 9)
        .lines()
        .skip(100)
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(service.post_ndjson(&later).0, 202);
    wait_until(
        "the good destination got the later events",
        Duration::from_secs(30),
        || delivered(&good).0.len() == 150,
    );
    // The token works again: a probe finds out, and everything kept is delivered.
    locked.clear_faults();
    wait_until(
        "the paused destination resumed",
        Duration::from_secs(30),
        || delivered(&locked).0.len() == 150,
    );
    wait_until("/readyz lists no pause", Duration::from_secs(10), || {
        service.ready()["paused"]
            .as_array()
            .is_some_and(Vec::is_empty)
    });
    let times = delivered_in_user_order(&locked, 150, Duration::from_secs(10));
    assert!(times.values().all(|n| *n == 1));
    service.wait_for_log(&["Destination paused"]);
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

#[test]
fn bad_requests_get_their_documented_answer_and_store_nothing() {
    let sim = simulator();
    let service = Service::start(
        "bad-requests",
        &serve_config(
            &[("insider", sim.upsert_url())],
            json!({"max_body_bytes": 4096}),
        ),
    );
    let event = json!({"event_name": "login", "user_id": "u1", "created_at": recent(),
                       "properties": {"seq": 1}})
    .to_string();
    let big = format!("[{}]", vec![event.clone(); 60].join(","));
    let bomb = gzip(&vec![b' '; 5_000_000]);
    /// (what, content type, body, headers, status, what the answer says)
    type Case<'a> = (
        &'a str,
        &'a str,
        Vec<u8>,
        Vec<(&'a str, &'a str)>,
        u16,
        &'a str,
    );
    let cases: Vec<Case> = vec![
        (
            "invalid JSON",
            "application/json",
            b"{\"event_name\": ".to_vec(),
            vec![],
            400,
            "not valid JSON",
        ),
        (
            "a number",
            "application/json",
            b"42".to_vec(),
            vec![],
            400,
            "must be a JSON object",
        ),
        (
            "an array with a string",
            "application/json",
            format!("[{event}, \"x\", {event}]").into_bytes(),
            vec![],
            400,
            "\"index\":1",
        ),
        (
            "NDJSON with a bad line",
            "application/x-ndjson",
            format!("{event}\n{{oops\n{event}\n").into_bytes(),
            vec![],
            400,
            "\"line\":2",
        ),
        (
            "over the body limit",
            "application/json",
            big.clone().into_bytes(),
            vec![],
            413,
            "larger than 4096",
        ),
        (
            "over the limit once inflated",
            "application/json",
            gzip(big.as_bytes()),
            vec![("Content-Encoding", "gzip")],
            413,
            "after decompression",
        ),
        (
            "a gzip bomb",
            "application/json",
            bomb,
            vec![("Content-Encoding", "gzip")],
            413,
            "larger than",
        ),
        (
            "not gzip",
            "application/json",
            b"plain".to_vec(),
            vec![("Content-Encoding", "gzip")],
            400,
            "gzip",
        ),
        (
            "a wrong token",
            "application/json",
            event.clone().into_bytes(),
            vec![("Authorization", "Bearer nope")],
            401,
            "Bearer",
        ),
        (
            "no token",
            "application/json",
            event.clone().into_bytes(),
            vec![("Authorization", "")],
            401,
            "Bearer",
        ),
        (
            "text",
            "text/plain",
            event.clone().into_bytes(),
            vec![],
            415,
            "application/x-ndjson",
        ),
        (
            "brotli",
            "application/json",
            event.clone().into_bytes(),
            vec![("Content-Encoding", "br")],
            415,
            "gzip",
        ),
    ];
    for (what, content_type, body, headers, status, says) in cases {
        let (got, answer) = service.post(content_type, body, &headers);
        assert_eq!(got, status, "{what}: {answer}");
        assert!(answer.to_string().contains(says), "{what}: {answer}");
    }
    // Nothing of those was stored (events are counted before the answer), so nothing is sent.
    assert_eq!(service.metric("hardal_events_accepted_total"), 0.0);
    assert_eq!(service.spool_depth("insider"), 0);
    // A good request still works, gzip-compressed too.
    let (status, answer) = service.post(
        "application/json",
        gzip(event.as_bytes()),
        &[("Content-Encoding", "gzip")],
    );
    assert_eq!(
        (status, answer["accepted"].as_u64()),
        (202, Some(1)),
        "{answer}"
    );
    wait_until(
        "the good event is delivered",
        Duration::from_secs(20),
        || delivered(&sim).0.len() == 1,
    );
    assert!(sim.requests().iter().all(|r| r.users == Some(1)));
}

#[test]
fn a_repeated_post_of_the_same_events_is_stored_once() {
    let sim = simulator();
    let service = Service::start(
        "duplicates",
        &serve_config(&[("insider", sim.upsert_url())], json!({})),
    );
    // Events with an `id`, and events without one (identified by their content).
    let with_ids = events(50, 5);
    let without_ids: String = (0..30)
        .map(|i| {
            json!({"event_name": "login", "user_id": format!("v{}", i % 3), "created_at": recent(),
                   "properties": {"seq": 1000 + i}})
            .to_string()
                + "\n"
        })
        .collect();
    for body in [&with_ids, &without_ids] {
        let (_, first) = service.post_ndjson(body);
        let (_, again) = service.post_ndjson(body);
        let n = body.lines().count() as u64;
        assert_eq!(first, json!({"accepted": n, "duplicates": 0}));
        assert_eq!(again, json!({"accepted": 0, "duplicates": n}));
    }
    // Delivered, and recorded as delivered: a restart sends none of them again.
    wait_until(
        "everything is delivered and recorded",
        Duration::from_secs(30),
        || service.spool_depth("insider") == 0,
    );
    assert_eq!(delivered(&sim).0.len(), 80);
    // The identities outlive a kill: a producer's retry after a restart is still recognised.
    let dir = service.kill();
    let config = serve_config(&[("insider", sim.upsert_url())], json!({}));
    let service = Service::start_in(dir, &config);
    let (_, again) = service.post_ndjson(&with_ids);
    assert_eq!(again, json!({"accepted": 0, "duplicates": 50}));
    assert_eq!(service.spool_depth("insider"), 0, "a duplicate was stored");
    assert!(
        delivered(&sim).0.values().all(|n| *n == 1),
        "an event was sent twice"
    );
}

#[test]
fn dead_letters_can_be_listed_replayed_and_purged_while_the_service_runs() {
    let sim = simulator();
    let service = Service::start(
        "dlq",
        &serve_config(&[("insider", sim.upsert_url())], json!({})),
    );
    dead_letters_are_listed_replayed_and_purged(&service, &sim);
}

#[test]
fn a_killed_service_delivers_every_accepted_event_after_a_restart() {
    let sim = simulator();
    let config = serve_config(&[("insider", sim.upsert_url())], json!({}));
    let service = Service::start("kill", &config);
    let batches = ndjson_batches(&events(3000, 31), 50);
    let (before, rest) = batches.split_at(20);
    let (during, after) = rest.split_at(20);
    let post = |service: &Service, batches: &[String]| {
        for batch in batches {
            let (status, answer) = service.post_ndjson(batch);
            assert_eq!(status, 202, "{answer}");
        }
    };
    // A first third is delivered and recorded as delivered.
    post(&service, before);
    wait_until(
        "the first third is delivered and recorded",
        Duration::from_secs(60),
        || service.spool_depth("insider") == 0,
    );
    // From now on every request is refused with a 503 (retried), so the next third stays
    // accepted and undelivered for as long as the fault holds: the kill -9 comes in the middle
    // of delivery whatever the machine's speed.
    sim.inject(Fault::ServerError { status: 503 }, Scope::Always)
        .unwrap();
    post(&service, during);
    let refused_before = sim.stats().by_status.get(&503).copied().unwrap_or(0);
    wait_until(
        "delivery of the second third is being refused",
        Duration::from_secs(30),
        || sim.stats().by_status.get(&503).copied().unwrap_or(0) > refused_before,
    );
    let dir = service.kill();
    assert_eq!(delivered(&sim).0.len(), 1000);
    // Restarted, it takes the last third, and delivers everything once Insider answers again.
    let service = Service::start_in(dir, &config);
    post(&service, after);
    sim.clear_faults();
    let times = delivered_in_user_order(&sim, 3000, Duration::from_secs(90));
    // What was recorded as delivered before the kill is not sent again, and nothing after it
    // was accepted by Insider before the kill: each event arrived once.
    let twice: u64 = times.values().map(|n| n - 1).sum();
    assert_eq!(twice, 0, "{twice} events were delivered twice");
    assert_eq!(service.stop(), Some(0));
}

#[test]
fn sigterm_stops_accepting_and_leaves_the_rest_in_the_backlog() {
    let port = free_port();
    let endpoint = format!("http://127.0.0.1:{port}/api/user/v1/upsert");
    let config = serve_config(&[("insider", endpoint)], json!({}));
    let service = Service::start("sigterm", &config);
    let (status, _) = service.post_ndjson(&events(200, 7));
    assert_eq!(status, 202);
    let dir = service.dir.clone();
    let started = Instant::now();
    assert_eq!(service.stop(), Some(0));
    // Each wait of the stop is bounded by the drain timeout (5 s here), and at most four come
    // one after another (requests, delivery, taps, the backlog's close): a generous bound on
    // that, for a loaded machine.
    let took = started.elapsed();
    assert!(took < Duration::from_secs(60), "the stop took {took:?}");
    // Restarted with Insider up: what waited in the backlog goes out.
    let sim = Simulator::start(SimulatorConfig {
        listen: format!("127.0.0.1:{port}"),
        ..SimulatorConfig::new("mybrand", TOKEN)
    })
    .unwrap();
    let _service = Service::start_in(dir, &config);
    wait_until(
        "the backlog drains after the restart",
        Duration::from_secs(30),
        || delivered(&sim).0.len() == 200,
    );
}

#[test]
fn metrics_parse_as_prometheus_text_and_their_counters_add_up() {
    let sim = simulator();
    let service = Service::start(
        "metrics",
        &serve_config(&[("insider", sim.upsert_url())], json!({})),
    );
    let input = events(120, 12);
    service.post_ndjson(&input);
    service.post_ndjson(&input); // all duplicates
    // One event hardal rejects (a national phone number) and one it skips (no identifier).
    service.post_ndjson(&format!(
        "{}\n{}\n",
        json!({"event_name": "identify", "user_id": "p", "user": {"phone_number": "0532 123 45 67"}}),
        json!({"event_name": "search", "properties": {"q": "mug"}})
    ));
    let scrape = || {
        let text = service.get("/metrics").1;
        prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned())))
            .expect("Prometheus text format")
    };
    // Every accepted event resolved (the counters), and the depth refreshed since (the gauge is
    // read from the backlog every second, so it can still show an older depth).
    wait_until(
        "all 122 accepted events are resolved and the backlog shows none",
        Duration::from_secs(30),
        || {
            let scrape = scrape();
            samples(&scrape, "hardal_events_resolved_total")
                .iter()
                .map(|(_, v)| v)
                .sum::<f64>()
                == 122.0
                && samples(&scrape, "hardal_backlog_events")
                    .iter()
                    .all(|(_, v)| *v == 0.0)
        },
    );
    let scrape = scrape();
    let one = |name: &str| samples(&scrape, name).iter().map(|(_, v)| v).sum::<f64>();
    let ending = |which: &str| {
        samples(&scrape, "hardal_events_resolved_total")
            .iter()
            .filter(|(labels, _)| labels["ending"] == which && labels["destination"] == "insider")
            .map(|(_, v)| v)
            .sum::<f64>()
    };
    let (received, accepted, duplicates) = (
        one("hardal_events_received_total"),
        one("hardal_events_accepted_total"),
        one("hardal_events_duplicates_total"),
    );
    assert_eq!((received, accepted, duplicates), (242.0, 122.0, 120.0));
    assert_eq!(received, accepted + duplicates);
    let queued = one("hardal_backlog_events");
    let resolved = ending("delivered")
        + ending("rejected")
        + ending("dead_lettered")
        + ending("skipped")
        + ending("expired");
    assert_eq!(
        accepted + one("hardal_events_replayed_total"),
        resolved + queued
    );
    assert_eq!(
        (ending("delivered"), ending("rejected"), ending("skipped")),
        (120.0, 1.0, 1.0)
    );
    // Histograms and states are there too.
    let text = service.get("/metrics").1;
    for name in [
        "hardal_ingest_seconds_bucket",
        "hardal_request_seconds_bucket",
        "hardal_request_records_bucket",
        "hardal_destination_state{destination=\"insider\",state=\"flowing\"} 1",
        "hardal_backlog_bytes",
        "hardal_backlog_oldest_event_age_seconds",
        "hardal_records_retried_total",
        // Registered at zero: a destination that never split a request shows 0, not nothing.
        "hardal_batch_splits_total{destination=\"insider\"} 0",
    ] {
        assert!(text.contains(name), "{name} is missing:\n{text}");
    }
}

#[test]
fn hardals_custom_api_destination_forwards_every_example_event_to_the_service() {
    use hardal_core::{MapContext, Outcome};
    let sim = simulator();
    let service = Service::start(
        "from-hardal",
        &serve_config(&[("insider", sim.upsert_url())], json!({})),
    );
    // The Custom API destination a Hardal user creates, pointed at this service.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut example: Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("examples/hardal-custom-api-to-serve.json")).unwrap(),
    )
    .unwrap();
    example["destinations"][0]["endpoint_url"] = json!(format!("{}/v1/events", service.url));
    let config = hardal_runner::config::load_str(&example.to_string(), &|name| {
        (name == "HARDAL_INGEST_TOKEN").then(|| INGEST.to_owned())
    })
    .expect("the example configuration is valid");
    let destination = &config.destinations[0];
    // What the service's own `insider` destination will make of each forwarded event.
    let insider = hardal_runner::config::load_str(
        &serve_config(
            &[("insider", sim.upsert_url())],
            json!({"auth_tokens": ["x-token"]}),
        )
        .to_string(),
        &|_| Some(TOKEN.to_owned()),
    )
    .unwrap();
    let transport = hardal_runner::transport::Transport::new().unwrap();
    let text = std::fs::read_to_string(root.join("examples/events.ndjson")).unwrap();
    let context = MapContext::at(std::time::SystemTime::now());
    let (mut posted, mut users, mut refused) = (0, 0, 0);
    for item in hardal_runner::input::read_events(&text) {
        let (_, event) = item.unwrap();
        // The examples are dated; forwarded live, they happen now.
        let mut live = event.into_value();
        live["created_at"] = json!(recent());
        let event = hardal_core::Event::from_value(live).unwrap();
        let Outcome::Records(records) = destination.map(&event, &context).unwrap().outcome else {
            panic!("every example event is forwarded");
        };
        let request = destination.encode(
            &records.iter().collect::<Vec<_>>(),
            &hardal_core::SendContext::first(std::time::UNIX_EPOCH),
        );
        // The body is Hardal's event rebuilt from its documented variables.
        let rebuilt: Value = serde_json::from_slice(&request.body).unwrap();
        for key in ["event_name", "created_at", "user_id", "properties"] {
            assert_eq!(
                rebuilt.get(key),
                event.as_value().get(key),
                "{key} of {}",
                event.as_value()
            );
        }
        let forwarded = hardal_core::Event::from_value(rebuilt).unwrap();
        match insider.destinations[0].map(&forwarded, &context) {
            Ok(mapped) => {
                if let Outcome::Records(records) = mapped.outcome {
                    users += records.len();
                }
            }
            Err(_) => refused += 1,
        }
        let response = block_on(transport.send(request, Duration::from_secs(10))).unwrap();
        assert_eq!(
            response.status,
            202,
            "{}",
            String::from_utf8_lossy(&response.body)
        );
        posted += 1;
    }
    assert_eq!(posted, text.lines().count());
    assert!(users >= 12, "most examples become Insider users ({users})");
    // Every forwarded event resolved and recorded (dead letters with their resolutions).
    wait_until(
        "every forwarded event is resolved",
        Duration::from_secs(30),
        || service.spool_depth("insider") == 0,
    );
    assert_eq!(sim.stats().users_accepted as usize, users);
    let (listed, _) = service.dlq(&["list"]);
    assert_eq!(listed.lines().count(), refused, "{listed}");
}

#[test]
fn a_full_backlog_answers_503_with_retry_after_until_delivery_makes_room() {
    let port = free_port();
    let endpoint = format!("http://127.0.0.1:{port}/api/user/v1/upsert");
    let mut config = serve_config(&[("insider", endpoint)], json!({}));
    config["backlog"]["max_bytes"] = json!(1_000_000);
    let service = Service::start("full", &config);
    let input = events(20_000, 50);
    let batches = ndjson_batches(&input, 250);
    let mut accepted = 0;
    let mut full = None;
    for batch in &batches {
        let url = format!("{}/v1/events", service.url);
        let body = batch.clone();
        let (status, retry_after, answer) = block_on(async move {
            let response = reqwest::Client::new()
                .post(url)
                .header("Authorization", format!("Bearer {INGEST}"))
                .header("Content-Type", "application/x-ndjson")
                .body(body)
                .send()
                .await
                .unwrap();
            let retry_after = response
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_owned());
            (
                response.status().as_u16(),
                retry_after,
                response.text().await.unwrap(),
            )
        });
        if status == 503 {
            full = Some((retry_after, answer));
            break;
        }
        assert_eq!(status, 202, "{answer}");
        accepted += 250;
    }
    let (retry_after, answer) = full.expect("the backlog filled up before 20,000 events");
    assert!(retry_after.is_some_and(|s| s.parse::<u64>().unwrap() > 0));
    assert!(answer.contains("backlog is full"), "{answer}");
    assert!(accepted > 1000, "only {accepted} events fit");
    // Insider comes up: the backlog drains and room comes back.
    let sim = Simulator::start(SimulatorConfig {
        listen: format!("127.0.0.1:{port}"),
        ..SimulatorConfig::new("mybrand", TOKEN)
    })
    .unwrap();
    wait_until("the backlog drains", Duration::from_secs(60), || {
        delivered(&sim).0.len() == accepted
    });
    wait_until(
        "ingestion takes events again",
        Duration::from_secs(30),
        || service.post_ndjson(&batches[batches.len() - 1]).0 == 202,
    );
}

#[test]
fn splitting_ingestion_and_delivery_needs_the_nats_backlog() {
    // Accepted by a node that does not deliver, with no other node able to, events would wait
    // in the spool for ever.
    let dir = std::env::temp_dir().join(format!("hardal-serve-split-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut config = serve_config(
        &[("insider", "http://127.0.0.1:9/upsert".into())],
        json!({}),
    );
    config["server"]["listen"] = json!("127.0.0.1:0");
    config["server"]["auth_tokens"] = json!(["t0k3n"]);
    config["backlog"] = json!({"type": "sqlite", "path": dir.join("spool.db").to_str().unwrap()});
    let path = dir.join("config.json");
    std::fs::write(&path, config.to_string()).unwrap();
    for flag in ["--no-deliver", "--no-ingest"] {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_hardal"))
            .args(["serve", "--config", path.to_str().unwrap(), flag])
            .env("INSIDER_REQUEST_TOKEN", TOKEN)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{flag}: {stderr}");
        assert!(stderr.contains("shared NATS backlog"), "{flag}: {stderr}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
