//! The fault and abuse matrix of `hardal send`: each test is one way a hostile server, hostile
//! input, a mistaken configuration or a crash used to lose, leak, skip or hang, named after that
//! case, and checks that it no longer does. Servers are the in-tree Insider simulator (with
//! injected faults) and plain listeners on loopback.

mod common;

use std::io::Write;
use std::net::TcpListener;
use std::time::{Duration, Instant};

use common::service::wait_until;
use common::*;
use hardal_core::{
    BatchLimits, Destination, Event, HttpMethod, HttpRequest, HttpResponse, MapContext, Mapped,
    MappingError, Record, Secret, Verdict,
};
use hardal_insider_simulator::{Fault, RetryAfterSpec, Scope};
use hardal_runner::config::{Config, DeliveryConfig};
use hardal_runner::redact::Redactor;
use serde_json::{Value, json};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

// ---- Events reported delivered that never arrived, or silently skipped ----

#[test]
fn a_regenerated_export_at_the_same_path_is_refused_not_called_already_handled() {
    let sim = simulator();
    let run = Run::new("regenerated");
    let first = run.send(config(&sim, json!({}), json!({})), &events(50, 5));
    assert!(first.success(), "{}", first.text());
    // The same path, other content: an export regenerated overnight.
    let summary = run.send(config(&sim, json!({}), json!({})), &events(50, 7));
    assert!(!summary.success());
    let error = summary.error.clone().unwrap_or_default();
    assert!(
        error.contains("is not the file an earlier run read")
            && error.contains("--restart")
            && error.contains("--state"),
        "{error}"
    );
    assert_eq!(sim.accepted_users().len(), 50, "nothing more was sent");
    // --restart sends it as the new backfill it is.
    let mut options = run.options(&events(50, 7));
    options.restart = true;
    let restarted = run.send_with(
        config(&sim, json!({}), json!({})),
        options,
        std::future::pending(),
    );
    assert!(restarted.success(), "{}", restarted.text());
    assert_eq!(restarted.destinations[0].totals.delivered, 50);
}

#[test]
fn a_truncated_input_is_refused() {
    let sim = simulator();
    let run = Run::new("truncated");
    assert!(
        run.send(config(&sim, json!({}), json!({})), &events(50, 5))
            .success()
    );
    let summary = run.send(config(&sim, json!({}), json!({})), &events(30, 5));
    let error = summary.error.unwrap_or_default();
    assert!(
        error.contains("is shorter") && error.contains("--restart"),
        "{error}"
    );
}

#[test]
fn appended_lines_continue_where_the_earlier_run_stopped() {
    let sim = simulator();
    let run = Run::new("appended");
    assert!(
        run.send(config(&sim, json!({}), json!({})), &events(50, 5))
            .success()
    );
    // events(80, 5) starts with the very lines of events(50, 5).
    let summary = run.send(config(&sim, json!({}), json!({})), &events(80, 5));
    assert!(summary.success(), "{}", summary.text());
    assert_eq!(summary.already_done, 50);
    assert_eq!(summary.destinations[0].this_run.delivered, 30);
    assert_eq!(summary.destinations[0].totals.delivered, 80);
    assert_eq!(check_every_event_accounted_for(&sim, &run, 80), (80, 0));
    assert_eq!(duplicates(&sim), 0);
}

#[test]
fn a_redirect_is_never_followed_and_pauses_the_destination_naming_where_it_pointed() {
    // A listener standing for another host: nothing may ever reach it.
    let trap = TcpListener::bind("127.0.0.1:0").unwrap();
    let trap_url = format!("http://{}/collect", trap.local_addr().unwrap());
    trap.set_nonblocking(true).unwrap();
    for status in [302, 307, 308] {
        let sim = simulator();
        let run = Run::new(&format!("redirect-{status}"));
        sim.inject(
            Fault::Redirect {
                status,
                location: trap_url.clone(),
            },
            Scope::Always,
        )
        .unwrap();
        let summary = run.send(config(&sim, json!({}), json!({})), &events(40, 4));
        assert!(!summary.success());
        let paused = summary.destinations[0].paused.clone().unwrap_or_default();
        assert!(paused.contains(&trap_url), "{paused}");
        assert_eq!(summary.destinations[0].totals.delivered, 0);
        assert_eq!(summary.destinations[0].unresolved, 40, "{}", summary.text());
        assert!(
            trap.accept().is_err(),
            "a redirect to {trap_url} was followed (HTTP {status})"
        );
        // Nothing was dropped: once the endpoint is right again, everything goes.
        sim.clear_faults();
        let summary = run.send(config(&sim, json!({}), json!({})), &events(40, 4));
        assert!(summary.success(), "{}", summary.text());
        assert_eq!(check_every_event_accounted_for(&sim, &run, 40), (40, 0));
    }
}

