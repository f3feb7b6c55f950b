//! `cargo xtask bench nats`: the serve benchmark's load through a NATS JetStream backlog, with
//! one ingestion node and 1, 2 and 4 delivery workers, release builds on loopback.
//!
//! A single `nats-server` (file storage) holds the stream; the load generator posts batches of
//! 100 events over 8 connections to the ingestion node (`--no-deliver`); the workers
//! (`--no-ingest`) share 16 partitions and deliver to the simulator (counting only). Reported:
//! events accepted per second and the p99 latency of the answers (202 only once JetStream
//! stored the events), events delivered per second from the first post until the workers
//! resolved the last of them (their `hardal_events_resolved_total`), and until the stream was
//! empty (every event acknowledged and removed: nats-server's own count of the stream's
//! messages, on its monitoring port); and the CPU seconds
//! each process spent from the first post until the stream was empty. Medians of three.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::bench_serve::{
    alternately, comparison, events_file, free_port, http_get, median, post_load, release_build,
    start_hardal_with, start_simulator_on,
};

/// The partitions of the benchmark's stream (the configuration's default).
const PARTITIONS: usize = 16;

#[derive(Debug, Clone)]
struct Run {
    ingest_events_per_second: f64,
    p99_ms: f64,
    delivered_per_second: f64,
    drained_per_second: f64,
    /// CPU seconds of nats-server, the ingestion node, the workers together, and the simulator.
    cpu: [f64; 4],
    /// Messages into and out of nats-server per event (publishes, fetches, acknowledgements,
    /// and the API calls of leases and statistics).
    nats_messages_per_event: f64,
}

/// With `compare` (a directory holding another build's `hardal`, `insider-simulator` and
/// `hardal-load`), each run is followed by one of that build on the same machine, and the report
/// gives both medians and their ratios: on a noisy machine only the ratio says what changed.
pub fn run(
    root: &Path,
    n: u64,
    workers: &[usize],
    repeats: usize,
    binaries: Option<&Path>,
    compare: Option<&Path>,
) -> Result<()> {
    let nats = nats_server()?;
    let release = match binaries {
        Some(dir) => dir.to_path_buf(),
        None => release_build(root)?,
    };
    for dir in [binaries, compare].into_iter().flatten() {
        for binary in ["hardal", "insider-simulator", "hardal-load"] {
            if !dir.join(binary).is_file() {
                bail!("{}: no `{binary}` there", dir.display());
            }
        }
    }
    let work = root.join("target/bench-nats");
    std::fs::create_dir_all(&work)?;
    let events = events_file(root, n)?;
    let mut report = String::new();
    for &count in workers {
        let label = format!("{count} workers, {n} events");
        let (runs, other_runs) = alternately(repeats, &release, compare, &label, |build| {
            measure(&nats, build, &work, &events, n, count)
        })?;
        let line = |runs: &[Run]| {
            let median = |f: fn(&Run) -> f64| median(runs, f);
            format!(
                "accepted {:.0} events/s, p99 {:.1} ms, delivered {:.0} events/s (start to empty: {:.0}); CPU s: nats-server {:.1}, ingestion {:.1}, workers {:.1}, simulator {:.1}; NATS messages per event {:.2} (medians of {})",
                median(|r| r.ingest_events_per_second),
                median(|r| r.p99_ms),
                median(|r| r.delivered_per_second),
                median(|r| r.drained_per_second),
                median(|r| r.cpu[0]),
                median(|r| r.cpu[1]),
                median(|r| r.cpu[2]),
                median(|r| r.cpu[3]),
                median(|r| r.nats_messages_per_event),
                runs.len()
            )
        };
        let heading = format!("{count} worker{}", if count == 1 { " " } else { "s" });
        report.push_str(&format!("{heading}: {}\n", line(&runs)));
        if let Some(dir) = compare {
            let ratio = |f: fn(&Run) -> f64| median(&runs, f) / median(&other_runs, f);
            report.push_str(&comparison(
                9,
                dir,
                &line(&other_runs),
                &[
                    ("accepted", ratio(|r| r.ingest_events_per_second)),
                    ("p99", ratio(|r| r.p99_ms)),
                    ("delivered", ratio(|r| r.delivered_per_second)),
                    ("CPU of all processes", ratio(|r| r.cpu.iter().sum())),
                ],
            ));
        }
    }
    println!(
        "bench nats ({n} events; batches of 100 over 8 connections to one ingestion node; 16 partitions; one nats-server; insider → simulator):\n{report}"
    );
    Ok(())
}

