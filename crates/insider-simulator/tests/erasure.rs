//! Insider's erasure endpoints over real HTTP: what each answers, what the simulator forgets, their
//! rate limits, faults aimed at them, a request held open, and the control API that shows it.

mod common;

use std::time::{Duration, Instant};

use common::{PARTNER, TOKEN, batch, send, simulator, upsert};
use hardal_insider_simulator::{
    ANONYMIZE_PATH, DELETE_PATH, Endpoint, ErasureLimits, Fault, Scope, Simulator, SimulatorConfig,
};
use serde_json::{Value, json};

fn erase(sim: &Simulator, path: &str, body: Value) -> (u16, String) {
    let reply = send(
        sim.addr(),
        "POST",
        path,
        &[
            ("X-PARTNER-NAME", PARTNER),
            ("X-REQUEST-TOKEN", TOKEN),
            ("Content-Type", "application/json"),
        ],
        body.to_string().as_bytes(),
    )
    .expect("simulator answers");
    (reply.status, reply.body)
}

fn control(sim: &Simulator, method: &str, path: &str) -> Value {
    let reply = send(sim.addr(), method, path, &[], b"").expect("simulator answers");
    assert!(reply.status < 300, "{path}: {reply:?}");
    if reply.body.is_empty() {
        Value::Null
    } else {
        reply.json()
    }
}

