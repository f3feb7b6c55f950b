//! The delivery side's half of deduplication: a part (one request's events in one partition,
//! see `grouper.rs`) that the stream holds twice within the duplicate window is delivered once.
//!
//! JetStream recognises a retried request only when it makes the very same message. A retry
//! grouped with other requests (it reached a node under load) makes a new message, which
//! JetStream stores; the worker recognises its part instead. Per destination and partition it
//! knows the first place (stream sequence, and place in the message) and time of each part of
//! the window, and an event whose part came earlier within the window is resolved unsent.
//!
//! A message's acknowledgement deletes it, so what the next holder of a partition cannot read
//! from the stream any more must be written down: before a worker acknowledges messages, it
//! appends their parts to the stream `<stream>_SEEN` (subject `<prefix>.seen.<partition>`, kept
//! a week), and a worker that takes a partition reads back the records from the duplicate
//! window before its first message. Messages not acknowledged come again, and speak for
//! themselves. Every holder so judges from the same facts, whatever the order of hand-overs.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, SystemTime};

use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use async_nats::jetstream::{self, stream};
use futures_util::StreamExt;

use crate::backlog::BacklogError;

/// How long the records are kept: as long as any message waits in a sane backlog (a retry of a
/// message still waiting is recognised however late its partition moves).
pub(super) const SEEN_FOR: Duration = Duration::from_secs(7 * 24 * 3600);

/// Where a part was first seen: its message's stream sequence and its index among the
/// message's parts (together, its order in the stream), and the message's time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Place {
    seq: u64,
    part: usize,
    at_ms: i64,
}

impl Place {
    fn before(&self, other: &Place) -> bool {
        (self.seq, self.part) < (other.seq, other.part)
    }
}

/// The parts of one destination's partition seen within the window.
#[derive(Debug, Default)]
pub(super) struct Seen {
    /// Whether the records of earlier holders were read since this worker took the partition.
    pub(super) loaded: bool,
    /// By a 64-bit hash of the part's id (a third of the memory of the id itself; two ids of
    /// one window sharing a hash is a chance of about one in 10^10 at a million parts).
    first: HashMap<u64, Place>,
    /// Parts by the time they were noted, to forget the old ones.
    order: VecDeque<(i64, u64)>,
}

fn key(id: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(id.as_bytes())
}

impl Seen {
    /// Notes the parts of the message at `seq`, and tells for each whether it is a duplicate:
    /// the same part came earlier in the stream, within `window` of this message. A message
    /// noted again (delivered again) is no duplicate of itself.
    pub(super) fn judge<'p>(
        &mut self,
        seq: u64,
        at_ms: i64,
        parts: impl IntoIterator<Item = &'p str>,
        window: Duration,
    ) -> Vec<bool> {
        let window_ms = window.as_millis() as i64;
        let verdicts = parts
            .into_iter()
            .enumerate()
            .map(|(part, id)| self.note(key(id), Place { seq, part, at_ms }, window_ms))
            .collect();
        // What is more than two windows older than what comes now can no longer matter
        // (messages come in stream order, give or take those delivered again).
        let horizon = at_ms - 2 * window_ms;
        while let Some((noted, id)) = self.order.front() {
            if *noted >= horizon {
                break;
            }
            if self
                .first
                .get(id)
                .is_some_and(|place| place.at_ms < horizon)
            {
                self.first.remove(id);
            }
            self.order.pop_front();
        }
        verdicts
    }

    /// Notes one part; whether it is a duplicate. (What an earlier holder recorded is noted
    /// the same way, its verdict unused.)
    fn note(&mut self, key: u64, here: Place, window_ms: i64) -> bool {
        match self.first.get_mut(&key) {
            Some(first) if first.before(&here) => here.at_ms - first.at_ms <= window_ms,
            Some(first) => {
                // An earlier copy known only now (a record read late): it is the first.
                *first = here;
                false
            }
            None => {
                self.first.insert(key, here);
                self.order.push_back((here.at_ms, key));
                false
            }
        }
    }
}

