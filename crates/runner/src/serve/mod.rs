//! `hardal serve`: the service Hardal (or any producer) posts events to. Once it answers 202, an
//! event is in the backlog, and it reaches each destination or is dead-lettered with a reason —
//! through outages, rate limits, credential mistakes, restarts and `kill -9`.
//!
//! Parts: the HTTP server (`http.rs`: timeouts and a connection bound), ingestion (`ingest.rs`,
//! axum), the backlog (`crate::backlog`), delivery from it (`deliver.rs`, the same engine as
//! `hardal send`), health (`health.rs`) and metrics (`metrics.rs`). On
//! SIGTERM or SIGINT one cancellation token reaches ingestion (503), the server (no more
//! connections), the feeders and delivery: in-flight requests, ingestion's and delivery's, finish
//! within the drain timeout, and everything else stays in the backlog. Every wait of the stop is
//! bounded, closing the backlog's too.

mod deliver;
#[cfg(test)]
mod fake;
mod health;
mod http;
mod ingest;
mod metrics;
mod privacy;
mod tap;

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::json;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use self::deliver::{DestinationStatus, Statuses};
use self::health::Health;
use crate::backlog::Backlog;
use crate::backlog::nats::NatsBacklog;
use crate::backlog::sqlite::{SpoolOptions, SqliteSpool};
use crate::config::{BacklogConfig, Config};

/// What a stop may take beyond the drain timeout, and the least closing the backlog gets
/// (checkpointing the spool, handing back what a NATS worker holds): a whole stop takes at most
/// the drain timeout and twice this.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// The least the other steps of a stop get, also when the steps before used up the deadline.
const STEP_GRACE: Duration = Duration::from_secs(1);

/// How to run the service.
pub struct ServeOptions {
    /// How long in-flight requests (ingestion and delivery) may finish after a stop signal.
    pub drain_timeout: Duration,
    /// Whether this node accepts events (`--no-ingest` makes a delivery worker only).
    pub ingest: bool,
    /// Whether this node delivers events (`--no-deliver` makes an ingestion node only).
    pub deliver: bool,
}

/// What the HTTP handlers share.
pub struct App {
    backlog: Arc<dyn Backlog>,
    tokens: Vec<Vec<u8>>,
    /// Cancelled when the service stops.
    stop: CancellationToken,
    ingest: bool,
    max_body_bytes: usize,
    max_event_bytes: usize,
    body_read_timeout: Duration,
    statuses: Statuses,
    health: Arc<Health>,
    metrics: Option<PrometheusHandle>,
    tap: Arc<tap::Tap>,
    /// Who may post erasure requests; none: the route is off.
    privacy_tokens: Vec<Vec<u8>>,
    /// Runs erasure jobs, where the backlog supports them.
    eraser: Option<Arc<crate::privacy::Eraser>>,
    /// Erased users, whose new events ingestion drops.
    suppression: Arc<crate::privacy::suppression::Suppression>,
}

/// Opens the backlog a configuration names.
pub async fn open_backlog(config: &Config) -> Result<Arc<dyn Backlog>, String> {
    let ids: Vec<String> = config
        .destinations
        .iter()
        .map(|d| d.id().to_owned())
        .collect();
    let window = config
        .server
        .as_ref()
        .map_or(86_400, |s| s.dedup_window_seconds);
    match &config.backlog {
        BacklogConfig::Sqlite {
            path,
            durability,
            max_bytes,
        } => SqliteSpool::open(
            std::path::Path::new(path),
            &ids,
            SpoolOptions::new(*durability, *max_bytes, Duration::from_secs(window)),
        )
        .map(|spool| Arc::new(spool) as Arc<dyn Backlog>)
        .map_err(|e| e.to_string()),
        BacklogConfig::Nats(nats) => NatsBacklog::open(nats, &ids)
            .await
            .map(|backlog| Arc::new(backlog) as Arc<dyn Backlog>),
    }
}

