//! A stand-in for Meta's Conversions API on a loopback address, beside the Insider simulator and
//! with the same fault injection and control API: it checks the access token and the pixel,
//! applies Meta's documented rules to every server event (refusing the whole request, without
//! naming the event, when one breaks a rule — as Meta does) and records what it accepted.
//! Tests use [`MetaSimulator`] in-process; the `insider-simulator --kind meta` binary serves it
//! for benchmarks and the quick start.

pub mod record;
pub mod rules;
pub mod server;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::SimulatorError;
use crate::faults::{Fault, FaultError, Scope};
use crate::listener::{CuttableListener, Cutter};
use crate::serving::Serving;
pub use record::{AcceptedServerEvent, MetaRequestLog, MetaStats};
use server::MetaShared;

/// How long a stopping stand-in waits for in-flight requests.
const GRACE: Duration = Duration::from_secs(2);

/// How to run a Meta stand-in.
#[derive(Clone)]
pub struct MetaConfig {
    /// The pixel ID requests must name in their path.
    pub pixel_id: String,
    /// The `access_token` query parameter requests must carry.
    pub access_token: String,
    /// A loopback `IP:PORT`; port 0 picks a free port.
    pub listen: String,
}

impl MetaConfig {
    pub fn new(pixel_id: impl Into<String>, access_token: impl Into<String>) -> MetaConfig {
        MetaConfig {
            pixel_id: pixel_id.into(),
            access_token: access_token.into(),
            listen: "127.0.0.1:0".into(),
        }
    }
}

// The token is a credential in spirit; keep it out of test output like the real one.
impl std::fmt::Debug for MetaConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetaConfig")
            .field("pixel_id", &self.pixel_id)
            .field("access_token", &"[redacted]")
            .field("listen", &self.listen)
            .finish()
    }
}

/// A running Meta stand-in; dropping it stops the server.
#[derive(Debug)]
pub struct MetaSimulator {
    shared: Arc<MetaShared>,
    serving: Serving,
}

async fn run(listener: TcpListener, shared: Arc<MetaShared>, stop: watch::Receiver<bool>) {
    let mut graceful = stop.clone();
    let mut hard = stop;
    let app = server::router(shared).into_make_service_with_connect_info::<Cutter>();
    let served =
        axum::serve(CuttableListener::new(listener), app).with_graceful_shutdown(async move {
            let _ = graceful.wait_for(|stop| *stop).await;
        });
    tokio::select! {
        _ = served => {}
        _ = async {
            let _ = hard.wait_for(|stop| *stop).await;
            tokio::time::sleep(GRACE).await;
        } => {}
    }
}

/// The listen address, refused unless it is a loopback IP literal.
fn listen_addr(listen: &str) -> Result<SocketAddr, SimulatorError> {
    let config = crate::SimulatorConfig {
        listen: listen.to_owned(),
        ..crate::SimulatorConfig::default()
    };
    config.listen_addr()
}

impl MetaSimulator {
    /// Binds the configured loopback address and serves on a runtime of its own.
    pub fn start(config: MetaConfig) -> Result<MetaSimulator, SimulatorError> {
        let addr = listen_addr(&config.listen)?;
        let shared = Arc::new(MetaShared::new(config.pixel_id, config.access_token));
        let task_shared = shared.clone();
        let serving = Serving::start(addr, "meta-simulator", move |listener, stopped| {
            run(listener, task_shared, stopped)
        })?;
        Ok(MetaSimulator { shared, serving })
    }

    /// Binds the configured loopback address and serves on the current tokio runtime.
    pub async fn start_async(config: MetaConfig) -> Result<MetaSimulator, SimulatorError> {
        let addr = listen_addr(&config.listen)?;
        let shared = Arc::new(MetaShared::new(config.pixel_id, config.access_token));
        let task_shared = shared.clone();
        let serving = Serving::start_async(addr, move |listener, stopped| {
            run(listener, task_shared, stopped)
        })
        .await?;
        Ok(MetaSimulator { shared, serving })
    }

    pub fn addr(&self) -> SocketAddr {
        self.serving.addr
    }

    /// `http://IP:PORT`, to put where `https://graph.facebook.com` would go (`base_url`).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.serving.addr)
    }

    /// Adds a fault for the requests its scope selects.
    pub fn inject(&self, fault: Fault, scope: Scope) -> Result<(), FaultError> {
        self.shared.faults().inject(fault, scope)
    }

    pub fn clear_faults(&self) {
        self.shared.faults().clear();
    }

    /// Accepted server events in the order they were accepted.
    pub fn accepted(&self) -> Vec<AcceptedServerEvent> {
        self.shared.record().accepted.clone()
    }

    /// Every events request in the order it was answered.
    pub fn requests(&self) -> Vec<MetaRequestLog> {
        self.shared.record().requests.clone()
    }

    pub fn stats(&self) -> MetaStats {
        self.shared.record().stats.clone()
    }

    /// Forgets records, statistics and faults.
    pub fn reset(&self) {
        self.shared.reset();
    }
}