#[test]
fn a_200_that_is_not_insiders_answer_is_retried_never_counted_delivered() {
    for body in ["<html><body>Sign in to the hotel Wi-Fi</body></html>", "{}"] {
        let sim = simulator();
        let run = Run::new("odd-200");
        sim.inject(
            Fault::OddAnswer {
                status: 200,
                content_type: "text/html".into(),
                body: body.into(),
            },
            Scope::Next(3),
        )
        .unwrap();
        let summary = run.send(
            config(&sim, json!({}), json!({"concurrency": 1})),
            &events(60, 6),
        );
        assert!(summary.success(), "{}", summary.text());
        assert!(summary.destinations[0].records_retried > 0);
        // Every event really reached the simulator's record.
        assert_eq!(check_every_event_accounted_for(&sim, &run, 60), (60, 0));
    }
}

#[test]
fn invalid_utf8_is_dead_lettered_with_its_line_number_and_the_run_goes_on() {
    let sim = simulator();
    let run = Run::new("utf8");
    let mut input = Vec::new();
    for (i, line) in events(20, 3).lines().enumerate() {
        if i == 4 {
            input.extend_from_slice(b"{\"event_name\":\"x\",\"user_id\":\"\xff\xfe\"}\n");
        }
        input.extend_from_slice(line.as_bytes());
        input.push(b'\n');
    }
    let summary = run.send_with(
        config(&sim, json!({}), json!({})),
        run.options_bytes(&input),
        std::future::pending(),
    );
    assert_eq!(summary.invalid, 1, "{}", summary.text());
    assert_eq!(summary.destinations[0].totals.delivered, 20);
    assert!(summary.complete && !summary.success());
    let dead = run.dead_letters();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0]["line"], 5);
    assert!(
        dead[0]["reasons"][0]
            .as_str()
            .unwrap()
            .contains("not valid UTF-8")
    );
    assert!(dead[0]["raw"].as_str().unwrap().contains('\u{fffd}'));
    // The next run does not stop at the same line: everything is already handled.
    let again = run.send_with(
        config(&sim, json!({}), json!({})),
        run.options_bytes(&input),
        std::future::pending(),
    );
    assert_eq!(again.already_done, 21, "{}", again.text());
    assert!(again.complete, "{}", again.text());
}

#[test]
fn a_line_longer_than_the_largest_event_is_dead_lettered_and_skipped_unread() {
    let sim = simulator();
    let run = Run::new("long-line");
    let huge = format!(
        "{{\"event_name\":\"x\",\"user_id\":\"u1\",\"properties\":{{\"blob\":\"{}\"}}}}\n",
        "z".repeat(3_000_000)
    );
    let input = events(10, 2) + &huge + &events(20, 2)[events(10, 2).len()..];
    let mut options = run.options(&input);
    options.max_event_bytes = 100_000;
    let summary = run.send_with(
        config(&sim, json!({}), json!({})),
        options,
        std::future::pending(),
    );
    assert_eq!(summary.invalid, 1, "{}", summary.text());
    assert_eq!(summary.destinations[0].totals.delivered, 20);
    let dead = run.dead_letters();
    assert_eq!(dead[0]["line"], 11);
    let reason = dead[0]["reasons"][0].as_str().unwrap();
    assert!(
        reason.contains("more than the largest allowed (100000 bytes)"),
        "{reason}"
    );
    assert!(dead[0]["raw"].as_str().unwrap().len() <= 1024);
}

#[test]
fn two_runs_on_one_checkpoint_cannot_both_send() {
    let (sim, run, input, mut first) = held_binary_run("two-runs");
    let second = hardal_send(&run, &binary_config(&sim), &input, &[])
        .wait_with_output()
        .unwrap();
    assert_eq!(second.status.code(), Some(1));
    assert!(
        text(&second.stderr).contains("in use by another hardal send"),
        "{}",
        text(&second.stderr)
    );
    sim.clear_faults();
    let status = first.wait().unwrap();
    assert!(status.success());
    assert_eq!(check_every_event_accounted_for(&sim, &run, 3000), (3000, 0));
    assert_eq!(duplicates(&sim), 0, "the second run sent nothing");
}