/// Runs the service until `shutdown` completes; `bound` learns the address it listens on.
pub async fn serve(
    config: Config,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
    bound: impl FnOnce(std::net::SocketAddr),
) -> Result<(), String> {
    let server = config.server.clone().ok_or(
        "the configuration has no `server` (its `listen` address and `auth_tokens`); hardal serve needs one",
    )?;
    let whole_node = options.ingest && options.deliver;
    if !whole_node && !matches!(config.backlog, BacklogConfig::Nats(_)) {
        return Err("--no-ingest and --no-deliver split the work with other nodes on a shared NATS backlog (`backlog.type: nats`); on the SQLite spool one process ingests and delivers, and events accepted by a node that does not deliver would wait for ever".into());
    }
    let backlog = open_backlog(&config).await?;
    let listener = tokio::net::TcpListener::bind(&server.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", server.listen))?;
    let address = listener
        .local_addr()
        .map_err(|e| format!("cannot listen on {}: {e}", server.listen))?;
    let statuses: Statuses = Arc::new(Mutex::new(Vec::new()));
    let max_bytes = match &config.backlog {
        BacklogConfig::Sqlite { max_bytes, .. } => *max_bytes,
        BacklogConfig::Nats(nats) => nats.max_bytes,
    };
    let health = Arc::new(Health::new(Arc::clone(&backlog), max_bytes));
    // Known before the first request, so that /readyz is right from the start.
    health.refresh().await;
    let refresher = tokio::spawn(Arc::clone(&health).run());
    let stop = CancellationToken::new();
    let suppression = load_suppression(&*backlog, &config.privacy).await?;
    let destinations = Arc::new(config.destinations);
    let (barrier, barriers) = tokio::sync::mpsc::unbounded_channel();
    // On a shared backlog, other nodes add to the suppression list: it is read again every
    // second, and what this node's engine holds of newly erased users is dropped.
    let poller = match (&suppression, backlog.suppression_delay().is_zero()) {
        (Some(suppression), false) => Some(tokio::spawn(poll_suppressions(
            Arc::clone(&backlog),
            Arc::clone(suppression),
            options.deliver.then(|| barrier.clone()),
            stop.clone(),
        ))),
        _ => None,
    };
    let expirer = match (&suppression, config.privacy.suppression_days) {
        (Some(suppression), Some(days)) => Some(tokio::spawn(expire_suppressions(
            Arc::clone(&backlog),
            Arc::clone(suppression),
            days,
            stop.clone(),
        ))),
        _ => None,
    };
    let (eraser, erasing) = match &suppression {
        Some(suppression) => {
            let (eraser, jobs) = crate::privacy::eraser(
                Arc::clone(&backlog),
                Arc::clone(&destinations),
                config.delivery.clone(),
                config.redactor.clone(),
                Arc::clone(suppression),
                options.deliver.then_some(barrier),
                Duration::from_secs(server.probe_interval_seconds),
            )?;
            let task = tokio::spawn(Arc::clone(&eraser).run(jobs, stop.clone()));
            (Some(eraser), Some(task))
        }
        None => (None, None),
    };
    let suppression = suppression.unwrap_or_default();
    let ids: Vec<String> = destinations.iter().map(|d| d.id().to_owned()).collect();
    let tap = Arc::new(tap::Tap::new(
        server.tap.as_ref(),
        ids.clone(),
        config.redactor.clone(),
    ));
    let app = Arc::new(App {
        backlog: Arc::clone(&backlog),
        tokens: server
            .auth_tokens
            .iter()
            .map(|t| t.expose().as_bytes().to_vec())
            .collect(),
        stop: stop.clone(),
        ingest: options.ingest,
        max_body_bytes: server.max_body_bytes,
        max_event_bytes: server.max_event_bytes,
        body_read_timeout: Duration::from_secs(server.body_read_timeout_seconds),
        statuses: Arc::clone(&statuses),
        health: Arc::clone(&health),
        metrics: metrics::install(),
        tap: Arc::clone(&tap),
        privacy_tokens: server
            .privacy_tokens
            .iter()
            .map(|t| t.expose().as_bytes().to_vec())
            .filter(|t| !t.is_empty())
            .collect(),
        eraser,
        suppression: Arc::clone(&suppression),
    });
    metrics::register(&ids);
    // Set when delivery cannot go on (the backlog can never record a resolution again, a
    // feeder died): the service stops on it and exits non-zero.
    let (failed_tx, mut failed_rx) = watch::channel(None::<String>);
    let tapping = tap::listen(&tap, server.tap.as_ref(), stop.clone()).await?;
    let delivery = options.deliver.then(|| {
        let task = tokio::spawn(deliver::run(
            deliver::Setup {
                backlog: Arc::clone(&backlog),
                destinations,
                consent: config.consent,
                settings: config.delivery,
                redactor: config.redactor,
                probe_max: Duration::from_secs(server.probe_interval_seconds),
                drain: options.drain_timeout,
                statuses,
                failed: failed_tx,
                tap,
                suppression,
                barriers,
            },
            stop.clone(),
        ));
        let health = Arc::clone(&health);
        let stop = stop.clone();
        tokio::spawn(async move { health.watch_delivery(task, &stop).await })
    });
    let router = Router::new()
        .route("/v1/events", post(ingest::post_events))
        .route("/v1/privacy/erasure", post(privacy::post_erasure))
        .route("/v1/privacy/erasure/{id}", get(privacy::get_erasure))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        // Bodies are read by hand against the configured limit (and again after gzip).
        .layer(DefaultBodyLimit::disable())
        .with_state(Arc::clone(&app));
    tracing::info!(%address, "Listening for events.");
    bound(address);
    // The one stop signal: ingestion answers 503, the server accepts no more connections and
    // lets open requests finish, feeders stop taking and delivery lets its requests finish.
    let signal = {
        let stop = stop.clone();
        let mut backlog_failed = failed_rx.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = shutdown => {}
                Ok(_) = backlog_failed.wait_for(Option::is_some) => {}
            }
            tracing::warn!("Stopping: new requests are answered 503; in-flight ones may finish.");
            stop.cancel();
        })
    };
    let limits = http::Limits {
        header_read_timeout: Duration::from_secs(server.header_read_timeout_seconds),
        max_connections: server.max_connections,
    };
    let drain = options.drain_timeout;
    // When the stop began: every later wait ends by one deadline after it, so that the stop as
    // a whole stays within the drain timeout and a little more (a supervisor's stop timeout
    // need not add up each step's).
    let stop_began = {
        let stop = stop.clone();
        tokio::spawn(async move {
            stop.cancelled().await;
            tokio::time::Instant::now()
        })
    };
    let serving = http::serve(listener, router, limits, stop.clone());
    tokio::select! {
        () = serving => {}
        () = async {
            stop.cancelled().await;
            tokio::time::sleep(drain).await;
        } => tracing::warn!("Requests still open after the drain timeout were cut."),
    }
    // Delivery bounds its own drain; the service stops also if delivery ended on its own.
    stop.cancel();
    signal.abort();
    let end = stop_began
        .await
        .unwrap_or_else(|_| tokio::time::Instant::now())
        + drain
        + CLOSE_GRACE;
    // Each step gets at least `least`, also when the ones before used up the deadline.
    let by = |least: Duration| end.max(tokio::time::Instant::now() + least);
    if let Some(delivery) = delivery {
        let _ = delivery.await;
    }
    for task in [poller, expirer].into_iter().flatten() {
        task.abort();
    }
    if let Some(erasing) = erasing {
        // A job cut off stays pending in the backlog and is resumed at the next start.
        let _ = tokio::time::timeout_at(by(STEP_GRACE), erasing).await;
    }
    refresher.abort();
    if let Some(tapping) = tapping {
        // A tap client that stopped reading must not hold the service up.
        let _ = tokio::time::timeout_at(by(STEP_GRACE), tapping).await;
    }
    // Letting go of leases and events in flight (NATS) talks to a server that may be gone.
    if tokio::time::timeout_at(by(CLOSE_GRACE), backlog.close())
        .await
        .is_err()
    {
        tracing::warn!(
            seconds = drain.as_secs(),
            "The backlog did not close within the drain timeout; what it held is taken over once its leases expire."
        );
    }
    if let Some(reason) = failed_rx.borrow_and_update().clone() {
        return Err(reason);
    }
    Ok(())
}

