//! hardal-core: the event model, the template language, conditions and mappings, the `Destination`
//! contract (with erasure requests) and the registry of destination plugins.
//!
//! This crate does no I/O: no files, sockets, environment, clock reads or async runtime. Mapping an
//! event is a pure function of (configuration, event); where a destination needs the current time,
//! the runner passes it in.

pub mod condition;
pub mod consent;
pub mod convert;
pub mod destination;
pub mod erasure;
pub mod error;
pub mod event;
pub mod path;
mod quick_json;
pub mod registry;
pub mod secret;
pub mod select;
pub mod template;
pub mod value;

pub use condition::{Condition, Mapping, Mappings, WhenConfig};
pub use consent::{Consent, ConsentState, Purpose};
pub use destination::{
    BatchLimits, Batcher, Destination, HttpMethod, HttpRequest, HttpResponse, LimitsBatcher,
    MapContext, Mapped, Note, NoteAction, Notes, Outcome, Record, RetryAfter, SendContext, Verdict,
};
pub use erasure::{Erasure, ErasureRequest, Identifiers};
pub use error::{ConfigError, MappingError};
pub use event::Event;
pub use path::Path;
pub use registry::DestinationPlugin;
pub use secret::Secret;
pub use template::Template;

// The registration macro expands to `inventory::submit!` in the plugin's crate; re-exporting keeps
// plugin crates from depending on `inventory` themselves.
#[doc(hidden)]
pub use inventory;