#[test]
fn every_dead_letter_is_one_json_line_so_the_jq_replay_reads_them_all() {
    let sim = simulator();
    let run = Run::new("dead-letters-json");
    // A torn line left by an earlier crash is repaired before anything is appended.
    std::fs::write(run.dir.join("dead-letters.ndjson"), "{\"line\":1,\"desti").unwrap();
    let mut input = events(10, 2).into_bytes();
    input.extend_from_slice(b"not json at all \"quoted\"\n{\"unclosed\": \n[1,2]\n\xff\xfe\n");
    input.extend_from_slice(
        json!({"id": "p", "event_name": "identify", "user_id": "u9",
               "user": {"phone_number": "0532 123 45 67"}})
        .to_string()
        .as_bytes(),
    );
    input.push(b'\n');
    let summary = run.send_with(
        config(&sim, json!({}), json!({})),
        run.options_bytes(&input),
        std::future::pending(),
    );
    assert_eq!(summary.dead_letters_written, 5, "{}", summary.text());
    let text = std::fs::read_to_string(run.dir.join("dead-letters.ndjson")).unwrap();
    let letters: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(letters.len(), 5, "{text}");
    let lines: Vec<u64> = letters
        .iter()
        .map(|l| l["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, [11, 12, 13, 14, 15]);
    assert_eq!(letters[4]["event"]["id"], "p");
    // Lines that are not events are kept as text, so a replay of `.event` skips them.
    assert!(
        letters[..4]
            .iter()
            .all(|l| l["raw"].is_string() && l.get("event").is_none())
    );
}

#[test]
fn a_failed_dead_letter_write_stops_the_run_and_is_never_counted_as_written() {
    let sim = simulator();
    let run = Run::new("dead-letter-fails");
    let mut input = events(200, 5);
    input.insert_str(0, "not json\n");
    let mut options = run.options(&input);
    // A directory cannot be written as a file.
    options.dead_letters = run.dir.clone();
    let summary = run.send_with(
        config(&sim, json!({}), json!({})),
        options,
        std::future::pending(),
    );
    assert_eq!(summary.dead_letters_written, 0, "{}", summary.text());
    assert!(
        summary
            .error
            .as_deref()
            .unwrap_or_default()
            .contains("cannot write the dead-letter file"),
        "{}",
        summary.text()
    );
    assert!(!summary.complete && !summary.success());
    // Line 1 was never marked resolved: a run with a usable path dead-letters it.
    let summary = run.send(config(&sim, json!({}), json!({})), &input);
    assert_eq!(summary.dead_letters_written, 1, "{}", summary.text());
    assert_eq!(run.dead_letters()[0]["line"], 1);
    assert_eq!(check_every_event_accounted_for(&sim, &run, 200), (200, 0));
}

#[test]
fn state_and_dead_letter_paths_that_collide_are_refused() {
    let sim = simulator();
    let run = Run::new("collide");
    let input = events(5, 1);
    for (dead_letters, state, expected) in [
        ("events.ndjson", "state.db", "is the input file"),
        ("same.db", "same.db", "name the same file"),
        ("dl.ndjson", "events.ndjson", "is the input file"),
        ("x.db-wal", "x.db", "name the same file"),
    ] {
        let mut options = run.options(&input);
        options.dead_letters = run.dir.join(dead_letters);
        options.state = run.dir.join(".").join(state);
        let summary = run.send_with(
            config(&sim, json!({}), json!({})),
            options,
            std::future::pending(),
        );
        let error = summary.error.unwrap_or_default();
        assert!(error.contains(expected), "{dead_letters} {state}: {error}");
    }
    assert_eq!(sim.requests().len(), 0);
    assert_eq!(
        std::fs::read_to_string(run.dir.join("events.ndjson")).unwrap(),
        input
    );
}

/// A server on loopback that reads each request's head and answers with `answer` (which may
/// never end), on every connection.
fn raw_server(answer: fn(&mut std::net::TcpStream)) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "http://{}/api/user/v1/upsert",
        listener.local_addr().unwrap()
    );
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if std::io::Read::read(&mut stream, &mut byte).unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(byte[0]);
                }
                answer(&mut stream);
            });
        }
    });
    url
}

#[test]
fn a_server_answering_with_huge_headers_is_retried_then_dead_lettered() {
    let url = raw_server(|stream| {
        let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nX-Junk: ");
        let junk = vec![b'j'; 64 * 1024];
        for _ in 0..64 {
            if stream.write_all(&junk).is_err() {
                return;
            }
        }
        let _ = stream.write_all(b"\r\nContent-Length: 0\r\n\r\n");
    });
    let run = Run::new("huge-headers");
    let summary = run.send(
        load(
            &json!({"destinations": [{"id": "insider", "type": "insider", "consent": {"mode": "off"}, "partner_name": "mybrand",
                                       "request_token": "${TOKEN}", "endpoint": url}],
                     "delivery": {"max_attempts": 2, "backoff_initial_ms": 10, "linger_ms": 5}}),
        ),
        &events(5, 5),
    );
    assert!(summary.complete, "{}", summary.text());
    assert_eq!(summary.destinations[0].totals.dead_lettered, 5);
    let reasons = run.dead_letters()[0]["reasons"].to_string();
    assert!(reasons.contains("attempts 1–2"), "{reasons}");
}

