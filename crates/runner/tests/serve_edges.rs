//! `hardal serve` at its edges, as a real process: what a scrape shows right after a start,
//! readiness that follows the backlog and the delivery tasks by itself, and a server that holds
//! its ground against clients that send slowly or not at all.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::service::{
    INGEST, Service, delivered, free_port, ndjson_batches, samples, serve_config, wait_until,
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

/// A raw connection to the service that has sent `bytes` and then nothing more.
fn stalled(service: &Service, bytes: &str) -> TcpStream {
    let address = service.url.strip_prefix("http://").unwrap();
    let mut stream = TcpStream::connect(address).unwrap();
    stream.write_all(bytes.as_bytes()).unwrap();
    // Far longer than any timeout the tests configure: reaching it means the server held on.
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    stream
}

/// What the server sends on a stalled connection until it closes it; an error if it held the
/// connection open for a minute.
fn until_closed(mut stream: TcpStream) -> std::io::Result<String> {
    let mut answer = Vec::new();
    match stream.read_to_end(&mut answer) {
        Ok(_) => Ok(String::from_utf8_lossy(&answer).into_owned()),
        // Closed with unread bytes: a reset, also an end.
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
            Ok(String::from_utf8_lossy(&answer).into_owned())
        }
        Err(e) => Err(e),
    }
}

#[test]
fn slow_clients_are_cut_off_and_real_posts_get_through_past_the_connection_limit() {
    let sim = simulator();
    let service = Service::start(
        "slow-loris",
        &serve_config(
            &[("insider", sim.upsert_url())],
            json!({"header_read_timeout_seconds": 1, "max_connections": 2}),
        ),
    );
    // As many half request lines as the service takes connections.
    let slow: Vec<TcpStream> = (0..2).map(|_| stalled(&service, "POST /v1/ev")).collect();
    // A real post waits for a free connection, and gets one once the slow ones time out.
    let (status, answer) = service.post_ndjson(&events(5, 5));
    assert_eq!(status, 202, "{answer}");
    for stream in slow {
        until_closed(stream).expect("a connection that never sent its request head is closed");
    }
}

#[test]
fn a_body_that_stops_midway_is_answered_408_and_closed() {
    let sim = simulator();
    let service = Service::start(
        "stalled-body",
        &serve_config(
            &[("insider", sim.upsert_url())],
            json!({"body_read_timeout_seconds": 1}),
        ),
    );
    let head = |framing: &str| {
        format!(
            "POST /v1/events HTTP/1.1\r\nHost: hardal\r\nAuthorization: Bearer {INGEST}\r\n\
             Content-Type: application/x-ndjson\r\n{framing}\r\n\r\n"
        )
    };
    for request in [
        head("Content-Length: 1000") + "{\"event_name\": ",
        head("Transfer-Encoding: chunked") + "5\r\n{\"eve\r\n8\r\nnt_na",
    ] {
        let answer = until_closed(stalled(&service, &request))
            .expect("a stalled body is cut off, not held until shutdown");
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    }
    // Nothing of them was stored.
    assert_eq!(
        samples(&scrape(&service), "hardal_events_received_total")[0].1,
        0.0
    );
}

#[test]
fn connections_past_the_limit_wait_for_a_free_one() {
    let sim = simulator();
    let service = Service::start(
        "connection-limit",
        &serve_config(
            &[("insider", sim.upsert_url())],
            json!({"header_read_timeout_seconds": 300, "max_connections": 2}),
        ),
    );
    let mut slow: Vec<TcpStream> = (0..2).map(|_| stalled(&service, "GET /hea")).collect();
    let (done_tx, done) = std::sync::mpsc::channel();
    std::thread::scope(|scope| {
        scope.spawn(|| done_tx.send(service.post_ndjson(&events(5, 5))).unwrap());
        // Held while both connections are taken (on any machine: it cannot be served).
        assert!(
            done.recv_timeout(Duration::from_millis(500)).is_err(),
            "a third connection was served past the limit of two"
        );
        // One client goes away: its connection is free, and the post is served.
        drop(slow.pop());
        let (status, answer) = done.recv_timeout(Duration::from_secs(60)).unwrap();
        assert_eq!(status, 202, "{answer}");
    });
}
