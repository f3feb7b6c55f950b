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
use crate::erasure::{ANONYMIZE_PATH, DELETE_PATH};
use crate::faults::{Endpoint, Fault, FaultError, Scope};
use crate::record::{AcceptedEvent, AcceptedUser, ErasureLog, Presence, RequestLog, Stats};
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

    /// Adds a fault for the requests to `endpoints` its scope selects.
    pub fn inject_at(
        &self,
        fault: Fault,
        scope: Scope,
        endpoints: &[Endpoint],
    ) -> Result<(), FaultError> {
        self.shared.faults().inject_at(fault, scope, endpoints)
    }

    /// Lets every request a [`Fault::Hold`] keeps open go on.
    pub fn release(&self) {
        self.shared.faults().holds().release();
    }

    /// Requests a [`Fault::Hold`] keeps open now.
    pub fn held(&self) -> u64 {
        self.shared.faults().holds().held()
    }

    /// The URL of the Delete User Profile endpoint.
    pub fn delete_url(&self) -> String {
        format!("http://{}{DELETE_PATH}", self.serving.addr)
    }

    /// The URL of the Delete User's PII Data endpoint.
    pub fn anonymize_url(&self) -> String {
        format!("http://{}{ANONYMIZE_PATH}", self.serving.addr)
    }

    /// Every erasure request in the order it was answered.
    pub fn erasures(&self) -> Vec<ErasureLog> {
        self.shared.record().erasures()
    }

    /// How many user objects and distinct events carry identifier `field` = `value` (`email`,
    /// `uuid`, `phone_number`, `insider_id`, `custom.NAME`).
    pub fn presence(&self, field: &str, value: &str) -> Presence {
        self.shared.record().presence(field, value)
    }

    /// Whether the simulator still has a user with identifier `field` = `value`.
    pub fn has_user(&self, field: &str, value: &str) -> bool {
        self.presence(field, value).found()
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
