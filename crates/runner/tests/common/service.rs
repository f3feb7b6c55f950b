//! `hardal serve` as a real process for end-to-end tests: start it on a configuration, post to
//! it, read its health and metrics, run `hardal dlq` beside it, stop or kill it; and the checks
//! of what the simulator received (each event once, each user's events in order).

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hardal_insider_simulator::{Fault, Scope, Simulator};
use hardal_runner::backlog::Backlog;
use hardal_runner::backlog::sqlite::SqliteSpool;
use hardal_runner::config::Durability;
use serde_json::{Value, json};

use super::{TOKEN, events};

pub const INGEST: &str = "ingest-secret";

/// A running `hardal serve`.
pub struct Service {
    pub child: Child,
    pub url: String,
    pub dir: PathBuf,
    pub config: PathBuf,
    pub stderr: Arc<Mutex<String>>,
}

impl Service {
    /// Starts `hardal serve` on `config` (a configuration value; `server.listen` and
    /// `backlog.path` are filled in) in a fresh directory named after the test.
    pub fn start(name: &str, config: &Value) -> Service {
        let dir = std::env::temp_dir().join(format!("hardal-serve-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Service::start_in(dir, config)
    }

    /// Starts (or restarts) the service in `dir`.
    pub fn start_in(dir: PathBuf, config: &Value) -> Service {
        Service::start_with(dir, config, &[])
    }

    /// Starts the service in `dir` with extra command-line arguments.
    pub fn start_with(dir: PathBuf, config: &Value, extra: &[&str]) -> Service {
        Service::start_wrapped(dir, config, extra, &[])
    }

    /// Starts the service in `dir` through `wrapper` (a program and its arguments that ends by
    /// running the command it is given, such as `unshare … sh -c …`); the SQLite spool is
    /// `dir/spool.db` unless the configuration names one.
    pub fn start_wrapped(
        dir: PathBuf,
        config: &Value,
        extra: &[&str],
        wrapper: &[&str],
    ) -> Service {
        Service::start_full(dir, config, extra, wrapper, &[])
    }

    /// Starts the service in `dir` with extra environment variables (test hooks).
    pub fn start_with_env(dir: PathBuf, config: &Value, env: &[(&str, &str)]) -> Service {
        Service::start_full(dir, config, &[], &[], env)
    }

    fn start_full(
        dir: PathBuf,
        config: &Value,
        extra: &[&str],
        wrapper: &[&str],
        env: &[(&str, &str)],
    ) -> Service {
        let mut config = config.clone();
        config["server"]["listen"] = json!("127.0.0.1:0");
        config["server"]
            .as_object_mut()
            .unwrap()
            .entry("auth_tokens")
            .or_insert(json!(["${HARDAL_INGEST_TOKEN}"]));
        if config["backlog"]["type"] != "nats" {
            config["backlog"]["type"] = json!("sqlite");
            if config["backlog"]["path"].is_null() {
                config["backlog"]["path"] = json!(dir.join("spool.db").to_str().unwrap());
            }
        }
        let path = dir.join("config.json");
        std::fs::write(&path, config.to_string()).unwrap();
        let hardal = env!("CARGO_BIN_EXE_hardal");
        let mut command = match wrapper.split_first() {
            Some((program, arguments)) => {
                let mut command = Command::new(program);
                command.args(arguments).arg(hardal);
                command
            }
            None => Command::new(hardal),
        };
        let mut child = command
            .args([
                "serve",
                "--config",
                path.to_str().unwrap(),
                "--drain-timeout",
                "5",
            ])
            .args(extra)
            .current_dir(&dir)
            .env("INSIDER_REQUEST_TOKEN", TOKEN)
            .env("HARDAL_INGEST_TOKEN", INGEST)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("hardal serve starts");
        let stderr = Arc::new(Mutex::new(String::new()));
        let (found_tx, found_rx) = std::sync::mpsc::channel();
        let lines = BufReader::new(child.stderr.take().unwrap());
        let log = Arc::clone(&stderr);
        std::thread::spawn(move || {
            for line in lines.lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("hardal serve: listening on ") {
                    let _ = found_tx.send(url.to_owned());
                }
                let mut log = log.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let url = found_rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("the service did not start: {}", stderr.lock().unwrap()));
        Service {
            child,
            url,
            dir,
            config: path,
            stderr,
        }
    }

    /// Posts a body; returns the status and the JSON answer.
    pub fn post(
        &self,
        content_type: &str,
        body: Vec<u8>,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        let url = format!("{}/v1/events", self.url);
        let mut all: Vec<(String, String)> = vec![
            ("Authorization".into(), format!("Bearer {INGEST}")),
            ("Content-Type".into(), content_type.into()),
        ];
        for (name, value) in headers {
            all.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
            if !value.is_empty() {
                all.push((name.to_string(), value.to_string()));
            }
        }
        block_on(async move {
            let client = reqwest::Client::new();
            let mut request = client.post(url).body(body);
            for (name, value) in all {
                request = request.header(name, value);
            }
            let response = request.send().await.expect("the service answers");
            let status = response.status().as_u16();
            let text = response.text().await.unwrap_or_default();
            (
                status,
                serde_json::from_str(&text).unwrap_or(Value::String(text)),
            )
        })
    }

    pub fn post_ndjson(&self, text: &str) -> (u16, Value) {
        self.post("application/x-ndjson", text.as_bytes().to_vec(), &[])
    }

    pub fn get(&self, path: &str) -> (u16, String) {
        let url = format!("{}{path}", self.url);
        block_on(async move {
            let response = reqwest::get(url).await.expect("the service answers");
            (response.status().as_u16(), response.text().await.unwrap())
        })
    }

    /// The sum of a metric's samples (all its labels) in `/metrics`, 0 when it is not there.
    pub fn metric(&self, name: &str) -> f64 {
        let text = self.get("/metrics").1;
        let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned())))
            .expect("Prometheus text format");
        samples(&scrape, name).iter().map(|(_, v)| v).sum()
    }

