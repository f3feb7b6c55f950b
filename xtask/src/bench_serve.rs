//! `cargo xtask bench serve`: `hardal serve` under load, release builds on loopback.
//!
//! Flowing: the simulator (counting only) up, the load generator posts batches of 100 realistic
//! events over keep-alive connections with `durability: full`; reported are the events accepted
//! per second, the p99 latency of the answers, and how long delivery took to empty the backlog.
//! Backlog: the simulator down, the same load for more events (the backlog grows on disk) with
//! hardal's peak RSS; then the simulator comes up and the backlog is drained. Medians of three.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::bench_send::generate;

pub(crate) const TOKEN: &str = "bench-ingest";

/// One measured run.
#[derive(Debug, Clone)]
struct Run {
    ingest_events_per_second: f64,
    p99_ms: f64,
    /// Events per second from the first post until the backlog was empty (flowing), or of the
    /// drain once the simulator came up (backlog).
    delivered_per_second: f64,
    peak_rss_kib: i64,
}

/// With `compare` (a directory holding another build's `hardal`, `insider-simulator` and
/// `hardal-load`), each run of this build is followed by one of that build on the same machine,
/// and the report gives both medians and their ratio: the machine's noise touches both alike.
pub fn run(
    root: &Path,
    flowing: u64,
    backlog: u64,
    repeats: usize,
    compare: Option<&Path>,
) -> Result<()> {
    let release = release_build(root)?;
    if let Some(dir) = compare {
        for binary in ["hardal", "insider-simulator", "hardal-load"] {
            if !dir.join(binary).is_file() {
                bail!("--compare {}: no `{binary}` there", dir.display());
            }
        }
    }
    let work = root.join("target/bench-serve");
    std::fs::create_dir_all(&work)?;
    let events = events_file(root, flowing.max(backlog))?;
    let mut report = String::new();
    for (name, n, simulator_up) in [("flowing", flowing, true), ("backlog", backlog, false)] {
        if n == 0 {
            continue;
        }
        let (runs, other_runs) = alternately(
            repeats,
            &release,
            compare,
            &format!("{name} {n} events"),
            |build| measure(build, &work, &events, n, simulator_up),
        )?;
        let line = |runs: &[Run]| {
            let median = |f: fn(&Run) -> f64| median(runs, f);
            format!(
                "accepted {:.0} events/s, p99 {:.1} ms, {} {:.0} events/s, peak RSS {:.1} MB (medians of {})",
                median(|r| r.ingest_events_per_second),
                median(|r| r.p99_ms),
                if simulator_up {
                    "delivered (start to empty)"
                } else {
                    "drained"
                },
                median(|r| r.delivered_per_second),
                median(|r| r.peak_rss_kib as f64) / 1024.0,
                runs.len()
            )
        };
        report.push_str(&format!("{name:>8}, {n} events: {}\n", line(&runs)));
        if let Some(dir) = compare {
            let ratio = |f: fn(&Run) -> f64| median(&runs, f) / median(&other_runs, f);
            report.push_str(&comparison(
                8,
                dir,
                &line(&other_runs),
                &[
                    ("accepted", ratio(|r| r.ingest_events_per_second)),
                    ("p99", ratio(|r| r.p99_ms)),
                    ("delivered", ratio(|r| r.delivered_per_second)),
                    ("peak RSS", ratio(|r| r.peak_rss_kib as f64)),
                ],
            ));
        }
    }
    println!(
        "bench serve (durability full, batches of 100 over 8 connections, insider → simulator):\n{report}"
    );
    Ok(())
}

