//! (b) and (c): random runs of records offered to the destination's batcher, each request it
//! assembles checked against the limits, the size accounting and the batch keys, and encoded
//! twice in different send contexts.

use hardal_core::{Destination, Record};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use crate::secrets::Secrets;

/// The longest run of records offered: past the record limit (so that batches fill up), but
/// bounded so that destinations with huge limits stay quick to check.
const LONGEST_RUN: usize = 1_200;

pub fn check(destination: &dyn Destination, records: &[Record], secrets: &Secrets) {
    let limits = destination.batch_limits();
    let longest = limits.max_records.saturating_add(2).clamp(2, LONGEST_RUN);
    let run = proptest::collection::vec(0..records.len(), 1..=longest);
    let mut runner = TestRunner::new_with_rng(
        Config {
            cases: 64,
            failure_persistence: None,
            ..Config::default()
        },
        proptest::test_runner::TestRng::deterministic_rng(
            proptest::test_runner::RngAlgorithm::ChaCha,
        ),
    );
    let result = runner.run(&run, |picks| {
        let offered: Vec<&Record> = picks.iter().map(|&i| &records[i]).collect();
        let mut rest = &offered[..];
        while !rest.is_empty() {
            let taken = assemble(destination, rest);
            let batch = &rest[..taken.max(1)];
            rest = &rest[batch.len()..];
            let body = crate::encode_twice(destination, batch, secrets);
            if taken == 0 {
                // A record no request can take goes alone; the runner's safety net.
                continue;
            }
            prop_assert!(
                batch.len() <= limits.max_records,
                "the batcher took {} records; batch_limits allows {}",
                batch.len(),
                limits.max_records
            );
            let payload: usize = batch.iter().map(|r| r.payload.len()).sum();
            let counted = destination.body_size(batch.len(), payload);
            prop_assert!(
                body.len() <= counted,
                "body_size undercounts: {} records with {payload} payload bytes encode into {} bytes, body_size says {counted}",
                batch.len(),
                body.len()
            );
            prop_assert!(
                body.len() <= limits.max_bytes,
                "a request the batcher assembled is {} bytes; batch_limits allows {}",
                body.len(),
                limits.max_bytes
            );
            let mut keys = batch.iter().filter_map(|r| r.batch_key.as_deref());
            if let Some(first) = keys.next() {
                prop_assert!(
                    keys.all(|k| k == first),
                    "a request mixes batch keys"
                );
            }
        }
        Ok(())
    });
    if let Err(failure) = result {
        panic!("batching: {failure}");
    }
}

/// How many records from the start of `offered` a fresh batcher takes into one request.
pub fn assemble(destination: &dyn Destination, offered: &[&Record]) -> usize {
    let mut batcher = destination.batcher();
    offered
        .iter()
        .take_while(|record| batcher.offer(record))
        .count()
}
