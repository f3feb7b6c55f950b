//! The custom_api erasure request as data: an `erasure` block and identifiers in, the requests
//! (method, URL, header names, body) out; without the block, what the operator must do.

use expect_test::{Expect, expect};
use hardal_core::Destination;
use hardal_core::erasure::{Erasure, Identifiers};
use hardal_custom_api::{CustomApi, CustomApiConfig};
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

fn config(erasure: Option<Value>) -> Value {
    let mut config = json!({
        "endpoint_url": "https://api.example.com/events",
        "headers": {"Authorization": "Bearer event-token"},
        "request_format": {"event": "##event_name##"},
    });
    if let Some(erasure) = erasure {
        config["erasure"] = erasure;
    }
    config
}

fn check(config: Value, who: &Identifiers, expected: Expect) {
    let config: CustomApiConfig = serde_json::from_value(config).unwrap();
    let destination = CustomApi::build("crm", config).unwrap();
    let actual = match destination.erasure(who) {
        Erasure::Requests(requests) => requests
            .into_iter()
            .map(|r| {
                let names: Vec<&str> = r.request.headers.iter().map(|(n, _)| n.as_str()).collect();
                format!(
                    "{}: {} {} [{}]\n  {}\n",
                    r.what,
                    r.request.method.as_str(),
                    r.request.url,
                    names.join(", "),
                    String::from_utf8(r.request.body).unwrap()
                )
            })
            .collect(),
        Erasure::Unsupported { how } => format!("unsupported: {how}\n"),
    };
    expected.assert_eq(&actual);
}

#[test]
fn one_request_per_identifier_set() {
    check(
        config(Some(json!({
            "endpoint_url": "https://api.example.com/gdpr/erase",
            "request_method": "DELETE",
            "headers": {"X-Api-Key": "erase-key"},
            "request_format": {"user": "##user_id##", "email": "##email | lower##",
                               "phone": "##phone##", "loyalty": "##custom.properties.loyalty_id##",
                               "also": "##custom.\"properties.loyalty_id\"##"}
        }))),
        &who(
            &["u42", "u43"],
            &[" Ada@Example.com"],
            &[],
            &[("properties.loyalty_id", "L-9")],
        ),
        expect![[r#"
            erasure request by user_id, email, custom: DELETE https://api.example.com/gdpr/erase [Content-Type, X-Api-Key]
              {"user":"u42","email":"ada@example.com","loyalty":"L-9","also":"L-9"}
            erasure request by user_id, custom: DELETE https://api.example.com/gdpr/erase [Content-Type, X-Api-Key]
              {"user":"u43","loyalty":"L-9","also":"L-9"}
        "#]],
    );
}

#[test]
fn the_destination_headers_serve_when_the_block_names_none() {
    check(
        config(Some(json!({
            "endpoint_url": "https://api.example.com/gdpr/erase",
            "request_format": {"email": "##email##"}
        }))),
        &who(&["u42"], &["ada@example.com"], &[], &[]),
        expect![[r#"
            erasure request by user_id, email: POST https://api.example.com/gdpr/erase [Content-Type, Authorization]
              {"email":"ada@example.com"}
        "#]],
    );
    // A template that reads nothing given renders nothing: no request, and the how says why.
    check(
        config(Some(json!({
            "endpoint_url": "https://api.example.com/gdpr/erase",
            "request_format": {"email": "##email##"}
        }))),
        &who(&["u42"], &[], &[], &[]),
        expect![[r#"
            unsupported: the `erasure.request_format` of this custom_api destination renders nothing from the given identifiers (it reads ##user_id##, ##email##, ##phone## or ##custom.KEY##): erase the user in the receiving system, or give the identifiers it reads
        "#]],
    );
}

#[test]
fn without_an_erasure_block_the_how_is_said() {
    check(
        config(None),
        &who(&["u42"], &[], &[], &[]),
        expect![[r#"
            unsupported: custom_api `crm` has no `erasure` request: erase the user in the receiving system by the identifiers it received (user_id, user.email, user.phone), or add an `erasure` block ({"endpoint_url", "request_method", "headers", "request_format"} with ##user_id##, ##email##, ##phone##, ##custom.KEY##)
        "#]],
    );
}

#[test]
fn erasure_block_problems_are_located() {
    let config: CustomApiConfig = serde_json::from_value(config(Some(json!({
        "endpoint_url": "ftp://api.example.com/erase",
        "headers": {"Bad Header": "x"},
        "request_format": {"email": "##email | nope##"}
    }))))
    .unwrap();
    let errors = CustomApi::build("crm", config).unwrap_err();
    let pointers: Vec<&str> = errors.iter().map(|e| e.pointer.as_str()).collect();
    assert_eq!(
        pointers,
        [
            "/erasure/endpoint_url",
            "/erasure/request_format/email",
            "/erasure/headers/Bad Header"
        ],
        "{errors:?}"
    );
}
