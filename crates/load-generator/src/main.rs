//! `hardal-load`: the load generator of `cargo xtask bench serve`. It reads NDJSON events, posts
//! them in batches (one NDJSON body per batch) over a few keep-alive connections as fast as the
//! service answers, and prints one JSON line: requests, events accepted and duplicated, seconds,
//! events per second, and latency percentiles of the answers.

use std::io::BufRead;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;

#[derive(Parser)]
struct Args {
    /// The ingestion URL, e.g. http://127.0.0.1:8080/v1/events.
    #[arg(long)]
    url: String,
    /// The bearer token.
    #[arg(long)]
    token: String,
    /// The events (NDJSON).
    #[arg(long)]
    events: std::path::PathBuf,
    /// Events per request.
    #[arg(long, default_value_t = 100)]
    batch: usize,
    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 8)]
    connections: usize,
    /// Post at most this many events.
    #[arg(long)]
    limit: Option<usize>,
}

/// What one connection saw.
#[derive(Default)]
struct Tally {
    requests: u64,
    accepted: u64,
    duplicates: u64,
    refused: u64,
    latencies: Vec<Duration>,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let (tx, rx) = tokio::sync::mpsc::channel::<Vec<u8>>(args.connections * 4);
    let rx = std::sync::Arc::new(tokio::sync::Mutex::new(rx));
    let events = args.events.clone();
    let (batch, limit) = (args.batch, args.limit.unwrap_or(usize::MAX));
    // Bodies are built on a thread of their own, ahead of the connections.
    let producer = std::thread::spawn(move || -> Result<()> {
        let file = std::fs::File::open(&events).with_context(|| events.display().to_string())?;
        let mut body = Vec::with_capacity(batch * 600);
        let (mut in_body, mut total) = (0, 0);
        for line in std::io::BufReader::with_capacity(1 << 20, file).lines() {
            if total == limit {
                break;
            }
            body.extend_from_slice(line?.as_bytes());
            body.push(b'\n');
            in_body += 1;
            total += 1;
            if in_body == batch {
                if tx.blocking_send(std::mem::take(&mut body)).is_err() {
                    return Ok(());
                }
                in_body = 0;
            }
        }
        if in_body > 0 {
            let _ = tx.blocking_send(body);
        }
        Ok(())
    });
    let started = Instant::now();
    let mut connections = Vec::new();
    for _ in 0..args.connections {
        let rx = std::sync::Arc::clone(&rx);
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(1)
            .build()?;
        let (url, token) = (args.url.clone(), format!("Bearer {}", args.token));
        connections.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            loop {
                let Some(body) = rx.lock().await.recv().await else {
                    break;
                };
                loop {
                    let sent = Instant::now();
                    let response = client
                        .post(&url)
                        .header("Authorization", &token)
                        .header("Content-Type", "application/x-ndjson")
                        .body(body.clone())
                        .send()
                        .await;
                    let response = match response {
                        Ok(response) => response,
                        Err(_) => {
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    let status = response.status().as_u16();
                    let text = response.bytes().await.unwrap_or_default();
                    tally.latencies.push(sent.elapsed());
                    tally.requests += 1;
                    if status == 503 {
                        // Full or stopping: as a producer would, wait and send the same again.
                        tally.refused += 1;
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                    if status != 202 {
                        eprintln!("HTTP {status}: {}", String::from_utf8_lossy(&text));
                        tally.refused += 1;
                        break;
                    }
                    let answer: serde_json::Value =
                        serde_json::from_slice(&text).unwrap_or_default();
                    tally.accepted += answer["accepted"].as_u64().unwrap_or(0);
                    tally.duplicates += answer["duplicates"].as_u64().unwrap_or(0);
                    break;
                }
            }
            tally
        }));
    }
    let mut total = Tally::default();
    for connection in connections {
        let tally = connection.await?;
        total.requests += tally.requests;
        total.accepted += tally.accepted;
        total.duplicates += tally.duplicates;
        total.refused += tally.refused;
        total.latencies.extend(tally.latencies);
    }
    let seconds = started.elapsed().as_secs_f64();
    match producer.join() {
        Ok(result) => result?,
        Err(_) => bail!("the body producer failed"),
    }
    total.latencies.sort();
    let percentile = |p: f64| {
        total
            .latencies
            .get(
                ((total.latencies.len() as f64 * p) as usize)
                    .min(total.latencies.len().saturating_sub(1)),
            )
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    println!(
        "{}",
        serde_json::json!({
            "requests": total.requests,
            "accepted": total.accepted,
            "duplicates": total.duplicates,
            "refused": total.refused,
            "seconds": seconds,
            "events_per_second": (total.accepted + total.duplicates) as f64 / seconds,
            "p50_ms": percentile(0.50),
            "p99_ms": percentile(0.99),
            "max_ms": total.latencies.last().map_or(0.0, |d| d.as_secs_f64() * 1000.0),
        })
    );
    Ok(())
}
