//! Erasure end to end on the SQLite spool, as real processes against the Insider simulator: a
//! user's events waiting behind a paused destination are never delivered once the user asks to
//! be erased, new events of theirs are dropped, the destination is asked to delete them, and all
//! of this holds across `kill -9` at every step of the job; afterwards neither the spool's files
//! nor the logs hold the plain identifiers.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::service::{INGEST, Service, block_on, ndjson_batches, serve_config, wait_until};
use common::{recent, simulator};
use hardal_insider_simulator::{Endpoint, Fault, Scope, Simulator};
use serde_json::{Value, json};

const PRIVACY: &str = "privacy-secret";

/// The erased user: identifiers no other text in the test contains.
const ERASED: &str = "erase-me-7f3a9c";
const ERASED_EMAIL: &str = "Erase.Me-7f3a9c@Example.com";

/// `n` events of the erased user (by `user_id`, every other one also by e-mail) and `others`
/// events of ten other users, interleaved; each carries `seq`.
fn events(n: usize, others: usize) -> String {
    events_named("", n, others)
}

/// As [`events`], with ids starting with `prefix` (events with the same id are duplicates).
fn events_named(prefix: &str, n: usize, others: usize) -> String {
    let total = n + others;
    let every = total.checked_div(others).unwrap_or(usize::MAX);
    let mut lines = String::new();
    for i in 0..total {
        let event = if others > 0 && i % every == 0 && i / every < others {
            json!({"id": format!("{prefix}o{i}"), "event_name": "test_event", "created_at": recent(),
                   "user_id": format!("other-{}", i % 10), "properties": {"seq": i}})
        } else if i % 2 == 0 {
            json!({"id": format!("{prefix}x{i}"), "event_name": "test_event", "created_at": recent(),
                   "user_id": ERASED, "properties": {"seq": i}})
        } else {
            json!({"id": format!("{prefix}x{i}"), "event_name": "test_event", "created_at": recent(),
                   "user": {"email": ERASED_EMAIL}, "properties": {"seq": i}})
        };
        lines.push_str(&event.to_string());
        lines.push('\n');
    }
    lines
}

fn config(sim: &Simulator) -> Value {
    serve_config(
        &[("insider", sim.upsert_url())],
        json!({"probe_interval_seconds": 1, "privacy_tokens": [PRIVACY]}),
    )
}

/// Posts an erasure request; the status and the answer.
fn erase(service: &Service, body: &Value) -> (u16, Value) {
    let url = format!("{}/v1/privacy/erasure", service.url);
    let body = body.to_string();
    block_on(async move {
        let response = reqwest::Client::new()
            .post(url)
            .header("Authorization", format!("Bearer {PRIVACY}"))
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await;
        match response {
            Ok(response) => {
                let status = response.status().as_u16();
                let text = response.text().await.unwrap_or_default();
                (status, serde_json::from_str(&text).unwrap_or(Value::Null))
            }
            // A test hook may abort the service before it answered.
            Err(_) => (0, Value::Null),
        }
    })
}

/// `hardal privacy list` on the service's configuration: the audit records.
fn records(config: &Path) -> Vec<Value> {
    let output = Command::new(env!("CARGO_BIN_EXE_hardal"))
        .args(["privacy", "list", "--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn complete(config: &Path) -> bool {
    records(config)
        .first()
        .is_some_and(|r| r["state"] == "complete")
}

/// Whether a user object the simulator accepted belongs to the erased user.
fn mentions_erased(sim: &Simulator) -> usize {
    sim.accepted_users()
        .iter()
        .filter(|u| {
            let text = u.user.to_string().to_lowercase();
            text.contains(ERASED) || text.contains(&ERASED_EMAIL.to_lowercase())
        })
        .count()
}

/// Every file of the service's directory (spool, its write-ahead log, the configuration aside)
/// and its log, searched for the plain identifiers.
fn assert_no_plain_identifier(dir: &Path, log: &str) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .is_some_and(|n| n == "config.json" || n == "reaching.json")
        {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        for needle in [ERASED, ERASED_EMAIL, &ERASED_EMAIL.to_lowercase()] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                "{} holds `{needle}`",
                path.display()
            );
        }
    }
    for needle in [ERASED, ERASED_EMAIL] {
        assert!(!log.contains(needle), "the log holds `{needle}`:\n{log}");
    }
}

