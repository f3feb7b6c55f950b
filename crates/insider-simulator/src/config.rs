//! The simulator's configuration and the errors of starting one.

use std::fmt;
use std::net::SocketAddr;

/// How to run a simulator.
#[derive(Clone)]
pub struct SimulatorConfig {
    /// The value `X-PARTNER-NAME` must carry.
    pub partner_name: String,
    /// The value `X-REQUEST-TOKEN` must carry.
    pub request_token: String,
    /// A loopback `IP:PORT`; port 0 picks a free port.
    pub listen: String,
    /// Keep every accepted user and event; when false only counts are kept, so a benchmark of
    /// millions of events runs in constant memory.
    pub record_users: bool,
    /// The custom identifiers defined in the simulated account. Insider accepts only custom
    /// identifiers that are configured in the account; `None` accepts any.
    pub custom_identifiers: Option<Vec<String>>,
    /// The erasure endpoints' rate limits.
    pub erasure_limits: ErasureLimits,
}

/// Requests a minute the erasure endpoints take before answering 429 (Insider documents 10,000
/// for delete and 500 for anonymize); a test may lower them to reach the limit quickly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErasureLimits {
    pub delete_per_minute: u32,
    pub anonymize_per_minute: u32,
}

impl Default for ErasureLimits {
    fn default() -> ErasureLimits {
        ErasureLimits {
            delete_per_minute: 10_000,
            anonymize_per_minute: 500,
        }
    }
}

impl SimulatorConfig {
    /// A recording simulator on a free loopback port.
    pub fn new(partner_name: impl Into<String>, request_token: impl Into<String>) -> Self {
        SimulatorConfig {
            partner_name: partner_name.into(),
            request_token: request_token.into(),
            listen: "127.0.0.1:0".into(),
            record_users: true,
            custom_identifiers: None,
            erasure_limits: ErasureLimits::default(),
        }
    }

    /// The listen address, refused unless it is a loopback IP literal: the simulator stands in for
    /// a remote service in tests and must never be reachable from elsewhere.
    pub fn listen_addr(&self) -> Result<SocketAddr, SimulatorError> {
        let addr: SocketAddr = self
            .listen
            .parse()
            .map_err(|_| SimulatorError::BadListen(self.listen.clone()))?;
        if !addr.ip().is_loopback() {
            return Err(SimulatorError::NotLoopback(addr));
        }
        Ok(addr)
    }
}

impl Default for SimulatorConfig {
    fn default() -> Self {
        SimulatorConfig::new("hardal-test", "test-token")
    }
}

// The token is a credential in spirit; keep it out of test output like the real one.
impl fmt::Debug for SimulatorConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimulatorConfig")
            .field("partner_name", &self.partner_name)
            .field("request_token", &"[redacted]")
            .field("listen", &self.listen)
            .field("record_users", &self.record_users)
            .finish()
    }
}

/// Why a simulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum SimulatorError {
    #[error("listen address {0:?} is not IP:PORT")]
    BadListen(String),
    #[error("listen address {0} is not a loopback address; the simulator only binds loopback")]
    NotLoopback(SocketAddr),
    #[error("cannot bind {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
    #[error("cannot start the simulator's runtime: {0}")]
    Runtime(std::io::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_literals_are_accepted() {
        let cases = [
            ("127.0.0.1:0", true),
            ("127.0.0.1:8089", true),
            ("[::1]:0", true),
            ("0.0.0.0:0", false),
            ("192.168.1.10:80", false),
            ("localhost:0", false),
            ("127.0.0.1", false),
        ];
        for (listen, ok) in cases {
            let config = SimulatorConfig {
                listen: listen.into(),
                ..SimulatorConfig::default()
            };
            assert_eq!(config.listen_addr().is_ok(), ok, "{listen}");
        }
    }

    #[test]
    fn debug_hides_the_token() {
        let shown = format!("{:?}", SimulatorConfig::new("p", "very-secret"));
        assert!(!shown.contains("very-secret"), "{shown}");
    }
}
