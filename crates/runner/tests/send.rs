//! `hardal send` against the Insider simulator on loopback, with injected faults. Every test
//! checks the same promise: every input event ends delivered exactly once in the simulator's
//! record or dead-lettered with a reason, and each user's events arrive in input order.

mod common;

use std::time::{Duration, SystemTime};

use common::service::{delivered, wait_until};
use common::*;
use hardal_insider_simulator::{Fault, RetryAfterSpec, Scope, Simulator, SimulatorConfig};
use serde_json::{Value, json};

#[test]
fn a_clean_run_delivers_everything_in_order() {
    let sim = simulator();
    let run = Run::new("clean");
    let summary = run.send(config(&sim, json!({}), json!({})), &events(500, 17));
    assert!(summary.success(), "{}", summary.text());
    assert_eq!(summary.destinations[0].totals.delivered, 500);
    assert_eq!(check_every_event_accounted_for(&sim, &run, 500), (500, 0));
    // 500 events of 25 users per request at most.
    assert!(summary.destinations[0].requests >= 20);
    assert!(sim.requests().iter().all(|r| r.users.unwrap_or(0) <= 25));
}

#[test]
fn mapping_threads_taking_turns_at_the_input_keep_every_line_in_its_place() {
    let sim = simulator();
    let run = Run::new("turns");
    // Six chunks of lines and more, with blank lines and a line that is not JSON among them:
    // four threads read them in turns, and still every user's events go in input order and
    // every line keeps its own number.
    let mut text = String::new();
    for (i, line) in events(3000, 41).lines().enumerate() {
        if i == 1500 {
            text.push_str("\n   \nnot json\n");
        }
        text.push_str(line);
        text.push('\n');
    }
    let mut options = run.options(&text);
    options.workers = 4;
    let summary = run.send_with(
        config(&sim, json!({}), json!({})),
        options,
        std::future::pending(),
    );
    assert_eq!(summary.invalid, 1, "{}", summary.text());
    assert_eq!(summary.destinations[0].totals.delivered, 3000);
    assert_eq!(check_every_event_accounted_for(&sim, &run, 3000), (3000, 0));
    let dead = run.dead_letters();
    assert_eq!((dead.len(), &dead[0]["line"]), (1, &json!(1503)));
    assert_eq!(dead[0]["raw"], "not json");
}

#[test]
fn a_429_storm_with_retry_after_is_waited_out() {
    let sim = simulator();
    let run = Run::new("429-retry-after");
    sim.inject(
        Fault::TooManyRequests {
            retry_after: Some(RetryAfterSpec::Seconds(1)),
        },
        Scope::Next(3),
    )
    .unwrap();
    let summary = run.send(
        config(&sim, json!({}), json!({"concurrency": 1})),
        &events(100, 7),
    );
    assert!(summary.success(), "{}", summary.text());
    assert_eq!(check_every_event_accounted_for(&sim, &run, 100), (100, 0));
    let log = sim.requests();
    // After each 429 the next request waited for the Retry-After second.
    for pair in log.windows(2) {
        if pair[0].status == Some(429) {
            let gap = pair[1]
                .received_at
                .duration_since(pair[0].received_at)
                .unwrap();
            assert!(
                gap >= Duration::from_millis(950),
                "a request came {gap:?} after a 429 with Retry-After: 1"
            );
        }
    }
    assert_eq!(log.iter().filter(|r| r.status == Some(429)).count(), 3);
}

#[test]
fn a_429_storm_without_retry_after_backs_off() {
    let sim = simulator();
    let run = Run::new("429-plain");
    sim.inject(
        Fault::TooManyRequests { retry_after: None },
        Scope::Next(10),
    )
    .unwrap();
    let summary = run.send(config(&sim, json!({}), json!({})), &events(300, 11));
    assert!(summary.success(), "{}", summary.text());
    assert_eq!(check_every_event_accounted_for(&sim, &run, 300), (300, 0));
    assert!(summary.destinations[0].records_retried > 0);
}

