//! The service's metrics, in Prometheus text format through the `metrics` crate and its
//! Prometheus exporter: what was received, accepted and how each destination ended each event
//! (counters, each destination's there at zero from the start), latencies and batch sizes
//! (histograms), and the backlog and destination states (gauges, refreshed at every scrape).
//!
//! For every destination, over the life of one process: `received = accepted + duplicates +
//! suppressed{ingestion}` and
//! `accepted + replayed = delivered + rejected + dead_lettered + skipped + expired + queued`, where
//! `queued` is the backlog depth (events accepted by an earlier process that are still waiting
//! count there too) and `replayed` counts dead letters put back in line. An erasure takes the
//! user's waiting events out of `queued` (counted in `erased`; those delivery already held are
//! also counted as `skipped`), so with erasures the second sum holds up to `erased`.

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::backlog::BacklogStats;
use crate::delivery::{Ending, LaneState};

/// Buckets of seconds for latencies: milliseconds to half a minute.
const SECONDS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Buckets of records per request.
const RECORDS: &[f64] = &[1.0, 10.0, 50.0, 100.0, 250.0, 500.0, 1000.0];

/// Installs the process-wide recorder; `None` if one is already installed (a second service in
/// one process, as tests may start).
pub fn install() -> Option<PrometheusHandle> {
    let builder = PrometheusBuilder::new()
        .set_buckets_for_metric(
            metrics_exporter_prometheus::Matcher::Suffix("_seconds".into()),
            SECONDS,
        )
        .ok()?
        .set_buckets_for_metric(
            metrics_exporter_prometheus::Matcher::Suffix("_records".into()),
            RECORDS,
        )
        .ok()?;
    let handle = builder.install_recorder().ok()?;
    describe();
    Some(handle)
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "hardal_events_received_total",
        "Events posted to /v1/events."
    );
    describe_counter!(
        "hardal_events_duplicates_total",
        "Posted events already accepted within the deduplication window."
    );
    describe_counter!(
        "hardal_events_accepted_total",
        "Events stored durably and acknowledged with 202."
    );
    describe_counter!(
        "hardal_events_replayed_total",
        "Dead letters put back in line for their destination."
    );
    describe_counter!(
        "hardal_events_resolved_total",
        "Events a destination is done with, by how they ended."
    );
    describe_counter!(
        "hardal_events_no_consent_total",
        "Events a destination skipped because they lack the consent its consent mode requires (also counted as skipped in hardal_events_resolved_total)."
    );
    describe_counter!(
        "hardal_events_suppressed_total",
        "Events of erased users dropped, by stage: at ingestion (never stored) or before dispatch."
    );
    describe_counter!(
        "hardal_events_erased_total",
        "Waiting events removed from the backlog by erasure jobs."
    );
    describe_counter!(
        "hardal_erasure_jobs_total",
        "Erasure jobs: accepted, then complete or failed (some destination failed)."
    );
    describe_counter!(
        "hardal_erasure_requests_total",
        "Destinations asked to erase a user, by outcome: confirmed, failed, unsupported."
    );
    describe_counter!(
        "hardal_records_retried_total",
        "Records sent again after a retryable answer."
    );
    describe_counter!(
        "hardal_batch_splits_total",
        "Requests split in halves because the destination refused them for a record it did not name."
    );
    describe_histogram!(
        "hardal_ingest_seconds",
        "Time from receiving a POST to answering it."
    );
    describe_histogram!(
        "hardal_request_seconds",
        "Time a destination took to answer a request."
    );
    describe_histogram!(
        "hardal_request_records",
        "Records per request to a destination."
    );
    describe_gauge!(
        "hardal_backlog_events",
        "Events accepted and not yet resolved, per destination."
    );
    describe_gauge!("hardal_backlog_bytes", "Bytes the backlog holds.");
    describe_gauge!(
        "hardal_ready",
        "1 while /readyz answers 200 (the service takes events), else 0."
    );
    describe_gauge!(
        "hardal_partition_events",
        "Messages (each one request's events of the partition) waiting in one partition for a destination (consumer lag; NATS backlog)."
    );
    describe_gauge!(
        "hardal_partitions_held",
        "Partitions this worker holds the lease of (NATS backlog)."
    );
    describe_gauge!(
        "hardal_partition_held",
        "1 for each partition this worker holds the lease of, 0 for the others (NATS backlog)."
    );
    describe_gauge!(
        "hardal_backlog_oldest_event_age_seconds",
        "Age of the oldest event waiting for a destination."
    );
    describe_gauge!(
        "hardal_destination_state",
        "1 for the state a destination is in (flowing, backing_off, paused)."
    );
}

/// Creates every counter at zero, each destination's labelled ones included, so that a scrape
/// right after a start shows them all and the documented sums can be checked (a counter first
/// seen at its first increment is missing from them until then).
pub fn register(destinations: &[String]) {
    for name in [
        "hardal_events_received_total",
        "hardal_events_accepted_total",
        "hardal_events_duplicates_total",
        "hardal_events_replayed_total",
    ] {
        metrics::counter!(name).increment(0);
    }
    for destination in destinations {
        for ending in Ending::ALL {
            resolved(destination, ending, 0);
        }
        metrics::counter!("hardal_records_retried_total", "destination" => destination.clone())
            .increment(0);
        no_consent(destination, 0);
        metrics::counter!("hardal_batch_splits_total", "destination" => destination.clone())
            .increment(0);
    }
}

/// Counts events a destination finished with.
pub fn resolved(destination: &str, ending: Ending, count: u64) {
    metrics::counter!("hardal_events_resolved_total", "destination" => destination.to_owned(), "ending" => ending.as_str())
        .increment(count);
}

/// Counts events a destination skipped for lack of consent.
pub fn no_consent(destination: &str, count: u64) {
    metrics::counter!("hardal_events_no_consent_total", "destination" => destination.to_owned())
        .increment(count);
}

/// Sets the gauges of the backlog and of each destination's state.
pub fn gauges(stats: &BacklogStats, states: &[(String, LaneState)]) {
    for depth in &stats.depths {
        metrics::gauge!("hardal_backlog_events", "destination" => depth.destination.clone())
            .set(depth.events as f64);
        metrics::gauge!("hardal_backlog_oldest_event_age_seconds", "destination" => depth.destination.clone())
            .set(depth.oldest_age_seconds);
    }
    metrics::gauge!("hardal_backlog_bytes").set(stats.bytes as f64);
    for depth in &stats.partitions {
        metrics::gauge!("hardal_partition_events", "destination" => depth.destination.clone(), "partition" => depth.partition.to_string())
            .set(depth.events as f64);
    }
    if let Some(held) = &stats.held {
        metrics::gauge!("hardal_partitions_held").set(held.len() as f64);
        let mut partitions: Vec<u32> = stats.partitions.iter().map(|d| d.partition).collect();
        partitions.sort_unstable();
        partitions.dedup();
        for partition in partitions {
            metrics::gauge!("hardal_partition_held", "partition" => partition.to_string())
                .set(if held.contains(&partition) { 1.0 } else { 0.0 });
        }
    }
    for (destination, state) in states {
        for candidate in [LaneState::Flowing, LaneState::BackingOff, LaneState::Paused] {
            metrics::gauge!("hardal_destination_state", "destination" => destination.clone(), "state" => candidate.as_str())
                .set(if candidate == *state { 1.0 } else { 0.0 });
        }
    }
}