    pub fn ready(&self) -> Value {
        serde_json::from_str(&self.get("/readyz").1).unwrap()
    }

    /// Runs `hardal dlq …` on this service's configuration.
    pub fn dlq(&self, args: &[&str]) -> (String, String) {
        let output = Command::new(env!("CARGO_BIN_EXE_hardal"))
            .arg("dlq")
            .args(&args[..1])
            .args(["--config", self.config.to_str().unwrap()])
            .args(&args[1..])
            .current_dir(&self.dir)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        (
            String::from_utf8(output.stdout).unwrap(),
            String::from_utf8(output.stderr).unwrap(),
        )
    }

    /// SIGTERM, then waits; returns the exit code.
    pub fn stop(mut self) -> Option<i32> {
        // SAFETY: kill(2) only signals the child this test started.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        self.child.wait().unwrap().code()
    }

    /// SIGKILL: no chance to finish anything.
    pub fn kill(mut self) -> PathBuf {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        self.dir.clone()
    }

    pub fn log(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits until the log holds each of `texts`, and returns it. The log reaches the test
    /// through a thread reading the service's stderr, so it can lag behind what the service
    /// did (and behind its exit); on a timeout the log is shown.
    pub fn wait_for_log(&self, texts: &[&str]) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let log = self.log();
            if texts.iter().all(|text| log.contains(text)) {
                return log;
            }
            assert!(
                Instant::now() < deadline,
                "the log never said {texts:?}:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// How many events the SQLite spool holds for `destination` as committed to its file —
    /// what a restart would find — read as `hardal dlq` reads a spool beside its owner. A test
    /// waits on this, not on `/metrics`, whose depth is refreshed every second (and so can be
    /// older than what the test caused) and whose counters run ahead of what is recorded.
    pub fn spool_depth(&self, destination: &str) -> u64 {
        block_on(async {
            let spool = SqliteSpool::open_for_commands(
                &self.dir.join("spool.db"),
                &[destination.to_owned()],
                Durability::Normal,
            )
            .expect("the spool opens beside the service");
            let stats = spool.stats().await.expect("the spool's depth is read");
            spool.close().await;
            stats.depths[0].events
        })
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn block_on<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}

/// A configuration with one `insider` destination per `(id, endpoint)`, fast retries.
pub fn serve_config(destinations: &[(&str, String)], server: Value) -> Value {
    let destinations: Vec<Value> = destinations
        .iter()
        .map(|(id, endpoint)| {
            json!({"id": id, "type": "insider", "consent": {"mode": "off"}, "partner_name": "mybrand",
                   "request_token": "${INSIDER_REQUEST_TOKEN}", "endpoint": endpoint,
                   "max_users_per_request": 25})
        })
        .collect();
    json!({"destinations": destinations,
           "delivery": {"concurrency": 2, "linger_ms": 5, "backoff_initial_ms": 20, "backoff_max_ms": 300,
                        "max_attempts": 1000, "max_retry_seconds": 3600},
           "server": server,
           "backlog": {"type": "sqlite"}})
}

/// The samples of one metric, by their labels.
pub fn samples(
    scrape: &prometheus_parse::Scrape,
    name: &str,
) -> Vec<(HashMap<String, String>, f64)> {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name)
        .map(|s| {
            let value = match s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                _ => f64::NAN,
            };
            let labels = s
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            (labels, value)
        })
        .collect()
}

pub fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// Each event `seq` the simulator accepted, how often, and each user's first-arrival order.
pub fn delivered(sim: &Simulator) -> (HashMap<u64, u64>, BTreeMap<String, Vec<u64>>) {
    let mut times: HashMap<u64, u64> = HashMap::new();
    let mut order: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let mut users = sim.accepted_users();
    users.sort_by_key(|u| (u.request, u.index));
    for user in &users {
        let uuid = user.user["identifiers"]["uuid"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        for event in user.user["events"].as_array().into_iter().flatten() {
            let Some(seq) = event["event_params"]["custom"]["seq"].as_u64() else {
                continue;
            };
            let count = times.entry(seq).or_default();
            if *count == 0 {
                order.entry(uuid.clone()).or_default().push(seq);
            }
            *count += 1;
        }
    }
    (times, order)
}

/// Waits until `count` distinct events reached the simulator, checks that each user's arrived
/// in order, and returns how often each arrived.
pub fn delivered_in_user_order(
    sim: &Simulator,
    count: usize,
    timeout: Duration,
) -> HashMap<u64, u64> {
    wait_until("every event is delivered", timeout, || {
        delivered(sim).0.len() == count
    });
    let (times, order) = delivered(sim);
    for (user, seqs) in &order {
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "user {user}'s events arrived out of order: {seqs:?}"
        );
    }
    times
}

/// A loopback port nothing listens on (yet), for a server a test starts later (or never, to be
/// refused). It comes from below the kernel's ephemeral range: a port from `bind(…:0)` is free
/// again once the probe closes, and any outgoing connection may take it as its local port in the
/// meantime, which makes a server that binds it later fail. Ports below that range are only ever
/// taken on purpose; each call in this process gets another one.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const LOWEST: u32 = 10_000;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let ephemeral = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(32_768);
    let span = ephemeral.saturating_sub(LOWEST);
    // Test binaries run one after another, but other processes may use the same scheme: each
    // process starts at its own place.
    let start = std::process::id().wrapping_mul(7_919) % span.max(1);
    for _ in 0..span {
        let next = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = LOWEST + (start + next) % span;
        if std::net::TcpListener::bind(("127.0.0.1", port as u16)).is_ok() {
            return port as u16;
        }
    }
    // No room below the ephemeral range on this machine: the kernel's choice is all there is.
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn ndjson_batches(text: &str, size: usize) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    lines
        .chunks(size)
        .map(|chunk| chunk.join("\n") + "\n")
        .collect()
}

