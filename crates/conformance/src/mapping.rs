//! (a) Mapping is a function of the event and the context, and (e) what mapping says (notes,
//! skip and expiry reasons, errors) keeps the secrets out.

use std::time::SystemTime;

use hardal_core::{Destination, Event, MapContext, Outcome, Record};
use serde_json::Value;

use crate::secrets::Secrets;

/// Maps every event twice at `now` and returns the records of the first mapping.
pub fn check(
    destination: &dyn Destination,
    events: &[Value],
    secrets: &Secrets,
    now: SystemTime,
) -> Vec<Record> {
    let context = MapContext::at(now);
    let mut records = Vec::new();
    for (index, value) in events.iter().enumerate() {
        let event = Event::from_value(value.clone())
            .unwrap_or_else(|e| panic!("fixture event {index} is not an event: {e}"));
        let first = destination.map(&event, &context);
        let second = destination.map(&event, &context);
        assert_eq!(
            first, second,
            "fixture event {index} mapped two different ways in the same context"
        );
        match first {
            Ok(mapped) => {
                for note in &mapped.notes {
                    secrets.assert_absent(note.to_string().as_bytes(), "a note");
                }
                match mapped.outcome {
                    Outcome::Records(mut made) => records.append(&mut made),
                    Outcome::Skipped(reason) | Outcome::Expired(reason) => {
                        secrets.assert_absent(reason.as_bytes(), "a skip or expiry reason");
                    }
                }
            }
            Err(error) => secrets.assert_absent(error.to_string().as_bytes(), "a mapping error"),
        }
    }
    records
}