fn measure(release: &Path, work: &Path, events: &Path, n: u64, simulator_up: bool) -> Result<Run> {
    let spool = work.join("spool");
    let _ = std::fs::remove_dir_all(&spool);
    std::fs::create_dir_all(&spool)?;
    let port = free_port()?;
    let endpoint = format!("http://127.0.0.1:{port}/api/user/v1/upsert");
    let config = spool.join("config.json");
    let mut destination = serde_json::json!({"id": "insider", "type": "insider",
        "partner_name": "bench", "request_token": "${INSIDER_REQUEST_TOKEN}",
        "endpoint": endpoint, "requests_per_minute": 1_000_000});
    super::bench_consent(&release.join("hardal"), &mut destination)?;
    std::fs::write(
        &config,
        serde_json::json!({
            "destinations": [destination],
            "delivery": {"concurrency": 4, "max_attempts": 1000, "max_retry_seconds": 86400,
                         "backoff_max_ms": 1000},
            "server": {"listen": "127.0.0.1:0", "auth_tokens": ["${HARDAL_INGEST_TOKEN}"]},
            "backlog": {"type": "sqlite", "path": spool.join("spool.db"), "durability": "full"}
        })
        .to_string(),
    )?;
    let mut simulator = if simulator_up {
        Some(start_simulator_on(release, port)?)
    } else {
        None
    };
    let (mut hardal, url) = start_hardal(release, &config)?;
    let peak = std::sync::Arc::new(std::sync::atomic::AtomicI64::new(0));
    let watcher = watch_rss(hardal.id(), std::sync::Arc::clone(&peak));
    let started = Instant::now();
    let load = post_load(release, &url, events, n)?;
    let drain_started = Instant::now();
    if !simulator_up {
        simulator = Some(start_simulator_on(release, port)?);
    }
    wait_for_empty_backlog(&url)?;
    let delivered_per_second = if simulator_up {
        n as f64 / started.elapsed().as_secs_f64()
    } else {
        n as f64 / drain_started.elapsed().as_secs_f64()
    };
    // SAFETY: kill(2) only signals the child this benchmark started.
    unsafe { libc::kill(hardal.id() as libc::pid_t, libc::SIGTERM) };
    hardal.wait()?;
    drop(watcher);
    if let Some(mut simulator) = simulator {
        let _ = simulator.kill();
        let _ = simulator.wait();
    }
    Ok(Run {
        ingest_events_per_second: load.events_per_second,
        p99_ms: load.p99_ms,
        delivered_per_second,
        peak_rss_kib: peak.load(std::sync::atomic::Ordering::Relaxed),
    })
}

/// Builds what a service benchmark runs (hardal, the simulator, the load generator) and
/// returns where the binaries are.
pub(crate) fn release_build(root: &Path) -> Result<PathBuf> {
    super::release_build(
        root,
        &[
            "hardal-runner",
            "hardal-insider-simulator",
            "hardal-load-generator",
        ],
    )
}

/// The generated events file with `n` events in `target/bench-serve` (made on first use).
pub(crate) fn events_file(root: &Path, n: u64) -> Result<PathBuf> {
    let events = root
        .join("target/bench-serve")
        .join(format!("events-{n}.ndjson"));
    if !events.exists() {
        std::fs::create_dir_all(events.parent().expect("a directory"))?;
        eprintln!("generating {n} events in {}", events.display());
        generate(&events, n)?;
    }
    Ok(events)
}

/// The median of one measure over the runs.
/// `repeats` runs of `measure` on the build in `release`, each followed, with `compare`, by one
/// on the build in that directory: the runs of each, in order.
pub(crate) fn alternately<R: std::fmt::Debug>(
    repeats: usize,
    release: &Path,
    compare: Option<&Path>,
    label: &str,
    mut measure: impl FnMut(&Path) -> Result<R>,
) -> Result<(Vec<R>, Vec<R>)> {
    let (mut runs, mut other_runs) = (Vec::new(), Vec::new());
    for attempt in 1..=repeats {
        let run = measure(release)?;
        eprintln!("  {label}, run {attempt}: {run:?}");
        runs.push(run);
        if let Some(dir) = compare {
            let run = measure(dir)?;
            eprintln!("  {label}, run {attempt} of {}: {run:?}", dir.display());
            other_runs.push(run);
        }
    }
    Ok((runs, other_runs))
}

/// The report lines of the other build, indented by `indent`: its medians, and the ratios of
/// this build's medians to its own.
pub(crate) fn comparison(indent: usize, dir: &Path, that: &str, ratios: &[(&str, f64)]) -> String {
    let ratios: Vec<String> = ratios
        .iter()
        .map(|(name, ratio)| format!("{name} {ratio:.3}"))
        .collect();
    format!(
        "{:indent$}  {}: {that}\n{:indent$}  ratio (this / that): {}\n",
        "",
        dir.display(),
        "",
        ratios.join(", ")
    )
}

