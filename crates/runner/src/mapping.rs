//! Mapping one event for one destination, the same way in `send`, `serve` and `render`: the
//! destination's consent is checked first (an event without the consent it requires is never
//! mapped, and is skipped as `no consent`), then the event is mapped with the consent found, a
//! panic in the destination's mapping becoming a rejection of that event.

use std::panic::AssertUnwindSafe;

use hardal_core::consent::NO_CONSENT;
use hardal_core::{Consent, Destination, Event, MapContext, Mapped, MappingError, Outcome};

use crate::delivery::panic_message;

/// Maps `event` for `destination` if `consent` lets it.
pub fn map_event(
    destination: &dyn Destination,
    consent: &Consent,
    event: &Event,
    context: &MapContext,
) -> Result<Mapped, MappingError> {
    let Some(state) = consent.check(event) else {
        return Ok(Mapped::skipped(NO_CONSENT));
    };
    let context = MapContext {
        consent: state,
        ..*context
    };
    std::panic::catch_unwind(AssertUnwindSafe(|| destination.map(event, &context))).unwrap_or_else(
        |panic| {
            Err(MappingError::new(
                "",
                format!(
                    "destination `{}` failed while mapping this event: {}",
                    destination.id(),
                    panic_message(panic.as_ref())
                ),
            ))
        },
    )
}

/// Whether an outcome is the skip of an event without the consent its destination requires
/// (counted apart from other skips).
pub fn no_consent(outcome: &Outcome) -> bool {
    matches!(outcome, Outcome::Skipped(reason) if reason == NO_CONSENT)
}
