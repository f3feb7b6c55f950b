//! Helpers shared by the `hardal send` tests: the simulator, configurations pointed at it,
//! generated events, a run directory, and the check that every event is accounted for.

#![allow(dead_code)]

pub mod service;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::time::Duration;

use hardal_insider_simulator::{Fault, Scope, Simulator, SimulatorConfig};
use hardal_runner::config::{Config, load_str};
use hardal_runner::send::{self, SendOptions, Summary};
use serde_json::{Value, json};

pub const TOKEN: &str = "test-token";

pub fn simulator() -> Simulator {
    Simulator::start(SimulatorConfig::new("mybrand", TOKEN)).expect("the simulator starts")
}

/// An `insider` destination pointed at the simulator, with fast retries; `destination` and
/// `delivery` override fields. Consent mode is off in the shared configurations: these tests
/// are about delivery, and their events carry no consent (`tests/consent.rs` tests consent).
pub fn config(sim: &Simulator, destination: Value, delivery: Value) -> Config {
    let mut dest = json!({"id": "insider", "type": "insider", "consent": {"mode": "off"}, "partner_name": "mybrand",
                          "request_token": "${TOKEN}", "endpoint": sim.upsert_url(),
                          "max_users_per_request": 25});
    dest.as_object_mut()
        .unwrap()
        .extend(destination.as_object().unwrap().clone());
    let mut fast = json!({"concurrency": 4, "linger_ms": 5, "backoff_initial_ms": 10, "backoff_max_ms": 200,
                          "max_attempts": 12, "request_timeout_ms": 2000});
    fast.as_object_mut()
        .unwrap()
        .extend(delivery.as_object().unwrap().clone());
    let text = json!({"destinations": [dest], "delivery": fast}).to_string();
    load_str(&text, &|name| (name == "TOKEN").then(|| TOKEN.to_owned()))
        .expect("the test config is valid")
}

/// Loads a configuration value, with `${TOKEN}` set to the test token.
pub fn load(config: &Value) -> Config {
    load_str(&config.to_string(), &|name| {
        (name == "TOKEN").then(|| TOKEN.to_owned())
    })
    .expect("the test config is valid")
}

/// The fast delivery settings the tests use.
pub fn fast_delivery() -> Value {
    json!({"concurrency": 4, "linger_ms": 5, "backoff_initial_ms": 10, "backoff_max_ms": 200,
           "max_attempts": 12, "request_timeout_ms": 2000})
}

/// An `insider` destination object pointed at `sim`.
pub fn insider(id: &str, sim: &Simulator) -> Value {
    json!({"id": id, "type": "insider", "consent": {"mode": "off"}, "partner_name": "mybrand", "request_token": "${TOKEN}",
           "endpoint": sim.upsert_url(), "max_users_per_request": 25})
}