#[test]
fn server_error_bursts_dropped_connections_and_slow_answers_are_retried() {
    let sim = simulator();
    let run = Run::new("faults");
    sim.inject(
        Fault::ServerError { status: 500 },
        Scope::Fraction {
            fraction: 0.2,
            seed: 7,
        },
    )
    .unwrap();
    sim.inject(Fault::ServerError { status: 503 }, Scope::Next(4))
        .unwrap();
    sim.inject(
        Fault::Drop,
        Scope::Fraction {
            fraction: 0.1,
            seed: 11,
        },
    )
    .unwrap();
    sim.inject(
        Fault::Slow {
            delay: Duration::from_millis(1500),
        },
        Scope::Next(2),
    )
    .unwrap();
    let summary = run.send(
        config(&sim, json!({}), json!({"request_timeout_ms": 500})),
        &events(600, 23),
    );
    assert!(summary.success(), "{}", summary.text());
    assert_eq!(check_every_event_accounted_for(&sim, &run, 600), (600, 0));
    let log = sim.requests();
    assert!(
        log.iter().any(|r| r.status.is_none()),
        "no connection was dropped"
    );
    assert!(log.iter().any(|r| r.status == Some(500)) && log.iter().any(|r| r.status == Some(503)));
}

#[test]
fn users_insider_fails_are_dead_lettered_with_insiders_reasons_and_the_rest_delivered() {
    let sim = Simulator::start(SimulatorConfig {
        custom_identifiers: Some(vec!["hardal_id".into()]),
        ..SimulatorConfig::new("mybrand", TOKEN)
    })
    .unwrap();
    let run = Run::new("partial");
    // Users with an even number also carry a custom identifier the account does not define.
    let config = config(
        &sim,
        json!({"identifiers": ["uuid", "hardal_id", "crm_id"],
        "mappings": [{"when": {"properties.crm": {"exists": true}},
                      "user": {"identifiers": {"uuid": "##user_id##", "custom": {"crm_id": "##properties.crm##"}},
                               "events": [{"event_name": "##event_name##", "timestamp": "##created_at##",
                                           "event_params": {"custom": {"seq": "##properties.seq##"}}}]}}]}),
        json!({}),
    );
    let text: String = (0..200)
        .map(|i| {
            let mut event = json!({"id": format!("e{i}"), "event_name": "test_event", "created_at": recent(),
                                   "user_id": format!("u{}", i % 10), "properties": {"seq": i}});
            if i % 10 == 3 {
                event["properties"]["crm"] = json!(format!("c{i}"));
            }
            event.to_string() + "\n"
        })
        .collect();
    let summary = run.send(config, &text);
    assert!(!summary.success());
    assert_eq!(
        summary.destinations[0].totals.rejected,
        20,
        "{}",
        summary.text()
    );
    assert_eq!(summary.destinations[0].totals.delivered, 180);
    assert_eq!(check_every_event_accounted_for(&sim, &run, 200), (180, 20));
    let dead = run.dead_letters();
    assert!(dead.iter().all(|d| {
        d["reasons"][0]
            .as_str()
            .unwrap()
            .contains("custom identifier crm_id is not defined")
    }));
    assert!(dead.iter().all(|d| d["destination"] == "insider"));
}

#[test]
fn the_request_rate_never_exceeds_the_limit() {
    let sim = simulator();
    let run = Run::new("rate");
    // 1,200 requests per minute = one per 50 ms; 10 users per request, 400 events = 40 requests.
    let config = config(
        &sim,
        json!({"requests_per_minute": 1200, "max_users_per_request": 10}),
        json!({"concurrency": 8}),
    );
    let summary = run.send(config, &events(400, 400));
    assert!(summary.success(), "{}", summary.text());
    let times: Vec<SystemTime> = sim.requests().iter().map(|r| r.received_at).collect();
    assert_eq!(times.len(), 40);
    // No window of one second holds more than its 20 requests (+1 for the window's edge).
    for (i, start) in times.iter().enumerate() {
        let within = times[i..]
            .iter()
            .take_while(|t| t.duration_since(*start).unwrap() < Duration::from_secs(1))
            .count();
        assert!(within <= 21, "{within} requests within one second");
    }
    let span = times.last().unwrap().duration_since(times[0]).unwrap();
    assert!(
        span >= Duration::from_millis(39 * 50 - 100),
        "40 requests took only {span:?}"
    );
}

#[test]
fn a_401_mid_run_pauses_without_losing_anything_and_the_next_run_finishes() {
    let sim = simulator();
    let run = Run::new("pause");
    let text = events(300, 13);
    // Once four requests went through, the credentials stop working: the destination pauses.
    let summary = std::thread::scope(|scope| {
        scope.spawn(|| {
            while sim.requests().len() < 4 {
                std::thread::sleep(Duration::from_millis(1));
            }
            sim.inject(Fault::Unauthorized, Scope::Always).unwrap();
        });
        run.send(config(&sim, json!({}), json!({"concurrency": 1})), &text)
    });
    assert!(!summary.success());
    let paused = summary.destinations[0]
        .paused
        .as_deref()
        .expect("the destination paused");
    assert!(paused.contains("401"), "{paused}");
    assert!(!summary.complete);
    assert_eq!(
        summary.dead_letters_written, 0,
        "a 401 must not dead-letter anything"
    );
    let accepted_before = sim.accepted_users().len();
    assert!(accepted_before < 300);
    // Credentials fixed: the same command continues and delivers the rest.
    sim.clear_faults();
    let summary = run.send(config(&sim, json!({}), json!({"concurrency": 1})), &text);
    assert!(summary.success(), "{}", summary.text());
    assert!(summary.already_done > 0);
    assert_eq!(check_every_event_accounted_for(&sim, &run, 300), (300, 0));
    let duplicates = duplicates(&sim);
    assert_eq!(duplicates, 0, "the resumed run re-sent accepted events");
}