/// The sum of a counter's samples whose labels include `label` (`name="value"`), from
/// `/metrics`.
fn counter(service: &Service, name: &str, label: &str) -> f64 {
    service
        .get("/metrics")
        .1
        .lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) && l.contains(label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Events of erased users dropped at a stage (`ingestion`, `delivery`).
fn suppressed(service: &Service, stage: &str) -> f64 {
    counter(
        service,
        "hardal_events_suppressed_total",
        &format!("stage=\"{stage}\""),
    )
}

/// How many distinct events the simulator accepted (by `seq`).
fn others_delivered(sim: &Simulator) -> usize {
    common::service::delivered(sim).0.len()
}

/// Whether the simulator still has anything of the erased user.
fn insider_has_erased(sim: &Simulator) -> bool {
    sim.has_user("uuid", ERASED) || has_email(sim)
}

/// Whether the simulator has the erased user's e-mail address (as sent, or lower-cased).
fn has_email(sim: &Simulator) -> bool {
    sim.has_user("email", ERASED_EMAIL) || sim.has_user("email", &ERASED_EMAIL.to_lowercase())
}

/// Events the service delivered.
fn delivered_count(service: &Service) -> f64 {
    counter(
        service,
        "hardal_events_resolved_total",
        "ending=\"delivered\"",
    )
}

#[test]
fn an_erased_users_waiting_events_are_never_delivered_and_new_ones_are_dropped() {
    let sim = simulator();
    let service = Service::start("erase-waiting", &config(&sim));
    // Insider has the user already.
    let early = 100;
    assert_eq!(
        service.post_ndjson(&events_named("early-", early, 0)).0,
        202
    );
    wait_until("Insider has the user", Duration::from_secs(30), || {
        delivered_count(&service) == early as f64
    });
    assert!(sim.has_user("uuid", ERASED) && has_email(&sim));
    // Insider refuses the token: everything waits behind the paused destination.
    sim.inject(Fault::Unauthorized, Scope::Always).unwrap();
    let (n, others) = (10_000, 100);
    for batch in ndjson_batches(&events(n, others), 1000) {
        let (status, answer) = service.post_ndjson(&batch);
        assert_eq!(status, 202, "{answer}");
    }
    wait_until("the destination paused", Duration::from_secs(30), || {
        service.ready()["paused"]
            .as_array()
            .is_some_and(|p| p.len() == 1)
    });
    // Without a privacy token, nobody may erase.
    let url = format!("{}/v1/privacy/erasure", service.url);
    let unauthorized = block_on(async move {
        reqwest::Client::new()
            .post(url)
            .header("Authorization", format!("Bearer {INGEST}"))
            .body("{\"user_id\": \"x\"}")
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    });
    assert_eq!(unauthorized, 401);
    let (status, job) = erase(&service, &json!({"user_id": ERASED, "email": ERASED_EMAIL}));
    assert_eq!(status, 202, "{job}");
    assert_eq!(job["state"], "suppressed");
    let id = job["id"].as_str().unwrap().to_owned();
    // New events of the user are dropped at once, counted.
    let (status, answer) = service.post_ndjson(&events(10, 0));
    assert_eq!(
        (
            status,
            answer["accepted"].as_u64(),
            answer["suppressed"].as_u64()
        ),
        (202, Some(0), Some(10)),
        "{answer}"
    );
    // Once the requests in flight at the erasure have been answered (the deletion must not
    // overtake them: one of them, a probe of the paused destination, could still carry the
    // user), the job sends the deletion.
    wait_until(
        "the user's waiting events were removed from the spool",
        Duration::from_secs(60),
        || {
            records(&service.config)
                .first()
                .is_some_and(|r| r["state"] == "sending")
        },
    );
    assert_eq!(service.spool_depth("insider"), others as u64);
    // Insider takes requests again: only the others' events arrive.
    sim.clear_faults();
    wait_until("the erasure completed", Duration::from_secs(60), || {
        complete(&service.config)
    });
    wait_until(
        "the others' events arrived",
        Duration::from_secs(60),
        || {
            let n = delivered_count(&service);
            n >= (early + others) as f64
        },
    );
    let record = &records(&service.config)[0];
    assert_eq!(record["id"], id.as_str());
    assert_eq!(record["removed_events"], n as u64);
    assert_eq!(record["destinations"][0]["destination"], "insider");
    assert_eq!(
        record["destinations"][0]["outcome"], "confirmed",
        "{record}"
    );
    assert!(!insider_has_erased(&sim), "Insider still has the user");
    assert_eq!(
        delivered_count(&service),
        (early + others) as f64,
        "an erased user's event was delivered"
    );
    assert_eq!(
        suppressed(&service, "ingestion"),
        10.0,
        "the events posted after the erasure"
    );
    // Those the engine held for the paused destination were dropped there.
    assert!(suppressed(&service, "delivery") <= n as f64);
    // Whatever the spelling of the address.
    let shouted = json!({"id": "shouted", "event_name": "test_event", "created_at": recent(),
                         "user": {"email": format!(" {} ", ERASED_EMAIL.to_uppercase())}});
    let (status, answer) = service.post_ndjson(&(events(4, 0) + &shouted.to_string()));
    assert_eq!((status, answer["suppressed"].as_u64()), (202, Some(5)));
    let dir = service.dir.clone();
    let log = service.log();
    assert_eq!(service.stop(), Some(0));
    assert_no_plain_identifier(&dir, &log);
}

/// The service is killed (aborted, as `kill -9` does) right after each step of the job is
/// recorded; started again, it finishes the job, and the user's events are never delivered.
#[test]
fn an_erasure_survives_a_kill_at_every_step() {
    for step in [
        "suppressed",
        "removed",
        "sending",
        "destination",
        "complete",
    ] {
        let sim = simulator();
        sim.inject(Fault::Unauthorized, Scope::Always).unwrap();
        let dir =
            std::env::temp_dir().join(format!("hardal-erase-kill-{step}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let config = config(&sim);
        let mut service =
            Service::start_with_env(dir.clone(), &config, &[("HARDAL_TEST_ERASURE_ABORT", step)]);
        let (n, others) = (1000, 50);
        assert_eq!(service.post_ndjson(&events(n, others)).0, 202);
        wait_until("the destination paused", Duration::from_secs(30), || {
            service.ready()["paused"]
                .as_array()
                .is_some_and(|p| p.len() == 1)
        });
        let (status, _) = erase(&service, &json!({"user_id": ERASED, "email": ERASED_EMAIL}));
        assert!(status == 202 || status == 0, "{step}: {status}");
        // Insider takes requests again once the user's events are out of the spool (the
        // deletion request must be answered for the later steps to be reached).
        wait_until(
            &format!("the hook aborted the service at `{step}`"),
            Duration::from_secs(60),
            || {
                if let Some(exit) = service.child.try_wait().unwrap() {
                    assert!(!exit.success(), "{step}: the service ended by itself");
                    return true;
                }
                if records(&service.config)
                    .first()
                    .is_some_and(|r| r["state"] == "sending")
                {
                    sim.clear_faults();
                }
                false
            },
        );
        let log = service.log();
        drop(service);
        assert_eq!(
            mentions_erased(&sim),
            0,
            "{step}: an erased user's event was delivered before the kill"
        );
        sim.clear_faults();
        let service = Service::start_in(dir.clone(), &config);
        wait_until(
            &format!("the erasure completed after a kill at `{step}`"),
            Duration::from_secs(60),
            || complete(&service.config),
        );
        wait_until(
            &format!("the others' events arrived after a kill at `{step}`"),
            Duration::from_secs(60),
            || others_delivered(&sim) >= others,
        );
        assert!(
            !insider_has_erased(&sim),
            "{step}: Insider has the user after the erasure"
        );
        assert!(
            sim.erasures().iter().any(|e| e.status == Some(200)),
            "{step}: Insider was asked to delete the user"
        );
        assert_eq!(records(&service.config).len(), 1, "{step}");
        let (_, answer) = service.post_ndjson(&events(3, 0));
        assert_eq!(answer["suppressed"].as_u64(), Some(3), "{step}: {answer}");
        let log = log + &service.log();
        assert_eq!(service.stop(), Some(0));
        assert_no_plain_identifier(&dir, &log);
    }
}

/// The service is killed while Insider holds its deletion request open; started again, it sends
/// the deletion again (deleting twice is harmless) and completes the job.
#[test]
fn a_kill_while_insider_holds_the_deletion_is_resumed() {
    let sim = simulator();
    sim.inject_at(Fault::Hold, Scope::Always, &[Endpoint::Delete])
        .unwrap();
    let config = config(&sim);
    let service = Service::start("erase-held", &config);
    let (n, others) = (200, 20);
    assert_eq!(service.post_ndjson(&events(n, others)).0, 202);
    wait_until("every event was delivered", Duration::from_secs(60), || {
        delivered_count(&service) == (n + others) as f64
    });
    assert!(insider_has_erased(&sim));
    let (status, _) = erase(&service, &json!({"user_id": ERASED, "email": ERASED_EMAIL}));
    assert_eq!(status, 202);
    wait_until(
        "Insider holds the deletion",
        Duration::from_secs(30),
        || sim.held() == 1,
    );
    let dir = service.kill();
    // Released after the sender died: Insider may carry it out, but nobody hears the answer.
    sim.clear_faults();
    let service = Service::start_in(dir.clone(), &config);
    wait_until(
        "the erasure completed after the restart",
        Duration::from_secs(60),
        || complete(&service.config),
    );
    let record = &records(&service.config)[0];
    assert_eq!(
        record["destinations"][0]["outcome"], "confirmed",
        "{record}"
    );
    assert!(!insider_has_erased(&sim), "Insider still has the user");
    assert!(
        sim.erasures().len() > 2,
        "the deletion was sent again after the restart: {:?}",
        sim.erasures()
    );
    let log = service.log();
    assert_eq!(service.stop(), Some(0));
    assert_no_plain_identifier(&dir, &log);
}

/// `hardal forget` with nobody owning the spool does the whole job itself; with a service
/// running, it asks the service and waits for it.
#[test]
fn hardal_forget_works_alone_and_through_the_running_service() {
    let sim = simulator();
    sim.inject(Fault::Unauthorized, Scope::Always).unwrap();
    let config = config(&sim);
    let service = Service::start("erase-forget", &config);
    let (n, others) = (300, 30);
    assert_eq!(service.post_ndjson(&events(n, others)).0, 202);
    wait_until("the destination paused", Duration::from_secs(30), || {
        service.ready()["paused"]
            .as_array()
            .is_some_and(|p| p.len() == 1)
    });
    let config_path = service.config.clone();
    let dir = service.dir.clone();
    assert_eq!(service.stop(), Some(0));
    sim.clear_faults();
    let forget = |config_path: &Path, args: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_hardal"))
            .args(["forget", "--config", config_path.to_str().unwrap()])
            .args(args)
            .env("INSIDER_REQUEST_TOKEN", common::TOKEN)
            .env("HARDAL_INGEST_TOKEN", INGEST)
            .current_dir(&dir)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(output.status.success(), "{stderr}");
        let record: Value = serde_json::from_slice(&output.stdout).unwrap();
        (record, stderr)
    };
    // Alone: the spool's waiting events of the user go, and Insider is asked.
    let (record, stderr) = forget(
        &config_path,
        &["--user-id", ERASED, "--email", ERASED_EMAIL],
    );
    assert_eq!(record["state"], "complete", "{record}");
    assert_eq!(record["removed_events"], n as u64);
    assert_eq!(record["destinations"][0]["outcome"], "confirmed");
    assert_eq!(
        sim.erasures().len(),
        3,
        "uuid, and the address in two spellings"
    );
    let mut log = stderr;
    // The service, started again, delivers only the others' events.
    let service = Service::start_in(dir.clone(), &config);
    wait_until(
        "the others' events arrived",
        Duration::from_secs(60),
        || delivered_count(&service) == others as f64,
    );
    assert_eq!(
        mentions_erased(&sim),
        0,
        "an erased user's event was delivered"
    );
    // Through the running service (at the address it listens on), waiting for the job.
    let mut reaching: Value =
        serde_json::from_str(&std::fs::read_to_string(&config_path).unwrap()).unwrap();
    reaching["server"]["listen"] = json!(service.url.trim_start_matches("http://"));
    let reaching_path = dir.join("reaching.json");
    std::fs::write(&reaching_path, reaching.to_string()).unwrap();
    let (record, stderr) = forget(&reaching_path, &["--custom", "properties.seq=7", "--wait"]);
    assert_eq!(record["state"], "complete", "{record}");
    log += &stderr;
    let all = records(&service.config);
    assert_eq!(all.len(), 2);
    assert!(
        all.iter()
            .all(|r| r["digest"].as_str().is_some_and(|d| d.len() == 64))
    );
    let (_, answer) = service.post_ndjson(&events(2, 0));
    assert_eq!(answer["suppressed"].as_u64(), Some(2), "{answer}");
    log += &service.log();
    assert_eq!(service.stop(), Some(0));
    assert_no_plain_identifier(&dir, &log);
}

/// A request carrying the user that is in flight when the erasure comes must not be overtaken by
/// the deletion (it would create the profile again): the job waits for its answer.
#[test]
fn the_deletion_waits_for_a_request_in_flight_that_carries_the_user() {
    let sim = simulator();
    sim.inject_at(Fault::Hold, Scope::Next(1), &[Endpoint::Upsert])
        .unwrap();
    let service = Service::start("erase-in-flight", &config(&sim));
    assert_eq!(service.post_ndjson(&events(10, 0)).0, 202);
    wait_until(
        "Insider holds the user's request",
        Duration::from_secs(30),
        || sim.held() == 1,
    );
    let (status, _) = erase(&service, &json!({"user_id": ERASED, "email": ERASED_EMAIL}));
    assert_eq!(status, 202);
    wait_until(
        "the job removed what waits",
        Duration::from_secs(30),
        || {
            records(&service.config)
                .first()
                .is_some_and(|r| r["state"] != "suppressed")
        },
    );
    // Other users' events go through meanwhile; the deletion still waits.
    assert_eq!(service.post_ndjson(&events_named("later-", 0, 5)).0, 202);
    wait_until(
        "the others' events arrived",
        Duration::from_secs(30),
        || delivered_count(&service) == 5.0,
    );
    assert!(
        sim.erasures().is_empty(),
        "the deletion overtook the request in flight: {:?}",
        sim.erasures()
    );
    assert_eq!(records(&service.config)[0]["state"], "removed");
    // Answered, the request in flight delivers the user's events; then the deletion goes.
    sim.release();
    wait_until("the erasure completed", Duration::from_secs(60), || {
        complete(&service.config)
    });
    assert_eq!(delivered_count(&service), 15.0);
    assert!(
        !insider_has_erased(&sim),
        "the deletion overtook the request"
    );
    assert_eq!(service.stop(), Some(0));
}

/// `privacy.suppression_days` holds while the service runs: an entry older than the retention is
/// deleted and that user's new events are accepted again, while a younger one stays (the entries
/// are aged in the spool; the hook makes the service prune every second instead of every hour).
#[test]
fn suppression_entries_past_the_retention_expire_while_the_service_runs() {
    const YOUNGER: &str = "erase-me-younger-7f3a9c";
    let sim = simulator();
    let mut config = config(&sim);
    config["privacy"] = json!({"suppression_days": 30});
    let dir = std::env::temp_dir().join(format!("hardal-erase-retention-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let service = Service::start_with_env(
        dir,
        &config,
        &[("HARDAL_TEST_SUPPRESSION_PRUNE_SECONDS", "1")],
    );
    for user in [ERASED, YOUNGER] {
        let (status, answer) = erase(&service, &json!({"user_id": user}));
        assert_eq!(status, 202, "{answer}");
    }
    let mut seq = 900_000;
    let mut suppressed = |user: &str| {
        seq += 1;
        let event = json!({"id": format!("late{seq}"), "event_name": "test_event",
                           "created_at": recent(), "user_id": user, "properties": {"seq": seq}});
        let (status, answer) = service.post_ndjson(&(event.to_string() + "\n"));
        assert_eq!(status, 202, "{answer}");
        answer["suppressed"].as_u64().unwrap_or(0) == 1
    };
    assert!(suppressed(ERASED) && suppressed(YOUNGER));
    // One entry aged past the retention, the other not.
    let spool = rusqlite::Connection::open(service.dir.join("spool.db")).unwrap();
    spool.busy_timeout(Duration::from_secs(30)).unwrap();
    let hash = &hardal_core::Identifiers {
        user_id: vec![ERASED.to_owned()],
        ..Default::default()
    }
    .hashes()[0];
    let aged = spool
        .execute(
            "UPDATE suppressions SET created = created - CASE hash WHEN ?1 THEN 31 ELSE 29 END * 86400",
            [hash],
        )
        .unwrap();
    assert_eq!(aged, 2);
    wait_until(
        "the older entry's user is accepted again",
        Duration::from_secs(30),
        || !suppressed(ERASED),
    );
    assert!(
        suppressed(YOUNGER),
        "an entry within the retention was pruned"
    );
    assert!(
        service
            .log()
            .contains("Suppression entries older than the retention were deleted.")
    );
    assert_eq!(service.stop(), Some(0));
}
