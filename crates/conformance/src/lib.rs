//! The destination conformance kit. A destination crate's tests make one call,
//! [`check`]`(kind, config, events)`, which builds the destination through the registry (as the
//! runner does) and checks what the runner relies on but cannot see from outside:
//!
//! - (a) mapping is a function: the same event in the same context maps the same way twice;
//! - (b) a retry re-sends the same bytes: encoding the same records with different
//!   [`SendContext`]s gives byte-identical bodies;
//! - (c) batches assembled through the destination's batcher never pass `batch_limits`, their
//!   encoded bodies are never longer than `body_size` says (the runner batches by it), and no
//!   request mixes two batch keys;
//! - (d) `judge` gives exactly one verdict per record, for any status and any body;
//! - (e) no configured secret (a `writeOnly` value of the kind's schema) appears in a body, in the
//!   host or path of a URL (GA4's `api_secret` must be a query parameter, which the runner's
//!   redactor hides wherever a URL is shown), in a header as printed, in a note, a skip reason or
//!   an error;
//! - (f) erasure requests keep the secrets out of bodies, URLs (outside the query) and printed
//!   headers, and name identifier fields but never their values; `judge_erasure` gives a verdict
//!   (never `Split`) for any answer.
//!
//! Random inputs come from proptest's deterministic runner, so a failure repeats run after run.
//! The kit panics with what broke; it is meant for `#[test]` functions.

mod batching;
mod erasure;
mod judging;
mod mapping;
mod secrets;

use std::time::SystemTime;

use hardal_core::{Destination, DestinationPlugin, Record, SendContext};
use serde_json::Value;

pub use secrets::Secrets;

/// Builds a destination of `kind` from `config` (the kind's own fields, with literal secret
/// values) and checks the contract with the records `events` map into. At least one event must
/// map into records. Panics with the first broken promise.
///
/// The destination's crate must be linked into the test binary (a test in that crate, or one
/// that names something of it), or its kind is not registered.
pub fn check(kind: &str, config: &Value, events: &[Value]) {
    let plugin = DestinationPlugin::find(kind).unwrap_or_else(|| {
        panic!("no destination kind `{kind}` is registered: link its crate into this test")
    });
    let secrets = Secrets::of(&(plugin.config_schema)().to_value(), config);
    let destination = (plugin.build)("conformance", config).unwrap_or_else(|errors| {
        let errors: Vec<String> = errors.iter().map(ToString::to_string).collect();
        panic!("the configuration does not build: {errors:?}")
    });
    let destination = destination.as_ref();
    secrets.assert_absent_from_url(destination.endpoint().unwrap_or(""), "the endpoint");
    let records = mapping::check(destination, events, &secrets, SystemTime::now());
    assert!(
        !records.is_empty(),
        "the fixture events made no records, so nothing else can be checked"
    );
    batching::check(destination, &records, &secrets);
    judging::check(destination, &records, &secrets);
    erasure::check(destination, &secrets);
}

/// Encodes `records` in two different contexts (first attempt now; a late retry days later) and
/// asserts the bodies are byte-identical and keep every secret out of what is shown (b, e).
pub(crate) fn encode_twice(
    destination: &dyn Destination,
    records: &[&Record],
    secrets: &Secrets,
) -> Vec<u8> {
    let now = SystemTime::now();
    let first = destination.encode(records, &SendContext::first(now));
    let retry = destination.encode(
        records,
        &SendContext {
            attempt: 9,
            now: now + std::time::Duration::from_secs(3 * 86_400),
        },
    );
    assert!(
        first.body == retry.body,
        "a retry of the same {} records would send another body (only headers may depend on the send context):\nfirst: {}\nretry: {}",
        records.len(),
        String::from_utf8_lossy(&first.body),
        String::from_utf8_lossy(&retry.body)
    );
    for request in [&first, &retry] {
        secrets.assert_absent(&request.body, "a request body");
        secrets.assert_absent_from_url(&request.url, "a request URL");
        secrets.assert_absent(
            format!("{:?}", request.headers).as_bytes(),
            "printed headers",
        );
    }
    first.body
}