fn nats_server() -> Result<PathBuf> {
    for candidate in ["/usr/sbin/nats-server", "/usr/bin/nats-server"] {
        if Path::new(candidate).exists() {
            return Ok(candidate.into());
        }
    }
    bail!("nats-server is not installed (apt-get install nats-server)")
}

/// A child process killed when dropped.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        // SAFETY: kill(2) only signals the child this benchmark started.
        unsafe { libc::kill(self.0.id() as libc::pid_t, libc::SIGTERM) };
        let _ = self.0.wait();
    }
}

fn measure(
    nats: &Path,
    release: &Path,
    work: &Path,
    events: &Path,
    n: u64,
    workers: usize,
) -> Result<Run> {
    let store = work.join("store");
    let _ = std::fs::remove_dir_all(&store);
    std::fs::create_dir_all(&store)?;
    let (nats_port, monitor) = (free_port()?, free_port()?);
    let nats_server = Guard(
        Command::new(nats)
            .args(["-a", "127.0.0.1", "-p", &nats_port.to_string()])
            .args(["-m", &monitor.to_string(), "-js", "-sd"])
            .arg(&store)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting nats-server")?,
    );
    wait_for_nats(monitor)?;
    let port = free_port()?;
    let config = work.join("config.json");
    let mut destination = serde_json::json!({
        "id": "insider", "type": "insider", "partner_name": "bench",
        "request_token": "${INSIDER_REQUEST_TOKEN}",
        "endpoint": format!("http://127.0.0.1:{port}/api/user/v1/upsert"),
        "requests_per_minute": 1_000_000
    });
    crate::bench_consent(&release.join("hardal"), &mut destination)?;
    std::fs::write(
        &config,
        serde_json::json!({
            "destinations": [destination],
            "delivery": {"concurrency": 4, "max_attempts": 1000, "max_retry_seconds": 86400,
                         "backoff_max_ms": 1000},
            "server": {"listen": "127.0.0.1:0", "auth_tokens": ["${HARDAL_INGEST_TOKEN}"]},
            "backlog": {"type": "nats", "servers": [format!("nats://127.0.0.1:{nats_port}")],
                        "max_bytes": 2_000_000_000u64}
        })
        .to_string(),
    )?;
    let simulator = Guard(start_simulator_on(release, port)?);
    let (front, url) = start_hardal_with(release, &config, &["--no-deliver"])?;
    let front = Guard(front);
    let (mut worker_guards, mut urls) = (Vec::new(), Vec::new());
    for _ in 0..workers {
        let (worker, url) = start_hardal_with(release, &config, &["--no-ingest"])?;
        worker_guards.push(Guard(worker));
        urls.push(url);
    }
    wait_for_shares(&urls)?;
    // A partition taken without a hand-over (here: the first ever) waits out its last holder's
    // fetches (2 s) before it fetches itself.
    std::thread::sleep(Duration::from_secs(3));
    let cpu = || -> Result<[f64; 4]> {
        let mut workers = 0.0;
        for worker in &worker_guards {
            workers += cpu_seconds(worker.0.id())?;
        }
        Ok([
            cpu_seconds(nats_server.0.id())?,
            cpu_seconds(front.0.id())?,
            workers,
            cpu_seconds(simulator.0.id())?,
        ])
    };
    let cpu_before = cpu()?;
    let started = Instant::now();
    let load = post_load(release, &url, events, n)?;
    wait_for_resolved(&urls, n)?;
    let delivered = started.elapsed();
    wait_for_empty_stream(monitor)?;
    let drained = started.elapsed();
    let cpu_after = cpu()?;
    let varz: serde_json::Value =
        serde_json::from_str(&http_get(&format!("http://127.0.0.1:{monitor}"), "/varz")?)?;
    let messages =
        varz["in_msgs"].as_f64().unwrap_or(0.0) + varz["out_msgs"].as_f64().unwrap_or(0.0);
    Ok(Run {
        nats_messages_per_event: messages / n as f64,
        ingest_events_per_second: load.events_per_second,
        p99_ms: load.p99_ms,
        delivered_per_second: n as f64 / delivered.as_secs_f64(),
        drained_per_second: n as f64 / drained.as_secs_f64(),
        cpu: std::array::from_fn(|i| cpu_after[i] - cpu_before[i]),
    })
}