/// Reads a shared backlog's suppression list every second; when it changed, replaces the list in
/// memory and has the engine drop what it holds of the users added.
async fn poll_suppressions(
    backlog: Arc<dyn Backlog>,
    suppression: Arc<crate::privacy::suppression::Suppression>,
    barrier: Option<crate::privacy::Barrier>,
    stop: CancellationToken,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = stop.cancelled() => return,
        }
        match backlog.suppressions().await {
            Ok(entries) if entries.len() != suppression.len() => {
                suppression.replace(&entries);
                if let Some(barrier) = &barrier {
                    let (answer, _) = tokio::sync::oneshot::channel();
                    let _ = barrier.send(answer);
                }
            }
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(%error, "The suppression list could not be read; it is tried again.")
            }
        }
    }
}

/// How often a running service deletes suppression entries older than the retention
/// (`HARDAL_TEST_SUPPRESSION_PRUNE_SECONDS` shortens it for tests).
fn prune_interval() -> Duration {
    std::env::var("HARDAL_TEST_SUPPRESSION_PRUNE_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .map_or(Duration::from_secs(3600), Duration::from_secs)
}

/// Deletes the backlog's suppression entries older than `days`; how many went.
async fn prune_suppressions(backlog: &dyn Backlog, days: u32) -> u64 {
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
        .saturating_sub(u64::from(days) * 86_400);
    match backlog.prune_suppressions(before).await {
        Ok(0) | Err(crate::backlog::BacklogError::Refused(_)) => 0,
        Ok(count) => {
            tracing::info!(
                count,
                days,
                "Suppression entries older than the retention were deleted."
            );
            count
        }
        Err(error) => {
            tracing::warn!(%error, "Old suppression entries could not be deleted; they are tried again later.");
            0
        }
    }
}

/// Applies the suppression list's retention while the service runs: old entries are deleted from
/// the backlog, then the list in memory is read again (unless an erasure added to it meanwhile,
/// then once more), so those users' new events are accepted again.
async fn expire_suppressions(
    backlog: Arc<dyn Backlog>,
    suppression: Arc<crate::privacy::suppression::Suppression>,
    days: u32,
    stop: CancellationToken,
) {
    let every = prune_interval();
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = stop.cancelled() => return,
        }
        if prune_suppressions(&*backlog, days).await == 0 {
            continue;
        }
        loop {
            let generation = suppression.generation();
            match backlog.suppressions().await {
                Ok(entries) if suppression.replace_if_unchanged(&entries, generation) => break,
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(%error, "The suppression list could not be read after pruning; the pruned users stay suppressed until the next try.");
                    break;
                }
            }
        }
    }
}

