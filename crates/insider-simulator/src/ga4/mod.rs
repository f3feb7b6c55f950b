//! A stand-in for GA4's Measurement Protocol on a loopback address (`insider-simulator --kind
//! ga4`): `/mp/collect` answering 204 as GA4 does while recording what GA4's validation server
//! would say, `/debug/mp/collect` answering those messages, the same fault injection as the
//! Insider simulator, and a control API (`/_simulator/requests`, `/_simulator/events`,
//! `/_simulator/faults`, `/_simulator/reset`).

mod rules;
mod server;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;

pub use rules::{ValidationMessage, validate};
pub use server::{COLLECT_PATH, DEBUG_PATH, Ga4Event, Ga4Request, Ga4Shared};

use crate::config::SimulatorError;
use crate::faults::{Fault, FaultError, Scope};
use crate::listener::{CuttableListener, Cutter};
use crate::serving::Serving;

/// How a GA4 stand-in starts.
#[derive(Clone)]
pub struct Ga4Config {
    pub measurement_id: String,
    pub api_secret: String,
    /// A loopback `IP:PORT`; port 0 picks a free port.
    pub listen: String,
}

impl Ga4Config {
    pub fn new(measurement_id: impl Into<String>, api_secret: impl Into<String>) -> Ga4Config {
        Ga4Config {
            measurement_id: measurement_id.into(),
            api_secret: api_secret.into(),
            listen: "127.0.0.1:0".into(),
        }
    }

    fn listen_addr(&self) -> Result<SocketAddr, SimulatorError> {
        crate::SimulatorConfig {
            listen: self.listen.clone(),
            ..crate::SimulatorConfig::default()
        }
        .listen_addr()
    }
}

// The secret is a credential in spirit; keep it out of test output like the real one.
impl std::fmt::Debug for Ga4Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ga4Config")
            .field("measurement_id", &self.measurement_id)
            .field("api_secret", &"[redacted]")
            .field("listen", &self.listen)
            .finish()
    }
}

/// A running GA4 stand-in; dropping it stops the server.
#[derive(Debug)]
pub struct Ga4Simulator {
    shared: Arc<Ga4Shared>,
    serving: Serving,
}

async fn run(listener: TcpListener, shared: Arc<Ga4Shared>, mut stop: watch::Receiver<bool>) {
    let app = server::router(shared).into_make_service_with_connect_info::<Cutter>();
    let _ = axum::serve(CuttableListener::new(listener), app)
        .with_graceful_shutdown(async move {
            let _ = stop.wait_for(|stop| *stop).await;
        })
        .await;
}

impl Ga4Simulator {
    /// Binds the configured loopback address and serves on a runtime of its own.
    pub fn start(config: Ga4Config) -> Result<Ga4Simulator, SimulatorError> {
        let addr = config.listen_addr()?;
        let shared = Arc::new(Ga4Shared::new(config.measurement_id, config.api_secret));
        let task_shared = shared.clone();
        let serving = Serving::start(addr, "ga4-simulator", move |listener, stopped| {
            run(listener, task_shared, stopped)
        })?;
        Ok(Ga4Simulator { shared, serving })
    }

    /// Binds the configured loopback address and serves on the current tokio runtime.
    pub async fn start_async(config: Ga4Config) -> Result<Ga4Simulator, SimulatorError> {
        let addr = config.listen_addr()?;
        let shared = Arc::new(Ga4Shared::new(config.measurement_id, config.api_secret));
        let task_shared = shared.clone();
        let serving = Serving::start_async(addr, move |listener, stopped| {
            run(listener, task_shared, stopped)
        })
        .await?;
        Ok(Ga4Simulator { shared, serving })
    }

    pub fn addr(&self) -> SocketAddr {
        self.serving.addr
    }

    /// `http://IP:PORT`: the `base_url` of a `ga4` destination.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.serving.addr)
    }

    pub fn inject(&self, fault: Fault, scope: Scope) -> Result<(), FaultError> {
        self.shared.faults().inject(fault, scope)
    }

    pub fn clear_faults(&self) {
        self.shared.faults().clear();
    }

    /// Every request in the order it was answered.
    pub fn requests(&self) -> Vec<Ga4Request> {
        self.shared.requests()
    }

    /// Every event `/mp/collect` took, in order.
    pub fn events(&self) -> Vec<Ga4Event> {
        self.shared.events()
    }

    pub fn reset(&self) {
        self.shared.reset();
    }
}
