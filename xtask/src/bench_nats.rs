//! `cargo xtask bench nats`: the serve benchmark's load through a NATS JetStream backlog, with
//! one ingestion node and 1, 2 and 4 delivery workers, release builds on loopback.
//!
//! A single `nats-server` (file storage) holds the stream; the load generator posts batches of
//! 100 events over 8 connections to the ingestion node (`--no-deliver`); the workers
//! (`--no-ingest`) share 16 partitions and deliver to the simulator (counting only). Reported:
//! events accepted per second and the p99 latency of the answers (202 only once JetStream
//! stored the events), and events delivered per second from the first post until the stream
//! was empty. Medians of three.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::bench_serve::{
    events_file, free_port, http_get, median, post_load, release_build, start_hardal_with,
    start_simulator_on, wait_for_empty_backlog,
};

/// The partitions of the benchmark's stream (the configuration's default).
const PARTITIONS: usize = 16;

#[derive(Debug, Clone)]
struct Run {
    ingest_events_per_second: f64,
    p99_ms: f64,
    delivered_per_second: f64,
}

pub fn run(root: &Path, n: u64, workers: &[usize], repeats: usize) -> Result<()> {
    let nats = nats_server()?;
    let release = release_build(root)?;
    let work = root.join("target/bench-nats");
    std::fs::create_dir_all(&work)?;
    let events = events_file(root, n)?;
    let mut report = String::new();
    for &count in workers {
        let mut runs = Vec::new();
        for attempt in 1..=repeats {
            let run = measure(&nats, &release, &work, &events, n, count)?;
            eprintln!("  {count} workers, {n} events, run {attempt}: {run:?}");
            runs.push(run);
        }
        let median = |f: fn(&Run) -> f64| median(&runs, f);
        report.push_str(&format!(
            "{count} worker{}: accepted {:.0} events/s, p99 {:.1} ms, delivered (start to empty) {:.0} events/s (medians of {})\n",
            if count == 1 { " " } else { "s" },
            median(|r| r.ingest_events_per_second),
            median(|r| r.p99_ms),
            median(|r| r.delivered_per_second),
            runs.len()
        ));
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
    let _nats = Guard(
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
    std::fs::write(
        &config,
        serde_json::json!({
            "destinations": [{"id": "insider", "type": "insider", "consent": {"mode": "off"},
                              "partner_name": "bench",
                              "request_token": "${INSIDER_REQUEST_TOKEN}",
                              "endpoint": format!("http://127.0.0.1:{port}/api/user/v1/upsert"),
                              "requests_per_minute": 1_000_000}],
            "delivery": {"concurrency": 4, "max_attempts": 1000, "max_retry_seconds": 86400,
                         "backoff_max_ms": 1000},
            "server": {"listen": "127.0.0.1:0", "auth_tokens": ["${HARDAL_INGEST_TOKEN}"]},
            "backlog": {"type": "nats", "servers": [format!("nats://127.0.0.1:{nats_port}")],
                        "max_bytes": 2_000_000_000u64}
        })
        .to_string(),
    )?;
    let _simulator = Guard(start_simulator_on(release, port)?);
    let (front, url) = start_hardal_with(release, &config, &["--no-deliver"])?;
    let _front = Guard(front);
    let (mut _workers, mut urls) = (Vec::new(), Vec::new());
    for _ in 0..workers {
        let (worker, url) = start_hardal_with(release, &config, &["--no-ingest"])?;
        _workers.push(Guard(worker));
        urls.push(url);
    }
    wait_for_shares(&urls)?;
    // A partition taken without a hand-over (here: the first ever) waits out its last holder's
    // fetches (2 s) before it fetches itself.
    std::thread::sleep(Duration::from_secs(3));
    let started = Instant::now();
    let load = post_load(release, &url, events, n)?;
    wait_for_empty_backlog(&url)?;
    Ok(Run {
        ingest_events_per_second: load.events_per_second,
        p99_ms: load.p99_ms,
        delivered_per_second: n as f64 / started.elapsed().as_secs_f64(),
    })
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