#[test]
fn an_endless_response_body_is_cut_off_and_never_counted_delivered() {
    let url = raw_server(|stream| {
        let _ = stream.write_all(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000000000\r\n\r\n",
        );
        let chunk = vec![b' '; 64 * 1024];
        while stream.write_all(&chunk).is_ok() {}
    });
    let run = Run::new("endless-body");
    let started = Instant::now();
    let summary = run.send(
        load(
            &json!({"destinations": [{"id": "insider", "type": "insider", "consent": {"mode": "off"}, "partner_name": "mybrand",
                                       "request_token": "${TOKEN}", "endpoint": url}],
                     "delivery": {"max_attempts": 2, "backoff_initial_ms": 10, "linger_ms": 5,
                                  "request_timeout_ms": 300000}}),
        ),
        &events(5, 5),
    );
    // Read up to its bound, judged (not Insider's answer), retried, and given up — long before
    // the request timeout would have cut it (two attempts of five minutes); the bound leaves a
    // loaded machine room.
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        summary.destinations[0].totals.dead_lettered,
        5,
        "{}",
        summary.text()
    );
    assert_eq!(summary.destinations[0].totals.delivered, 0);
}

// ---- Leaking the API token ----

#[test]
fn a_server_echoing_our_headers_never_puts_the_token_into_dead_letters_stderr_or_json() {
    let sim = simulator();
    let run = Run::new("echo");
    sim.inject(Fault::EchoHeaders { status: 400 }, Scope::Always)
        .unwrap();
    let output = hardal_send(&run, &binary_config(&sim), &events(30, 3), &["--json"])
        .wait_with_output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    let dead = std::fs::read_to_string(run.dir.join("hardal-dead-letters.ndjson")).unwrap();
    assert!(dead.contains("x-request-token: [redacted]"), "{dead}");
    for (what, content) in [
        ("dead letters", &dead),
        ("stderr", &stderr),
        ("stdout", &stdout),
    ] {
        assert!(
            !content.contains(TOKEN),
            "the token leaked into {what}: {content}"
        );
    }
    let summary: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(summary["destinations"][0]["rejected"], 30);
}

// ---- Crashes and hangs on input hardal does not control ----

#[test]
fn a_huge_retry_after_neither_panics_nor_holds_the_run() {
    let sim = simulator();
    let run = Run::new("huge-retry-after");
    sim.inject(
        Fault::TooManyRequests {
            retry_after: Some(RetryAfterSpec::Seconds(u64::MAX)),
        },
        Scope::Next(1),
    )
    .unwrap();
    let started = Instant::now();
    let summary = run.send(
        config(
            &sim,
            json!({"max_users_per_request": 10}),
            json!({"concurrency": 1}),
        ),
        &events(10, 10),
    );
    assert!(started.elapsed() < Duration::from_secs(30));
    // A day's wait is beyond the retry budget: the records are dead-lettered with the reason.
    assert_eq!(
        summary.destinations[0].totals.dead_lettered,
        10,
        "{}",
        summary.text()
    );
    let reasons = run.dead_letters()[0]["reasons"].to_string();
    assert!(reasons.contains("retry budget"), "{reasons}");
    // Resuming does not meet the same panic: there is none.
    let again = run.send(config(&sim, json!({}), json!({})), &events(10, 10));
    assert!(again.complete, "{}", again.text());
}

#[derive(Clone, Copy)]
enum MapTrouble {
    None,
    Panic,
    NoRecords,
}

/// A destination whose mapping or judging misbehaves on purpose.
struct Misbehaving {
    url: String,
    /// What mapping does to every seventh event (seq % 7 == 3).
    map_trouble: MapTrouble,
    judge: fn(&[&Record], &HttpResponse) -> Vec<Verdict>,
}

impl Destination for Misbehaving {
    fn id(&self) -> &str {
        "misbehaving"
    }
    fn kind(&self) -> &'static str {
        "test"
    }
    fn map(&self, event: &Event, _: &MapContext) -> Result<Mapped, MappingError> {
        let seq = event.as_value()["properties"]["seq"].as_u64().unwrap_or(0);
        if seq % 7 == 3 {
            match self.map_trouble {
                MapTrouble::None => {}
                MapTrouble::Panic => panic!("mapping bug on seq {seq}"),
                MapTrouble::NoRecords => return Ok(Mapped::records(Vec::new())),
            }
        }
        let user = json!({"identifiers": {"uuid": event.as_value()["user_id"]},
                          "events": [{"event_name": "x", "timestamp": "2024-12-19T09:00:00Z",
                                      "event_params": {"custom": {"seq": seq}}}]});
        Ok(Mapped::records(vec![Record {
            payload: user.to_string().into_bytes(),
            order_key: event.user_key(),
            batch_key: None,
        }]))
    }
    fn batch_limits(&self) -> BatchLimits {
        BatchLimits {
            max_records: 10,
            max_bytes: 1_000_000,
        }
    }
    fn body_size(&self, records: usize, payload_bytes: usize) -> usize {
        11 + payload_bytes + records.saturating_sub(1)
    }
    fn encode(&self, records: &[&Record], _: &hardal_core::SendContext) -> HttpRequest {
        let items: Vec<&[u8]> = records.iter().map(|r| r.payload.as_slice()).collect();
        let mut body = b"{\"users\":[".to_vec();
        body.extend_from_slice(&items.join(&b","[..]));
        body.extend_from_slice(b"]}");
        HttpRequest {
            method: HttpMethod::Post,
            url: self.url.clone(),
            headers: vec![
                ("Content-Type".into(), Secret::new("application/json")),
                ("X-PARTNER-NAME".into(), Secret::new("mybrand")),
                ("X-REQUEST-TOKEN".into(), Secret::new(TOKEN)),
            ],
            body,
        }
    }
    fn judge(&self, records: &[&Record], response: &HttpResponse) -> Vec<Verdict> {
        (self.judge)(records, response)
    }
}

