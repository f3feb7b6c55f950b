//! `hardal forget` and `hardal privacy list|show`.
//!
//! `forget` on a spool that a running `hardal serve` owns asks that service
//! (`POST /v1/privacy/erasure` on `server.listen`, with the first of `server.privacy_tokens`),
//! so that its ingestion and delivery drop the user at once; on a spool nobody owns it runs the
//! whole job itself, and a job it cannot finish (Ctrl-C, a paused destination) stays pending for
//! the next `hardal serve` or `hardal forget`.
//!
//! A backfill (`hardal send`) keeps events in two places hardal writes: its dead-letter file,
//! which `--dead-letters FILE` rewrites without the user's letters, and its checkpoint, which
//! holds no event text. Its input file is the operator's: `hardal send` keeps no suppression
//! list, so the user's lines are to be taken out of the input before it is sent again.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::request::Who;
use super::suppression::Suppression;
use crate::backlog::sqlite::{SpoolOptions, SqliteSpool};
use crate::backlog::{Backlog, BacklogError, ErasureRecord, ErasureState};
use crate::config::{BacklogConfig, Config, Durability};

/// The spool of a configuration, or why erasure cannot work on its backlog.
fn spool_path(config: &Config) -> Result<(&str, Durability), String> {
    match &config.backlog {
        BacklogConfig::Sqlite {
            path, durability, ..
        } => Ok((path, *durability)),
        BacklogConfig::Nats(_) => Err("the backlog is on NATS, not in a spool".into()),
    }
}

fn ids(config: &Config) -> Vec<String> {
    config
        .destinations
        .iter()
        .map(|d| d.id().to_owned())
        .collect()
}

/// Erases a user: through the running service that owns the spool, or here. With `wait`, a
/// job handed to the service is followed until it completes.
pub async fn forget(
    config: Config,
    who: Who,
    wait: bool,
    stop: CancellationToken,
) -> Result<ErasureRecord, String> {
    who.check()?;
    if matches!(config.backlog, BacklogConfig::Nats(_)) {
        // Nobody owns a NATS backlog: the job runs here, and the nodes learn of the
        // suppression within a second.
        let backlog = crate::serve::open_backlog(&config).await?;
        return alone(config, backlog, &who, &stop).await;
    }
    let (path, durability) = spool_path(&config)?;
    let window = Duration::from_secs(
        config
            .server
            .as_ref()
            .map_or(86_400, |s| s.dedup_window_seconds),
    );
    let max_bytes = match &config.backlog {
        BacklogConfig::Sqlite { max_bytes, .. } => *max_bytes,
        BacklogConfig::Nats(_) => u64::MAX,
    };
    let spool = match SqliteSpool::open(
        Path::new(path),
        &ids(&config),
        SpoolOptions::new(durability, max_bytes, window),
    ) {
        Ok(spool) => Arc::new(spool),
        Err(BacklogError::Refused(reason)) if reason.contains("in use by another hardal serve") => {
            return through_service(&config, &who, wait, &stop).await;
        }
        Err(error) => return Err(error.to_string()),
    };
    alone(config, spool, &who, &stop).await
}

/// Runs the whole job in this process.
async fn alone(
    config: Config,
    backlog: Arc<dyn Backlog>,
    who: &Who,
    stop: &CancellationToken,
) -> Result<ErasureRecord, String> {
    let suppression = Arc::new(Suppression::new(
        &backlog.suppressions().await.map_err(|e| e.to_string())?,
    ));
    let probe_max = Duration::from_secs(
        config
            .server
            .as_ref()
            .map_or(60, |s| s.probe_interval_seconds),
    );
    let (eraser, _jobs) = super::eraser(
        Arc::clone(&backlog),
        Arc::new(config.destinations),
        config.delivery,
        config.redactor,
        suppression,
        None,
        probe_max,
    )?;
    let record = eraser.submit(who).await?;
    let finished = eraser.resume(stop).await;
    let latest = backlog
        .erasures(Some(&record.id))
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .next()
        .unwrap_or(record);
    drop(eraser);
    backlog.close().await;
    if !finished {
        eprintln!(
            "interrupted: erasure {} stays pending (the user is suppressed); `hardal serve` or the next `hardal forget` finishes it",
            latest.id
        );
    }
    Ok(latest)
}