/// The dead-letter commands on a running service: events its destination refuses (HTTP 400,
/// with our headers echoed) are listed by reason with the token redacted, shown, replayed and
/// delivered once the cause is gone; new ones are purged.
pub fn dead_letters_are_listed_replayed_and_purged(service: &Service, sim: &Simulator) {
    // Every request is refused while the fault lasts (events may reach it in several).
    sim.inject(Fault::EchoHeaders { status: 400 }, Scope::Always)
        .unwrap();
    let (status, _) = service.post_ndjson(&events(10, 10));
    assert_eq!(status, 202);
    wait_until("ten dead letters", Duration::from_secs(30), || {
        service.dlq(&["list"]).0.lines().count() == 10
    });
    let (listed, _) = service.dlq(&["list", "--reason", "HTTP 400"]);
    assert_eq!(listed.lines().count(), 10, "{listed}");
    assert!(
        !listed.contains(TOKEN),
        "the echoed token is redacted: {listed}"
    );
    let id = listed.split('\t').next().unwrap();
    let (shown, _) = service.dlq(&["show", id]);
    let shown: Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(shown["destination"], "insider");
    assert_eq!(shown["ending"], "rejected");
    assert!(shown["event"]["properties"]["seq"].is_u64(), "{shown}");
    // The cause is gone: replayed, they are delivered.
    sim.clear_faults();
    let (_, said) = service.dlq(&["replay", "--destination", "insider"]);
    assert!(said.contains("10 dead letters put back"), "{said}");
    wait_until(
        "the replayed events are delivered",
        Duration::from_secs(30),
        || delivered(sim).0.len() == 10,
    );
    assert_eq!(service.dlq(&["list"]).0, "");
    // New ones can be purged.
    sim.inject(Fault::EchoHeaders { status: 400 }, Scope::Always)
        .unwrap();
    let more: String = events(15, 15)
        .lines()
        .skip(10)
        .map(|l| format!("{l}\n"))
        .collect();
    service.post_ndjson(&more);
    wait_until("five more dead letters", Duration::from_secs(30), || {
        service.dlq(&["list"]).0.lines().count() == 5
    });
    let (_, said) = service.dlq(&["purge", "--since", "1h"]);
    assert!(said.contains("5 dead letters deleted"), "{said}");
    assert_eq!(service.dlq(&["list"]).0, "");
    assert_eq!(delivered(sim).0.len(), 10);
    dead_letters_show_the_event_as_accepted(service);
}

/// A dead letter shows its event's exact text: a 23-digit user id (beyond 64 bits) keeps its
/// digits in `dlq list --json` and `dlq show` rather than becoming a float. The simulator must
/// be refusing every request (as at the end of the check above).
fn dead_letters_show_the_event_as_accepted(service: &Service) {
    const USER: &str = "12345678901234567890123";
    let event = format!(
        r#"{{"event_name":"login","created_at":"{}","user_id":{USER},"properties":{{"seq":99}}}}"#,
        super::recent()
    );
    assert_eq!(service.post_ndjson(&format!("{event}\n")).0, 202);
    wait_until("the dead letter is stored", Duration::from_secs(30), || {
        service.dlq(&["list"]).0.lines().count() == 1
    });
    let (listed, _) = service.dlq(&["list", "--json"]);
    assert!(listed.contains(USER), "{listed}");
    let id = service
        .dlq(&["list"])
        .0
        .split('\t')
        .next()
        .unwrap()
        .to_owned();
    let (shown, _) = service.dlq(&["show", &id]);
    assert!(shown.contains(USER), "{shown}");
    service.dlq(&["purge"]);
}