fn misbehaving_config(destination: Misbehaving) -> Config {
    let delivery: DeliveryConfig =
        serde_json::from_value(fast_delivery()).expect("valid delivery settings");
    Config {
        destinations: vec![Box::new(destination)],
        delivery: vec![delivery],
        consent: vec![hardal_core::Consent::off(hardal_core::Purpose::Webhook)],
        server: None,
        backlog: Default::default(),
        privacy: Default::default(),
        redactor: Redactor::default(),
        warnings: Vec::new(),
    }
}

#[test]
fn a_mapping_with_nothing_to_send_is_skipped_not_left_unresolved() {
    // Left unresolved, such events kept the run incomplete and were mapped again on every resume.
    let sim = simulator();
    let run = Run::new("no-records");
    let config = || {
        misbehaving_config(Misbehaving {
            url: sim.upsert_url(),
            map_trouble: MapTrouble::NoRecords,
            judge: |records, _| vec![Verdict::Delivered; records.len()],
        })
    };
    let summary = run.send(config(), &events(70, 7));
    assert!(summary.complete, "{}", summary.text());
    let totals = &summary.destinations[0].totals;
    assert_eq!((totals.delivered, totals.skipped), (60, 10));
    let again = run.send(config(), &events(70, 7));
    assert_eq!(
        again.destinations[0].this_run.delivered,
        0,
        "{}",
        again.text()
    );
}

#[test]
fn a_panic_in_map_or_judge_rejects_those_events_instead_of_hanging() {
    let sim = simulator();
    let run = Run::new("panics");
    let summary = run.send(
        misbehaving_config(Misbehaving {
            url: sim.upsert_url(),
            map_trouble: MapTrouble::Panic,
            judge: |records, _| vec![Verdict::Delivered; records.len()],
        }),
        &events(70, 7),
    );
    assert!(summary.complete, "{}", summary.text());
    let totals = &summary.destinations[0].totals;
    assert_eq!((totals.delivered, totals.rejected), (60, 10));
    let reason = run.dead_letters()[0]["reasons"][0].to_string();
    assert!(
        reason.contains("failed while mapping this event: mapping bug on seq 3"),
        "{reason}"
    );

    let run = Run::new("judge-panics");
    let summary = run.send(
        misbehaving_config(Misbehaving {
            url: sim.upsert_url(),
            map_trouble: MapTrouble::None,
            judge: |_, _| panic!("judging bug"),
        }),
        &events(20, 4),
    );
    assert!(summary.complete, "{}", summary.text());
    assert_eq!(summary.destinations[0].totals.rejected, 20);
    let reason = run.dead_letters()[0]["reasons"][0].to_string();
    assert!(
        reason.contains("failed while judging the answer (HTTP 200): judging bug"),
        "{reason}"
    );
}

#[test]
fn a_request_refused_for_an_unnamed_record_is_split_until_that_record_stands_alone() {
    // Like Meta's Conversions API, the destination refuses a whole request (10 records at most)
    // when one record in it is bad, without saying which: the engine halves the request until
    // the bad record is alone, and delivers the rest.
    let sim = simulator();
    let run = Run::new("split");
    let summary = run.send(
        misbehaving_config(Misbehaving {
            url: sim.upsert_url(),
            map_trouble: MapTrouble::None,
            judge: |records, _| {
                let bad = records
                    .iter()
                    .any(|r| String::from_utf8_lossy(&r.payload).contains("\"seq\":37}"));
                let verdict = if bad {
                    Verdict::Split {
                        reason: "HTTP 400: Invalid parameter".into(),
                    }
                } else {
                    Verdict::Delivered
                };
                vec![verdict; records.len()]
            },
        }),
        &events(100, 5),
    );
    let destination = &summary.destinations[0];
    assert_eq!(
        (destination.totals.delivered, destination.totals.rejected),
        (99, 1),
        "{}",
        summary.text()
    );
    // A request of at most 10 records is halved at most ⌈log2 10⌉ = 4 times.
    assert!(
        (1..=4).contains(&destination.batch_splits),
        "{}",
        summary.text()
    );
    assert!(
        summary
            .text()
            .contains(&format!(", {} requests split\n", destination.batch_splits)),
        "{}",
        summary.text()
    );
    let dead = run.dead_letters();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0]["reasons"][0], "HTTP 400: Invalid parameter");
    assert!(dead[0]["event"].to_string().contains("e37"), "{}", dead[0]);
}

