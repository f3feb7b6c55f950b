//! hardal-insider-simulator: a stand-in for Insider's UCD user upsert API on a loopback address.
//!
//! It applies Insider's documented rules (limits, identifiers, default attributes, events and their
//! required parameters) and answers the way Insider does: 200 with per-user `fail.errors`, 400, 401,
//! 429 and 5xx. It records what it accepted, deduplicates identical events like Insider stores them,
//! and injects faults on demand. Insider's erasure endpoints (delete, anonymize) make it forget a
//! user, so a test can check the end state ([`erasure`]). Tests use [`Simulator`] in-process;
//! benchmarks run the `insider-simulator` binary and use the HTTP control API (see [`control`]).
//! [`ga4`] stands in for GA4's Measurement Protocol the same way (`insider-simulator --kind ga4`).
//!
//! [`meta`] is the same for Meta's Conversions API ([`MetaSimulator`], `--kind meta`).

pub mod batch;
pub mod config;
pub mod control;
pub mod erasure;
pub mod faults;
pub mod ga4;
mod listener;
pub mod lite;
pub mod meta;
pub mod patterns;
pub mod record;
pub mod rules;
pub mod server;
mod serving;
pub mod simulator;

pub use batch::{BadRequest, MAX_BODY_BYTES, MAX_USERS};
pub use config::{ErasureLimits, SimulatorConfig, SimulatorError};
pub use erasure::{ANONYMIZE_PATH, DELETE_PATH};
pub use faults::{Endpoint, Fault, FaultError, RetryAfterSpec, Scope};
pub use lite::Lite;
pub use meta::{MetaConfig, MetaSimulator};
pub use record::{AcceptedEvent, AcceptedUser, ErasureLog, Presence, RequestLog, Stats};
pub use rules::{Violation, validate_user, validate_value};
pub use server::UPSERT_PATH;
pub use simulator::Simulator;