#[test]
fn an_interrupted_run_resumes_without_duplicates() {
    let sim = simulator();
    let run = Run::new("interrupt");
    let text = events(2000, 37);
    sim.inject(
        Fault::Slow {
            delay: Duration::from_millis(20),
        },
        Scope::Always,
    )
    .unwrap();
    let options = run.options(&text);
    let interrupt = async {
        while sim.requests().len() < 5 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    };
    let summary = run.send_with(
        config(&sim, json!({}), json!({"concurrency": 2})),
        options,
        interrupt,
    );
    assert!(
        summary.interrupted && !summary.success(),
        "{}",
        summary.text()
    );
    let first = sim.accepted_users().len();
    assert!(
        first > 0 && first < 2000,
        "the interrupt came too late or too early ({first} users)"
    );
    sim.clear_faults();
    let summary = run.send(config(&sim, json!({}), json!({})), &text);
    assert!(summary.success(), "{}", summary.text());
    assert_eq!(check_every_event_accounted_for(&sim, &run, 2000), (2000, 0));
    // The interrupt let in-flight requests finish, so nothing was sent twice.
    let duplicates = duplicates(&sim);
    assert_eq!(duplicates, 0);
}

#[test]
fn invalid_lines_and_rejected_events_are_dead_lettered_and_the_run_goes_on() {
    let sim = simulator();
    let run = Run::new("invalid");
    let mut text = events(50, 5);
    text.push_str("not json\n[1,2]\n");
    text.push_str(
        &json!({"event_name": "purchase", "user_id": "u1", "created_at": recent(),
                          "properties": {"product_id": "p", "price": 1}})
        .to_string(),
    );
    text.push('\n');
    let summary = run.send(config(&sim, json!({}), json!({})), &text);
    assert!(!summary.success());
    assert_eq!(summary.invalid, 2);
    assert_eq!(summary.destinations[0].totals.rejected, 1);
    assert_eq!(summary.destinations[0].totals.delivered, 50);
    let dead = run.dead_letters();
    assert_eq!(dead.len(), 3);
    assert_eq!(dead[0]["line"], 51);
    assert_eq!(dead[0]["raw"], "not json");
    assert!(
        dead[0]["reasons"][0]
            .as_str()
            .unwrap()
            .starts_with("not valid JSON at column 2")
    );
    assert_eq!(dead[1]["line"], 52);
    assert!(
        dead[2]["reasons"][0]
            .as_str()
            .unwrap()
            .contains("currency: is required on a purchase event")
    );
    assert_eq!(dead[2]["event"]["event_name"], "purchase");
}

