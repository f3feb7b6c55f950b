//! The judge targets, one per registered destination kind (`judge_<kind>`), none named here: a
//! kind is fuzzed as soon as it is linked. Each kind's destination is built from the first
//! destination of its type in the example configurations (`examples/*.json`), with every secret
//! set, and judges answers to requests of records mapped from the example events.
//!
//! One fuzzer binary (`fuzz/fuzz_targets/judge.rs`) serves every kind: it reads the kind from
//! [`KIND_VARIABLE`], which `cargo xtask fuzz` sets per target.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, UNIX_EPOCH};

use hardal_core::{Destination, DestinationPlugin, Event, MapContext, Record, Verdict};
use serde_json::Value;

use crate::input;

/// The environment variable naming the kind the `judge` fuzzer binary judges.
pub const KIND_VARIABLE: &str = "HARDAL_FUZZ_KIND";

/// The prefix of the judge targets' names: `judge_insider`.
pub const PREFIX: &str = "judge_";

/// The time records are mapped at: the day after most example events, inside every kind's
/// retention (Meta keeps 7 days, GA4 72 hours).
const MAPPED_AT: Duration = Duration::from_secs(1_734_652_800);

/// A kind's destination and the records its requests are made of.
pub struct Fixture {
    pub destination: Box<dyn Destination>,
    pub records: Vec<Record>,
}

/// The names of the judge targets, one per linked kind, sorted.
pub fn targets() -> Vec<String> {
    DestinationPlugin::all()
        .iter()
        .map(|p| format!("{PREFIX}{}", p.kind))
        .collect()
}

/// An answer to a request of 1..=1000 records of `kind`. Invariants: one verdict per record, and
/// a `Split` is given to every record of the request or to none.
pub fn judge(kind: &str, data: &[u8]) {
    let fixture = fixture(kind);
    let (count, response) = input::judged_response(data);
    let records: Vec<&Record> = fixture.records.iter().cycle().take(count).collect();
    let verdicts = fixture.destination.judge(&records, &response);
    assert_eq!(verdicts.len(), count, "one verdict per record");
    let splits = verdicts
        .iter()
        .filter(|v| matches!(v, Verdict::Split { .. }))
        .count();
    assert!(
        splits == 0 || splits == count,
        "Split given to {splits} of {count} records: it is a verdict on the whole request"
    );
}

/// The `judge` binary's entry: the kind comes from [`KIND_VARIABLE`].
pub fn from_env(data: &[u8]) {
    static KIND: OnceLock<String> = OnceLock::new();
    let kind = KIND.get_or_init(|| {
        std::env::var(KIND_VARIABLE).unwrap_or_else(|_| {
            panic!("set {KIND_VARIABLE} to the kind to judge (cargo xtask fuzz does)")
        })
    });
    judge(kind, data);
}

/// The fixture of `kind`, built once.
pub fn fixture(kind: &str) -> &'static Fixture {
    static FIXTURES: OnceLock<Vec<(&'static str, Fixture)>> = OnceLock::new();
    let fixtures = FIXTURES.get_or_init(|| {
        DestinationPlugin::all()
            .iter()
            .map(|p| (p.kind, build(p.kind)))
            .collect()
    });
    fixtures
        .iter()
        .find(|(k, _)| *k == kind)
        .map(|(_, f)| f)
        .unwrap_or_else(|| panic!("`{kind}` is not a linked destination kind"))
}

fn examples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

/// The first destination of type `kind` in `examples/*.json` (files in name order), built with
/// every environment variable set; and records mapped from the example events (a record of `{}`
/// when none maps, so that every kind is judged with records).
fn build(kind: &str) -> Fixture {
    let mut configs: Vec<PathBuf> = std::fs::read_dir(examples())
        .expect("the examples directory")
        .map(|e| e.expect("a readable directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    configs.sort();
    let entry = configs
        .iter()
        .find_map(|path| {
            let text = std::fs::read_to_string(path).ok()?;
            let config: Value = serde_json::from_str(&text).ok()?;
            config["destinations"]
                .as_array()?
                .iter()
                .find(|d| d["type"] == kind)
                .cloned()
        })
        .unwrap_or_else(|| {
            panic!("no example configuration (examples/*.json) has a destination of type `{kind}`: add one")
        });
    let source = serde_json::json!({ "destinations": [entry] }).to_string();
    let mut config = hardal_runner::config::load_str(&source, &|_| Some("fuzz-secret".to_owned()))
        .unwrap_or_else(|d| panic!("the example `{kind}` destination does not load: {d:?}"));
    let destination = config.destinations.remove(0);

    let events = std::fs::read_to_string(examples().join("events.ndjson")).expect("example events");
    let context = MapContext::at(UNIX_EPOCH + MAPPED_AT);
    let mut records: Vec<Record> = events
        .lines()
        .filter_map(|line| Event::from_value(serde_json::from_str(line).ok()?).ok())
        .filter_map(|event| destination.map(&event, &context).ok()?.into_records())
        .flatten()
        .collect();
    if records.is_empty() {
        records.push(Record {
            payload: b"{}".to_vec(),
            order_key: None,
            batch_key: None,
        });
    }
    Fixture {
        destination,
        records,
    }
}
