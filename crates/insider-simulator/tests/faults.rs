//! Every fault kind and scope, over real HTTP.

mod common;

use std::time::{Duration, Instant, SystemTime};

use common::{batch, simulator, try_upsert, upsert, user};
use hardal_insider_simulator::{Fault, FaultError, RetryAfterSpec, Scope, Simulator};

fn one_user() -> String {
    batch(&[user(0)])
}

#[test]
fn too_many_requests_with_and_without_retry_after() {
    let sim = simulator();
    let fixed = httpdate::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
    let cases: &[(&str, Option<RetryAfterSpec>, Option<&str>)] = &[
        ("absent", None, None),
        ("seconds", Some(RetryAfterSpec::Seconds(3)), Some("3")),
        (
            "fixed date",
            Some(RetryAfterSpec::HttpDate(fixed)),
            Some("Sun, 06 Nov 1994 08:49:37 GMT"),
        ),
    ];
    for (name, retry_after, header) in cases {
        sim.inject(
            Fault::TooManyRequests {
                retry_after: *retry_after,
            },
            Scope::Next(1),
        )
        .unwrap();
        let reply = upsert(&sim, &one_user());
        assert_eq!(reply.status, 429, "{name}");
        assert_eq!(
            reply.body, r#"{"error":"rejected: too many requests"}"#,
            "{name}"
        );
        assert_eq!(reply.header("retry-after"), *header, "{name}");
    }

    // A relative date is rendered when the answer is made, so it lies in the future.
    sim.inject(
        Fault::TooManyRequests {
            retry_after: Some(RetryAfterSpec::HttpDateInSeconds(60)),
        },
        Scope::Next(1),
    )
    .unwrap();
    let reply = upsert(&sim, &one_user());
    let at = httpdate::parse_http_date(reply.header("retry-after").expect("header")).unwrap();
    let ahead = at.duration_since(SystemTime::now()).expect("in the future");
    assert!(
        ahead > Duration::from_secs(50) && ahead <= Duration::from_secs(61),
        "{ahead:?}"
    );
    assert!(sim.accepted_users().is_empty());
}