#[test]
fn a_key_in_a_destinations_url_never_shows_in_reasons_pauses_or_dead_letters() {
    // GA4 and Meta take their keys as query parameters. The runner redacts every configured
    // secret wherever it shows a reason; here the key comes back from the server three ways.
    const KEY: &str = "s3cr3t-url-key";
    let with_key = |url: String| Misbehaving {
        url: format!("{url}?key={KEY}"),
        map_trouble: MapTrouble::None,
        judge: |records, response| vec![response.status_verdict(); records.len()],
    };
    let keyed = |destination: Misbehaving| Config {
        redactor: Redactor::new([KEY.to_owned()]),
        ..misbehaving_config(destination)
    };
    let shown = |run: &Run, summary: &hardal_runner::send::summary::Summary| {
        let dead_letters =
            std::fs::read_to_string(run.dir.join("dead-letters.ndjson")).unwrap_or_default();
        format!("{}\n{dead_letters}", summary.text())
    };

    // A redirect to the URL with its key: the pause names where it pointed, without the key.
    let sim = simulator();
    let run = Run::new("key-redirect");
    let location = format!("{}?key={KEY}", sim.upsert_url());
    sim.inject(
        Fault::Redirect {
            status: 302,
            location,
        },
        Scope::Always,
    )
    .unwrap();
    let summary = run.send(keyed(with_key(sim.upsert_url())), &events(5, 5));
    let paused = summary.destinations[0].paused.clone().unwrap_or_default();
    assert!(paused.contains("?key=[redacted]"), "{paused}");
    assert!(
        !shown(&run, &summary).contains(KEY),
        "{}",
        shown(&run, &summary)
    );

    // A 400 whose body quotes the request line: the dead letters' reasons are redacted.
    let url = raw_server(|stream| {
        let body = "bad request: POST /api/user/v1/upsert?key=s3cr3t-url-key";
        let _ = write!(
            stream,
            "HTTP/1.1 400 Bad Request\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
    });
    let run = Run::new("key-echoed");
    let summary = run.send(keyed(with_key(url)), &events(5, 5));
    assert_eq!(
        summary.destinations[0].totals.rejected,
        5,
        "{}",
        summary.text()
    );
    let reason = run.dead_letters()[0]["reasons"][0].to_string();
    assert!(reason.contains("key=[redacted]"), "{reason}");
    assert!(
        !shown(&run, &summary).contains(KEY),
        "{}",
        shown(&run, &summary)
    );

    // Nothing listens: the transport's errors never carry the URL at all.
    let url = format!("http://127.0.0.1:{}/collect", service::free_port());
    let run = Run::new("key-unreachable");
    let summary = run.send(keyed(with_key(url)), &events(2, 2));
    assert_eq!(
        summary.destinations[0].totals.dead_lettered,
        2,
        "{}",
        summary.text()
    );
    let reasons = run.dead_letters()[0]["reasons"].to_string();
    assert!(reasons.contains("could not connect"), "{reasons}");
    assert!(
        !shown(&run, &summary).contains(KEY),
        "{}",
        shown(&run, &summary)
    );
}

#[test]
fn a_destination_must_give_exactly_one_verdict_per_record() {
    let sim = simulator();
    for (name, judge) in [
        (
            "too-few",
            (|_, _| Vec::new()) as fn(&[&Record], &HttpResponse) -> Vec<Verdict>,
        ),
        ("too-many", |records, _| {
            vec![Verdict::Delivered; records.len() + 1]
        }),
    ] {
        let run = Run::new(name);
        let summary = run.send(
            misbehaving_config(Misbehaving {
                url: sim.upsert_url(),
                map_trouble: MapTrouble::None,
                judge,
            }),
            &events(15, 3),
        );
        assert!(summary.complete, "{}", summary.text());
        assert_eq!(summary.destinations[0].totals.rejected, 15);
        let reason = run.dead_letters()[0]["reasons"][0].to_string();
        assert!(reason.contains("verdicts for the"), "{reason}");
    }
}

#[test]
fn a_line_of_gigabytes_without_a_newline_keeps_memory_flat() {
    let sim = simulator();
    let run = Run::new("giant-line");
    let path = run.dir.join("giant.ndjson");
    {
        let mut file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        file.write_all(events(5, 5).as_bytes()).unwrap();
        file.write_all(b"{\"event_name\":\"x\",\"blob\":\"")
            .unwrap();
        let block = vec![b'a'; 1 << 20];
        for _ in 0..150 {
            file.write_all(&block).unwrap();
        }
        // No closing quote, no newline: the line never ends.
    }
    let config_path = run.dir.join("config.json");
    std::fs::write(&config_path, binary_config(&sim).to_string()).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_hardal"))
        .args(["send", "--config", config_path.to_str().unwrap()])
        .arg(&path)
        .args(["--progress-interval", "0"])
        .current_dir(&run.dir)
        .env("INSIDER_REQUEST_TOKEN", TOKEN)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let (status, peak_kib) = wait_with_peak_rss(&mut child);
    assert_eq!(status, 1, "the giant line is a dead letter");
    assert!(
        peak_kib < 80 * 1024,
        "peak RSS {peak_kib} KiB for a 150 MB line"
    );
    assert_eq!(sim.accepted_users().len(), 5);
    let dead = std::fs::read_to_string(run.dir.join("hardal-dead-letters.ndjson")).unwrap();
    let letter: Value = serde_json::from_str(dead.trim()).unwrap();
    assert_eq!(letter["line"], 6);
}

#[test]
fn render_streams_with_constant_memory() {
    let run = Run::new("render-stream");
    let path = run.dir.join("big.ndjson");
    {
        let mut file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        let event =
            json!({"event_name": "page_view", "user_id": "u1", "user": {"email": "a@b.co"}})
                .to_string();
        let line = format!(
            "{{\"event_name\":\"x\",\"blob\":\"{}\"}}\n",
            "b".repeat(4 << 20)
        );
        for _ in 0..30 {
            file.write_all(line.as_bytes()).unwrap();
            file.write_all(event.as_bytes()).unwrap();
            file.write_all(b"\n").unwrap();
        }
    }
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_hardal"))
        .args(["render", "--config"])
        .arg(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/insider.json"))
        .arg(&path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let (status, peak_kib) = wait_with_peak_rss(&mut child);
    // 30 events too long to render (reported), 30 rendered.
    assert_eq!(status, 1);
    assert!(
        peak_kib < 60 * 1024,
        "peak RSS {peak_kib} KiB for a 120 MB input"
    );
}

// ---- Accepting what can never work: see tests/validate.rs ----

// ---- One destination's trouble is its own ----

#[test]
fn a_401_on_one_destination_stops_only_that_destination() {
    let good = simulator();
    let locked = simulator();
    locked.inject(Fault::Unauthorized, Scope::Always).unwrap();
    let run = Run::new("isolated-pause");
    let config = load(&json!({
        "destinations": [insider("locked", &locked), insider("good", &good)],
        "delivery": fast_delivery()}));
    let summary = run.send(config, &events(300, 11));
    assert!(!summary.success());
    assert!(
        summary.destinations[0].paused.is_some(),
        "{}",
        summary.text()
    );
    assert_eq!(summary.destinations[0].unresolved, 300);
    assert_eq!(
        summary.destinations[1].totals.delivered,
        300,
        "{}",
        summary.text()
    );
    assert!(
        summary.text().contains("locked: PAUSED"),
        "{}",
        summary.text()
    );
    // Fixed: only the paused destination has anything left to do.
    locked.clear_faults();
    let config = load(&json!({
        "destinations": [insider("locked", &locked), insider("good", &good)],
        "delivery": fast_delivery()}));
    let summary = run.send(config, &events(300, 11));
    assert!(summary.success(), "{}", summary.text());
    assert_eq!(summary.destinations[0].this_run.delivered, 300);
    assert_eq!(summary.destinations[1].this_run.delivered, 0);
    assert_eq!(locked.accepted_users().len(), 300);
    assert_eq!(good.accepted_users().len(), 300);
}

#[test]
fn fixing_a_bad_partner_name_resends_nothing_to_the_healthy_destinations() {
    let good = simulator();
    let fixed = simulator();
    let run = Run::new("partner-fix");
    let wrong = json!({"partner_name": "wrongbrand"});
    let mut broken = insider("fixed", &fixed);
    broken
        .as_object_mut()
        .unwrap()
        .extend(wrong.as_object().unwrap().clone());
    let summary = run.send(
        load(
            &json!({"destinations": [broken, insider("good", &good)], "delivery": fast_delivery()}),
        ),
        &events(120, 9),
    );
    assert!(
        summary.destinations[0].paused.is_some(),
        "{}",
        summary.text()
    );
    assert_eq!(good.accepted_users().len(), 120);
    // The partner name is fixed, and the delivery settings tuned while at it.
    let mut tuned = fast_delivery();
    tuned["concurrency"] = json!(2);
    let summary = run.send(
        load(
            &json!({"destinations": [insider("fixed", &fixed), insider("good", &good)],
                     "delivery": tuned}),
        ),
        &events(120, 9),
    );
    assert!(summary.success(), "{}", summary.text());
    assert_eq!(
        summary.destinations[1].this_run.delivered,
        0,
        "{}",
        summary.text()
    );
    assert_eq!(
        good.accepted_users().len(),
        120,
        "nothing was sent twice to `good`"
    );
    assert_eq!(fixed.accepted_users().len(), 120);
}

#[test]
fn a_resumed_run_exits_non_zero_when_the_backfill_dead_lettered_earlier() {
    let sim = simulator();
    let run = Run::new("resumed-exit");
    let national = json!({"id": "n", "event_name": "identify", "user_id": "u0",
                          "user": {"phone_number": "0532 123 45 67"}})
    .to_string();
    let first = format!("{national}\n{}", events(20, 4));
    let summary = run.send(config(&sim, json!({}), json!({})), &first);
    assert_eq!(summary.destinations[0].totals.rejected, 1);
    // More lines are appended; this run on its own delivers all of them.
    let second = format!("{first}{}", &events(40, 4)[events(20, 4).len()..]);
    let summary = run.send(config(&sim, json!({}), json!({})), &second);
    assert_eq!(summary.destinations[0].this_run.rejected, 0);
    assert_eq!(
        summary.destinations[0].totals.rejected,
        1,
        "{}",
        summary.text()
    );
    assert!(summary.complete && !summary.success(), "{}", summary.text());
    assert!(
        summary.text().contains("some from earlier runs"),
        "{}",
        summary.text()
    );
}

#[test]
fn a_dry_run_never_waits_on_the_rate_limit() {
    let sim = simulator();
    let run = Run::new("dry-rate");
    let mut options = run.options(&events(40, 40));
    options.dry_run = true;
    let started = Instant::now();
    // One request a minute, one user a request: forty minutes if the dry run waited.
    let summary = run.send_with(
        config(
            &sim,
            json!({"requests_per_minute": 1, "max_users_per_request": 1}),
            json!({}),
        ),
        options,
        std::future::pending(),
    );
    assert!(summary.success(), "{}", summary.text());
    assert_eq!(summary.destinations[0].requests, 40);
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[test]
fn checkpoint_writes_never_stall_delivery() {
    // Another process holds the checkpoint's database locked. Delivery must go on meanwhile; it
    // would stop dead if checkpoint writes ran on the engine's threads. (A checkpoint write
    // waits at most 5 s for the lock, so the lock is let go as soon as delivery is shown.)
    let (sim, run, _, mut child) = held_binary_run("blocked-checkpoint");
    let state = rusqlite::Connection::open(run.dir.join("hardal-send.db")).unwrap();
    state.busy_timeout(Duration::from_secs(10)).unwrap();
    state.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let before = sim.accepted_users().len();
    // Insider accepts again, while the checkpoint stays locked.
    sim.clear_faults();
    wait_until(
        "ten requests of 20 users are delivered while the checkpoint is locked",
        Duration::from_secs(60),
        || sim.accepted_users().len() >= before + 200,
    );
    state.execute_batch("ROLLBACK").unwrap();
    let status = child.wait().unwrap();
    assert!(status.success());
    assert_eq!(check_every_event_accounted_for(&sim, &run, 3000), (3000, 0));
}

// ---- Changing data: see also crates/core (numbers, timestamps) ----

#[test]
fn a_numeric_user_id_with_more_than_17_digits_keeps_every_digit() {
    let sim = simulator();
    let run = Run::new("big-ids");
    let input = [12345678901234567890123_u128, 12345678901234567890124]
        .iter()
        .enumerate()
        .map(|(i, id)| {
            format!(
                "{{\"event_name\":\"login\",\"created_at\":\"{}\",\"user_id\":{id},\"properties\":{{\"seq\":{i}}}}}\n",
                recent()
            )
        })
        .collect::<String>();
    let summary = run.send(config(&sim, json!({}), json!({})), &input);
    assert!(summary.success(), "{}", summary.text());
    let uuids: Vec<String> = sim
        .accepted_users()
        .iter()
        .map(|u| u.user["identifiers"]["uuid"].as_str().unwrap().to_owned())
        .collect();
    // Two users stay two users, with their exact ids.
    assert_eq!(uuids.len(), 2);
    assert!(
        uuids.contains(&"12345678901234567890123".to_owned()),
        "{uuids:?}"
    );
    assert!(
        uuids.contains(&"12345678901234567890124".to_owned()),
        "{uuids:?}"
    );
}

#[test]
fn numeric_text_like_19900101_is_a_date_never_a_1970_timestamp() {
    let sim = simulator();
    let run = Run::new("compact-dates");
    let input = [
        json!({"event_name": "identify", "user_id": "a", "user": {"birthday": "19900101"}}),
        json!({"event_name": "identify", "user_id": "b", "user": {"birthday": 19851231}}),
        json!({"event_name": "login", "user_id": "c", "created_at": "12345"}),
    ]
    .iter()
    .map(|e| e.to_string() + "\n")
    .collect::<String>();
    run.send(config(&sim, json!({}), json!({})), &input);
    let users = sim.accepted_users();
    let birthday = |id: &str| {
        users
            .iter()
            .find(|u| u.user["identifiers"]["uuid"] == id)
            .map(|u| u.user["attributes"]["birthday"].clone())
    };
    assert_eq!(birthday("a"), Some(json!("1990-01-01T00:00:00Z")));
    assert_eq!(birthday("b"), Some(json!("1985-12-31T00:00:00Z")));
    let everything =
        serde_json::to_string(&users.iter().map(|u| &u.user).collect::<Vec<_>>()).unwrap();
    assert!(!everything.contains("1970-"), "{everything}");
}