/// Hands the request to the service that owns the spool.
async fn through_service(
    config: &Config,
    who: &Who,
    wait: bool,
    stop: &CancellationToken,
) -> Result<ErasureRecord, String> {
    let owned = "the spool is owned by a running `hardal serve`";
    let server = config
        .server
        .as_ref()
        .ok_or_else(|| format!("{owned}, and the configuration has no `server` to reach it"))?;
    let token = server
        .privacy_tokens
        .iter()
        .find(|t| !t.expose().is_empty())
        .ok_or_else(|| {
            format!(
                "{owned}; ask it through `server.privacy_tokens`, which the configuration lacks"
            )
        })?;
    let base = format!("http://{}", loopback(&server.listen));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .map_err(|e| format!("cannot set up the HTTP client: {e}"))?;
    let response = client
        .post(format!("{base}/v1/privacy/erasure"))
        .bearer_auth(token.expose())
        .header("content-type", "application/json")
        .body(serde_json::to_string(who).expect("identifiers serialize"))
        .send()
        .await
        .map_err(|e| format!("{owned}, which could not be reached at {base}: {e}"))?;
    let status = response.status();
    let text = response
        .text()
        .await
        .map_err(|e| format!("the service's answer could not be read: {e}"))?;
    if status.as_u16() != 202 {
        return Err(format!(
            "the service refused the erasure (HTTP {status}): {text}"
        ));
    }
    let mut record: ErasureRecord = serde_json::from_str(&text)
        .map_err(|e| format!("the service's answer is not an erasure record: {e}"))?;
    while wait && record.state != ErasureState::Complete {
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
            () = stop.cancelled() => break,
        }
        let answer = client
            .get(format!("{base}/v1/privacy/erasure/{}", record.id))
            .bearer_auth(token.expose())
            .send()
            .await
            .and_then(reqwest::Response::error_for_status);
        if let Ok(answer) = answer
            && let Ok(text) = answer.text().await
            && let Ok(latest) = serde_json::from_str::<ErasureRecord>(&text)
        {
            record = latest;
        }
    }
    Ok(record)
}

/// Where to reach a service listening on `listen` from this machine.
fn loopback(listen: &str) -> String {
    match listen.rsplit_once(':') {
        Some(("0.0.0.0", port)) => format!("127.0.0.1:{port}"),
        Some(("[::]", port)) => format!("[::1]:{port}"),
        _ => listen.to_owned(),
    }
}

/// The audit records (all, or the one named), read beside a running service.
pub async fn records(config: &Config, id: Option<&str>) -> Result<Vec<ErasureRecord>, String> {
    let backlog: Arc<dyn Backlog> = match spool_path(config) {
        Ok((path, durability)) => Arc::new(
            SqliteSpool::open_for_commands(Path::new(path), &ids(config), durability)
                .map_err(|e| e.to_string())?,
        ),
        Err(_) => crate::serve::open_backlog(config).await?,
    };
    let records = backlog.erasures(id).await.map_err(|e| e.to_string())?;
    if let Some(id) = id
        && records.is_empty()
    {
        return Err(format!("no erasure job `{id}`"));
    }
    Ok(records)
}

/// Rewrites a dead-letter file of `hardal send` without the letters of the user `who` names
/// (written aside, made durable, then renamed over it); returns how many were removed. Not to
/// be run while a `hardal send` appends to that file.
pub fn forget_in_dead_letters(path: &Path, who: &Who) -> Result<usize, String> {
    use std::io::{BufRead, Write};
    let fail = |e: std::io::Error| format!("cannot rewrite {}: {e}", path.display());
    let erased = super::matcher(who);
    let file = std::fs::File::open(path).map_err(fail)?;
    let aside = path.with_extension("forget.tmp");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&aside).map_err(fail)?);
    let mut removed = 0;
    for line in std::io::BufReader::new(file).lines() {
        let line = line.map_err(fail)?;
        let event = serde_json::from_str::<serde_json::Value>(&line)
            .ok()
            .and_then(|letter| letter.get("event").map(serde_json::Value::to_string));
        if event.is_some_and(|event| erased(&event)) {
            removed += 1;
            continue;
        }
        writeln!(out, "{line}").map_err(fail)?;
    }
    let file = out.into_inner().map_err(|e| fail(e.into_error()))?;
    file.sync_all().map_err(fail)?;
    std::fs::rename(&aside, path).map_err(fail)?;
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::{Who, forget_in_dead_letters};

    #[test]
    fn a_backfills_dead_letters_lose_the_users_letters_only() {
        let dir = std::env::temp_dir().join(format!("hardal-forget-dl-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("dead.ndjson");
        let letters = [
            r#"{"line":1,"destination":"insider","reasons":["x"],"event":{"user_id":"gone","n":1}}"#,
            r#"{"line":2,"destination":"insider","reasons":["x"],"event":{"user_id":"kept","n":2}}"#,
            r#"{"line":3,"destination":null,"reasons":["not JSON"],"raw":"{oops"}"#,
            r#"{"line":4,"destination":"insider","reasons":["x"],"event":{"user":{"email":"Gone@Example.com"}}}"#,
        ];
        std::fs::write(&path, letters.join("\n") + "\n").unwrap();
        let who = Who::parse(r#"{"user_id": "gone", "email": "gone@example.com"}"#).unwrap();
        assert_eq!(forget_in_dead_letters(&path, &who).unwrap(), 2);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            format!("{}\n{}\n", letters[1], letters[2])
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
