//! `hardal render`: what each destination would send for each event, one request body per line,
//! without sending anything. Events stream through one at a time, so memory stays flat whatever
//! the input's size. Mapping errors, skips and every repaired or left-out field are reported per
//! event and counted.

use std::io::{self, Write};
use std::time::SystemTime;

use hardal_core::consent::NO_CONSENT;
use hardal_core::{Consent, Destination, MapContext, NoteAction, Outcome, Record, SendContext};

use crate::input::InputItem;
use crate::mapping::map_event;

/// What a render run saw.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RenderSummary {
    pub events: usize,
    pub bodies: usize,
    pub skipped: usize,
    /// Of the skipped: events without the consent the destination requires.
    pub no_consent: usize,
    /// Events not sent because the destination no longer keeps events that old.
    pub expired: usize,
    /// Events with a field repaired, and with a field left out (per destination).
    pub repaired: usize,
    pub dropped: usize,
    pub errors: usize,
}

/// Renders every event for every destination (each with its consent settings) as if mapped at
/// `now` (retention is judged against it): bodies to `out`, one per line; problems, notes and
/// skips (`no consent` among them) to `messages`, each naming the event (number and line) and
/// the destination.
pub fn render(
    destinations: &[(&dyn Destination, &Consent)],
    items: impl IntoIterator<Item = io::Result<InputItem>>,
    now: SystemTime,
    out: &mut dyn Write,
    messages: &mut dyn Write,
) -> io::Result<RenderSummary> {
    let mut summary = RenderSummary::default();
    for item in items {
        let item = item?;
        let (origin, event) = match item {
            Ok(ok) => ok,
            Err((origin, message)) => {
                summary.errors += 1;
                writeln!(messages, "{origin}: {message}")?;
                continue;
            }
        };
        summary.events += 1;
        let context = MapContext::at(now);
        for &(destination, consent) in destinations {
            let id = destination.id();
            let mapped = match map_event(destination, consent, &event, &context) {
                Ok(mapped) => mapped,
                Err(error) => {
                    summary.errors += 1;
                    writeln!(messages, "{origin}: destination `{id}`: {error}")?;
                    continue;
                }
            };
            for note in &mapped.notes {
                writeln!(messages, "{origin}: destination `{id}`: {note}")?;
            }
            let noted = |action| mapped.notes.iter().any(|n| n.action == action);
            summary.repaired += usize::from(noted(NoteAction::Repaired));
            summary.dropped += usize::from(noted(NoteAction::Dropped));
            match mapped.outcome {
                Outcome::Records(records) => {
                    for batch in batches(destination, &records) {
                        let request = destination.encode(&batch, &SendContext::first(now));
                        out.write_all(&request.body)?;
                        out.write_all(b"\n")?;
                        summary.bodies += 1;
                    }
                }
                Outcome::Skipped(reason) => {
                    summary.skipped += 1;
                    summary.no_consent += usize::from(reason == NO_CONSENT);
                    writeln!(messages, "{origin}: destination `{id}` skips it: {reason}")?;
                }
                Outcome::Expired(rule) => {
                    summary.expired += 1;
                    writeln!(
                        messages,
                        "{origin}: destination `{id}` does not send it: expired ({rule})"
                    )?;
                }
            }
        }
        // Messages are buffered by the caller and leave in one write per event, not one per piece
        // of each formatted line.
        messages.flush()?;
    }
    Ok(summary)
}

/// Splits one event's records into the requests the destination's batcher makes, in order (a
/// record no fresh batcher takes goes alone, as delivery sends it).
fn batches<'r>(destination: &dyn Destination, records: &'r [Record]) -> Vec<Vec<&'r Record>> {
    let mut batches: Vec<Vec<&Record>> = Vec::new();
    let mut current: Vec<&Record> = Vec::new();
    let mut batcher = destination.batcher();
    for record in records {
        if batcher.offer(record) {
            current.push(record);
            continue;
        }
        batcher = destination.batcher();
        if !current.is_empty() {
            batches.push(std::mem::take(&mut current));
            if batcher.offer(record) {
                current.push(record);
                continue;
            }
        }
        // Too large for any request: it goes alone.
        batches.push(vec![record]);
        batcher = destination.batcher();
    }
    if !current.is_empty() {
        batches.push(current);
    }
    batches
}
