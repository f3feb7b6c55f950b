//! `cargo xtask demo`: the README's quick start. Starts the in-tree Insider simulator on loopback,
//! sends `examples/events.ndjson` through `examples/insider.json` (its endpoint pointed at the
//! simulator, a throwaway token), and shows hardal's summary, the dead letters and what the
//! simulator accepted. No external service, no credentials.
//!
//! The example events are dated December 2024, and Insider does not keep page events past 90
//! days: sent today as they are, most would be counted as expired. The demo moves every event's
//! time forward by the same amount, so the newest is an hour old, as live data would be; the one
//! example from 2019 stays older than Insider keeps anything.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result};

pub fn run(root: &Path) -> Result<()> {
    super::cargo(
        root,
        &[
            "build",
            "-q",
            "-p",
            "hardal-runner",
            "-p",
            "hardal-insider-simulator",
        ],
    )?;
    let bin = root.join("target/debug");
    let work = root.join("target/demo");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    let token = "demo-token";
    let (mut simulator, url) = super::bench_send::start_simulator(&bin, "mybrand", token, &[])?;

    let mut config: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(
        root.join("examples/insider.json"),
    )?)?;
    config["destinations"][0]["endpoint"] = format!("{url}/api/user/v1/upsert").into();
    let config_path = work.join("insider.json");
    std::fs::write(&config_path, serde_json::to_string_pretty(&config)?)?;

    let (events_path, days) = live_events(root, &work)?;
    eprintln!(
        "$ hardal send --config examples/insider.json examples/events.ndjson   (endpoint: the simulator at {url}; event times moved {days} days forward)"
    );
    let status = Command::new(bin.join("hardal"))
        .arg("send")
        .arg("--config")
        .arg(&config_path)
        .arg(&events_path)
        .arg("--state")
        .arg(work.join("hardal-send.db"))
        .arg("--dead-letters")
        .arg(work.join("dead-letters.ndjson"))
        .env("INSIDER_REQUEST_TOKEN", token)
        .status()
        .context("running hardal send")?;
    if let Ok(dead) = std::fs::read_to_string(work.join("dead-letters.ndjson")) {
        eprintln!(
            "\ndead letters ({}):",
            work.join("dead-letters.ndjson").display()
        );
        for line in dead.lines() {
            let entry: serde_json::Value = serde_json::from_str(line)?;
            eprintln!("  line {}: {}", entry["line"], entry["reasons"]);
        }
    }
    if let Ok(stats) = http_get(&url, "/_simulator/stats") {
        eprintln!("\nthe simulator's record: {stats}");
    }
    let _ = simulator.kill();
    let _ = simulator.wait();
    eprintln!(
        "\nhardal exited with {status} (1 means some events were dead-lettered or not delivered; see above)"
    );
    Ok(())
}

/// Writes the example events with their times moved forward so that the newest is an hour old;
/// returns the file and by how many whole days they moved.
fn live_events(root: &Path, work: &Path) -> Result<(std::path::PathBuf, u64)> {
    use hardal_core::convert::{to_system_time, to_timestamp};
    use std::time::{Duration, SystemTime, UNIX_EPOCH};
    let text = std::fs::read_to_string(root.join("examples/events.ndjson"))?;
    let mut events: Vec<serde_json::Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    let times: Vec<Option<SystemTime>> = events
        .iter()
        .map(|e| e.get("created_at").and_then(to_system_time))
        .collect();
    let newest = times
        .iter()
        .flatten()
        .max()
        .copied()
        .context("no event has a time")?;
    let shift = SystemTime::now().duration_since(newest)? - Duration::from_secs(3600);
    let mut out = String::new();
    for (event, time) in events.iter_mut().zip(&times) {
        if let Some(time) = time {
            let moved = (*time + shift).duration_since(UNIX_EPOCH)?.as_millis();
            let millis = u64::try_from(moved)?;
            event["created_at"] = to_timestamp(&serde_json::Value::from(millis))
                .context("a time")?
                .into();
        }
        out.push_str(&serde_json::to_string(event)?);
        out.push('\n');
    }
    let path = work.join("events.ndjson");
    std::fs::write(&path, out)?;
    Ok((path, shift.as_secs() / 86_400))
}

/// A plain HTTP/1.1 GET on loopback, so the demo needs no HTTP client installed.
fn http_get(base: &str, path: &str) -> Result<String> {
    use std::io::{Read, Write};
    let address = base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(address)?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    Ok(response
        .split_once("\r\n\r\n")
        .map_or(response.clone(), |(_, body)| body.to_owned()))
}
