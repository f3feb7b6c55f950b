//! `hardal serve` on a NATS JetStream backlog, end to end: real `nats-server` processes (one, or a
//! cluster of three) on loopback ports, several hardal nodes (ingestion-only, delivery-only, or
//! both), and the Insider simulator. Every event answered 202 arrives, each user's in order,
//! through worker kills, a restart of the NATS server and the loss of a cluster node.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::service::{
    Service, dead_letters_are_listed_replayed_and_purged, delivered, delivered_in_user_order,
    free_port, ndjson_batches, wait_until,
};
use common::{TOKEN, events, simulator};
use hardal_insider_simulator::{Fault, Scope, Simulator};
use hardal_runner::backlog::check_event;
use hardal_runner::backlog::nats::partition_of;
use serde_json::{Value, json};

/// The storage each test server offers JetStream, and what the tests' streams reserve of it.
const STORE_BYTES: u64 = 1 << 30;
const STREAM_BYTES: u64 = 128 << 20;

/// One `nats-server` with JetStream, storing in its own directory.
struct Nats {
    child: Option<Child>,
    port: u16,
    monitor: u16,
    dir: PathBuf,
    /// Cluster routes and name, for cluster members.
    cluster: Option<(u16, Vec<u16>)>,
    /// The user and password the server requires, if any.
    auth: Option<(String, String)>,
}

fn nats_binary() -> PathBuf {
    for candidate in ["/usr/sbin/nats-server", "/usr/bin/nats-server"] {
        if Path::new(candidate).exists() {
            return candidate.into();
        }
    }
    // On the PATH, or the test says what is missing.
    PathBuf::from("nats-server")
}

impl Nats {
    /// A single server.
    fn start(name: &str) -> Nats {
        let dir = test_dir(&format!("nats-{name}"));
        let mut nats = Nats {
            child: None,
            port: free_port(),
            monitor: free_port(),
            dir,
            cluster: None,
            auth: None,
        };
        nats.run();
        nats
    }

    /// A single server that requires this user and password.
    fn start_with_auth(name: &str, user: &str, password: &str) -> Nats {
        let mut nats = Nats {
            child: None,
            port: free_port(),
            monitor: free_port(),
            dir: test_dir(&format!("nats-{name}")),
            cluster: None,
            auth: Some((user.into(), password.into())),
        };
        nats.run();
        nats
    }

    /// Three servers in one JetStream cluster.
    fn cluster(name: &str) -> Vec<Nats> {
        let routes: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let mut nodes: Vec<Nats> = (0..3)
            .map(|i| Nats {
                child: None,
                port: free_port(),
                monitor: free_port(),
                dir: test_dir(&format!("nats-{name}-{i}")),
                cluster: Some((routes[i], routes.clone())),
                auth: None,
            })
            .collect();
        for node in &mut nodes {
            node.spawn();
        }
        for node in &mut nodes {
            node.wait_ready();
        }
        nodes
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) {
        // A file stream reserves its `max_bytes` against `max_file_store`, which defaults to
        // three quarters of the free disk: a fixed store keeps the tests from depending on the
        // machine's disk.
        let conf = self.dir.join("nats.conf");
        let mut text = format!(
            "jetstream {{ store_dir: {:?}, max_file_store: {STORE_BYTES} }}\n",
            self.dir.join("store")
        );
        if let Some((user, password)) = &self.auth {
            text.push_str(&format!(
                "authorization {{ user: {user:?}, password: {password:?} }}\n"
            ));
        }
        std::fs::write(&conf, text).unwrap();
        let mut command = Command::new(nats_binary());
        command.args([
            "-c",
            conf.to_str().unwrap(),
            "-a",
            "127.0.0.1",
            "-p",
            &self.port.to_string(),
            "-m",
            &self.monitor.to_string(),
            "--server_name",
            &format!("n{}", self.port),
        ]);
        if let Some((route, routes)) = &self.cluster {
            let others: Vec<String> = routes
                .iter()
                .filter(|r| *r != route)
                .map(|r| format!("nats://127.0.0.1:{r}"))
                .collect();
            command.args([
                "--cluster_name",
                "hardal-test",
                "--cluster",
                &format!("nats://127.0.0.1:{route}"),
                "--routes",
                &others.join(","),
            ]);
        }
        // Its log, appended to across restarts, says why it stopped if it does.
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("nats-server.log"))
            .unwrap();
        let child = command
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("nats-server could not start ({e}); install it: apt-get install nats-server")
            });
        self.child = Some(child);
    }

    /// Until JetStream answers healthy on the monitoring port.
    fn wait_ready(&mut self) {
        let url = format!(
            "http://127.0.0.1:{}/healthz?js-enabled-only=true",
            self.monitor
        );
        let (child, log) = (
            self.child.as_mut().unwrap(),
            self.dir.join("nats-server.log"),
        );
        wait_until("nats-server is ready", Duration::from_secs(30), || {
            if let Ok(Some(status)) = child.try_wait() {
                let log = std::fs::read_to_string(&log).unwrap_or_default();
                panic!("nats-server exited ({status}) before it was ready:\n{log}");
            }
            common::service::block_on(async {
                reqwest::get(&url)
                    .await
                    .is_ok_and(|r| r.status().is_success())
            })
        });
    }

    fn run(&mut self) {
        self.spawn();
        self.wait_ready();
    }

    /// The event stream's consumers, by name: events not handed to any worker yet, and events
    /// handed to a worker and not acknowledged.
    fn consumers(&self) -> BTreeMap<String, (u64, u64)> {
        let url = format!(
            "http://127.0.0.1:{}/jsz?streams=true&consumers=true",
            self.monitor
        );
        let jsz: Value = common::service::block_on(async {
            serde_json::from_str(&reqwest::get(&url).await.unwrap().text().await.unwrap()).unwrap()
        });
        jsz["account_details"][0]["stream_detail"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["name"] == "HARDAL_EVENTS")
            .flat_map(|s| s["consumer_detail"].as_array().cloned().unwrap_or_default())
            .map(|c| {
                (
                    c["name"].as_str().unwrap_or_default().to_owned(),
                    (
                        c["num_pending"].as_u64().unwrap_or(0),
                        c["num_ack_pending"].as_u64().unwrap_or(0),
                    ),
                )
            })
            .collect()
    }

    /// The messages a stream holds (e.g. `KV_HARDAL_EVENTS_RESOLVED`, a bucket's keys).
    fn stream_messages(&self, name: &str) -> u64 {
        let url = format!("http://127.0.0.1:{}/jsz?streams=true", self.monitor);
        let jsz: Value = common::service::block_on(async {
            serde_json::from_str(&reqwest::get(&url).await.unwrap().text().await.unwrap()).unwrap()
        });
        jsz["account_details"][0]["stream_detail"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .map_or(0, |s| s["state"]["messages"].as_u64().unwrap_or(0))
    }

    /// Publishes events as hardal did before batch messages: one message per event, on its
    /// user's partition, with its identity as the message id.
    fn publish_single_events(&self, lines: &[&str], partitions: u32) {
        common::service::block_on(async {
            let client = async_nats::connect(self.url()).await.unwrap();
            let js = async_nats::jetstream::new(client);
            for line in lines {
                let checked = check_event(line).unwrap();
                let partition = partition_of(checked.user.as_deref(), checked.identity, partitions);
                let publish = async_nats::jetstream::message::PublishMessage::build()
                    .payload(line.to_string().into())
                    .message_id(format!("{:016x}", checked.identity));
                js.send_publish(format!("hardal.events.{partition}"), publish)
                    .await
                    .unwrap()
                    .await
                    .unwrap();
            }
        })
    }

    /// Publishes one batch message as an ingestion node writes it (format version 1, which
    /// hardal still reads): `parts`, each an id and its events, in partition `partition`.
    fn publish_parts(&self, partition: u32, id: &str, parts: &[(&str, &[&str])]) {
        let mut payload = Vec::new();
        for line in parts.iter().flat_map(|(_, lines)| lines.iter()) {
            let checked = check_event(line).unwrap();
            let user = checked.user.unwrap();
            payload.extend(checked.identity.to_be_bytes());
            payload.extend((user.len() as u32).to_be_bytes());
            payload.extend(user.as_bytes());
            payload.extend((line.len() as u32).to_be_bytes());
            payload.extend(line.as_bytes());
        }
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Hardal-Batch", "1");
        headers.insert("Nats-Msg-Id", id);
        if parts.len() > 1 {
            let listed: Vec<String> = parts
                .iter()
                .map(|(id, lines)| format!("{id}:{}", lines.len()))
                .collect();
            headers.insert("Hardal-Parts", listed.join(" ").as_str());
        }
        common::service::block_on(async {
            let client = async_nats::connect(self.url()).await.unwrap();
            let js = async_nats::jetstream::new(client);
            let publish = async_nats::jetstream::message::PublishMessage::build()
                .payload(payload.into())
                .headers(headers);
            let ack = js
                .send_publish(format!("hardal.events.{partition}"), publish)
                .await
                .unwrap()
                .await
                .unwrap();
            assert!(
                !ack.duplicate,
                "JetStream took message {id} for a duplicate"
            );
        })
    }

    /// Events the event stream's consumers have not handed to any worker yet, summed.
    fn undelivered(&self) -> u64 {
        self.consumers().values().map(|(pending, _)| pending).sum()
    }

    /// Lets the dead-letter stream hold at most `max_messages` (-1: no limit); beyond, it
    /// refuses new dead letters.
    fn limit_dead_letters(&self, max_messages: i64) {
        common::service::block_on(async {
            let client = async_nats::connect(self.url()).await.unwrap();
            let js = async_nats::jetstream::new(client);
            let mut stream = js.get_stream("HARDAL_EVENTS_DLQ").await.unwrap();
            let mut config = stream.info().await.unwrap().config.clone();
            config.max_messages = max_messages;
            config.discard = async_nats::jetstream::stream::DiscardPolicy::New;
            js.update_stream(&config).await.unwrap();
        })
    }

    /// Sets the largest message the lease bucket's stream takes (-1: no limit): below a lease's
    /// size, every renewal fails, though no other worker wrote the lease.
    fn limit_lease_messages(&self, max_message_size: i32) {
        common::service::block_on(async {
            let client = async_nats::connect(self.url()).await.unwrap();
            let js = async_nats::jetstream::new(client);
            let mut stream = js.get_stream("KV_HARDAL_EVENTS_LEASES").await.unwrap();
            let mut config = stream.info().await.unwrap().config.clone();
            config.max_message_size = max_message_size;
            js.update_stream(&config).await.unwrap();
        })
    }

    /// Deletes the lease on `partition`, as if another worker had written it.
    fn delete_lease(&self, partition: u32) {
        common::service::block_on(async {
            let client = async_nats::connect(self.url()).await.unwrap();
            let js = async_nats::jetstream::new(client);
            let leases = js.get_key_value("HARDAL_EVENTS_LEASES").await.unwrap();
            leases.delete(partition.to_string()).await.unwrap();
        })
    }

    /// Events handed to workers and not acknowledged yet, summed.
    fn unacknowledged(&self) -> u64 {
        self.consumers().values().map(|(_, unacked)| unacked).sum()
    }

    /// Whether the server is still running.
    fn alive(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|child| child.try_wait().unwrap().is_none())
    }

    /// SIGKILL: the server ends without a word; its store stays.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        self.kill();
    }
}

