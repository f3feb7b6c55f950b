//! (f) Erasure: the requests a destination makes to erase a user keep every configured secret
//! out of their bodies, URLs (outside the query) and printed headers; what they say they do
//! (`what`, or the `how` of an unsupported erasure) names identifier fields, never their values;
//! `judge_erasure` gives a verdict for any answer, never `Split` (an erasure is one request, with
//! nothing to split), with secret-free reasons; a stated rate is above zero.

use hardal_core::erasure::{Erasure, Identifiers};
use hardal_core::{Destination, HttpResponse, Verdict};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

use crate::judging::{body, headers, status};
use crate::secrets::Secrets;

/// A person with one identifier of each kind, written in the forms operators type.
fn person() -> Identifiers {
    Identifiers {
        user_id: vec!["conformance-user-7f3a".into()],
        email: vec![" Conformance.Person@Example.org ".into()],
        phone: vec!["+90 532 000 11 22".into()],
        custom: vec![("user.conformance_id".into(), "conformance-custom-9".into())],
    }
}

/// The identifier values as they might be written out: raw, trimmed, lower-cased.
fn values(who: &Identifiers) -> Vec<String> {
    let mut out = Vec::new();
    for value in who
        .user_id
        .iter()
        .chain(&who.email)
        .chain(&who.phone)
        .chain(who.custom.iter().map(|(_, v)| v))
    {
        let trimmed = value.trim();
        out.extend([trimmed.to_owned(), trimmed.to_lowercase()]);
    }
    out.extend(hardal_core::erasure::normalize_phone(&who.phone[0]));
    out
}

pub fn check(destination: &dyn Destination, secrets: &Secrets) {
    let who = person();
    let no_values = |text: &str, what: &str| {
        for value in values(&who) {
            assert!(
                !text.contains(&value),
                "{what} holds an identifier's value (it may name fields, never values): {text}"
            );
        }
    };
    match destination.erasure(&who) {
        Erasure::Requests(requests) => {
            assert!(
                !requests.is_empty(),
                "erasure gave no request; say `Unsupported` with what to do instead"
            );
            for request in &requests {
                no_values(&request.what, "an erasure request's `what`");
                secrets.assert_absent(request.what.as_bytes(), "an erasure request's `what`");
                secrets.assert_absent(&request.request.body, "an erasure request body");
                secrets.assert_absent_from_url(&request.request.url, "an erasure request URL");
                secrets.assert_absent(
                    format!("{:?}", request.request.headers).as_bytes(),
                    "an erasure request's printed headers",
                );
            }
        }
        Erasure::Unsupported { how } => {
            no_values(&how, "an unsupported erasure's `how`");
            secrets.assert_absent(how.as_bytes(), "an unsupported erasure's `how`");
        }
    }
    if let Some(rate) = destination.erasure_requests_per_minute() {
        assert!(
            rate > 0,
            "erasure_requests_per_minute is 0: nothing could ever be sent"
        );
    }
    let mut runner = TestRunner::new_with_rng(
        Config {
            cases: 256,
            failure_persistence: None,
            ..Config::default()
        },
        TestRng::deterministic_rng(RngAlgorithm::ChaCha),
    );
    let result = runner.run(&(status(), headers(), body()), |(status, headers, body)| {
        let response = HttpResponse {
            status,
            headers,
            body,
        };
        let reason = match destination.judge_erasure(&response) {
            Verdict::Delivered => return Ok(()),
            Verdict::Split { reason } => {
                return Err(TestCaseError::fail(format!(
                    "judge_erasure split an erasure request (HTTP {status}: {reason}); an erasure is one request, with nothing to split"
                )));
            }
            Verdict::Retry { reason, .. } | Verdict::Rejected { reason } | Verdict::Pause { reason } => {
                reason
            }
        };
        secrets.assert_absent(reason.as_bytes(), "an erasure verdict's reason");
        Ok(())
    });
    if let Err(failure) = result {
        panic!("judging erasures: {failure}");
    }
}
