//! hardal-runner: everything of `hardal` that touches the outside world — configuration files and
//! the environment, event input, the command line, the delivery engine and the transport.

pub mod backlog;
pub mod config;
pub mod delivery;
pub mod dlq;
pub mod exclusive;
pub mod input;
pub mod mapping;
pub mod privacy;
pub mod redact;
pub mod render;
pub mod resolved;
pub mod send;
pub mod serve;
pub mod tap;
pub mod transport;

// Linking a destination crate is what registers its kind (`inventory` collects the plugin at
// start-up); `hardal-destinations` links every one, and naming it here links it.
use hardal_destinations as _;

/// Every destination kind this binary links, sorted.
pub fn linked_kinds() -> Vec<&'static str> {
    hardal_core::DestinationPlugin::all()
        .iter()
        .map(|p| p.kind)
        .collect()
}
