//! A stand-in for GA4's Measurement Protocol on a loopback address (`insider-simulator --kind
//! ga4`): `/mp/collect` answering 204 as GA4 does while recording what GA4's validation server
//! would say, `/debug/mp/collect` answering those messages, the same fault injection as the
//! Insider simulator, and a control API (`/_simulator/requests`, `/_simulator/events`,
//! `/_simulator/faults`, `/_simulator/reset`).

mod rules;
mod server;

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

pub use rules::{ValidationMessage, validate};
pub use server::{COLLECT_PATH, DEBUG_PATH, Ga4Event, Ga4Request, Ga4Shared};

use crate::config::SimulatorError;
use crate::faults::{Fault, FaultError, Scope};
use crate::listener::{CuttableListener, Cutter};

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
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
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
        let listener =
            std::net::TcpListener::bind(addr).map_err(|e| SimulatorError::Bind(addr, e))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| SimulatorError::Bind(addr, e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| SimulatorError::Bind(addr, e))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("ga4-simulator")
            .enable_all()
            .build()
            .map_err(SimulatorError::Runtime)?;
        let shared = Arc::new(Ga4Shared::new(config.measurement_id, config.api_secret));
        let (stop, stopped) = watch::channel(false);
        let task_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name("ga4-simulator".into())
            .spawn(move || {
                runtime.block_on(async move {
                    if let Ok(listener) = TcpListener::from_std(listener) {
                        run(listener, task_shared, stopped).await;
                    }
                });
                runtime.shutdown_timeout(Duration::from_millis(100));
            })
            .map_err(SimulatorError::Runtime)?;
        Ok(Ga4Simulator {
            shared,
            addr,
            stop,
            thread: Some(thread),
        })
    }

    /// Binds the configured loopback address and serves on the current tokio runtime.
    pub async fn start_async(config: Ga4Config) -> Result<Ga4Simulator, SimulatorError> {
        let addr = config.listen_addr()?;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| SimulatorError::Bind(addr, e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| SimulatorError::Bind(addr, e))?;
        let shared = Arc::new(Ga4Shared::new(config.measurement_id, config.api_secret));
        let (stop, stopped) = watch::channel(false);
        tokio::spawn(run(listener, shared.clone(), stopped));
        Ok(Ga4Simulator {
            shared,
            addr,
            stop,
            thread: None,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://IP:PORT`: the `base_url` of a `ga4` destination.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
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

impl Drop for Ga4Simulator {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