/// The suppression list of the backlog, old entries pruned first when the configuration says
/// how long they are kept; `None` when the backlog does not support erasure.
async fn load_suppression(
    backlog: &dyn Backlog,
    privacy: &crate::config::PrivacyConfig,
) -> Result<Option<Arc<crate::privacy::suppression::Suppression>>, String> {
    if let Some(days) = privacy.suppression_days {
        prune_suppressions(backlog, days).await;
    }
    match backlog.suppressions().await {
        Ok(entries) => Ok(Some(Arc::new(
            crate::privacy::suppression::Suppression::new(&entries),
        ))),
        Err(crate::backlog::BacklogError::Refused(_)) => Ok(None),
        // Without its suppression list the service would accept erased users' events.
        Err(error) => Err(format!("the suppression list could not be read: {error}")),
    }
}

async fn healthz() -> Response {
    (StatusCode::OK, axum::Json(json!({"status": "alive"}))).into_response()
}

/// Ready when the backlog takes writes and is not full, delivery runs (where it should) and the
/// service is not stopping, as last seen by the health task (this never waits for the backlog);
/// lists paused destinations either way (a paused destination does not make the service unready:
/// events for it are still accepted and kept).
async fn readyz(State(app): State<Arc<App>>) -> Response {
    let statuses: Vec<DestinationStatus> = app
        .statuses
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let paused: Vec<&DestinationStatus> = statuses.iter().filter(|s| s.paused.is_some()).collect();
    let health = app.health.readiness();
    let stopping = app.stop.is_cancelled();
    let ready = app.ready(&health);
    let body = json!({
        "ready": ready,
        "stopping": stopping,
        "ingest": app.ingest,
        "backlog_writable": health.backlog_writable,
        "backlog_full": health.backlog_full,
        "problems": health.problems,
        "paused": paused,
        "destinations": statuses,
    });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(body)).into_response()
}

impl App {
    /// What `/readyz` answers (also exported as `hardal_ready`, for alerts).
    fn ready(&self, health: &health::Readiness) -> bool {
        // A delivery-only node is never ready: a load balancer is to send it no events.
        health.ready() && !self.stop.is_cancelled() && self.ingest
    }
}

async fn metrics_text(State(app): State<Arc<App>>) -> Response {
    let Some(handle) = &app.metrics else {
        return (
            StatusCode::NOT_FOUND,
            "metrics are recorded by another service in this process",
        )
            .into_response();
    };
    // The backlog's state as the health task last read it: a scrape never waits for the backlog.
    if let Some(stats) = app.health.stats() {
        let states: Vec<(String, crate::delivery::LaneState)> = app
            .statuses
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|s| (s.id.clone(), lane_state(s.state)))
            .collect();
        metrics::gauges(&stats, &states);
    }
    ::metrics::gauge!("hardal_ready").set(f64::from(u8::from(app.ready(&app.health.readiness()))));
    handle.run_upkeep();
    let mut response = handle.render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    response
}

fn lane_state(name: &str) -> crate::delivery::LaneState {
    use crate::delivery::LaneState;
    match name {
        "paused" => LaneState::Paused,
        "backing_off" => LaneState::BackingOff,
        _ => LaneState::Flowing,
    }
}
