//! Insider's field rules as data: a rendered user object in, what is sent (or why not) out.

use expect_test::{Expect, expect};
use hardal_insider::{Checked, RuleSettings, check_user};
use serde_json::{Value, json};

fn settings() -> RuleSettings {
    RuleSettings {
        standard_identifiers: vec!["email".into(), "phone_number".into(), "uuid".into()],
        custom_identifiers: vec!["hardal_id".into()],
        not_append: true,
        phone_country_code: None,
    }
}

/// Prints one line per user: the compact user object, `nothing: reason` or `rejected: reason`.
fn check_with(settings: &RuleSettings, users: &[Value], expected: Expect) {
    let mut actual = String::new();
    for user in users {
        let line = match check_user(user.clone(), settings) {
            Ok(Checked::User(user)) => Value::Object(user).to_string(),
            Ok(Checked::Nothing(reason)) => format!("nothing: {reason}"),
            Err(reason) => format!("rejected: {reason}"),
        };
        actual.push_str(&line);
        actual.push('\n');
    }
    expected.assert_eq(&actual);
}

fn check(users: &[Value], expected: Expect) {
    check_with(&settings(), users, expected)
}

#[test]
fn identifiers() {
    check(
        &[
            json!({"identifiers": {"uuid": 12345}, "events": [{"event_name": "x", "timestamp": 1734601539}]}),
            json!({"identifiers": {"email": " a@b.co ", "phone_number": "+90 (532) 123-45-67"}, "attributes": {"name": "A"}}),
            json!({"identifiers": {"phone_number": "0090 532 123 45 67"}, "attributes": {"name": "A"}}),
            json!({"identifiers": {"email": "not-an-email"}, "attributes": {"name": "A"}}),
            json!({"identifiers": {"phone_number": "0532 123 45 67"}, "attributes": {"name": "A"}}),
            json!({"identifiers": {"phone_number": "+0532"}, "attributes": {"name": "A"}}),
            json!({"identifiers": {"uuid": "", "email": null}, "attributes": {"name": "A"}}),
            json!({"identifiers": {"custom": {"hardal_id": 7, "crm_id": "c1"}}, "attributes": {"name": "A"}}),
            json!({"identifiers": {"hardal_id": "h1"}, "attributes": {"name": "A"}}),
            json!({"identifiers": {"device_id": "d1"}, "attributes": {"name": "A"}}),
            json!({"insider_id": "ins-1", "attributes": {"name": "A"}}),
        ],
        expect![[r#"
            {"identifiers":{"uuid":"12345"},"events":[{"event_name":"x","timestamp":"2024-12-19T09:45:39Z"}],"not_append":true}
            {"identifiers":{"email":"a@b.co","phone_number":"+905321234567"},"attributes":{"name":"A"},"not_append":true}
            {"identifiers":{"phone_number":"+905321234567"},"attributes":{"name":"A"},"not_append":true}
            rejected: identifiers.email: "not-an-email" is not an email address (Insider: ^.+@.+\..+$)
            rejected: identifiers.phone_number: "0532 123 45 67" is not an E.164 phone number with country code (Insider: ^\+[1-9]\d{6,14}$)
            rejected: identifiers.phone_number: "+0532" is not an E.164 phone number with country code (Insider: ^\+[1-9]\d{6,14}$)
            nothing: no identifier to send (email, phone_number, uuid or a configured custom identifier)
            {"identifiers":{"custom":{"hardal_id":"7"}},"attributes":{"name":"A"},"not_append":true}
            {"identifiers":{"custom":{"hardal_id":"h1"}},"attributes":{"name":"A"},"not_append":true}
            rejected: identifiers.device_id: not an Insider identifier (email, phone_number, uuid, custom) nor a configured custom identifier
            {"insider_id":"ins-1","attributes":{"name":"A"},"not_append":true}
        "#]],
    );
}

#[test]
fn national_phone_numbers_with_a_configured_country_code() {
    let settings = RuleSettings {
        phone_country_code: Some("90".into()),
        ..settings()
    };
    check_with(
        &settings,
        &[
            json!({"identifiers": {"phone_number": "0532 123 45 67"}, "attributes": {"sms_optin": "1"}}),
            json!({"identifiers": {"phone_number": "+44 20 7946 0958"}, "attributes": {"sms_optin": 0}}),
        ],
        expect![[r#"
            {"identifiers":{"phone_number":"+905321234567"},"attributes":{"sms_optin":true},"not_append":true}
            {"identifiers":{"phone_number":"+442079460958"},"attributes":{"sms_optin":false},"not_append":true}
        "#]],
    );
}

#[test]
fn only_configured_identifiers_are_sent() {
    let settings = RuleSettings {
        standard_identifiers: vec!["uuid".into()],
        custom_identifiers: vec![],
        ..settings()
    };
    check_with(
        &settings,
        &[
            json!({"identifiers": {"email": "a@b.co", "uuid": "u1", "custom": {"hardal_id": "u1"}}, "attributes": {"name": "A"}}),
        ],
        expect![[r#"
            {"identifiers":{"uuid":"u1"},"attributes":{"name":"A"},"not_append":true}
        "#]],
    );
}

#[test]
fn attributes_are_coerced_to_insider_types() {
    check(
        &[
            json!({"identifiers": {"uuid": "u"}, "attributes": {
                "email_optin": "true", "sms_optin": "0", "whatsapp_optin": "yes", "gdpr_optin": false,
                "name": "Zoë", "surname": "", "age": "41", "birthday": "1993-03-12",
                "language": "en-US", "country": "tr", "city": 34, "list_id": ["1", 2],
                "favourite_colour": "blue", "custom": {"source": "hardal", "tier": 2, "nested": {"x": 1}}
            }}),
            json!({"identifiers": {"uuid": "u"}, "attributes": {"birthday": 731894400}}),
            json!({"identifiers": {"uuid": "u"}, "attributes": {"name": null, "surname": " "}}),
            json!({"identifiers": {"uuid": "u"}, "attributes": {"email_optin": "maybe"}}),
            json!({"identifiers": {"uuid": "u"}, "attributes": {"language": "english"}}),
            json!({"identifiers": {"uuid": "u"}, "attributes": {"country": "Turkey"}}),
            json!({"identifiers": {"uuid": "u"}, "attributes": {"age": "forty"}}),
            json!({"identifiers": {"uuid": "u"}, "attributes": {"birthday": "12/03/1993"}}),
        ],
        expect![[r#"
            {"identifiers":{"uuid":"u"},"attributes":{"email_optin":true,"sms_optin":false,"whatsapp_optin":true,"gdpr_optin":false,"name":"Zoë","age":41,"birthday":"1993-03-12T00:00:00Z","language":"en_US","country":"TR","city":"34","list_id":[1,2],"custom":{"source":"hardal","tier":2,"favourite_colour":"blue"}},"not_append":true}
            {"identifiers":{"uuid":"u"},"attributes":{"birthday":"1993-03-12T00:00:00Z"},"not_append":true}
            nothing: neither attributes nor events to send
            rejected: attributes.email_optin: "maybe" is not a boolean
            rejected: attributes.language: "english" is not a language locale such as en_US
            rejected: attributes.country: "Turkey" is not an ISO 3166-1 alpha-2 country code
            rejected: attributes.age: "forty" is not a number
            rejected: attributes.birthday: "12/03/1993" is not an RFC 3339 date-time or epoch time
        "#]],
    );
}

#[test]
fn events_are_normalized_and_purchase_parameters_required() {
    check(
        &[
            json!({"identifiers": {"uuid": "u"}, "events": [{"event_name": "Order Completed", "timestamp": "2024-12-19T12:45:39+03:00",
                "event_params": {"product_id": 42, "name": "Mug", "taxonomy": "Kitchen", "currency": "try", "quantity": "2",
                                 "unit_price": "60.25", "unit_sale_price": 60, "coupon": "XMAS", "custom": {"url": "https://x/", "gift": true}}}]}),
            json!({"identifiers": {"uuid": "u"}, "events": {"event_name": "purchase", "timestamp": 1734601200000i64,
                "event_params": {"event_group_id": "T1", "currency": "EUR", "unit_sale_price": "9.5", "quantity": 1.0}}}),
            json!({"identifiers": {"uuid": "u"}, "events": [{"event_name": "purchase", "timestamp": "2024-12-19T09:45:39Z",
                "event_params": {"event_group_id": "T1", "currency": "EUR", "unit_sale_price": 9.5}}]}),
            json!({"identifiers": {"uuid": "u"}, "events": [{"event_name": "cart_page_view", "timestamp": "2024-12-19T09:45:39Z",
                "event_params": {"currency": "EUR", "unit_sale_price": 9.5}}]}),
            json!({"identifiers": {"uuid": "u"}, "events": [{"event_name": "x", "timestamp": "2024-12-19T09:45:39Z",
                "event_params": {"quantity": 1.5}}]}),
            json!({"identifiers": {"uuid": "u"}, "events": [{"event_name": "x", "timestamp": "2024-12-19T09:45:39Z",
                "event_params": {"currency": "€"}}]}),
            json!({"identifiers": {"uuid": "u"}, "events": [{"event_name": "x"}]}),
            json!({"identifiers": {"uuid": "u"}, "events": [{"event_name": "  ", "timestamp": 1}]}),
            json!({"identifiers": {"uuid": "u"}, "events": [{"event_name": "_x", "timestamp": 1, "extra": 1}]}),
            json!({"identifiers": {"uuid": "u"}, "events": [], "attributes": {}}),
            json!({"identifiers": {"uuid": "u"}, "events": [{"event_name": "x", "timestamp": 1}], "segment": "a"}),
        ],
        expect![[r#"
            {"identifiers":{"uuid":"u"},"events":[{"event_name":"order_completed","timestamp":"2024-12-19T09:45:39Z","event_params":{"product_id":"42","name":"Mug","taxonomy":["Kitchen"],"currency":"TRY","quantity":2,"unit_price":60.25,"unit_sale_price":60,"url":"https://x/","custom":{"gift":true,"coupon":"XMAS"}}}],"not_append":true}
            {"identifiers":{"uuid":"u"},"events":[{"event_name":"purchase","timestamp":"2024-12-19T09:40:00Z","event_params":{"event_group_id":"T1","currency":"EUR","unit_sale_price":9.5,"quantity":1}}],"not_append":true}
            rejected: events.0.event_params.quantity: is required on a purchase event
            rejected: events.0.event_params.event_group_id: is required on a cart_page_view event
            rejected: events.0.event_params.quantity: 1.5 is not a whole number
            rejected: events.0.event_params.currency: "€" is not an ISO 4217 currency code
            rejected: events.0.timestamp: is required
            rejected: events.0.event_name: is required
            rejected: events.0.extra: not a field of an Insider event (event_name, timestamp, event_params)
            nothing: neither attributes nor events to send
            rejected: segment: not a field of an Insider user object (identifiers, attributes, events)
        "#]],
    );
}

#[test]
fn not_append_follows_the_setting() {
    let settings = RuleSettings {
        not_append: false,
        ..settings()
    };
    check_with(
        &settings,
        &[
            json!({"identifiers": {"uuid": "u"}, "attributes": {"list_id": [1]}, "not_append": true}),
        ],
        expect![[r#"
            {"identifiers":{"uuid":"u"},"attributes":{"list_id":[1]}}
        "#]],
    );
}