/// Ada, first seen by email alone with one event, then known by uuid and email with two more
/// (Insider unifies them into one profile: the first record is found only through the second);
/// Bob, by uuid, with one event.
fn two_users(sim: &Simulator) {
    let event = |name: &str| json!({"event_name": name, "timestamp": "2026-12-01T10:00:00Z"});
    let reply = upsert(
        sim,
        &batch(&[
            json!({"identifiers": {"email": "ada@example.com"}, "events": [event("search")]}),
        ]),
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    let reply = upsert(
        sim,
        &batch(&[
            json!({"identifiers": {"uuid": "u1", "email": "ada@example.com", "phone_number": "+905321234567"},
                   "attributes": {"name": "Ada", "surname": "Lovelace", "country": "TR", "email_optin": true},
                   "events": [event("login"), event("page_view")]}),
            json!({"identifiers": {"uuid": "u2"}, "attributes": {"name": "Bob"},
                   "events": [event("login")]}),
        ]),
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
}

/// Who the simulator has, as `field=value: users/events` lines.
fn presence(sim: &Simulator) -> String {
    [
        ("uuid", "u1"),
        ("email", "ada@example.com"),
        ("phone_number", "+905321234567"),
        ("uuid", "u2"),
    ]
    .iter()
    .map(|(field, value)| {
        let p = sim.presence(field, value);
        format!("{field}={value}: {}/{}", p.users, p.events)
    })
    .collect::<Vec<_>>()
    .join(", ")
}

#[test]
fn delete_forgets_the_whole_profile_and_nothing_else() {
    let sim = simulator();
    two_users(&sim);
    assert_eq!(
        presence(&sim),
        "uuid=u1: 1/2, email=ada@example.com: 2/3, phone_number=+905321234567: 1/2, uuid=u2: 1/1"
    );
    // Asked by uuid alone, the delete also takes what Ada sent earlier by email only.
    assert_eq!(
        erase(&sim, DELETE_PATH, json!({"identifiers": {"uuid": "u1"}})),
        (200, "{}".to_owned())
    );
    assert_eq!(
        presence(&sim),
        "uuid=u1: 0/0, email=ada@example.com: 0/0, phone_number=+905321234567: 0/0, uuid=u2: 1/1"
    );
    assert_eq!(sim.stats().events_unique, Some(1));
    // Deleting a user that is gone is answered the same way.
    assert_eq!(
        erase(
            &sim,
            DELETE_PATH,
            json!({"identifiers": {"email": "ada@example.com"}})
        ),
        (200, "{}".to_owned())
    );
    let log: Vec<String> = sim
        .erasures()
        .iter()
        .map(|e| {
            format!(
                "{} {} {:?} by {:?} found {:?}",
                e.number, e.endpoint, e.status, e.by, e.found
            )
        })
        .collect();
    assert_eq!(
        log,
        [
            "1 delete Some(200) by [\"uuid\"] found Some(true)",
            "2 delete Some(200) by [\"email\"] found Some(false)",
        ]
    );
}

#[test]
fn anonymize_removes_personal_data_and_keeps_an_anonymous_profile() {
    let sim = simulator();
    two_users(&sim);
    assert_eq!(
        erase(
            &sim,
            ANONYMIZE_PATH,
            json!({"identifiers": {"email": "ada@example.com"}})
        ),
        (200, "{}".to_owned())
    );
    assert_eq!(
        presence(&sim),
        "uuid=u1: 1/2, email=ada@example.com: 0/0, phone_number=+905321234567: 0/0, uuid=u2: 1/1"
    );
    let ada = sim
        .accepted_users()
        .into_iter()
        .find(|u| u.user["identifiers"]["uuid"] == "u1")
        .expect("the profile stays");
    assert_eq!(
        ada.user["identifiers"],
        json!({"uuid": "u1"}),
        "email and phone number are gone"
    );
    assert_eq!(
        ada.user["attributes"],
        json!({"email_optin": true}),
        "PII attributes are gone"
    );
    // Nobody has that email any more: Insider's documented 404.
    assert_eq!(
        erase(
            &sim,
            ANONYMIZE_PATH,
            json!({"identifiers": {"email": "ada@example.com"}})
        ),
        (
            404,
            r#"{"error":"no such user for these identifiers: no data"}"#.to_owned()
        )
    );
}

#[test]
fn credentials_and_bodies_are_checked() {
    let sim = simulator();
    let wrong_token = send(
        sim.addr(),
        "POST",
        DELETE_PATH,
        &[
            ("X-PARTNER-NAME", PARTNER),
            ("X-REQUEST-TOKEN", "nope"),
            ("Content-Type", "application/json"),
        ],
        br#"{"identifiers":{"uuid":"u1"}}"#,
    )
    .unwrap();
    assert_eq!(
        (wrong_token.status, wrong_token.body.as_str()),
        (
            403,
            r#"{"success":false,"message":"Access Denied. You do not have sufficient access to perform this action."}"#
        )
    );
    for (body, expected) in [
        (
            json!({}),
            r#"{"error":"identifiers must be defined: bad request"}"#,
        ),
        (
            json!({"identifiers": {}}),
            r#"{"error":"identifiers must be defined: bad request"}"#,
        ),
        (
            json!({"identifiers": {"phone_number": "0532 123 45 67"}}),
            r#"{"error":"identifier phone_number is invalid: bad request"}"#,
        ),
        (
            json!({"identifiers": {"user_id": "u1"}}),
            r#"{"error":"user_id is not an identifier: bad request"}"#,
        ),
        (
            json!({"identifiers": {"custom": {"hardal_id": 7}}}),
            r#"{"error":"custom identifier hardal_id must be a string: bad request"}"#,
        ),
    ] {
        assert_eq!(
            erase(&sim, DELETE_PATH, body.clone()),
            (400, expected.to_owned()),
            "{body}"
        );
    }
    assert_eq!(
        erase(
            &sim,
            DELETE_PATH,
            json!({"identifiers": {"custom": {"hardal_id": "H-1"}}})
        )
        .0,
        200
    );
}

#[test]
fn each_endpoint_has_its_own_rate_limit() {
    let sim = Simulator::start(SimulatorConfig {
        erasure_limits: ErasureLimits {
            delete_per_minute: 3,
            anonymize_per_minute: 2,
        },
        ..SimulatorConfig::new(PARTNER, TOKEN)
    })
    .unwrap();
    let statuses = |path: &str, n: usize| -> Vec<u16> {
        (0..n)
            .map(|_| erase(&sim, path, json!({"identifiers": {"uuid": "u1"}})).0)
            .collect()
    };
    // Anonymize answers 404 here (nobody to anonymize) until its limit is reached.
    assert_eq!(statuses(ANONYMIZE_PATH, 3), [404, 404, 429]);
    assert_eq!(statuses(DELETE_PATH, 4), [200, 200, 200, 429]);
    let (status, body) = erase(&sim, DELETE_PATH, json!({"identifiers": {"uuid": "u1"}}));
    assert_eq!(
        (status, body.as_str()),
        (429, r#"{"error":"rejected: too many requests"}"#)
    );
    // Upserts are not counted against either.
    assert_eq!(upsert(&sim, &batch(&[common::user(1)])).status, 200);
}

#[test]
fn faults_can_be_aimed_at_an_erasure_endpoint() {
    let sim = simulator();
    sim.inject_at(
        Fault::ServerError { status: 503 },
        Scope::Next(1),
        &[Endpoint::Delete],
    )
    .unwrap();
    // The upsert and the anonymize are not the fault's; the delete is.
    assert_eq!(upsert(&sim, &batch(&[common::user(1)])).status, 200);
    assert_eq!(
        erase(&sim, ANONYMIZE_PATH, json!({"identifiers": {"uuid": "u9"}})).0,
        404
    );
    assert_eq!(
        erase(&sim, DELETE_PATH, json!({"identifiers": {"uuid": "u1"}})).0,
        503
    );
    assert!(
        sim.has_user("uuid", "u1"),
        "a faulted delete forgets nothing"
    );
    assert_eq!(
        erase(&sim, DELETE_PATH, json!({"identifiers": {"uuid": "u1"}})).0,
        200
    );
    assert!(!sim.has_user("uuid", "u1"));
    // Through the control API, a fault for every endpoint reaches erasures too.
    let reply = send(
        sim.addr(),
        "POST",
        "/_simulator/faults",
        &[],
        br#"{"fault":{"kind":"unauthorized"},"next":1}"#,
    )
    .unwrap();
    assert_eq!(reply.status, 204);
    assert_eq!(
        erase(&sim, DELETE_PATH, json!({"identifiers": {"uuid": "u1"}})).0,
        401
    );
    let reply = send(
        sim.addr(),
        "POST",
        "/_simulator/faults",
        &[],
        br#"{"fault":{"kind":"server_error","status":502},"endpoints":["anonymize"],"next":1}"#,
    )
    .unwrap();
    assert_eq!(reply.status, 204);
    assert_eq!(
        erase(&sim, DELETE_PATH, json!({"identifiers": {"uuid": "u1"}})).0,
        200
    );
    assert_eq!(
        erase(&sim, ANONYMIZE_PATH, json!({"identifiers": {"uuid": "u1"}})).0,
        502
    );
}

/// Waits until `ready` holds, a state the test caused; gives up after 10 seconds.
fn wait_for(what: &str, ready: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_held_delete_stays_open_until_released() {
    let sim = simulator();
    two_users(&sim);
    sim.inject_at(Fault::Hold, Scope::Next(1), &[Endpoint::Delete])
        .unwrap();
    let addr = sim.addr();
    let sender = std::thread::spawn(move || {
        send(
            addr,
            "POST",
            DELETE_PATH,
            &[
                ("X-PARTNER-NAME", PARTNER),
                ("X-REQUEST-TOKEN", TOKEN),
                ("Content-Type", "application/json"),
            ],
            br#"{"identifiers":{"uuid":"u1"}}"#,
        )
    });
    wait_for("the delete to be held", || sim.held() == 1);
    assert_eq!(control(&sim, "GET", "/_simulator/held"), json!({"held": 1}));
    // Held: not answered, and nothing forgotten yet.
    assert!(!sender.is_finished());
    assert_eq!(
        control(&sim, "GET", "/_simulator/user?uuid=u1"),
        json!({"found": true, "users": 1, "events": 2})
    );
    control(&sim, "POST", "/_simulator/release");
    let reply = sender.join().unwrap().expect("answered after the release");
    assert_eq!((reply.status, reply.body.as_str()), (200, "{}"));
    assert_eq!(sim.held(), 0);
    assert_eq!(
        control(&sim, "GET", "/_simulator/user?email=ada@example.com"),
        json!({"found": false, "users": 0, "events": 0})
    );
    let erasures = control(&sim, "GET", "/_simulator/erasures");
    assert_eq!(erasures.as_array().map(Vec::len), Some(1), "{erasures}");
    assert_eq!(erasures[0]["fault"], "hold");
    assert_eq!(erasures[0]["by"], json!(["uuid"]));
    // No identifier value is kept in the log.
    assert!(!erasures.to_string().contains("u1"), "{erasures}");
}

#[test]
fn clearing_faults_and_resetting_release_held_requests() {
    let sim = simulator();
    for release in ["DELETE /_simulator/faults", "POST /_simulator/reset"] {
        sim.inject(Fault::Hold, Scope::Next(1)).unwrap();
        let addr = sim.addr();
        let sender = std::thread::spawn(move || {
            send(
                addr,
                "POST",
                DELETE_PATH,
                &[
                    ("X-PARTNER-NAME", PARTNER),
                    ("X-REQUEST-TOKEN", TOKEN),
                    ("Content-Type", "application/json"),
                ],
                br#"{"identifiers":{"uuid":"u1"}}"#,
            )
        });
        wait_for("the delete to be held", || sim.held() == 1);
        let (method, path) = release.split_once(' ').unwrap();
        control(&sim, method, path);
        assert_eq!(sender.join().unwrap().unwrap().status, 200, "{release}");
    }
}
