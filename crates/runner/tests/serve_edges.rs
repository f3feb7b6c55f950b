//! `hardal serve` at its edges, as a real process: what a scrape shows right after a start,
//! readiness that follows the backlog and the delivery tasks by itself, and a server that holds
//! its ground against clients that send slowly or not at all.

mod common;

use common::service::{Service, samples, serve_config};
use common::simulator;
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
