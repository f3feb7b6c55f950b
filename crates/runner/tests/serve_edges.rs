//! `hardal serve` at its edges, as a real process: what a scrape shows right after a start,
//! readiness that follows the backlog and the delivery tasks by itself, and a server that holds
//! its ground against clients that send slowly or not at all.

mod common;

use std::time::Duration;

use common::service::{
    Service, delivered, free_port, ndjson_batches, samples, serve_config, wait_until,
};
use common::{TOKEN, events, simulator};
use hardal_insider_simulator::{Simulator, SimulatorConfig};
use serde_json::json;

fn scrape(service: &Service) -> prometheus_parse::Scrape {
    let text = service.get("/metrics").1;
    prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned())))
        .expect("Prometheus text format")
}

#[test]
fn labelled_counters_are_there_at_zero_right_after_a_start() {
    let sim = simulator();
    let service = Service::start(
        "counters-at-zero",
        &serve_config(
            &[("first", sim.upsert_url()), ("second", sim.upsert_url())],
            json!({}),
        ),
    );
    let scrape = scrape(&service);
    for destination in ["first", "second"] {
        for ending in [
            "delivered",
            "skipped",
            "expired",
            "rejected",
            "dead_lettered",
        ] {
            let found: Vec<f64> = samples(&scrape, "hardal_events_resolved_total")
                .into_iter()
                .filter(|(l, _)| l["destination"] == destination && l["ending"] == ending)
                .map(|(_, v)| v)
                .collect();
            assert_eq!(found, [0.0], "{destination} {ending}");
        }
        let retried: Vec<f64> = samples(&scrape, "hardal_records_retried_total")
            .into_iter()
            .filter(|(l, _)| l["destination"] == destination)
            .map(|(_, v)| v)
            .collect();
        assert_eq!(retried, [0.0], "{destination}");
    }
    for name in [
        "hardal_events_received_total",
        "hardal_events_accepted_total",
        "hardal_events_duplicates_total",
        "hardal_events_replayed_total",
    ] {
        let found: Vec<f64> = samples(&scrape, name).into_iter().map(|(_, v)| v).collect();
        assert_eq!(found, [0.0], "{name}");
    }
}

#[test]
fn readyz_is_503_while_the_backlog_is_full_and_200_again_by_itself_once_delivery_made_room() {
    let port = free_port();
    let endpoint = format!("http://127.0.0.1:{port}/api/user/v1/upsert");
    let mut config = serve_config(&[("insider", endpoint)], json!({}));
    config["backlog"]["max_bytes"] = json!(1_000_000);
    let service = Service::start("full-readiness", &config);
    assert_eq!(service.ready()["ready"], true);
    let input = events(20_000, 50);
    let mut accepted = 0;
    for batch in ndjson_batches(&input, 250) {
        let (status, answer) = service.post_ndjson(&batch);
        if status == 503 {
            break;
        }
        assert_eq!(status, 202, "{answer}");
        accepted += 250;
    }
    assert!(accepted < 20_000, "the backlog filled up");
    // Every POST gets 503 now: a load balancer is to send them elsewhere.
    wait_until("/readyz says full", Duration::from_secs(30), || {
        let ready = service.ready();
        ready["ready"] == false && ready["backlog_full"] == true
    });
    assert_eq!(service.get("/readyz").0, 503);
    // Insider comes up and delivery makes room: ready again with no POST to find out.
    let sim = Simulator::start(SimulatorConfig {
        listen: format!("127.0.0.1:{port}"),
        ..SimulatorConfig::new("mybrand", TOKEN)
    })
    .unwrap();
    wait_until("the backlog drains", Duration::from_secs(60), || {
        delivered(&sim).0.len() == accepted
    });
    wait_until("/readyz is 200 again", Duration::from_secs(30), || {
        service.get("/readyz").0 == 200
    });
}