/// One record line per part: `<seq> <index> <time in ms> <id>`.
pub(super) fn record_lines(seq: u64, at_ms: i64, parts: &[String]) -> String {
    parts
        .iter()
        .enumerate()
        .map(|(index, id)| format!("{seq} {index} {at_ms} {id}\n"))
        .collect()
}

/// A record line back (what is not one is left out).
fn read_line(line: &str) -> Option<(u64, Place)> {
    let mut words = line.split(' ');
    let seq = words.next()?.parse().ok()?;
    let part = words.next()?.parse().ok()?;
    let at_ms = words.next()?.parse().ok()?;
    Some((key(words.next()?), Place { seq, part, at_ms }))
}

/// Makes the records' stream if it is missing.
pub(super) async fn open_stream(
    js: &jetstream::Context,
    name: &str,
    prefix: &str,
    replicas: usize,
) -> Result<stream::Stream, BacklogError> {
    js.get_or_create_stream(stream::Config {
        name: name.to_owned(),
        description: Some(
            "hardal: the parts of acknowledged messages, for recognising retries".into(),
        ),
        subjects: vec![format!("{prefix}.seen.*")],
        max_age: SEEN_FOR,
        num_replicas: replicas,
        ..Default::default()
    })
    .await
    .map_err(|e| BacklogError::Io(format!("NATS: creating the stream `{name}`: {e}")))
}

/// Reads the records of `subject` written since `since` into `seen`.
pub(super) async fn load(
    records: &stream::Stream,
    subject: &str,
    since: SystemTime,
    seen: &mut Seen,
) -> Result<(), BacklogError> {
    let failed = |e: &dyn std::fmt::Display| {
        BacklogError::Io(format!("NATS: reading the parts seen on `{subject}`: {e}"))
    };
    let consumer = records
        .create_consumer(pull::Config {
            filter_subject: subject.to_owned(),
            deliver_policy: DeliverPolicy::ByStartTime {
                start_time: since.into(),
            },
            ack_policy: AckPolicy::None,
            inactive_threshold: Duration::from_secs(30),
            ..Default::default()
        })
        .await
        .map_err(|e| failed(&e))?;
    let mut pending = consumer.cached_info().num_pending;
    while pending > 0 {
        let mut batch = consumer
            .fetch()
            .max_messages(1024)
            .messages()
            .await
            .map_err(|e| failed(&e))?;
        let mut read = 0;
        while let Some(message) = batch.next().await {
            let message = message.map_err(|e| failed(&e))?;
            read += 1;
            pending = message.info().map_or(0, |info| info.pending);
            for (key, place) in String::from_utf8_lossy(&message.payload)
                .lines()
                .filter_map(read_line)
            {
                seen.note(key, place, 0);
            }
        }
        if read == 0 {
            break;
        }
    }
    seen.loaded = true;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    const WINDOW: Duration = Duration::from_secs(120);

    #[test]
    fn a_part_seen_earlier_within_the_window_is_a_duplicate_wherever_it_sits() {
        let mut seen = Seen::default();
        assert_eq!(seen.judge(10, 1_000, ["a", "b"], WINDOW), [false, false]);
        // A retry of `b` grouped with `c`, and `b` once more within that message.
        assert_eq!(
            seen.judge(11, 2_000, ["c", "b", "b"], WINDOW),
            [false, true, true]
        );
        // The first message delivered again is no duplicate of itself.
        assert_eq!(seen.judge(10, 1_000, ["a", "b"], WINDOW), [false, false]);
        // Past the window, JetStream would have stored it again too: delivered again.
        assert_eq!(seen.judge(12, 200_000, ["a"], WINDOW), [false]);
    }

    #[test]
    fn records_of_an_earlier_holder_count_and_a_copy_known_late_goes_first() {
        let mut seen = Seen::default();
        assert_eq!(seen.judge(20, 5_000, ["x"], WINDOW), [false]);
        for (key, place) in record_lines(7, 4_000, &ids(&["x", "y"]))
            .lines()
            .chain(["garbage", "1 2 x"])
            .filter_map(read_line)
        {
            seen.note(key, place, 0);
        }
        assert_eq!(seen.judge(20, 5_000, ["x"], WINDOW), [true]);
        assert_eq!(seen.judge(21, 5_100, ["y", "z"], WINDOW), [true, false]);
    }
}