#[test]
fn server_errors_answer_their_status() {
    let sim = simulator();
    let cases: &[(u16, &str)] = &[
        (500, r#"{"error":"Internal Server Error"}"#),
        (502, r#"{"error":"Bad Gateway"}"#),
        (503, r#"{"error":"Service Unavailable"}"#),
        (504, r#"{"error":"Gateway Timeout"}"#),
        (520, "error code: 520"),
        (521, "error code: 521"),
        (522, "error code: 522"),
        (523, "error code: 523"),
        (524, "error code: 524"),
    ];
    for (status, body) in cases {
        sim.inject(Fault::ServerError { status: *status }, Scope::Next(1))
            .unwrap();
        let reply = upsert(&sim, &one_user());
        assert_eq!((reply.status, reply.body.as_str()), (*status, *body));
    }
    assert!(sim.accepted_users().is_empty());
    assert_eq!(sim.stats().requests, cases.len() as u64);
}

#[test]
fn unauthorized_ignores_right_credentials() {
    let sim = simulator();
    sim.inject(Fault::Unauthorized, Scope::Next(1)).unwrap();
    assert_eq!(upsert(&sim, &one_user()).status, 401);
    assert_eq!(upsert(&sim, &one_user()).status, 200);
    assert_eq!(sim.accepted_users().len(), 1);
}

#[test]
fn drop_closes_the_connection_without_an_answer() {
    let sim = simulator();
    sim.inject(Fault::Drop, Scope::Next(1)).unwrap();
    let error = try_upsert(&sim, &one_user()).expect_err("no response");
    assert!(
        matches!(
            error.kind(),
            std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset
        ),
        "{error}"
    );
    assert!(sim.accepted_users().is_empty());
    let log = sim.requests();
    assert_eq!(log.len(), 1);
    assert_eq!((log[0].status, log[0].fault), (None, Some("drop")));
    // The request was read in full before the connection was cut.
    assert_eq!(log[0].body_bytes, one_user().len());
    assert_eq!(sim.stats().dropped, 1);
    assert_eq!(upsert(&sim, &one_user()).status, 200);
}

#[test]
fn slow_answers_normally_after_the_delay() {
    let sim = simulator();
    let delay = Duration::from_millis(300);
    sim.inject(Fault::Slow { delay }, Scope::Next(1)).unwrap();
    let started = Instant::now();
    let reply = upsert(&sim, &one_user());
    assert!(started.elapsed() >= delay, "{:?}", started.elapsed());
    assert_eq!(
        reply.body,
        r#"{"data":{"successful":{"count":1},"fail":{}}}"#
    );
    assert_eq!(sim.accepted_users().len(), 1);
    assert_eq!(sim.requests()[0].fault, Some("slow"));
}

#[test]
fn next_n_applies_to_exactly_n_requests_then_clears_itself() {
    let sim = simulator();
    sim.inject(Fault::ServerError { status: 503 }, Scope::Next(2))
        .unwrap();
    let statuses: Vec<u16> = (0..4).map(|_| upsert(&sim, &one_user()).status).collect();
    assert_eq!(statuses, [503, 503, 200, 200]);
    assert_eq!(sim.accepted_users().len(), 2);
}

#[test]
fn faults_apply_in_injection_order() {
    let sim = simulator();
    sim.inject(Fault::ServerError { status: 502 }, Scope::Next(1))
        .unwrap();
    sim.inject(Fault::Unauthorized, Scope::Next(2)).unwrap();
    let statuses: Vec<u16> = (0..4).map(|_| upsert(&sim, &one_user()).status).collect();
    assert_eq!(statuses, [502, 401, 401, 200]);
}

/// Statuses of `n` requests against a fresh simulator with one fractional fault.
fn fraction_run(fraction: f64, seed: u64, n: usize) -> (Vec<u16>, usize) {
    let sim = simulator();
    sim.inject(
        Fault::TooManyRequests { retry_after: None },
        Scope::Fraction { fraction, seed },
    )
    .unwrap();
    let statuses = (0..n).map(|_| upsert(&sim, &one_user()).status).collect();
    (statuses, sim.accepted_users().len())
}

#[test]
fn fractions_are_reproducible_by_seed() {
    let (first, accepted) = fraction_run(0.5, 42, 60);
    let (again, _) = fraction_run(0.5, 42, 60);
    let (other, _) = fraction_run(0.5, 43, 60);
    assert_eq!(first, again, "same seed, same faults");
    assert_ne!(first, other, "another seed, other faults");
    let faulted = first.iter().filter(|s| **s == 429).count();
    assert!((15..=45).contains(&faulted), "{faulted} of 60");
    assert_eq!(accepted, 60 - faulted, "faulted requests record nothing");
    assert!(first.iter().all(|s| *s == 429 || *s == 200));

    let cases = [(0.0, 0), (1.0, 20)];
    for (fraction, expected) in cases {
        let (statuses, _) = fraction_run(fraction, 1, 20);
        assert_eq!(
            statuses.iter().filter(|s| **s == 429).count(),
            expected,
            "{fraction}"
        );
    }
}

#[test]
fn clearing_removes_every_fault() {
    let sim = simulator();
    sim.inject(Fault::Unauthorized, Scope::Always).unwrap();
    sim.inject(
        Fault::Drop,
        Scope::Fraction {
            fraction: 1.0,
            seed: 9,
        },
    )
    .unwrap();
    assert_eq!(upsert(&sim, &one_user()).status, 401);
    assert_eq!(upsert(&sim, &one_user()).status, 401);
    sim.clear_faults();
    assert_eq!(upsert(&sim, &one_user()).status, 200);
}

#[test]
fn faults_that_cannot_happen_are_refused() {
    let sim: Simulator = simulator();
    let cases = [
        (
            Fault::ServerError { status: 501 },
            Scope::Always,
            FaultError::Status(501),
        ),
        (Fault::Drop, Scope::Next(0), FaultError::EmptyNext),
        (
            Fault::Drop,
            Scope::Fraction {
                fraction: -0.1,
                seed: 0,
            },
            FaultError::Fraction(-0.1),
        ),
    ];
    for (fault, scope, error) in cases {
        assert_eq!(sim.inject(fault, scope), Err(error));
    }
    assert_eq!(upsert(&sim, &one_user()).status, 200);
}