pub(crate) fn median<R>(runs: &[R], measure: fn(&R) -> f64) -> f64 {
    let mut values: Vec<f64> = runs.iter().map(measure).collect();
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// What the load generator measured.
pub(crate) struct Load {
    pub events_per_second: f64,
    pub p99_ms: f64,
}

/// Posts the first `n` events to `url` in batches of 100 over 8 keep-alive connections, and
/// checks that every one was accepted.
pub(crate) fn post_load(release: &Path, url: &str, events: &Path, n: u64) -> Result<Load> {
    let output = Command::new(release.join("hardal-load"))
        .args(["--url", &format!("{url}/v1/events"), "--token", TOKEN])
        .arg("--events")
        .arg(events)
        .args(["--batch", "100", "--connections", "8"])
        .args(["--limit", &n.to_string()])
        .stderr(Stdio::inherit())
        .output()
        .context("running the load generator")?;
    if !output.status.success() {
        bail!("the load generator failed");
    }
    let load: serde_json::Value = serde_json::from_slice(&output.stdout)?;
    if load["accepted"].as_u64() != Some(n) {
        bail!("not every event was accepted: {load}");
    }
    Ok(Load {
        events_per_second: load["events_per_second"].as_f64().unwrap_or(0.0),
        p99_ms: load["p99_ms"].as_f64().unwrap_or(0.0),
    })
}

pub(crate) fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Starts the simulator (counting only) on `port` and waits until it listens.
pub(crate) fn start_simulator_on(release: &Path, port: u16) -> Result<Child> {
    use std::io::BufRead;
    let mut child = Command::new(release.join("insider-simulator"))
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--partner-name",
            "bench",
        ])
        .args(["--request-token", "bench-token", "--no-record"])
        .stdout(Stdio::piped())
        .spawn()
        .context("starting the simulator")?;
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().expect("piped")).read_line(&mut line)?;
    if !line.starts_with("listening on ") {
        bail!("the simulator did not start: {line}");
    }
    Ok(child)
}

/// Starts `hardal serve` and returns it with its base URL.
fn start_hardal(release: &Path, config: &PathBuf) -> Result<(Child, String)> {
    start_hardal_with(release, config, &[])
}

/// Starts `hardal serve` with extra arguments and returns it with its base URL.
pub(crate) fn start_hardal_with(
    release: &Path,
    config: &PathBuf,
    extra: &[&str],
) -> Result<(Child, String)> {
    use std::io::BufRead;
    let mut child = Command::new(release.join("hardal"))
        .arg("serve")
        .arg("--config")
        .arg(config)
        .args(extra)
        .env("INSIDER_REQUEST_TOKEN", "bench-token")
        .env("HARDAL_INGEST_TOKEN", TOKEN)
        .env("HARDAL_LOG", "warn")
        .stderr(Stdio::piped())
        .spawn()
        .context("starting hardal serve")?;
    let mut lines = std::io::BufReader::new(child.stderr.take().expect("piped")).lines();
    let url = loop {
        let Some(line) = lines.next() else {
            bail!("hardal serve ended before it listened");
        };
        if let Some(url) = line?.strip_prefix("hardal serve: listening on ") {
            break url.to_owned();
        }
    };
    // Keep draining its stderr so it never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Ok((child, url))
}

/// Polls the process's peak resident memory (`VmHWM`) until it ends.
pub(crate) fn watch_rss(
    pid: u32,
    peak: std::sync::Arc<std::sync::atomic::AtomicI64>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let path = format!("/proc/{pid}/status");
        while let Ok(status) = std::fs::read_to_string(&path) {
            if let Some(kib) = status
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse::<i64>().ok())
            {
                peak.fetch_max(kib, std::sync::atomic::Ordering::Relaxed);
            }
            if status.contains("State:\tZ") {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    })
}

/// Waits until `/metrics` reports an empty backlog.
fn wait_for_empty_backlog(url: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(3600);
    loop {
        let text = http_get(url, "/metrics")?;
        let waiting: f64 = text
            .lines()
            .filter(|l| l.starts_with("hardal_backlog_events{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        if waiting == 0.0 && text.contains("hardal_backlog_events{") {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the backlog did not drain");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A tiny blocking GET over a plain socket (xtask keeps its dependencies few). HTTP/1.0, so
/// that no server answers in chunks.
pub(crate) fn http_get(base: &str, path: &str) -> Result<String> {
    use std::io::{Read, Write};
    let address = base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(address)?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n")?;
    let mut text = String::new();
    stream.read_to_string(&mut text)?;
    Ok(text
        .split_once("\r\n\r\n")
        .map_or(text.clone(), |(_, body)| body.to_owned()))
}