/// The CPU seconds (user and system) a process spent so far.
fn cpu_seconds(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The fields after the command (which may hold spaces) in parentheses; utime and stime
    // are the 14th and 15th of the line.
    let rest = stat
        .rsplit_once(") ")
        .context("an unreadable /proc stat")?
        .1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>()? + fields[12].parse::<f64>()?;
    // SAFETY: sysconf only reads a system setting.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Ok(ticks / per_second)
}

/// Until the workers together resolved at least `n` events (their counters; a resolution is
/// counted as it goes to the backlog to be acknowledged).
fn wait_for_resolved(workers: &[String], n: u64) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(3600);
    loop {
        let mut resolved = 0.0;
        for url in workers {
            resolved += http_get(url, "/metrics")?
                .lines()
                .filter(|l| l.starts_with("hardal_events_resolved_total{"))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum::<f64>();
        }
        if resolved >= n as f64 {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the workers did not resolve every event");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Until the workers hold every partition between them, each at least its share rounded
/// down, so that the load does not start in the middle of hand-overs.
fn wait_for_shares(workers: &[String]) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut held = Vec::new();
        for url in workers {
            let text = http_get(url, "/metrics")?;
            held.push(
                text.lines()
                    .find_map(|l| l.strip_prefix("hardal_partitions_held "))
                    .and_then(|v| v.trim().parse::<f64>().ok())
                    .unwrap_or(0.0) as usize,
            );
        }
        let floor = PARTITIONS / workers.len();
        if held.iter().sum::<usize>() == PARTITIONS && held.iter().all(|h| *h >= floor) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the workers did not share the partitions within a minute: {held:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Until the events' stream holds no message, as nats-server counts them (a hardal's
/// `/metrics` answers from a reading up to two seconds old).
fn wait_for_empty_stream(monitor: u16) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(3600);
    let base = format!("http://127.0.0.1:{monitor}");
    loop {
        let jsz: serde_json::Value = serde_json::from_str(&http_get(&base, "/jsz?streams=true")?)?;
        let messages = jsz["account_details"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|account| account["stream_detail"].as_array().into_iter().flatten())
            .find(|stream| stream["name"] == "HARDAL_EVENTS")
            .and_then(|stream| stream["state"]["messages"].as_u64());
        if messages == Some(0) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the stream did not empty: {messages:?} messages left");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Until JetStream answers healthy on the monitoring port.
fn wait_for_nats(monitor: u16) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let healthy = std::net::TcpStream::connect(("127.0.0.1", monitor))
            .ok()
            .and_then(|mut stream| {
                use std::io::{Read, Write};
                write!(
                    stream,
                    "GET /healthz?js-enabled-only=true HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                )
                .ok()?;
                let mut text = String::new();
                stream.read_to_string(&mut text).ok()?;
                Some(text.starts_with("HTTP/1.1 200"))
            })
            .unwrap_or(false);
        if healthy {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("nats-server did not become ready");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