fn test_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hardal-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A configuration delivering to the simulator through the NATS servers at `urls`.
fn nats_config(sim: &Simulator, urls: &[String], backlog: Value) -> Value {
    let mut nats = json!({"type": "nats", "servers": urls, "partitions": 6,
                          "ack_wait_seconds": 4, "lease_seconds": 3, "max_bytes": STREAM_BYTES});
    for (key, value) in backlog.as_object().unwrap() {
        nats[key] = value.clone();
    }
    json!({"destinations": [{"id": "insider", "type": "insider", "consent": {"mode": "off"}, "partner_name": "mybrand",
                             "request_token": "${INSIDER_REQUEST_TOKEN}", "endpoint": sim.upsert_url(),
                             "max_users_per_request": 25}],
           "delivery": {"concurrency": 2, "linger_ms": 5, "backoff_initial_ms": 20, "backoff_max_ms": 300,
                        "max_attempts": 1000, "max_retry_seconds": 3600},
           "server": {},
           "backlog": nats})
}

fn node(name: &str, config: &Value, extra: &[&str]) -> Service {
    Service::start_with(test_dir(name), config, extra)
}

/// Runs `hardal serve` on `config`, which must refuse to start; returns what it wrote to stderr.
fn refused_start(name: &str, config: &Value) -> String {
    let mut config = config.clone();
    config["server"] = json!({"listen": "127.0.0.1:0", "auth_tokens": ["t"]});
    let path = test_dir(name).join("config.json");
    std::fs::write(&path, config.to_string()).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_hardal"))
        .args(["serve", "--config", path.to_str().unwrap()])
        .env("INSIDER_REQUEST_TOKEN", TOKEN)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(!output.status.success(), "{stderr}");
    stderr
}

/// Posts `batches` round-robin to `nodes`, each until it answers 202 (a node may answer 503
/// while NATS is away); returns the seq numbers acknowledged.
fn post_all(nodes: &[&Service], batches: &[String], size: usize) -> Vec<u64> {
    let mut acknowledged = Vec::new();
    for (i, batch) in batches.iter().enumerate() {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (status, answer) = nodes[i % nodes.len()].post_ndjson(batch);
            if status == 202 {
                break;
            }
            assert_eq!(status, 503, "{answer}");
            assert!(Instant::now() < deadline, "no 202 for a minute: {answer}");
            std::thread::sleep(Duration::from_millis(100));
        }
        acknowledged.extend((i * size) as u64..((i + 1) * size) as u64);
    }
    acknowledged
}

/// The messages hardal stores for `batches`: one per request and partition of its events.
fn messages(batches: &[String], partitions: u32) -> u64 {
    message_sizes(batches, partitions)
        .iter()
        .map(|sizes| sizes.len() as u64)
        .sum()
}

/// Per partition, the events of each message hardal stores for `batches`, in stream order (the
/// batches posted one after another).
fn message_sizes(batches: &[String], partitions: u32) -> Vec<Vec<u64>> {
    let mut sizes = vec![Vec::new(); partitions as usize];
    for batch in batches {
        let mut per_partition = BTreeMap::<u32, u64>::new();
        for line in batch.lines() {
            let checked = check_event(line).unwrap();
            let partition = partition_of(checked.user.as_deref(), checked.identity, partitions);
            *per_partition.entry(partition).or_default() += 1;
        }
        for (partition, events) in per_partition {
            sizes[partition as usize].push(events);
        }
    }
    sizes
}