#[test]
fn exhausted_retries_dead_letter_every_attempts_reason() {
    let sim = simulator();
    let run = Run::new("exhausted");
    sim.inject(Fault::ServerError { status: 502 }, Scope::Always)
        .unwrap();
    let summary = run.send(
        config(&sim, json!({}), json!({"max_attempts": 3})),
        &events(5, 5),
    );
    assert_eq!(
        summary.destinations[0].totals.dead_lettered,
        5,
        "{}",
        summary.text()
    );
    let dead = run.dead_letters();
    assert_eq!(dead.len(), 5);
    let reasons: Vec<&str> = dead[0]["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    // Three attempts with the same answer are one line that names them all.
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert!(
        reasons[0].starts_with("attempts 1–3: HTTP 502"),
        "{reasons:?}"
    );
    assert_eq!(reasons[1], "gave up after 3 attempts");
}

#[test]
fn a_dry_run_sends_and_writes_nothing() {
    let sim = simulator();
    let run = Run::new("dry");
    let mut options = run.options(&events(100, 3));
    options.dry_run = true;
    let summary = run.send_with(
        config(&sim, json!({}), json!({})),
        options,
        std::future::pending(),
    );
    assert!(summary.success(), "{}", summary.text());
    assert_eq!(summary.destinations[0].totals.delivered, 100);
    assert!(summary.destinations[0].requests >= 4);
    assert_eq!(sim.requests().len(), 0);
    assert!(!run.dir.join("state.db").exists());
}

#[test]
fn a_killed_process_resumes_with_at_most_the_in_flight_batches_sent_twice() {
    let (sim, run, text, mut child) = held_binary_run("kill");
    // Everything Insider accepted is recorded in the checkpoint; only requests that were in
    // flight when the refusals began can still be accepted unrecorded.
    wait_until(
        "the checkpoint records what Insider accepted",
        Duration::from_secs(60),
        || checkpointed_delivered(&run) as usize == delivered(&sim).0.len(),
    );
    child.kill().unwrap(); // SIGKILL: no chance to clean up.
    child.wait().unwrap();
    assert!(delivered(&sim).0.len() < 3000);
    sim.clear_faults();
    let output = hardal_send(&run, &binary_config(&sim), &text, &["--json"])
        .wait_with_output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let summary: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(summary["already_done"].as_u64().unwrap() > 0, "{summary}");
    assert_eq!(check_every_event_accounted_for(&sim, &run, 3000), (3000, 0));
    // At most the requests in flight when the refusals began (2 × 20 users) were sent again.
    let duplicates = duplicates(&sim);
    assert!(duplicates <= 40, "{duplicates} events were sent twice");
}

#[test]
fn ctrl_c_stops_reading_lets_requests_finish_and_the_same_command_continues() {
    let (sim, run, text, child) = held_binary_run("sigint");
    // SIGINT, as Ctrl-C sends it.
    // SAFETY: kill(2) only sends a signal to the child this test started.
    let sent = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    assert_eq!(sent, 0, "SIGINT could not be sent");
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("interrupted: run the same command again"),
        "{stderr}"
    );
    sim.clear_faults();
    let output = hardal_send(&run, &binary_config(&sim), &text, &[])
        .wait_with_output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(check_every_event_accounted_for(&sim, &run, 3000), (3000, 0));
    let duplicates = duplicates(&sim);
    assert_eq!(
        duplicates, 0,
        "in-flight requests were allowed to finish, so nothing is sent twice"
    );
}

#[test]
fn standard_input_runs_always_start_fresh() {
    use std::io::Write;
    let sim = simulator();
    let run = Run::new("stdin");
    let config_path = run.dir.join("config.json");
    std::fs::write(&config_path, binary_config(&sim).to_string()).unwrap();
    // Two different streams through "the same command": the second must not be skipped as if
    // the first run had resolved its lines.
    for (n, users) in [(30, 3), (45, 5)] {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_hardal"))
            .args([
                "send",
                "--config",
                config_path.to_str().unwrap(),
                "-",
                "--progress-interval",
                "0",
            ])
            .current_dir(&run.dir)
            .env("INSIDER_REQUEST_TOKEN", TOKEN)
            .stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(events(n, users).as_bytes())
            .unwrap();
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{stderr}");
        assert!(
            stderr.contains(&format!("insider: {n} delivered")),
            "{stderr}"
        );
    }
    assert_eq!(sim.accepted_users().len(), 75);
}

#[test]
fn events_older_than_insider_keeps_are_counted_as_expired_by_their_rule() {
    let sim = simulator();
    let run = Run::new("expired");
    let mut text = events(10, 5);
    for (name, at) in [
        ("purchase", "2019-03-01T10:00:00Z"),
        ("page_view", "2019-03-01T10:00:00Z"),
    ] {
        text.push_str(
            &json!({"event_name": name, "user_id": "u1", "created_at": at,
                    "properties": {"order_id": "O-1", "currency": "EUR", "product_id": "p", "price": 1}})
            .to_string(),
        );
        text.push('\n');
    }
    let summary = run.send(config(&sim, json!({}), json!({})), &text);
    assert!(summary.success(), "{}", summary.text());
    let insider = &summary.destinations[0];
    assert_eq!((insider.totals.delivered, insider.totals.expired), (10, 2));
    let expired: Vec<(&String, &u64)> = insider
        .totals
        .field_changes
        .iter()
        .filter(|(change, _)| change.starts_with("expired"))
        .collect();
    assert_eq!(
        format!("{expired:?}"),
        r#"[("expired (whole event): custom events are kept 90 days", 1), ("expired (whole event): purchase events are kept 730 days", 1)]"#
    );
    assert!(
        summary
            .text()
            .contains("expired (whole event): purchase events are kept 730 days: 1 events")
    );
}
