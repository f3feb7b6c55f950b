//! The [`Simulator`] handle: starts a server, reads what it recorded, injects faults, stops on drop.
//!
//! [`Simulator::start`] runs the server on a runtime of its own, on a background thread, so plain
//! `#[test]` functions can use it; [`Simulator::start_async`] runs it on the caller's runtime.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::{SimulatorConfig, SimulatorError};
use crate::faults::{Fault, FaultError, Scope};
use crate::record::{AcceptedEvent, AcceptedUser, RequestLog, Stats};
use crate::server::{self, Shared, UPSERT_PATH};
use crate::serving::Serving;

/// How long a stopping simulator waits for in-flight requests (a `Slow` fault, say) to finish.
const GRACE: Duration = Duration::from_secs(2);

/// A running simulator; dropping it stops the server.
#[derive(Debug)]
pub struct Simulator {
    shared: Arc<Shared>,
    serving: Serving,
}

/// Serves until told to stop, then gives in-flight requests [`GRACE`] to finish.
async fn run(listener: TcpListener, shared: Arc<Shared>, stop: watch::Receiver<bool>) {
    let mut graceful = stop.clone();
    let mut hard = stop;
    let served = server::serve(listener, shared, async move {
        let _ = graceful.wait_for(|stop| *stop).await;
    });
    tokio::select! {
        // A server error ends the simulator; requests then fail to connect, which the tests see.
        _ = served => {}
        _ = async {
            let _ = hard.wait_for(|stop| *stop).await;
            tokio::time::sleep(GRACE).await;
        } => {}
    }
}

impl Simulator {
    /// Binds the configured loopback address and serves on a runtime of its own.
    pub fn start(config: SimulatorConfig) -> Result<Simulator, SimulatorError> {
        let addr = config.listen_addr()?;
        let shared = Arc::new(Shared::from_config(config));
        let task_shared = shared.clone();
        let serving = Serving::start(addr, "insider-simulator", move |listener, stopped| {
            run(listener, task_shared, stopped)
        })?;
        Ok(Simulator { shared, serving })
    }

    /// Binds the configured loopback address and serves on the current tokio runtime.
    pub async fn start_async(config: SimulatorConfig) -> Result<Simulator, SimulatorError> {
        let addr = config.listen_addr()?;
        let shared = Arc::new(Shared::from_config(config));
        let task_shared = shared.clone();
        let serving = Serving::start_async(addr, move |listener, stopped| {
            run(listener, task_shared, stopped)
        })
        .await?;
        Ok(Simulator { shared, serving })
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.serving.addr
    }

    /// `http://IP:PORT`, the base of every URL.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.serving.addr)
    }

    /// The URL of the upsert endpoint, to put where Insider's would go.
    pub fn upsert_url(&self) -> String {
        format!("http://{}{UPSERT_PATH}", self.serving.addr)
    }

    /// Adds a fault for the requests its scope selects.
    pub fn inject(&self, fault: Fault, scope: Scope) -> Result<(), FaultError> {
        self.shared.faults().inject(fault, scope)
    }

    pub fn clear_faults(&self) {
        self.shared.faults().clear();
    }

    /// Accepted users in the order they were accepted (empty when not recording).
    pub fn accepted_users(&self) -> Vec<AcceptedUser> {
        self.shared.record().users()
    }

    /// Distinct accepted events per user, with how often each arrived (empty when not recording).
    pub fn accepted_events(&self) -> Vec<AcceptedEvent> {
        self.shared.record().events()
    }

    /// Every upsert request in the order it was answered.
    pub fn requests(&self) -> Vec<RequestLog> {
        self.shared.record().requests()
    }

    pub fn stats(&self) -> Stats {
        self.shared.record().stats()
    }

    /// Forgets records, statistics and faults.
    pub fn reset(&self) {
        self.shared.reset();
    }

    /// Stops the server; the same as dropping the handle.
    pub fn shutdown(self) {}
}