/// Waits for a child process and returns its exit status with its peak resident memory in KiB,
/// as the kernel's high-water mark (`VmHWM`) read while it runs. (`wait4`'s `ru_maxrss` would
/// also count the test process's own memory, which the child shares until it executes.)
pub fn wait_with_peak_rss(child: &mut std::process::Child) -> (i32, i64) {
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak = 0i64;
    loop {
        if let Ok(status) = std::fs::read_to_string(&status_file)
            && let Some(line) = status.lines().find(|l| l.starts_with("VmHWM:"))
        {
            let kib = line
                .split_whitespace()
                .nth(1)
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            peak = peak.max(kib);
        }
        if let Some(status) = child.try_wait().unwrap() {
            assert!(peak > 0, "the child ended before its memory could be read");
            return (status.code().unwrap_or(-1), peak);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// An hour before this test process started, as RFC 3339: destinations judge retention against
/// the real clock, and test events are live data, well within what Insider keeps. The same all
/// through a process, so files written twice are byte for byte the same.
pub fn recent() -> String {
    static RECENT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    RECENT
        .get_or_init(|| {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs();
            hardal_core::convert::to_timestamp(&json!(now - 3600)).unwrap()
        })
        .clone()
}

/// `n` events of `users` users; event `i` belongs to user `u{i % users}` and carries `seq: i`.
pub fn events(n: usize, users: usize) -> String {
    (0..n)
        .map(|i| {
            json!({"id": format!("e{i}"), "event_name": "test_event", "created_at": recent(),
                   "user_id": format!("u{}", i % users), "properties": {"seq": i}})
            .to_string()
                + "\n"
        })
        .collect()
}

/// A run's directory (events, checkpoint, dead letters) under the system's temporary directory.
pub struct Run {
    pub dir: PathBuf,
}

/// A passing test leaves nothing behind (one test's input is 150 MB, and every run of the suite
/// would add it again); a failing one keeps its directory to be looked at.
impl Drop for Run {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

impl Run {
    pub fn new(name: &str) -> Run {
        let dir = std::env::temp_dir().join(format!("hardal-send-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Run { dir }
    }

    pub fn options(&self, events: &str) -> SendOptions {
        self.options_bytes(events.as_bytes())
    }

    pub fn options_bytes(&self, events: &[u8]) -> SendOptions {
        let input = self.dir.join("events.ndjson");
        std::fs::write(&input, events).unwrap();
        SendOptions {
            input: Some(input),
            state: self.dir.join("state.db"),
            dead_letters: self.dir.join("dead-letters.ndjson"),
            restart: false,
            dry_run: false,
            drain_timeout: Duration::from_secs(5),
            progress_every: Duration::ZERO,
            workers: 2,
            max_event_bytes: 1_000_000,
        }
    }

    pub fn send(&self, config: Config, events: &str) -> Summary {
        self.send_with(config, self.options(events), std::future::pending())
    }

    pub fn send_with(
        &self,
        config: Config,
        options: SendOptions,
        interrupt: impl std::future::Future<Output = ()>,
    ) -> Summary {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(send::send(config, options, interrupt))
    }

    pub fn dead_letters(&self) -> Vec<Value> {
        std::fs::read_to_string(self.dir.join("dead-letters.ndjson"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

/// Checks that each of the `n` events was accepted exactly once (distinct events, as Insider
/// stores them) or dead-lettered, never both, never neither; and that each user's events were
/// first accepted in input order. Returns (delivered, dead-lettered).
pub fn check_every_event_accounted_for(sim: &Simulator, run: &Run, n: usize) -> (usize, usize) {
    let mut delivered: HashMap<u64, u64> = HashMap::new();
    let mut order: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let mut users = sim.accepted_users();
    users.sort_by_key(|u| (u.request, u.index));
    for accepted in &users {
        let uuid = accepted.user["identifiers"]["uuid"]
            .as_str()
            .unwrap()
            .to_owned();
        for event in accepted.user["events"].as_array().unwrap() {
            let seq = event["event_params"]["custom"]["seq"].as_u64().unwrap();
            if *delivered.entry(seq).or_default() == 0 {
                order.entry(uuid.clone()).or_default().push(seq);
            }
            *delivered.get_mut(&seq).unwrap() += 1;
        }
    }
    for (user, seqs) in &order {
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "user {user}'s events arrived out of order: {seqs:?}"
        );
    }
    // Re-sent events are identical, so Insider keeps one; the simulator's distinct view agrees.
    for accepted in sim.accepted_events() {
        assert!(accepted.times_received >= 1);
    }
    let dead: HashSet<u64> = run
        .dead_letters()
        .iter()
        .filter_map(|d| {
            assert!(
                !d["reasons"].as_array().unwrap().is_empty(),
                "a dead letter without a reason: {d}"
            );
            // Lines that are not events (kept under `raw`) carry no sequence number.
            d["event"]["properties"]["seq"].as_u64()
        })
        .collect();
    for seq in 0..n as u64 {
        match (delivered.contains_key(&seq), dead.contains(&seq)) {
            (true, false) | (false, true) => {}
            (true, true) => panic!("event {seq} was both delivered and dead-lettered"),
            (false, false) => panic!("event {seq} was lost"),
        }
    }
    (delivered.len(), dead.len())
}

/// Events the simulator received more than once (identical re-sends, which Insider stores once).
pub fn duplicates(sim: &Simulator) -> u64 {
    sim.accepted_events()
        .iter()
        .map(|e| e.times_received - 1)
        .sum()
}

/// Runs the `hardal` binary on `config` (a file in `run.dir`) and `events`.
pub fn hardal_send(run: &Run, config: &Value, events: &str, extra: &[&str]) -> std::process::Child {
    let config_path = run.dir.join("config.json");
    std::fs::write(&config_path, config.to_string()).unwrap();
    let events_path = run.dir.join("events.ndjson");
    std::fs::write(&events_path, events).unwrap();
    std::process::Command::new(env!("CARGO_BIN_EXE_hardal"))
        .arg("send")
        .arg("--config")
        .arg(&config_path)
        .arg(&events_path)
        .args(["--progress-interval", "0"])
        .args(extra)
        .current_dir(&run.dir)
        .env("INSIDER_REQUEST_TOKEN", TOKEN)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("hardal starts")
}

/// A configuration for the `hardal` binary; retries go on for as long as a test holds a fault.
pub fn binary_config(sim: &Simulator) -> Value {
    json!({"destinations": [{"id": "insider", "type": "insider", "consent": {"mode": "off"}, "partner_name": "mybrand",
                              "request_token": "${INSIDER_REQUEST_TOKEN}", "endpoint": sim.upsert_url(),
                              "max_users_per_request": 20}],
           "delivery": {"concurrency": 2, "linger_ms": 5, "backoff_initial_ms": 10, "backoff_max_ms": 200,
                        "max_attempts": 1000, "max_retry_seconds": 3600}})
}

/// How many refusals the simulator answered with `status`.
pub fn answered(sim: &Simulator, status: u16) -> u64 {
    sim.stats().by_status.get(&status).copied().unwrap_or(0)
}

/// Starts `hardal send` of 3,000 events and returns once it is held mid-run: ten requests went
/// through (slowly), and from then on the simulator refuses every request with a 503 (retried)
/// until the test clears its faults — so the run cannot finish before the test acts, whatever
/// the machine's speed.
pub fn held_binary_run(name: &str) -> (Simulator, Run, String, std::process::Child) {
    let sim = simulator();
    let run = Run::new(name);
    let text = events(3000, 41);
    sim.inject(
        Fault::Slow {
            delay: Duration::from_millis(15),
        },
        Scope::Always,
    )
    .unwrap();
    let child = hardal_send(&run, &binary_config(&sim), &text, &[]);
    let wait = Duration::from_secs(60);
    service::wait_until("ten requests went through", wait, || {
        sim.requests().len() >= 10
    });
    sim.clear_faults();
    sim.inject(Fault::ServerError { status: 503 }, Scope::Always)
        .unwrap();
    service::wait_until("the run is refused", wait, || answered(&sim, 503) > 0);
    (sim, run, text, child)
}

/// Events the checkpoint of a `hardal send` in `run.dir` records as delivered: committed, what
/// the next run skips. Read by a connection of the test's own, beside the running process.
pub fn checkpointed_delivered(run: &Run) -> u64 {
    let read = || -> rusqlite::Result<u64> {
        let connection = rusqlite::Connection::open_with_flags(
            run.dir.join("hardal-send.db"),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )?;
        connection.busy_timeout(Duration::from_secs(10))?;
        let totals: String =
            connection.query_row("SELECT totals FROM progress", [], |row| row.get(0))?;
        let totals: Value = serde_json::from_str(&totals).expect("the totals are JSON");
        Ok(totals["delivered"].as_u64().unwrap_or(0))
    };
    // Nothing recorded yet (no table, no row) is nothing delivered.
    read().unwrap_or(0)
}
