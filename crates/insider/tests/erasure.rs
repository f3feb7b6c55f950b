//! Erasure requests as data: a configuration and the identifiers of `hardal forget` in, the
//! requests Insider gets (method, URL, header names, body) out.

use expect_test::{Expect, expect};
use hardal_core::Destination;
use hardal_core::erasure::{Erasure, Identifiers};
use hardal_insider::{Insider, InsiderConfig};
use serde_json::{Value, json};

fn who(user_id: &[&str], email: &[&str], phone: &[&str], custom: &[(&str, &str)]) -> Identifiers {
    let strings = |s: &[&str]| s.iter().map(|v| v.to_string()).collect();
    Identifiers {
        user_id: strings(user_id),
        email: strings(email),
        phone: strings(phone),
        custom: custom
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

fn check(extra: Value, who: &Identifiers, expected: Expect) {
    let mut config = json!({
        "partner_name": "mybrand",
        "request_token": "s3cr3t",
        "identifiers": ["email", "phone_number", "uuid", "hardal_id"],
        "phone_country_code": "90",
    });
    config
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let config: InsiderConfig = serde_json::from_value(config).expect("a valid configuration");
    let destination = Insider::build("insider", config).expect("builds");
    let actual = match destination.erasure(who) {
        Erasure::Requests(requests) => {
            let mut out = format!(
                "{} a minute\n",
                destination.erasure_requests_per_minute().unwrap()
            );
            for r in requests {
                let headers: Vec<String> = r
                    .request
                    .headers
                    .iter()
                    .map(|(name, value)| match name.as_str() {
                        "X-REQUEST-TOKEN" => format!("{name}: [secret]"),
                        _ => format!("{name}: {}", value.expose()),
                    })
                    .collect();
                out.push_str(&format!(
                    "{}: {} {}\n  {}\n  {}\n",
                    r.what,
                    r.request.method.as_str(),
                    r.request.url,
                    headers.join(", "),
                    String::from_utf8(r.request.body).unwrap()
                ));
            }
            out
        }
        Erasure::Unsupported { how } => format!("unsupported: {how}\n"),
    };
    expected.assert_eq(&actual);
}

#[test]
fn delete_by_default_one_request_per_identifier() {
    check(
        json!({}),
        &who(
            &["u42"],
            &[" Ada@Example.com "],
            &["0532 123 45 67", "+90 532 123 45 67"],
            &[("user.hardal_id", "H-1"), ("properties.loyalty", "L-9")],
        ),
        expect![[r#"
            10000 a minute
            delete user profile by uuid: POST https://unification.useinsider.com/api/user/v1/delete
              Content-Type: application/json, X-PARTNER-NAME: mybrand, X-REQUEST-TOKEN: [secret]
              {"identifiers":{"uuid":"u42"}}
            delete user profile by email: POST https://unification.useinsider.com/api/user/v1/delete
              Content-Type: application/json, X-PARTNER-NAME: mybrand, X-REQUEST-TOKEN: [secret]
              {"identifiers":{"email":"Ada@Example.com"}}
            delete user profile by email: POST https://unification.useinsider.com/api/user/v1/delete
              Content-Type: application/json, X-PARTNER-NAME: mybrand, X-REQUEST-TOKEN: [secret]
              {"identifiers":{"email":"ada@example.com"}}
            delete user profile by phone_number: POST https://unification.useinsider.com/api/user/v1/delete
              Content-Type: application/json, X-PARTNER-NAME: mybrand, X-REQUEST-TOKEN: [secret]
              {"identifiers":{"phone_number":"+905321234567"}}
            delete user profile by custom identifier hardal_id: POST https://unification.useinsider.com/api/user/v1/delete
              Content-Type: application/json, X-PARTNER-NAME: mybrand, X-REQUEST-TOKEN: [secret]
              {"identifiers":{"custom":{"hardal_id":"H-1"}}}
        "#]],
    );
}

#[test]
fn anonymize_goes_beside_a_test_endpoint() {
    check(
        json!({"erasure": "anonymize", "endpoint": "http://127.0.0.1:8089/api/user/v1/upsert"}),
        &who(&[], &["ada@example.com"], &[], &[]),
        expect![[r#"
            500 a minute
            anonymize user by email: POST http://127.0.0.1:8089/api/user/v1/anonymize
              Content-Type: application/json, X-PARTNER-NAME: mybrand, X-REQUEST-TOKEN: [secret]
              {"identifiers":{"email":"ada@example.com"}}
        "#]],
    );
}

#[test]
fn what_insider_cannot_find_a_user_by_is_said() {
    check(
        json!({}),
        &who(&[], &[], &["12"], &[("properties.loyalty", "L-9")]),
        expect![[r#"
            unsupported: Insider finds users by uuid (--user-id), email, phone_number (E.164, or national with phone_country_code) or a custom identifier of the account (hardal_id); none of the given identifiers is one: erase the user in Insider's panel, or give one of those
        "#]],
    );
    check(
        json!({"endpoint": "https://proxy.example/insider"}),
        &who(&["u42"], &[], &[], &[]),
        expect![[r#"
            unsupported: the `endpoint` does not end in /upsert, so hardal cannot tell where Insider's delete API is: erase the user in Insider's panel or with `POST https://unification.useinsider.com/api/user/v1/delete`
        "#]],
    );
}
