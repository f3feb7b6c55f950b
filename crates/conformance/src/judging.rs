//! (d) `judge` gives exactly one verdict per record, whatever the answer: any status, a
//! `Retry-After` or none, bodies of random bytes and random JSON built from the words APIs answer
//! with. And (e): its reasons keep the secrets out.

use hardal_core::{Destination, HttpResponse, Record, Verdict};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use serde_json::Value;

use crate::secrets::Secrets;

/// Words of API answers (Insider, Meta, GA4, generic error envelopes), so that random JSON
/// reaches the branches that read them.
const WORDS: &[&str] = &[
    "data",
    "successful",
    "fail",
    "count",
    "errors",
    "error",
    "message",
    "code",
    "type",
    "error_subcode",
    "error_user_msg",
    "fbtrace_id",
    "events_received",
    "messages",
    "validationMessages",
    "fieldPath",
    "description",
    "validationCode",
    "users",
    "0",
    "1",
    "users.0.email",
];

fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (0u32..3).prop_map(Value::from),
        proptest::sample::select(WORDS).prop_map(Value::from),
        "[a-z ]{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            proptest::collection::vec((proptest::sample::select(WORDS), inner), 0..5).prop_map(
                |members| {
                    Value::Object(
                        members
                            .into_iter()
                            .map(|(k, v)| (k.to_owned(), v))
                            .collect(),
                    )
                }
            ),
        ]
    })
}

pub(crate) fn status() -> impl Strategy<Value = u16> {
    prop_oneof![
        4 => 200u16..300,
        2 => 400u16..500,
        1 => 500u16..600,
        1 => 100u16..=999,
    ]
}

pub(crate) fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => json().prop_map(|v| v.to_string().into_bytes()),
        1 => proptest::collection::vec(any::<u8>(), 0..64),
        1 => Just(Vec::new()),
    ]
}

pub(crate) fn headers() -> impl Strategy<Value = Vec<(String, String)>> {
    proptest::option::of(prop_oneof![
        (0u64..100_000).prop_map(|s| s.to_string()),
        Just("Wed, 21 Oct 2015 07:28:00 GMT".to_owned()),
        Just("soon".to_owned()),
    ])
    .prop_map(|after| {
        let mut headers = vec![("content-type".to_owned(), "application/json".to_owned())];
        headers.extend(after.map(|a| ("retry-after".to_owned(), a)));
        headers
    })
}

pub fn check(destination: &dyn Destination, records: &[Record], secrets: &Secrets) {
    let most = destination.batch_limits().max_records.clamp(1, 50);
    let picks = proptest::collection::vec(0..records.len(), 1..=most);
    let mut runner = TestRunner::new_with_rng(
        Config {
            cases: 256,
            failure_persistence: None,
            ..Config::default()
        },
        TestRng::deterministic_rng(RngAlgorithm::ChaCha),
    );
    let answers = (picks, status(), headers(), body());
    let result = runner.run(&answers, |(picks, status, headers, body)| {
        let batch: Vec<&Record> = picks.iter().map(|&i| &records[i]).collect();
        let response = HttpResponse {
            status,
            headers,
            body,
        };
        let verdicts = destination.judge(&batch, &response);
        prop_assert_eq!(
            verdicts.len(),
            batch.len(),
            "judge gave {} verdicts for {} records (HTTP {}, body {})",
            verdicts.len(),
            batch.len(),
            status,
            response.body_excerpt()
        );
        for verdict in &verdicts {
            let reason = match verdict {
                Verdict::Delivered => continue,
                Verdict::Retry { reason, .. }
                | Verdict::Rejected { reason }
                | Verdict::Pause { reason }
                | Verdict::Split { reason } => reason,
            };
            secrets.assert_absent(reason.as_bytes(), "a verdict's reason");
        }
        Ok(())
    });
    if let Err(failure) = result {
        panic!("judging: {failure}");
    }
}