/// A value of the node's Prometheus metrics (summed over labels matching `label`).
fn metric(service: &Service, name: &str, label: &str) -> f64 {
    let (_, text) = service.get("/metrics");
    text.lines()
        .filter(|l| {
            l.split(['{', ' ']).next() == Some(name) && (label.is_empty() || l.contains(label))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[test]
fn two_ingestion_nodes_and_three_workers_deliver_every_event_once_in_user_order() {
    let nats = Nats::start("scale");
    let sim = simulator();
    let config = nats_config(&sim, &[nats.url()], json!({}));
    let workers: Vec<Service> = (0..3)
        .map(|i| node(&format!("scale-worker-{i}"), &config, &["--no-ingest"]))
        .collect();
    let front = node("scale-front-a", &config, &["--no-deliver"]);
    let back = node("scale-front-b", &config, &["--no-deliver"]);
    // A worker does not take events, and is never ready for a load balancer.
    assert_eq!(workers[0].post_ndjson(&events(1, 1)).0, 503);
    assert_eq!(workers[0].ready()["ready"], false);
    let batches = ndjson_batches(&events(3000, 60), 50);
    let acknowledged = post_all(&[&front, &back], &batches, 50);
    // A producer's retry reaching the other node is recognised by JetStream: stored once.
    let (status, answer) = back.post_ndjson(&batches[0]);
    assert_eq!(status, 202);
    assert_eq!(answer, json!({"accepted": 0, "duplicates": 50}));
    let times = delivered_in_user_order(&sim, acknowledged.len(), Duration::from_secs(90));
    let twice: Vec<_> = times.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "delivered more than once: {twice:?}");
    // The partitions were shared: each worker holds two of six once the leases settled.
    wait_until("the partitions are shared", Duration::from_secs(20), || {
        workers
            .iter()
            .all(|w| metric(w, "hardal_partitions_held", "") == 2.0)
    });
    // A worker counts an event once the simulator's answer is in, a moment after the simulator
    // recorded it; what is waited for is the count, and then that nothing more comes.
    let delivered_by = || -> Vec<f64> {
        workers
            .iter()
            .map(|w| metric(w, "hardal_events_resolved_total", "delivered"))
            .collect()
    };
    wait_until(
        "the workers counted every delivery",
        Duration::from_secs(20),
        || delivered_by().iter().sum::<f64>() >= 3000.0,
    );
    assert_eq!(
        delivered_by().iter().sum::<f64>(),
        3000.0,
        "{:?}",
        delivered_by()
    );
    // The ingestion nodes report the consumer lag per partition: none left once the
    // acknowledgements reached JetStream.
    wait_until(
        "the ingestion node reports no lag",
        Duration::from_secs(20),
        || metric(&front, "hardal_partition_events", "") == 0.0,
    );
    assert!(
        front
            .get("/metrics")
            .1
            .contains("hardal_partition_events{destination=\"insider\",partition=\"5\"}")
    );
}

#[test]
fn a_killed_worker_loses_nothing_and_the_others_take_over_its_partitions() {
    let nats = Nats::start("kill");
    let sim = simulator();
    let config = nats_config(&sim, &[nats.url()], json!({}));
    let front = node("kill-front", &config, &["--no-deliver"]);
    let doomed = node("kill-doomed", &config, &["--no-ingest"]);
    wait_until(
        "the first worker holds every partition",
        Duration::from_secs(20),
        || metric(&doomed, "hardal_partitions_held", "") == 6.0,
    );
    let survivor = node("kill-survivor", &config, &["--no-ingest"]);
    wait_until(
        "the workers share the partitions",
        Duration::from_secs(20),
        || metric(&survivor, "hardal_partitions_held", "") == 3.0,
    );
    let batches = ndjson_batches(&events(3000, 60), 50);
    let (first, second) = batches.split_at(30);
    let mut acknowledged = post_all(&[&front], first, 50);
    delivered_in_user_order(&sim, acknowledged.len(), Duration::from_secs(90));
    // From now on every request is refused with a 503 (retried), so what the workers take stays
    // theirs, unacknowledged, for as long as the fault holds: the kill comes in the middle of
    // delivery whatever the machine's speed.
    sim.inject(Fault::ServerError { status: 503 }, Scope::Always)
        .unwrap();
    let rest = post_all(&[&front], second, 50);
    acknowledged.extend(rest.iter().map(|seq| seq + 1500));
    let second_half = messages(second, 6);
    wait_until(
        "the workers took every event and acknowledged the first half",
        Duration::from_secs(60),
        || nats.undelivered() == 0 && nats.unacknowledged() == second_half,
    );
    let doomed_holds: Vec<u32> = (0..6)
        .filter(|p| {
            metric(
                &doomed,
                "hardal_partition_held",
                &format!("partition=\"{p}\""),
            ) == 1.0
        })
        .collect();
    assert_eq!(doomed_holds.len(), 3, "{doomed_holds:?}");
    let consumers = nats.consumers();
    let in_doomed_hands: u64 = doomed_holds
        .iter()
        .map(|p| consumers[&format!("insider_{p}")].1)
        .sum();
    assert!(in_doomed_hands > 0, "the doomed worker holds no events");
    doomed.kill();
    wait_until(
        "the survivor holds every partition",
        Duration::from_secs(30),
        || metric(&survivor, "hardal_partitions_held", "") == 6.0,
    );
    sim.clear_faults();
    let times = delivered_in_user_order(&sim, acknowledged.len(), Duration::from_secs(90));
    assert!(acknowledged.iter().all(|seq| times.contains_key(seq)));
    // Everything delivered before the kill was acknowledged, and every request the dead worker
    // made after was refused: nothing came twice.
    let twice: u64 = times.values().map(|n| n - 1).sum();
    assert_eq!(twice, 0, "{twice} events were delivered twice");
}

#[test]
fn events_handed_back_on_sigterm_do_not_count_toward_max_deliver() {
    let nats = Nats::start("handback");
    let sim = simulator();
    // One delivery after a worker died without a verdict is already one too many.
    let config = nats_config(&sim, &[nats.url()], json!({"max_deliver": 1}));
    let first = node("handback-first", &config, &[]);
    // Refused with a 503 (retried) while the fault holds: every event stays in the worker's hands.
    sim.inject(Fault::ServerError { status: 503 }, Scope::Always)
        .unwrap();
    let batches = ndjson_batches(&events(200, 20), 50);
    let acknowledged = post_all(&[&first], &batches, 50);
    wait_until(
        "the worker holds every event",
        Duration::from_secs(30),
        || nats.undelivered() == 0 && nats.unacknowledged() == messages(&batches, 6),
    );
    // Handed back in good order: each event is delivered a second time.
    assert_eq!(first.stop(), Some(0));
    let second = node("handback-second", &config, &[]);
    sim.clear_faults();
    wait_until(
        "every event is delivered or dead-lettered",
        Duration::from_secs(60),
        || delivered(&sim).0.len() + second.dlq(&["list"]).0.lines().count() == 200,
    );
    let dead = second.dlq(&["list"]).0;
    assert_eq!(
        dead.lines().count(),
        0,
        "{}",
        dead.lines().next().unwrap_or("")
    );
    let times = delivered_in_user_order(&sim, acknowledged.len(), Duration::from_secs(60));
    assert!(times.values().all(|n| *n == 1));
}

#[test]
fn a_lease_that_fails_to_renew_is_kept_until_someone_else_writes_it() {
    let nats = Nats::start("renewal");
    let sim = simulator();
    // A lease long enough that it cannot expire by its own time during the test.
    let config = nats_config(&sim, &[nats.url()], json!({"lease_seconds": 60}));
    let service = node("renewal-node", &config, &[]);
    wait_until(
        "the worker holds every partition",
        Duration::from_secs(20),
        || metric(&service, "hardal_partitions_held", "") == 6.0,
    );
    nats.limit_lease_messages(1);
    wait_until("a renewal fails", Duration::from_secs(60), || {
        let log = service.log();
        log.contains("Could not renew") || log.contains("Lost the lease")
    });
    nats.limit_lease_messages(-1);
    wait_until(
        "the leases are renewed again, or given up",
        Duration::from_secs(60),
        || {
            let log = service.log();
            log.contains("Renewed the lease") || log.contains("Lost the lease")
        },
    );
    let log = service.log();
    assert!(!log.contains("Lost the lease"), "{log}");
    assert_eq!(metric(&service, "hardal_partitions_held", ""), 6.0);
    // And it still delivers.
    let acknowledged = post_all(&[&service], &ndjson_batches(&events(100, 10), 50), 50);
    delivered_in_user_order(&sim, acknowledged.len(), Duration::from_secs(30));
}

#[test]
fn the_next_holder_of_a_lost_lease_waits_until_the_old_holder_resolved_what_it_sent() {
    let nats = Nats::start("lost-lease");
    let sim = simulator();
    let config = nats_config(&sim, &[nats.url()], json!({}));
    let old = node("lost-lease-old", &config, &[]);
    wait_until(
        "the first worker holds every partition",
        Duration::from_secs(20),
        || metric(&old, "hardal_partitions_held", "") == 6.0,
    );
    // Refused with a 503 (retried) while the fault holds: the events stay in the worker's hands.
    sim.inject(Fault::ServerError { status: 503 }, Scope::Always)
        .unwrap();
    let batches = ndjson_batches(&events(600, 30), 50);
    let acknowledged = post_all(&[&old], &batches, 50);
    wait_until(
        "the worker holds every event",
        Duration::from_secs(30),
        || nats.undelivered() == 0 && nats.unacknowledged() == messages(&batches, 6),
    );
    let new = node("lost-lease-new", &config, &["--no-ingest"]);
    let consumers = nats.consumers();
    let partition = (0..6)
        .find(|p| consumers[&format!("insider_{p}")].1 > 0)
        .unwrap();
    nats.delete_lease(partition);
    wait_until(
        "the new holder waits for the old one",
        Duration::from_secs(30),
        || new.log().contains("is alive and has events unacknowledged"),
    );
    sim.clear_faults();
    let times = delivered_in_user_order(&sim, acknowledged.len(), Duration::from_secs(60));
    assert!(acknowledged.iter().all(|seq| times.contains_key(seq)));
}

#[test]
fn sigterm_on_a_worker_with_a_full_queue_exits_in_time_and_hands_its_partitions_over() {
    let nats = Nats::start("sigterm-full");
    let sim = simulator();
    sim.inject(Fault::Unauthorized, Scope::Always).unwrap();
    let mut config = nats_config(&sim, &[nats.url()], json!({}));
    config["server"] = json!({"probe_interval_seconds": 1});
    config["delivery"]["max_pending_records"] = json!(100);
    let first = node("sigterm-full-first", &config, &[]);
    wait_until(
        "the first worker holds every partition",
        Duration::from_secs(20),
        || metric(&first, "hardal_partitions_held", "") == 6.0,
    );
    let batches = ndjson_batches(&events(6000, 20), 100);
    let acknowledged = post_all(&[&first], &batches, 100);
    wait_until("the destination is paused", Duration::from_secs(20), || {
        first.ready()["paused"]
            .as_array()
            .is_some_and(|p| p.len() == 1)
    });
    // Paused, the worker takes no more: its queue (1,024 events) fills, and its fetchers wait
    // for room. Each partition's consumer hands out its messages in stream order, so the events
    // of the unacknowledged ones are known: once the queue is full they are at least its 1,024
    // and the record whose request brought the pause. (How many more the engine took before
    // the pause depends on timing; an average message size made this wait for more messages
    // than a full queue of large ones is.)
    let sizes = message_sizes(&batches, 6);
    wait_until(
        "the worker's queue is full",
        Duration::from_secs(30),
        || {
            let held: u64 = nats
                .consumers()
                .iter()
                .filter_map(|(name, (_, unacknowledged))| {
                    let partition: usize = name.strip_prefix("insider_")?.parse().ok()?;
                    Some(
                        sizes[partition]
                            .iter()
                            .take(*unacknowledged as usize)
                            .sum::<u64>(),
                    )
                })
                .sum();
            held > 1024
        },
    );
    let second = node("sigterm-full-second", &config, &["--no-ingest"]);
    wait_until(
        "the second worker is counted",
        Duration::from_secs(20),
        || {
            second
                .log()
                .contains("This node delivers from NATS partitions")
        },
    );
    // SIGTERM: out within the drain timeout (5 s) and the bound on letting go.
    let mut child = first;
    // SAFETY: kill(2) only signals the child this test started.
    unsafe { libc::kill(child.child.id() as libc::pid_t, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the worker did not exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(0), "{}", child.log());
    // Every lease was freed: the second worker takes each partition as handed over, at once.
    wait_until(
        "the second worker holds every partition",
        Duration::from_secs(20),
        || metric(&second, "hardal_partitions_held", "") == 6.0,
    );
    // Logged before the gauge counts them, but read by a thread of the test that can lag.
    wait_until(
        "the second worker logged six handed-over partitions",
        Duration::from_secs(20),
        || second.log().matches("handed_over=true").count() >= 6,
    );
    let log = second.log();
    assert_eq!(log.matches("handed_over=true").count(), 6, "{log}");
    sim.clear_faults();
    let times = delivered_in_user_order(&sim, acknowledged.len(), Duration::from_secs(90));
    assert!(acknowledged.iter().all(|seq| times.contains_key(seq)));
}

#[test]
fn events_left_by_a_killed_worker_count_toward_max_deliver() {
    let nats = Nats::start("orphans");
    let sim = simulator();
    let config = nats_config(&sim, &[nats.url()], json!({"max_deliver": 1}));
    let doomed = node("orphans-doomed", &config, &[]);
    sim.inject(Fault::ServerError { status: 503 }, Scope::Always)
        .unwrap();
    let batches = ndjson_batches(&events(200, 20), 50);
    post_all(&[&doomed], &batches, 50);
    wait_until(
        "the worker holds every event",
        Duration::from_secs(30),
        || nats.undelivered() == 0 && nats.unacknowledged() == messages(&batches, 6),
    );
    doomed.kill();
    let next = node("orphans-next", &config, &[]);
    wait_until(
        "every event is dead-lettered",
        Duration::from_secs(60),
        || next.dlq(&["list"]).0.lines().count() == 200,
    );
    let (listed, _) = next.dlq(&["list", "--reason", "2 times, more than max_deliver (1)"]);
    assert_eq!(listed.lines().count(), 200);
}

#[test]
fn a_restart_of_the_nats_server_loses_nothing_that_got_a_202() {
    let mut nats = Nats::start("restart");
    let sim = simulator();
    let config = nats_config(&sim, &[nats.url()], json!({}));
    let service = node("restart-node", &config, &[]);
    deliver_through(&sim, &[&service], || {
        nats.kill();
        // While NATS is away, nothing is acknowledged.
        let (status, answer) = service.post_ndjson(&events(1, 1));
        assert_eq!(status, 503, "{answer}");
        // Readiness is read in the background every second.
        wait_until("/readyz says not ready", Duration::from_secs(30), || {
            service.ready()["ready"] == false
        });
        std::thread::sleep(Duration::from_secs(1));
        nats.run();
    });
}

/// Posts 2,000 events of 40 users round-robin to `nodes`, brings `trouble` after the first
/// half, and checks that every event answered 202 arrives, each user's in order.
fn deliver_through(sim: &Simulator, nodes: &[&Service], trouble: impl FnOnce()) {
    let batches = ndjson_batches(&events(2000, 40), 50);
    let (first, second) = batches.split_at(20);
    let mut acknowledged = post_all(nodes, first, 50);
    trouble();
    let rest = post_all(nodes, second, 50);
    acknowledged.extend(rest.iter().map(|seq| seq + 1000));
    let times = delivered_in_user_order(sim, acknowledged.len(), Duration::from_secs(120));
    assert!(acknowledged.iter().all(|seq| times.contains_key(seq)));
}

#[test]
fn dead_letters_land_in_the_dead_letter_stream_and_replay_delivers_them() {
    let nats = Nats::start("dlq");
    let sim = simulator();
    let config = nats_config(&sim, &[nats.url()], json!({}));
    let service = node("dlq-node", &config, &[]);
    dead_letters_are_listed_replayed_and_purged(&service, &sim);
}

#[test]
fn a_replayed_dead_letter_is_published_byte_for_byte() {
    let nats = Nats::start("replay-exact");
    let sim = simulator();
    let config = nats_config(&sim, &[nats.url()], json!({}));
    let service = node("replay-exact-node", &config, &[]);
    sim.inject(Fault::EchoHeaders { status: 400 }, Scope::Always)
        .unwrap();
    // A numeric user id beyond 64 bits: as a float it would lose digits (another user, another
    // partition).
    let user = "12345678901234567890123";
    let created_at = json!(common::recent()).to_string();
    let event = format!(
        r#"{{"id":"big","event_name":"test_event","created_at":{created_at},"user_id":{user},"properties":{{"seq":0}}}}"#
    );
    assert_eq!(service.post_ndjson(&format!("{event}\n")).0, 202);
    wait_until("one dead letter", Duration::from_secs(30), || {
        service.dlq(&["list"]).0.lines().count() == 1
    });
    sim.clear_faults();
    let (_, said) = service.dlq(&["replay"]);
    assert!(said.contains("1 dead letter"), "{said}");
    wait_until(
        "the replayed event is delivered",
        Duration::from_secs(30),
        || delivered(&sim).0.len() == 1,
    );
    let users = sim.accepted_users();
    assert_eq!(
        users[0].user["identifiers"]["uuid"], user,
        "{:?}",
        users[0].user
    );
}

#[test]
fn dead_letters_that_cannot_be_stored_are_kept_and_stored_later() {
    let nats = Nats::start("dlq-refused");
    let sim = simulator();
    let config = nats_config(&sim, &[nats.url()], json!({}));
    let service = node("dlq-refused-node", &config, &[]);
    // Room for three dead letters: the other seven of the batch are refused.
    nats.limit_dead_letters(3);
    sim.inject(Fault::EchoHeaders { status: 400 }, Scope::Always)
        .unwrap();
    assert_eq!(service.post_ndjson(&events(10, 10)).0, 202);
    wait_until("a dead letter is refused", Duration::from_secs(30), || {
        service.log().contains("storing a dead letter")
    });
    assert_eq!(service.dlq(&["list"]).0.lines().count(), 3);
    nats.limit_dead_letters(-1);
    // Every one of the batch is stored in the end, and nothing is left in flight.
    wait_until("ten dead letters", Duration::from_secs(30), || {
        service.dlq(&["list"]).0.lines().count() == 10
    });
    wait_until("nothing is left in flight", Duration::from_secs(30), || {
        nats.unacknowledged() == 0 && nats.undelivered() == 0
    });
    assert_eq!(delivered(&sim).0.len(), 0);
}

#[test]
fn a_three_node_cluster_with_three_replicas_survives_the_loss_of_a_node() {
    let mut cluster = Nats::cluster("cluster");
    let sim = simulator();
    let urls: Vec<String> = cluster.iter().map(Nats::url).collect();
    let config = nats_config(&sim, &urls, json!({"replicas": 3, "partitions": 3}));
    let a = node("cluster-a", &config, &[]);
    let b = node("cluster-b", &config, &[]);
    deliver_through(&sim, &[&a, &b], || cluster[0].kill());
}

#[test]
fn hardal_validate_accepts_the_clustered_example_and_names_a_bad_backlog_field() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/serve-nats.json");
    let output = Command::new(env!("CARGO_BIN_EXE_hardal"))
        .args(["validate", "--config", example.to_str().unwrap()])
        .env("INSIDER_REQUEST_TOKEN", "x")
        .env("HARDAL_INGEST_TOKEN", "x")
        .env("NATS_TOKEN", "x")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let dir = test_dir("nats-validate");
    let path = dir.join("bad.json");
    let sim = simulator();
    let mut config = nats_config(
        &sim,
        &["nats://127.0.0.1:4222".into()],
        json!({"partitions": 0}),
    );
    config["server"] = json!({"listen": "127.0.0.1:0", "auth_tokens": ["t"]});
    std::fs::write(&path, serde_json::to_string_pretty(&config).unwrap()).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_hardal"))
        .args(["validate", "--config", path.to_str().unwrap()])
        .env("INSIDER_REQUEST_TOKEN", "x")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("/backlog/partitions"), "{stderr}");
}

#[test]
fn hardal_validate_refuses_a_destination_id_no_backlog_can_name() {
    // NATS consumer names cannot hold `.`, `*`, `>` or whitespace; an id with one passed
    // `validate` and broke the node at start.
    let dir = test_dir("nats-validate-id");
    let sim = simulator();
    for id in [
        "insider.eu",
        "insider eu",
        "in*",
        "-insider",
        &"x".repeat(65),
    ] {
        let mut config = nats_config(&sim, &["nats://127.0.0.1:4222".into()], json!({}));
        config["server"] = json!({"listen": "127.0.0.1:0", "auth_tokens": ["t"]});
        config["destinations"][0]["id"] = json!(id);
        let path = dir.join("config.json");
        std::fs::write(&path, serde_json::to_string_pretty(&config).unwrap()).unwrap();
        let output = Command::new(env!("CARGO_BIN_EXE_hardal"))
            .args(["validate", "--config", path.to_str().unwrap()])
            .env("INSIDER_REQUEST_TOKEN", "x")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{id}: {stderr}");
        assert!(
            stderr.contains("/destinations/0/id")
                && stderr.contains("only letters, digits, `_` and `-`"),
            "{id}: {stderr}"
        );
    }
}

#[test]
fn a_paused_destination_stops_pulling_and_loses_nothing() {
    let nats = Nats::start("pause");
    let sim = simulator();
    sim.inject(Fault::Unauthorized, Scope::Always).unwrap();
    let mut config = nats_config(&sim, &[nats.url()], json!({}));
    config["server"] = json!({"probe_interval_seconds": 1});
    config["delivery"]["max_pending_records"] = json!(100);
    let service = node("pause-node", &config, &[]);
    let batches = ndjson_batches(&events(6000, 20), 100);
    let acknowledged = post_all(&[&service], &batches, 100);
    let stored = messages(&batches, 6);
    wait_until("the destination is paused", Duration::from_secs(20), || {
        service.ready()["paused"]
            .as_array()
            .is_some_and(|p| p.len() == 1)
    });
    // Paused, the worker holds what it took (at most its 100 events in the engine, a queue of
    // 1,024 and one fetch of about 256 per partition) and pulls nothing more: the rest stays
    // in the stream. The metric is computed from JetStream's consumers (it counts messages,
    // of 6,000 / `stored` events each on average), so it reaches `stored` once every publish
    // is counted; the worker has had its chance to pull more by then.
    wait_until(
        "the node reports every message waiting",
        Duration::from_secs(20),
        || metric(&service, "hardal_partition_events", "") == stored as f64,
    );
    std::thread::sleep(Duration::from_secs(3));
    // Every request holds the same users, so a partition's messages hold equally many events.
    let mut per_message: BTreeMap<u32, u64> = BTreeMap::new();
    for line in batches[0].lines() {
        let checked = check_event(line).unwrap();
        *per_message
            .entry(partition_of(checked.user.as_deref(), checked.identity, 6))
            .or_default() += 1;
    }
    let consumers = nats.consumers();
    let undelivered: u64 = per_message
        .iter()
        .map(|(p, events)| consumers[&format!("insider_{p}")].0 * events)
        .sum();
    assert!(
        undelivered >= 6000 - 100 - 1024 - 6 * 256,
        "{undelivered} events left in the stream"
    );
    sim.clear_faults();
    let times = delivered_in_user_order(&sim, acknowledged.len(), Duration::from_secs(90));
    assert!(times.values().all(|n| *n == 1));
    wait_until("the stream is empty", Duration::from_secs(20), || {
        metric(&service, "hardal_partition_events", "") == 0.0
    });
}

#[test]
fn a_node_refuses_another_partition_count_warns_of_forgotten_destinations_and_hides_credentials() {
    let nats = Nats::start("partitions");
    let sim = simulator();
    let service = node(
        "partitions-first",
        &nats_config(&sim, &[nats.url()], json!({})),
        &[],
    );
    drop(service);
    // The destination renamed: the old one's consumers would keep events for ever, unnoticed.
    let mut renamed = nats_config(&sim, &[nats.url()], json!({}));
    renamed["destinations"][0]["id"] = json!("insider_eu");
    let service = node("partitions-renamed", &renamed, &[]);
    let log = service.log();
    assert!(
        log.contains("consumers this configuration does not name")
            && log.contains("insider_0, insider_1"),
        "{log}"
    );
    drop(service);
    let mut config = nats_config(&sim, &[nats.url()], json!({"partitions": 4}));
    let stderr = refused_start("partitions-second", &config);
    assert!(
        stderr.contains("was made as \"hardal events in 6 partitions\"")
            && stderr.contains("asks for 4 partitions"),
        "{stderr}"
    );
    // Nothing listens on this port: the error names the server without its password.
    config["backlog"]["servers"] = json!([format!(
        "nats://hardal:hunter2-secret@127.0.0.1:{}",
        free_port()
    )]);
    let stderr = refused_start("partitions-unreachable", &config);
    assert!(
        stderr.contains("cannot connect to nats://[redacted]@127.0.0.1:"),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2"), "{stderr}");
}

#[test]
fn credentials_in_a_server_url_authenticate_and_reach_no_log_even_at_debug() {
    // The server requires them: the node connects only if the URL's credentials are used.
    let nats = Nats::start_with_auth("url-credentials", "hardal", "hunter2-secret@/:");
    let sim = simulator();
    let url = format!(
        "nats://hardal:hunter2-secret%40%2F%3A@127.0.0.1:{}",
        nats.port
    );
    let mut config = nats_config(&sim, &[url], json!({}));
    config["server"] = json!({"listen": "127.0.0.1:0", "auth_tokens": ["t"]});
    let dir = test_dir("url-credentials-node");
    let path = dir.join("config.json");
    std::fs::write(&path, config.to_string()).unwrap();
    let log = dir.join("stderr.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_hardal"))
        .args(["serve", "--config", path.to_str().unwrap()])
        .env("INSIDER_REQUEST_TOKEN", TOKEN)
        .env("HARDAL_LOG", "debug")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    // Connected, listening, and delivering: every connection the node makes was made.
    wait_until(
        "the node holds its partitions",
        Duration::from_secs(30),
        || std::fs::read_to_string(&log).is_ok_and(|l| l.contains("Took the lease")),
    );
    let _ = child.kill();
    let _ = child.wait();
    let stderr = std::fs::read_to_string(&log).unwrap();
    assert!(stderr.contains("DEBUG"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");
}

#[test]
fn a_stream_larger_than_the_servers_can_hold_is_refused_with_the_way_out() {
    let nats = Nats::start("too-big");
    let sim = simulator();
    let config = nats_config(&sim, &[nats.url()], json!({"max_bytes": 2 * STORE_BYTES}));
    let stderr = refused_start("too-big-node", &config);
    assert!(
        stderr.contains("creating stream `HARDAL_EVENTS`")
            && stderr.contains("insufficient storage")
            && stderr.contains(&format!(
                "the {} bytes of `backlog.max_bytes`",
                2 * STORE_BYTES
            ))
            && stderr.contains("max_file_store"),
        "{stderr}"
    );
    // What fits is made, and the node starts.
    let service = node(
        "too-big-fits",
        &nats_config(&sim, &[nats.url()], json!({})),
        &[],
    );
    wait_until("the node is ready", Duration::from_secs(20), || {
        service.get("/readyz").0 == 200
    });
}

#[test]
fn nodes_starting_together_neither_fail_nor_crash_the_server() {
    // A deployment starts its nodes at once. nats-server 2.9 crashes when updates of one stream
    // cross, so nodes must not update streams whose settings they would not change.
    let mut nats = Nats::start("together");
    let sim = simulator();
    let config = nats_config(&sim, &[nats.url()], json!({}));
    // The first round makes the streams, the next ones find them.
    for round in 0..3 {
        let nodes: Vec<Service> = std::thread::scope(|scope| {
            let starting: Vec<_> = (0..4)
                .map(|i| {
                    let config = &config;
                    scope.spawn(move || node(&format!("together-{round}-{i}"), config, &[]))
                })
                .collect();
            starting.into_iter().map(|s| s.join().unwrap()).collect()
        });
        assert!(nats.alive(), "nats-server crashed in round {round}");
        wait_until("every node is ready", Duration::from_secs(20), || {
            nodes.iter().all(|n| n.ready()["ready"] == true)
        });
    }
}

#[test]
fn health_endpoints_answer_at_once_while_nats_is_down() {
    let mut nats = Nats::start("health-down");
    let sim = simulator();
    let service = node(
        "health-down-node",
        &nats_config(&sim, &[nats.url()], json!({})),
        &[],
    );
    wait_until("/readyz says ready", Duration::from_secs(30), || {
        service.ready()["ready"] == true
    });
    nats.kill();
    wait_until("/readyz says not ready", Duration::from_secs(60), || {
        service.ready()["ready"] == false
    });
    // Each answered from what the health task last read (they took 10 s, longer than
    // Prometheus waits for a scrape); the bound leaves room for a loaded machine.
    for path in ["/readyz", "/metrics", "/healthz", "/readyz", "/metrics"] {
        let started = Instant::now();
        let (status, _) = service.get(path);
        let took = started.elapsed();
        assert!(took < Duration::from_secs(3), "{path} took {took:?}");
        assert_eq!(status, if path == "/readyz" { 503 } else { 200 }, "{path}");
    }
}

/// A request of `users` users (from `u{first_user}`), each with a valid event (`seq` from
/// `first_seq`) and one Insider's rules refuse (a national phone number): each message of it
/// ends partly delivered, partly rejected.
fn mixed(first_user: usize, users: usize, first_seq: usize) -> String {
    (0..users)
        .flat_map(|i| {
            let user = format!("u{}", first_user + i);
            let seq = first_seq + i;
            [
                json!({"id": format!("ok{seq}"), "event_name": "test_event", "created_at": common::recent(),
                       "user_id": user, "properties": {"seq": seq}}),
                json!({"id": format!("bad{seq}"), "event_name": "identify", "user_id": user,
                       "user": {"phone_number": "0532 123 45 67"}}),
            ]
        })
        .map(|event| event.to_string() + "\n")
        .collect()
}

#[test]
fn a_retried_batch_is_stored_once_and_a_changed_one_stores_only_its_new_events() {
    let nats = Nats::start("retry");
    let sim = simulator();
    let config = nats_config(&sim, &[nats.url()], json!({}));
    let front = node("retry-front-a", &config, &["--no-deliver"]);
    let back = node("retry-front-b", &config, &["--no-deliver"]);
    let lines: Vec<String> = events(100, 30).lines().map(|l| format!("{l}\n")).collect();
    let answer = |accepted: usize, duplicates: usize| {
        (202, json!({"accepted": accepted, "duplicates": duplicates}))
    };
    assert_eq!(front.post_ndjson(&lines[..50].concat()), answer(50, 0));
    // The same events in another order, through the other node: the same messages (their ids
    // derive from their events' identities, sorted), which JetStream stores once.
    let reversed: String = lines[..50].iter().rev().cloned().collect();
    assert_eq!(back.post_ndjson(&reversed), answer(0, 50));
    // A retry whose batch changed (the second half of the first and 25 new events), through
    // the node that stored the first: only the new events are stored.
    assert_eq!(front.post_ndjson(&lines[25..75].concat()), answer(25, 25));
    // And one event repeated within a request is stored once.
    let twice = format!("{}{}", lines[80], lines[80]);
    assert_eq!(front.post_ndjson(&twice), answer(1, 1));
    let _worker = node("retry-worker", &config, &["--no-ingest"]);
    let times = delivered_in_user_order(&sim, 76, Duration::from_secs(60));
    assert!(times.values().all(|n| *n == 1), "{times:?}");
}

#[test]
fn a_batch_whose_events_end_differently_resolves_each_once_through_a_hand_back_and_a_kill() {
    let nats = Nats::start("mixed");
    let sim = simulator();
    let config = nats_config(&sim, &[nats.url()], json!({}));
    let rejected = |service: &Service| metric(service, "hardal_events_resolved_total", "rejected");
    // The valid events wait (503, retried) while the fault holds; the others are rejected at
    // once: the message of the one user is partly resolved.
    sim.inject(Fault::ServerError { status: 503 }, Scope::Always)
        .unwrap();
    let first = node("mixed-first", &config, &[]);
    assert_eq!(first.post_ndjson(&mixed(0, 1, 0)).0, 202);
    wait_until(
        "the first worker rejected one event",
        Duration::from_secs(30),
        || rejected(&first) == 1.0,
    );
    assert_eq!(nats.unacknowledged(), 1);
    // SIGTERM: the message goes back with its rejected event recorded as resolved.
    assert_eq!(first.stop(), Some(0));
    assert_eq!(nats.stream_messages("KV_HARDAL_EVENTS_RESOLVED"), 1);
    let second = node("mixed-second", &config, &[]);
    // A second message of the same user comes after the first: once its event is rejected,
    // the first message went through this worker before it.
    assert_eq!(second.post_ndjson(&mixed(0, 1, 1)).0, 202);
    wait_until(
        "the second worker rejected an event",
        Duration::from_secs(30),
        || rejected(&second) >= 1.0 && second.dlq(&["list"]).0.lines().count() == 2,
    );
    assert_eq!(
        rejected(&second),
        1.0,
        "the first message's rejected event was judged again"
    );
    // SIGKILL, once the progress report recorded what resolved of the second message: the
    // next holder sends only the valid events again.
    wait_until(
        "the second message's resolved event is recorded",
        Duration::from_secs(30),
        || nats.stream_messages("KV_HARDAL_EVENTS_RESOLVED") == 2,
    );
    second.kill();
    let third = node("mixed-third", &config, &[]);
    sim.clear_faults();
    let times = delivered_in_user_order(&sim, 2, Duration::from_secs(90));
    assert!(times.values().all(|n| *n == 1), "{times:?}");
    wait_until("nothing is left in flight", Duration::from_secs(30), || {
        nats.unacknowledged() == 0 && nats.undelivered() == 0
    });
    assert_eq!(rejected(&third), 0.0);
    assert_eq!(third.dlq(&["list"]).0.lines().count(), 2);
}

#[test]
fn partitions_handed_over_in_the_middle_of_batches_deliver_each_event_once_in_order() {
    let nats = Nats::start("handover-mixed");
    let sim = simulator();
    let config = nats_config(&sim, &[nats.url()], json!({}));
    let rejected = |service: &Service| metric(service, "hardal_events_resolved_total", "rejected");
    sim.inject(Fault::ServerError { status: 503 }, Scope::Always)
        .unwrap();
    let first = node("handover-mixed-first", &config, &[]);
    wait_until(
        "the first worker holds every partition",
        Duration::from_secs(20),
        || metric(&first, "hardal_partitions_held", "") == 6.0,
    );
    // 30 users over the six partitions: every message partly rejected, partly waiting.
    assert_eq!(first.post_ndjson(&mixed(0, 30, 0)).0, 202);
    wait_until(
        "the invalid events are rejected",
        Duration::from_secs(30),
        || rejected(&first) == 30.0,
    );
    // A second worker joins: the first hands over half its partitions once what it took from
    // them resolved, which the fault holds up; then more events come, and the fault clears.
    let second = node("handover-mixed-second", &config, &["--no-ingest"]);
    wait_until(
        "the second worker is counted",
        Duration::from_secs(20),
        || {
            second
                .log()
                .contains("This node delivers from NATS partitions")
        },
    );
    assert_eq!(first.post_ndjson(&mixed(0, 30, 30)).0, 202);
    sim.clear_faults();
    wait_until("the partitions are shared", Duration::from_secs(30), || {
        metric(&second, "hardal_partitions_held", "") == 3.0
    });
    assert_eq!(first.post_ndjson(&mixed(0, 30, 60)).0, 202);
    let times = delivered_in_user_order(&sim, 90, Duration::from_secs(90));
    assert!(times.values().all(|n| *n == 1), "{times:?}");
    wait_until(
        "every invalid event is rejected",
        Duration::from_secs(30),
        || rejected(&first) + rejected(&second) >= 90.0,
    );
    assert_eq!(rejected(&first) + rejected(&second), 90.0);
    assert_eq!(first.dlq(&["list"]).0.lines().count(), 90);
}

/// A retry grouped with other requests makes a message JetStream has not seen (issue 17): it is
/// stored again, and the workers deliver its events once. What the killed first holder
/// acknowledged, the next holder knows from the records; what one holder sees twice, it skips.
#[test]
fn a_retry_stored_twice_through_grouping_is_delivered_once_across_a_killed_worker() {
    let nats = Nats::start("grouped-retry");
    let sim = simulator();
    let config = nats_config(&sim, &[nats.url()], json!({}));
    let text = events(12, 1);
    let e: Vec<&str> = text.lines().collect();
    let partition = partition_of(Some("u0"), 0, 6);
    let first = node("grouped-retry-first", &config, &["--no-ingest"]);
    // Two requests grouped by one node: parts `a` (two events) and `b`.
    nats.publish_parts(partition, "g1", &[("a", &e[0..2]), ("b", &e[2..3])]);
    delivered_in_user_order(&sim, 3, Duration::from_secs(60));
    wait_until(
        "the first holder acknowledged the message",
        Duration::from_secs(30),
        || nats.undelivered() == 0 && nats.unacknowledged() == 0,
    );
    first.kill();
    // Retries: `a` alone through another node (its own message id, unknown to JetStream,
    // which saw `g1`), and `b` grouped with a new request `c`.
    nats.publish_parts(partition, "a", &[("a", &e[0..2])]);
    nats.publish_parts(partition, "g2", &[("c", &e[3..4]), ("b", &e[2..3])]);
    let _second = node("grouped-retry-second", &config, &["--no-ingest"]);
    delivered_in_user_order(&sim, 4, Duration::from_secs(60));
    // One holder sees both copies: `d`, then `d` again grouped with `e` (and `e` twice in it).
    nats.publish_parts(partition, "d", &[("d", &e[4..6])]);
    nats.publish_parts(
        partition,
        "g3",
        &[("e", &e[6..7]), ("d", &e[4..6]), ("e", &e[6..7])],
    );
    let times = delivered_in_user_order(&sim, 7, Duration::from_secs(60));
    wait_until(
        "the second holder acknowledged every message",
        Duration::from_secs(30),
        || nats.undelivered() == 0 && nats.unacknowledged() == 0,
    );
    let times_after = delivered(&sim).0;
    assert_eq!(times, times_after);
    assert!(
        times.values().all(|n| *n == 1),
        "delivered twice: {times:?}"
    );
}

#[test]
fn one_dead_letter_of_a_batch_is_replayed_alone() {
    let nats = Nats::start("replay-one");
    let sim = simulator();
    let config = nats_config(&sim, &[nats.url()], json!({}));
    let service = node("replay-one-node", &config, &[]);
    sim.inject(Fault::EchoHeaders { status: 400 }, Scope::Always)
        .unwrap();
    // One user's ten events: one message, ten dead letters.
    assert_eq!(service.post_ndjson(&events(10, 1)).0, 202);
    wait_until("ten dead letters", Duration::from_secs(30), || {
        service.dlq(&["list"]).0.lines().count() == 10
    });
    sim.clear_faults();
    let listed = service.dlq(&["list"]).0;
    let line = listed.lines().nth(3).unwrap();
    let id = line.split('\t').next().unwrap();
    let (shown, _) = service.dlq(&["show", id]);
    let seq = serde_json::from_str::<Value>(&shown).unwrap()["event"]["properties"]["seq"]
        .as_u64()
        .unwrap();
    let (_, said) = service.dlq(&["replay", "--id", id]);
    assert!(said.contains("1 dead letter"), "{said}");
    wait_until(
        "the replayed event is delivered",
        Duration::from_secs(30),
        || delivered(&sim).0.len() == 1,
    );
    assert_eq!(delivered(&sim).0.keys().copied().collect::<Vec<_>>(), [seq]);
    assert_eq!(service.dlq(&["list"]).0.lines().count(), 9);
}

#[test]
fn old_single_event_messages_in_the_stream_at_an_upgrade_are_delivered_in_user_order() {
    let nats = Nats::start("upgrade");
    let sim = simulator();
    let config = nats_config(&sim, &[nats.url()], json!({}));
    // The stream and its consumers, made by an ingestion node; then the backlog a node of the
    // version before left: one message per event, among them one Insider refuses.
    let front = node("upgrade-front", &config, &["--no-deliver"]);
    let text = events(200, 20);
    let lines: Vec<&str> = text.lines().collect();
    let refused = mixed(100, 1, 1000);
    let refused = refused.lines().nth(1).unwrap();
    let mut old = lines[..100].to_vec();
    old.push(refused);
    nats.publish_single_events(&old, 6);
    // The rest through the new version, as batch messages after them.
    post_all(&[&front], &ndjson_batches(&lines[100..].join("\n"), 50), 50);
    let worker = node("upgrade-worker", &config, &["--no-ingest"]);
    let times = delivered_in_user_order(&sim, 200, Duration::from_secs(60));
    assert!(times.values().all(|n| *n == 1), "{times:?}");
    wait_until(
        "the refused old event is a dead letter",
        Duration::from_secs(30),
        || worker.dlq(&["list"]).0.lines().count() == 1,
    );
    let id = worker
        .dlq(&["list"])
        .0
        .split('\t')
        .next()
        .unwrap()
        .to_owned();
    let shown: Value = serde_json::from_str(&worker.dlq(&["show", &id]).0).unwrap();
    assert_eq!(
        shown["event"],
        serde_json::from_str::<Value>(refused).unwrap()
    );
}

/// Erasure on NATS: an erased user's events waiting behind a paused destination are never
/// delivered (messages of that user alone deleted from the stream, shared ones skipped as
/// workers take them), a second node learns of the suppression and drops the user's new events,
/// Insider is asked to delete the user; the node running the job is killed (aborted) after each
/// step in turn and the job resumed by its restart.
#[test]
fn an_erased_users_events_are_never_delivered_from_nats() {
    const ERASED: &str = "erase-me-nats-5d1e";
    for step in ["suppressed", "removed", "sending"] {
        let nats = Nats::start(&format!("erase-{step}"));
        let sim = simulator();
        sim.inject(Fault::Unauthorized, Scope::Always).unwrap();
        let mut config = nats_config(&sim, &[nats.url()], json!({}));
        config["server"] =
            json!({"probe_interval_seconds": 1, "privacy_tokens": ["privacy-secret"]});
        let line = |id: String, user: &str, seq: usize| {
            json!({"id": id, "event_name": "test_event", "created_at": common::recent(),
                   "user_id": user, "properties": {"seq": seq}})
            .to_string()
                + "\n"
        };
        // Requests of the erased user alone (their messages are deleted), and requests shared with
        // others (theirs are skipped as they are taken).
        let mut alone = String::new();
        let mut shared = String::new();
        // 10,000 of the user's events wait behind the paused destination.
        let others = 60;
        for i in 0..10_000 - others {
            alone += &line(format!("a{i}"), ERASED, i);
        }
        for i in 0..others {
            shared += &line(format!("s{i}"), ERASED, 10_000 + i);
            shared += &line(format!("o{i}"), &format!("other-{}", i % 6), 20_000 + i);
        }
        let first = Service::start_with_env(
            test_dir(&format!("erase-first-{step}")),
            &config,
            &[("HARDAL_TEST_ERASURE_ABORT", step)],
        );
        let second = node(&format!("erase-second-{step}"), &config, &["--no-deliver"]);
        post_all(&[&first], &ndjson_batches(&alone, 500), 500);
        post_all(&[&second], &ndjson_batches(&shared, 40), 40);
        wait_until("the destination paused", Duration::from_secs(30), || {
            first.ready()["paused"]
                .as_array()
                .is_some_and(|p| p.len() == 1)
        });
        let url = format!("{}/v1/privacy/erasure", first.url);
        let status = common::service::block_on(async move {
            reqwest::Client::new()
                .post(url)
                .header("Authorization", "Bearer privacy-secret")
                .body(json!({"user_id": ERASED}).to_string())
                .send()
                .await
                .map_or(0, |r| r.status().as_u16())
        });
        assert!(status == 202 || status == 0, "{status}");
        // The hook aborts the first node once the removal is recorded.
        let mut first = first;
        let exit = first.child.wait().unwrap();
        assert!(!exit.success());
        // The ingestion node learned of the suppression from the bucket.
        wait_until(
            "the other node drops the user's new events",
            Duration::from_secs(10),
            || {
                let (_, answer) = second.post_ndjson(&line("late".into(), ERASED, 30_000));
                answer["suppressed"].as_u64() == Some(1)
            },
        );
        drop(first);
        sim.clear_faults();
        let first = node(&format!("erase-again-{step}"), &config, &[]);
        wait_until(
            "the others' events arrived",
            Duration::from_secs(90),
            || {
                metric(
                    &first,
                    "hardal_events_resolved_total",
                    "ending=\"delivered\"",
                ) >= others as f64
            },
        );
        let records = |node: &Service| -> Vec<Value> {
            let output = Command::new(env!("CARGO_BIN_EXE_hardal"))
                .args(["privacy", "list", "--config", node.config.to_str().unwrap()])
                .output()
                .unwrap();
            String::from_utf8(output.stdout)
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect()
        };
        wait_until("the erasure completed", Duration::from_secs(60), || {
            records(&first)
                .first()
                .is_some_and(|r| r["state"] == "complete")
        });
        let record = &records(&first)[0];
        // Messages of the user alone that the worker had not taken were deleted (those it held were
        // skipped and acknowledged when the engine dropped them, and went with that).
        assert!(
            record["removed_events"].as_u64() >= Some(1),
            "{step}: {record}"
        );
        assert_eq!(
            record["destinations"][0]["outcome"], "confirmed",
            "{record}"
        );
        assert_eq!(
            metric(
                &first,
                "hardal_events_resolved_total",
                "ending=\"delivered\""
            ),
            others as f64,
            "{step}: an erased user's event was delivered"
        );
        assert!(!sim.has_user("uuid", ERASED), "{step}");
        wait_until("the stream is empty", Duration::from_secs(30), || {
            metric(&first, "hardal_partition_events", "") == 0.0
        });
        for log in [first.log(), second.log()] {
            assert!(
                !log.contains(ERASED),
                "{step}: a log holds the identifier:\n{log}"
            );
        }
        // No file of the NATS server holds the identifier any more (the job's identifiers were
        // erased, the user's messages deleted or acknowledged away).
        let mut directories = vec![nats.dir.clone()];
        while let Some(directory) = directories.pop() {
            for entry in std::fs::read_dir(&directory).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    directories.push(path);
                    continue;
                }
                let bytes = std::fs::read(&path).unwrap_or_default();
                assert!(
                    !bytes.windows(ERASED.len()).any(|w| w == ERASED.as_bytes()),
                    "{step}: {} holds the identifier",
                    path.display()
                );
            }
        }
    }
}

/// Consent mode holds on the NATS backlog as on the spool: with `"mode": "required"` only events
/// that carry consent reach Insider; the others are skipped for `no consent` and counted.
#[test]
fn consent_mode_on_nats_forwards_only_events_with_consent() {
    let nats = Nats::start("consent");
    let sim = simulator();
    let mut config = nats_config(&sim, &[nats.url()], json!({}));
    config["destinations"][0]["consent"] = json!({"mode": "required"});
    let service = node("consent-node", &config, &[]);
    let n = 300u64;
    let events: String = (0..n)
        .map(|i| {
            let mut event = json!({"id": format!("c{i}"), "event_name": "test_event",
                                   "created_at": common::recent(), "user_id": format!("u{}", i % 7),
                                   "properties": {"seq": i}});
            match i % 3 {
                0 => event["properties"]["consent"] = json!("true"),
                1 => event["consent"] = json!("false"),
                _ => {}
            }
            event.to_string() + "\n"
        })
        .collect();
    post_all(&[&service], &ndjson_batches(&events, 50), 50);
    let granted: BTreeSet<u64> = (0..n).filter(|i| i % 3 == 0).collect();
    let skipped = (n - granted.len() as u64) as f64;
    wait_until("the skips are counted", Duration::from_secs(60), || {
        metric(&service, "hardal_events_no_consent_total", "") == skipped
    });
    wait_until(
        "the events with consent are delivered",
        Duration::from_secs(60),
        || delivered(&sim).0.len() == granted.len(),
    );
    let reached: BTreeSet<u64> = delivered(&sim).0.into_keys().collect();
    assert_eq!(reached, granted);
    assert_eq!(
        metric(&service, "hardal_events_resolved_total", "dead_lettered"),
        0.0
    );
}
