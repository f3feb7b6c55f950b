//! The HTTP server under the routes: hyper's HTTP/1 connections with what a service open to a
//! network needs and `axum::serve` does not set — a deadline for each request head (a client
//! that sends half a request line, or keeps a connection idle, is cut off) and a bound on open
//! connections (past it, new ones wait in the operating system's queue until one closes, so
//! thousands of idle clients cannot starve real posts or the process's file descriptors) — and
//! graceful shutdown: on the stop signal nothing more is accepted, idle connections close, and
//! requests under way finish. (The body's deadline is ingestion's, which answers it with 408.)

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio_util::sync::CancellationToken;

/// How long the accept loop waits after the operating system refused a connection (out of file
/// descriptors, typically) before it accepts again.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// What each connection may take.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub header_read_timeout: Duration,
    pub max_connections: usize,
}

/// Serves `router` on `listener` until `stop` is cancelled, then until every connection ended.
pub async fn serve(listener: TcpListener, router: Router, limits: Limits, stop: CancellationToken) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    // Connections hold `open` while they last.
    let (open_tx, open) = watch::channel(());
    let shutdown = stop.cancelled();
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = Arc::clone(&permits).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    tracing::warn!(%error, "A connection could not be accepted; accepting again shortly.");
                    tokio::time::sleep(ACCEPT_PAUSE).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let router = router.clone();
        let stop = stop.clone();
        let open = open.clone();
        tokio::spawn(async move {
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout);
            let connection =
                builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(router));
            tokio::pin!(connection);
            let mut stopping = false;
            loop {
                tokio::select! {
                    // A client that went away or timed out is no failure of the service.
                    _ = connection.as_mut() => break,
                    () = stop.cancelled(), if !stopping => {
                        stopping = true;
                        connection.as_mut().graceful_shutdown();
                    }
                }
            }
            drop(permit);
            drop(open);
        });
    }
    drop(listener);
    drop(open);
    open_tx.closed().await;
}
