//! Running one stand-in's HTTP server, whichever API it stands in for: on a runtime of its own
//! (tests, which are not async) or on the caller's (the binary), until the stand-in is dropped.

use std::future::Future;
use std::net::SocketAddr;
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::SimulatorError;

/// A server running for one stand-in; dropping it stops the server (and waits for its thread).
#[derive(Debug)]
pub(crate) struct Serving {
    pub(crate) addr: SocketAddr,
    stop: watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
}

impl Serving {
    /// Binds `addr` and runs `serve` on a runtime of its own, in a thread named `name`.
    pub(crate) fn start<F, Fut>(
        addr: SocketAddr,
        name: &str,
        serve: F,
    ) -> Result<Serving, SimulatorError>
    where
        F: FnOnce(TcpListener, watch::Receiver<bool>) -> Fut + Send + 'static,
        Fut: Future<Output = ()>,
    {
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
            .thread_name(name)
            .enable_all()
            .build()
            .map_err(SimulatorError::Runtime)?;
        let (stop, stopped) = watch::channel(false);
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                runtime.block_on(async move {
                    // Registering with the reactor needs the runtime, so it happens here.
                    if let Ok(listener) = TcpListener::from_std(listener) {
                        serve(listener, stopped).await;
                    }
                });
                runtime.shutdown_timeout(Duration::from_millis(100));
            })
            .map_err(SimulatorError::Runtime)?;
        Ok(Serving {
            addr,
            stop,
            thread: Some(thread),
        })
    }

    /// Binds `addr` and runs `serve` on the current tokio runtime.
    pub(crate) async fn start_async<F, Fut>(
        addr: SocketAddr,
        serve: F,
    ) -> Result<Serving, SimulatorError>
    where
        F: FnOnce(TcpListener, watch::Receiver<bool>) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| SimulatorError::Bind(addr, e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| SimulatorError::Bind(addr, e))?;
        let (stop, stopped) = watch::channel(false);
        tokio::spawn(serve(listener, stopped));
        Ok(Serving {
            addr,
            stop,
            thread: None,
        })
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(thread) = self.thread.take() {
            // A panic in the server thread has already been reported; nothing is left to stop.
            let _ = thread.join();
        }
    }
}
