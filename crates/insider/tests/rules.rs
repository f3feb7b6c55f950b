//! Insider's field rules as data: a rendered user object in, what is sent (or why not) and every
//! note (repair, left-out field, expired event) out.

use std::time::{Duration, UNIX_EPOCH};

use expect_test::{Expect, expect};
use hardal_insider::{CheckContext, Checked, Retention, RuleSettings, check_user};
use serde_json::{Value, json};

fn settings() -> RuleSettings {
    RuleSettings {
        custom_identifiers: vec!["hardal_id".into()],
        ..RuleSettings::default()
    }
}

/// 2025-01-01T00:00:00Z: a week after most test events.
const NOW: u64 = 1_735_689_600;

/// Prints one line per user: the compact user object, `nothing: reason`, `expired: rule` or
/// `rejected: reason`; then each note, indented.
fn check_with(settings: &RuleSettings, users: &[Value], expected: Expect) {
    let context = CheckContext {
        now: UNIX_EPOCH + Duration::from_secs(NOW),
        group_id: &|| "hardal-derived".to_owned(),
        notes: hardal_core::Notes::Detailed,
    };
    let mut actual = String::new();
    for user in users {
        let mut notes = Vec::new();
        let user = hardal_core::value::Value::from(user.clone());
        let line = match check_user(user, settings, &context, &mut notes) {
            Ok(Checked::User(user)) => serde_json::to_string(&user).expect("a user serializes"),
            Ok(Checked::Nothing(reason)) => format!("nothing: {reason}"),
            Ok(Checked::Expired(rule)) => format!("expired: {rule}"),
            Err(reason) => format!("rejected: {reason}"),
        };
        actual.push_str(&line);
        actual.push('\n');
        for note in notes {
            actual.push_str(&format!("    {note} [{}]\n", note.rule));
        }
    }
    expected.assert_eq(&actual);
}

fn check(users: &[Value], expected: Expect) {
    check_with(&settings(), users, expected)
}

fn rejecting() -> RuleSettings {
    RuleSettings {
        reject_invalid: true,
        ..settings()
    }
}

#[test]
fn identifiers() {
    check(
        &[
            json!({"identifiers": {"uuid": 12345}, "events": [{"event_name": "x", "timestamp": "2024-12-30T00:00:00Z"}]}),
            json!({"identifiers": {"email": " a@b.co ", "phone_number": "+90 (532) 123-45-67"}, "attributes": {"name": "A"}}),
            json!({"identifiers": {"phone_number": "0090 532 123 45 67"}, "attributes": {"name": "A"}}),
            json!({"identifiers": {"uuid": "", "email": null}, "attributes": {"name": "A"}}),
            json!({"identifiers": {"custom": {"hardal_id": 7, "crm_id": "c1"}}, "attributes": {"name": "A"}}),
            json!({"identifiers": {"hardal_id": "h1"}, "attributes": {"name": "A"}}),
            json!({"insider_id": "ins-1", "attributes": {"name": "A"}}),
        ],
        expect![[r#"
            {"identifiers":{"uuid":"12345"},"events":[{"event_name":"x","timestamp":"2024-12-30T00:00:00Z"}],"not_append":true}
                repaired identifiers.uuid: 12345 → "12345" [to text]
            {"identifiers":{"email":"a@b.co","phone_number":"+905321234567"},"attributes":{"name":"A"},"not_append":true}
                repaired identifiers.email: " a@b.co " → "a@b.co" [white space trimmed]
                repaired identifiers.phone_number: "+90 (532) 123-45-67" → "+905321234567" [to E.164]
            {"identifiers":{"phone_number":"+905321234567"},"attributes":{"name":"A"},"not_append":true}
                repaired identifiers.phone_number: "0090 532 123 45 67" → "+905321234567" [to E.164]
            nothing: no identifier to send (email, phone_number, uuid or a configured custom identifier)
            {"identifiers":{"custom":{"hardal_id":"7"}},"attributes":{"name":"A"},"not_append":true}
                repaired identifiers.custom.hardal_id: 7 → "7" [to text]
            {"identifiers":{"custom":{"hardal_id":"h1"}},"attributes":{"name":"A"},"not_append":true}
            {"insider_id":"ins-1","attributes":{"name":"A"},"not_append":true}
        "#]],
    );
}

#[test]
fn an_invalid_identifier_is_left_out_when_a_valid_one_remains() {
    check(
        &[
            // Beside a valid uuid: the email is left out of identifiers and attributes alike.
            json!({"identifiers": {"email": "not-an-email", "uuid": "u1"}, "attributes": {"email": "not-an-email", "name": "A"}}),
            json!({"identifiers": {"phone_number": "0532 123 45 67", "email": "a@b.co"}, "attributes": {"name": "A"}}),
            json!({"identifiers": {"device_id": "d1", "custom": {"hardal_id": "h1"}}, "attributes": {"name": "A"}}),
            json!({"identifiers": {"custom": {"hardal_id": {"x": 1}}, "uuid": "u1"}, "attributes": {"name": "A"}}),
            // Nothing valid would remain: refused, naming the first identifier and its rule.
            json!({"identifiers": {"email": "not-an-email"}, "attributes": {"name": "A"}}),
            json!({"identifiers": {"phone_number": "0532 123 45 67"}, "attributes": {"name": "A"}}),
            json!({"identifiers": {"phone_number": "+0532", "email": "x@y"}, "attributes": {"name": "A"}}),
            json!({"identifiers": {"device_id": "d1"}, "attributes": {"name": "A"}}),
        ],
        expect![[r#"
            {"identifiers":{"uuid":"u1"},"attributes":{"name":"A"},"not_append":true}
                dropped identifiers.email: "not-an-email" is not an email address (Insider: ^.+@.+\..+$) [not an email address]
                dropped attributes.email: "not-an-email" is not an email address (Insider: ^.+@.+\..+$) [not an email address]
            {"identifiers":{"email":"a@b.co"},"attributes":{"name":"A"},"not_append":true}
                dropped identifiers.phone_number: "0532 123 45 67" is not an E.164 phone number with country code (Insider: ^\+[1-9]\d{6,14}$) [not an E.164 phone number]
            {"identifiers":{"custom":{"hardal_id":"h1"}},"attributes":{"name":"A"},"not_append":true}
                dropped identifiers.device_id: "d1" is not an Insider identifier (email, phone_number, uuid, custom) nor a configured custom identifier [not an Insider identifier]
            {"identifiers":{"uuid":"u1"},"attributes":{"name":"A"},"not_append":true}
                dropped identifiers.custom.hardal_id: {"x":1} is not a string [not a string]
            rejected: identifiers.email: "not-an-email" is not an email address (Insider: ^.+@.+\..+$)
            rejected: identifiers.phone_number: "0532 123 45 67" is not an E.164 phone number with country code (Insider: ^\+[1-9]\d{6,14}$)
            rejected: identifiers.phone_number: "+0532" is not an E.164 phone number with country code (Insider: ^\+[1-9]\d{6,14}$)
            rejected: identifiers.device_id: "d1" is not an Insider identifier (email, phone_number, uuid, custom) nor a configured custom identifier
        "#]],
    );
}

#[test]
fn rejecting_invalid_fields_refuses_as_before() {
    check_with(
        &rejecting(),
        &[
            json!({"identifiers": {"email": "not-an-email", "uuid": "u1"}, "attributes": {"name": "A"}}),
            json!({"identifiers": {"device_id": "d1", "uuid": "u1"}, "attributes": {"name": "A"}}),
            json!({"identifiers": {"uuid": "u"}, "attributes": {"country": "Atlantis", "name": "A"}}),
            json!({"identifiers": {"uuid": "u"}, "attributes": {"email_optin": "maybe", "name": "A"}}),
            json!({"identifiers": {"uuid": "u"}, "events": [{"event_name": "purchase", "timestamp": "2024-12-30T00:00:00Z",
                "event_params": {"event_group_id": "T1", "currency": "EUR", "unit_price": "x", "unit_sale_price": 9.5, "quantity": 1}}]}),
            json!({"identifiers": {"uuid": "u"}, "events": [{"event_name": "purchase", "timestamp": "2024-12-30T00:00:00Z",
                "event_params": {"event_group_id": "T1", "currency": "EUR", "unit_sale_price": 9.5}}]}),
            json!({"identifiers": {"uuid": "u"}, "attributes": {"custom": {"tags": [{"a": 1}]}, "name": "A"}}),
            // Repairs still apply: a value with one meaning is not invalid.
            json!({"identifiers": {"uuid": "u"}, "attributes": {"country": "USA", "email_optin": "yes"}}),
        ],
        expect![[r#"
            rejected: identifiers.email: "not-an-email" is not an email address (Insider: ^.+@.+\..+$)
            rejected: identifiers.device_id: "d1" is not an Insider identifier (email, phone_number, uuid, custom) nor a configured custom identifier
            rejected: attributes.country: "Atlantis" is not a country (an ISO 3166-1 alpha-2 or alpha-3 code or an English country name)
            rejected: attributes.email_optin: "maybe" is not a boolean
            rejected: events.0.event_params.unit_price: "x" is not a number
            rejected: events.0.event_params.quantity: is required on a purchase event
            rejected: attributes.custom.tags: [{"a":1}] is a list of objects, which Insider cannot store
            {"identifiers":{"uuid":"u"},"attributes":{"country":"US","email_optin":true},"not_append":true}
                repaired attributes.country: "USA" → "US" [alpha-3 code to alpha-2]
                repaired attributes.email_optin: "yes" → true [to boolean]
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
                repaired identifiers.phone_number: "0532 123 45 67" → "+905321234567" [to E.164]
                repaired attributes.sms_optin: "1" → true [to boolean]
            {"identifiers":{"phone_number":"+442079460958"},"attributes":{"sms_optin":false},"not_append":true}
                repaired identifiers.phone_number: "+44 20 7946 0958" → "+442079460958" [to E.164]
                repaired attributes.sms_optin: 0 → false [to boolean]
        "#]],
    );
}

#[test]
fn only_configured_identifiers_are_sent() {
    let settings = RuleSettings {
        standard_identifiers: vec!["uuid".into()],
        custom_identifiers: vec![],
        ..RuleSettings::default()
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
fn attributes_are_repaired_to_insider_types() {
    check(
        &[
            json!({"identifiers": {"uuid": "u"}, "attributes": {
                "email_optin": "true", "sms_optin": "0", "whatsapp_optin": "yes", "gdpr_optin": false,
                "name": "Zoë", "surname": "", "age": "41", "birthday": "1993-03-12",
                "language": "en-US", "country": "tr", "city": 34, "list_id": ["1", 2],
                "favourite_colour": "blue", "custom": {"source": "hardal", "tier": 2}
            }}),
            json!({"identifiers": {"uuid": "u"}, "attributes": {"birthday": 731894400}}),
            json!({"identifiers": {"uuid": "u"}, "attributes": {"name": null, "surname": " "}}),
        ],
        expect![[r#"
            {"identifiers":{"uuid":"u"},"attributes":{"email_optin":true,"sms_optin":false,"whatsapp_optin":true,"gdpr_optin":false,"name":"Zoë","age":41,"birthday":"1993-03-12T00:00:00Z","language":"en_US","country":"TR","city":"34","list_id":[1,2],"custom":{"source":"hardal","tier":2,"favourite_colour":"blue"}},"not_append":true}
                repaired attributes.email_optin: "true" → true [to boolean]
                repaired attributes.sms_optin: "0" → false [to boolean]
                repaired attributes.whatsapp_optin: "yes" → true [to boolean]
                repaired attributes.age: "41" → 41 [text to number]
                repaired attributes.birthday: "1993-03-12" → "1993-03-12T00:00:00Z" [to RFC 3339 in UTC]
                repaired attributes.language: "en-US" → "en_US" [to a locale such as en_US]
                repaired attributes.country: "tr" → "TR" [upper case]
                repaired attributes.city: 34 → "34" [to text]
                repaired attributes.list_id: ["1",2] → [1,2] [to a list of numbers]
            {"identifiers":{"uuid":"u"},"attributes":{"birthday":"1993-03-12T00:00:00Z"},"not_append":true}
                repaired attributes.birthday: 731894400 → "1993-03-12T00:00:00Z" [to RFC 3339 in UTC]
            nothing: neither attributes nor events to send
        "#]],
    );
}

#[test]
fn countries_are_repaired_to_alpha_2_or_left_out() {
    let user = |country: Value| json!({"identifiers": {"uuid": "u"}, "attributes": {"country": country, "name": "A"}});
    check(
        &[
            user(json!("TR")),
            user(json!("tr")),
            user(json!("USA")),
            user(json!("TUR")),
            user(json!("Türkiye")),
            user(json!("Turkey")),
            user(json!("United States")),
            user(json!("united kingdom")),
            user(json!("UK")),
            user(json!("Atlantis")),
            user(json!("Korea")),
            user(json!("XX")),
            user(json!(90)),
        ],
        expect![[r#"
            {"identifiers":{"uuid":"u"},"attributes":{"country":"TR","name":"A"},"not_append":true}
            {"identifiers":{"uuid":"u"},"attributes":{"country":"TR","name":"A"},"not_append":true}
                repaired attributes.country: "tr" → "TR" [upper case]
            {"identifiers":{"uuid":"u"},"attributes":{"country":"US","name":"A"},"not_append":true}
                repaired attributes.country: "USA" → "US" [alpha-3 code to alpha-2]
            {"identifiers":{"uuid":"u"},"attributes":{"country":"TR","name":"A"},"not_append":true}
                repaired attributes.country: "TUR" → "TR" [alpha-3 code to alpha-2]
            {"identifiers":{"uuid":"u"},"attributes":{"country":"TR","name":"A"},"not_append":true}
                repaired attributes.country: "Türkiye" → "TR" [country name to alpha-2]
            {"identifiers":{"uuid":"u"},"attributes":{"country":"TR","name":"A"},"not_append":true}
                repaired attributes.country: "Turkey" → "TR" [country name to alpha-2]
            {"identifiers":{"uuid":"u"},"attributes":{"country":"US","name":"A"},"not_append":true}
                repaired attributes.country: "United States" → "US" [country name to alpha-2]
            {"identifiers":{"uuid":"u"},"attributes":{"country":"GB","name":"A"},"not_append":true}
                repaired attributes.country: "united kingdom" → "GB" [country name to alpha-2]
            {"identifiers":{"uuid":"u"},"attributes":{"country":"GB","name":"A"},"not_append":true}
                repaired attributes.country: "UK" → "GB" [UK to GB]
            {"identifiers":{"uuid":"u"},"attributes":{"name":"A"},"not_append":true}
                dropped attributes.country: "Atlantis" is not a country (an ISO 3166-1 alpha-2 or alpha-3 code or an English country name) [not a country]
            {"identifiers":{"uuid":"u"},"attributes":{"name":"A"},"not_append":true}
                dropped attributes.country: "Korea" is not a country (an ISO 3166-1 alpha-2 or alpha-3 code or an English country name) [not a country]
            {"identifiers":{"uuid":"u"},"attributes":{"name":"A"},"not_append":true}
                dropped attributes.country: "XX" is not a country (an ISO 3166-1 alpha-2 or alpha-3 code or an English country name) [not a country]
            {"identifiers":{"uuid":"u"},"attributes":{"name":"A"},"not_append":true}
                dropped attributes.country: 90 is not a country (an ISO 3166-1 alpha-2 or alpha-3 code or an English country name) [not a country]
        "#]],
    );
}

#[test]
fn an_invalid_optional_attribute_is_left_out_and_the_rest_sent() {
    check(
        &[
            json!({"identifiers": {"uuid": "u"}, "attributes": {"email_optin": "maybe", "language": "english", "age": "forty",
                                                                "birthday": "12/03/1993", "list_id": ["a"], "name": "A"}}),
            json!({"identifiers": {"uuid": "u"}, "attributes": {"phone_number": "12345", "custom": "not an object", "name": "A"}}),
            // Written twice, differently: one value is kept, the other left out with a note.
            json!({"identifiers": {"uuid": "u"}, "attributes": {"tier": "gold", "name": "A", "custom": {"tier": "silver", "name": "B"}}}),
            json!({"identifiers": {"uuid": "u"}, "attributes": {"tier": "gold", "custom": {"tier": "gold"}}}),
            // Nothing valid would remain: refused, with the first left-out field.
            json!({"identifiers": {"uuid": "u"}, "attributes": {"email_optin": "maybe"}}),
        ],
        expect![[r#"
            {"identifiers":{"uuid":"u"},"attributes":{"name":"A"},"not_append":true}
                dropped attributes.email_optin: "maybe" is not a boolean [not a boolean]
                dropped attributes.language: "english" is not a language locale such as en_US [not a language locale]
                dropped attributes.age: "forty" is not a number [not a number]
                dropped attributes.birthday: "12/03/1993" is not an RFC 3339 date-time or epoch time [not a date-time]
                dropped attributes.list_id: ["a"] is not a list of numbers [not a list of numbers]
            {"identifiers":{"uuid":"u"},"attributes":{"name":"A"},"not_append":true}
                dropped attributes.custom: "not an object" is not an object of custom fields [not an object]
                dropped attributes.phone_number: "12345" is not an E.164 phone number with country code (Insider: ^\+[1-9]\d{6,14}$) [not an E.164 phone number]
            {"identifiers":{"uuid":"u"},"attributes":{"name":"A","custom":{"tier":"silver"}},"not_append":true}
                dropped attributes.custom.tier: "silver" is kept under custom; "gold" is left out [written twice]
                dropped attributes.name: "A" is kept; "B" under custom is left out [written twice]
            {"identifiers":{"uuid":"u"},"attributes":{"custom":{"tier":"gold"}},"not_append":true}
            rejected: nothing valid to send: attributes.email_optin: "maybe" is not a boolean
                dropped attributes.email_optin: "maybe" is not a boolean [not a boolean]
        "#]],
    );
}

#[test]
fn an_invalid_optional_event_parameter_is_left_out_and_the_rest_sent() {
    check(
        &[
            json!({"identifiers": {"uuid": "u"}, "events": [{"event_name": "product_detail_page_view", "timestamp": "2024-12-30T00:00:00Z",
                "event_params": {"product_id": "P1", "unit_price": "x", "quantity": 1.5, "currency": "€", "taxonomy": [{"a": 1}], "url": "https://shop/p/1"}}]}),
        ],
        expect![[r#"
            {"identifiers":{"uuid":"u"},"events":[{"event_name":"product_detail_page_view","timestamp":"2024-12-30T00:00:00Z","event_params":{"product_id":"P1","url":"https://shop/p/1"}}],"not_append":true}
                dropped events.event_params.unit_price: "x" is not a number [not a number]
                dropped events.event_params.quantity: 1.5 is not a whole number [not a whole number]
                dropped events.event_params.currency: "€" is not an ISO 4217 currency code [not a currency code]
                dropped events.event_params.taxonomy: [{"a":1}] is not a list of strings [not a list of strings]
        "#]],
    );
}

#[test]
fn events_are_normalized() {
    check(
        &[
            json!({"identifiers": {"uuid": "u"}, "events": [{"event_name": "Order Completed", "timestamp": "2024-12-30T12:45:39+03:00",
                "event_params": {"product_id": 42, "name": "Mug", "taxonomy": "Kitchen", "currency": "try", "quantity": "2",
                                 "unit_price": "60.25", "unit_sale_price": 60, "coupon": "XMAS", "custom": {"url": "https://x/", "gift": true}}}]}),
            json!({"identifiers": {"uuid": "u"}, "events": {"event_name": "purchase", "timestamp": 1735516800000i64,
                "event_params": {"event_group_id": "T1", "currency": "EUR", "unit_sale_price": "9.5", "quantity": 1.0}}}),
            json!({"identifiers": {"uuid": "u"}, "events": [{"event_name": "x"}]}),
            json!({"identifiers": {"uuid": "u"}, "events": [{"event_name": "x", "timestamp": "yesterday"}]}),
            json!({"identifiers": {"uuid": "u"}, "events": [{"event_name": "  ", "timestamp": 1}]}),
            json!({"identifiers": {"uuid": "u"}, "events": [{"event_name": "_x", "timestamp": 1, "extra": 1}]}),
            json!({"identifiers": {"uuid": "u"}, "events": [], "attributes": {}}),
            json!({"identifiers": {"uuid": "u"}, "events": [{"event_name": "x", "timestamp": 1}], "segment": "a"}),
        ],
        expect![[r#"
            {"identifiers":{"uuid":"u"},"events":[{"event_name":"order_completed","timestamp":"2024-12-30T09:45:39Z","event_params":{"product_id":"42","name":"Mug","taxonomy":["Kitchen"],"currency":"TRY","quantity":2,"unit_price":60.25,"unit_sale_price":60,"url":"https://x/","custom":{"gift":true,"coupon":"XMAS"}}}],"not_append":true}
                repaired events.event_name: "Order Completed" → "order_completed" [to lower snake case]
                repaired events.timestamp: "2024-12-30T12:45:39+03:00" → "2024-12-30T09:45:39Z" [to RFC 3339 in UTC]
                repaired events.event_params.product_id: 42 → "42" [to text]
                repaired events.event_params.taxonomy: "Kitchen" → ["Kitchen"] [to a list of strings]
                repaired events.event_params.currency: "try" → "TRY" [upper case]
                repaired events.event_params.quantity: "2" → 2 [to whole number]
                repaired events.event_params.unit_price: "60.25" → 60.25 [text to number]
            {"identifiers":{"uuid":"u"},"events":[{"event_name":"purchase","timestamp":"2024-12-30T00:00:00Z","event_params":{"event_group_id":"T1","currency":"EUR","unit_sale_price":9.5,"quantity":1}}],"not_append":true}
                repaired events.timestamp: 1735516800000 → "2024-12-30T00:00:00Z" [to RFC 3339 in UTC]
                repaired events.event_params.unit_sale_price: "9.5" → 9.5 [text to number]
                repaired events.event_params.quantity: 1.0 → 1 [to whole number]
            rejected: events.0.timestamp: is required
            rejected: events.0.timestamp: "yesterday" is not an RFC 3339 date-time or epoch time
            rejected: events.0.event_name: is required
            rejected: events.0.extra: not a field of an Insider event (event_name, timestamp, event_params)
            nothing: neither attributes nor events to send
            rejected: segment: not a field of an Insider user object (identifiers, attributes, events)
        "#]],
    );
}

#[test]
fn event_names_keep_camel_case_word_boundaries() {
    let names = [
        "checkoutStarted",
        "CheckoutStarted",
        "checkout_started",
        "Checkout Started",
        "checkout-started",
        "HTMLPageViewed",
        "step2Viewed",
        "Step 2 Viewed",
        "GA4Purchase",
        "view_item",
        "  Order  Completed ",
        "ÜrünGörüntülendi",
    ];
    let actual: String = names
        .iter()
        .map(|name| {
            format!(
                "{name:?} → {}\n",
                hardal_insider::normalize_event_name(name)
            )
        })
        .collect();
    expect![[r#"
        "checkoutStarted" → checkout_started
        "CheckoutStarted" → checkout_started
        "checkout_started" → checkout_started
        "Checkout Started" → checkout_started
        "checkout-started" → checkout_started
        "HTMLPageViewed" → html_page_viewed
        "step2Viewed" → step2_viewed
        "Step 2 Viewed" → step_2_viewed
        "GA4Purchase" → ga4_purchase
        "view_item" → view_item
        "  Order  Completed " → order_completed
        "ÜrünGörüntülendi" → r_n_g_r_nt_lendi
    "#]]
    .assert_eq(&actual);
}

#[test]
fn required_parameters_are_derived_or_their_line_left_out() {
    let line = |params: Value| json!({"event_name": "purchase", "timestamp": "2024-12-30T00:00:00Z", "event_params": params});
    let good = line(
        json!({"event_group_id": "T1", "product_id": "A", "currency": "EUR", "unit_sale_price": 5, "quantity": 1}),
    );
    check(
        &[
            // No group id: derived from the user, time and content; no sale price: the unit price.
            json!({"identifiers": {"uuid": "u"}, "events": [line(json!({"currency": "EUR", "unit_price": 9.5, "quantity": 1}))]}),
            json!({"identifiers": {"uuid": "u"}, "events": [{"event_name": "cart_page_view", "timestamp": "2024-12-30T00:00:00Z",
                "event_params": {"currency": "EUR", "unit_sale_price": 9.5}}]}),
            // An invalid sale price beside a valid unit price.
            json!({"identifiers": {"uuid": "u"}, "events": [line(json!({"event_group_id": "T1", "currency": "EUR", "unit_price": 9.5, "unit_sale_price": "x", "quantity": 1}))]}),
            // One line of an order with no price at all: that line is left out, the rest sent.
            json!({"identifiers": {"uuid": "u"}, "attributes": {"name": "A"}, "events": [good.clone(),
                line(json!({"event_group_id": "T1", "product_id": "B", "currency": "EUR", "unit_price": "x", "quantity": 1}))]}),
            // The only line cannot be sent: the event is refused (attributes or not).
            json!({"identifiers": {"uuid": "u"}, "attributes": {"name": "A"}, "events": [
                line(json!({"event_group_id": "T1", "currency": "EUR", "unit_sale_price": 9.5}))]}),
            json!({"identifiers": {"uuid": "u"}, "events": [line(json!({"event_group_id": "T1", "currency": "€", "unit_sale_price": 9.5, "quantity": 1}))]}),
            // Parameters rendered as null: what can be derived is, in a new object.
            json!({"identifiers": {"uuid": "u"}, "events": [{"event_name": "cart_page_view", "timestamp": "2024-12-30T00:00:00Z",
                "event_params": null}]}),
        ],
        expect![[r#"
            {"identifiers":{"uuid":"u"},"events":[{"event_name":"purchase","timestamp":"2024-12-30T00:00:00Z","event_params":{"currency":"EUR","unit_price":9.5,"quantity":1,"event_group_id":"hardal-derived","unit_sale_price":9.5}}],"not_append":true}
                repaired events.event_params.event_group_id: missing → "hardal-derived" [derived from the user, time and content]
                repaired events.event_params.unit_sale_price: missing → 9.5 [taken from unit_price]
            {"identifiers":{"uuid":"u"},"events":[{"event_name":"cart_page_view","timestamp":"2024-12-30T00:00:00Z","event_params":{"currency":"EUR","unit_sale_price":9.5,"event_group_id":"hardal-derived"}}],"not_append":true}
                repaired events.event_params.event_group_id: missing → "hardal-derived" [derived from the user, time and content]
            {"identifiers":{"uuid":"u"},"events":[{"event_name":"purchase","timestamp":"2024-12-30T00:00:00Z","event_params":{"event_group_id":"T1","currency":"EUR","unit_price":9.5,"quantity":1,"unit_sale_price":9.5}}],"not_append":true}
                dropped events.event_params.unit_sale_price: "x" is not a number [not a number]
                repaired events.event_params.unit_sale_price: missing → 9.5 [taken from unit_price]
            {"identifiers":{"uuid":"u"},"attributes":{"name":"A"},"events":[{"event_name":"purchase","timestamp":"2024-12-30T00:00:00Z","event_params":{"event_group_id":"T1","product_id":"A","currency":"EUR","unit_sale_price":5,"quantity":1}}],"not_append":true}
                dropped events.event_params.unit_price: "x" is not a number [not a number]
                dropped events: purchase event 2 left out: no valid unit_sale_price, which Insider requires [purchase without unit_sale_price]
            rejected: events.0.event_params.quantity: is required on a purchase event
                dropped events: purchase event 1 left out: no valid quantity, which Insider requires [purchase without quantity]
            rejected: events.0.event_params.currency: is required on a purchase event
                dropped events.event_params.currency: "€" is not an ISO 4217 currency code [not a currency code]
                dropped events: purchase event 1 left out: no valid currency, which Insider requires [purchase without currency]
            rejected: events.0.event_params.currency: is required on a cart_page_view event
                repaired events.event_params.event_group_id: missing → "hardal-derived" [derived from the user, time and content]
                dropped events: cart_page_view event 1 left out: no valid currency, which Insider requires [cart_page_view without currency]
        "#]],
    );
}

#[test]
fn nested_objects_in_custom_params_are_flattened_not_lost() {
    check(
        &[
            json!({"identifiers": {"uuid": "u"}, "events": [{"event_name": "x", "timestamp": "2024-12-30T00:00:00Z", "event_params": {
                "dims": {"w": 1, "h": {"cm": 2, "in": {"deep": 3}}},
                "dims_w": "written flat wins",
                "tags": ["a", "b"],
                "lines": [{"sku": "A"}],
                "matrix": [[1, 2]],
                "custom": {"empty": {}, "page": {"type": "home"}}
            }}]}),
            json!({"identifiers": {"uuid": "u"}, "attributes": {"custom": {"address": {"city": "Paris", "geo": {"lat": 1.5}}, "orders": [{"id": 1}]}}}),
        ],
        expect![[r#"
            {"identifiers":{"uuid":"u"},"events":[{"event_name":"x","timestamp":"2024-12-30T00:00:00Z","event_params":{"custom":{"dims_w":"written flat wins","tags":["a","b"],"page_type":"home","dims_h_cm":2}}}],"not_append":true}
                dropped events.event_params.custom.lines: [{"sku":"A"}] is a list of objects, which Insider cannot store [list of objects or lists]
                dropped events.event_params.custom.matrix: [[1,2]] is a list of lists, which Insider cannot store [list of objects or lists]
                repaired events.event_params.custom.page: {"type":"home"} → "page_type" [nested object flattened]
                dropped events.event_params.custom.dims: dims_w: 1 would replace the value already under that name [flattened name already taken]
                dropped events.event_params.custom.dims: dims_h_in: {"deep":3} is nested deeper than 3 levels [nested deeper than 3 levels]
                repaired events.event_params.custom.dims: {"w":1,"h":{"cm":2,"in":{"deep":3}}} → "dims_h_cm" [nested object flattened]
            {"identifiers":{"uuid":"u"},"attributes":{"custom":{"address_city":"Paris","address_geo_lat":1.5}},"not_append":true}
                dropped attributes.custom.orders: [{"id":1}] is a list of objects, which Insider cannot store [list of objects or lists]
                repaired attributes.custom.address: {"city":"Paris","geo":{"lat":1.5}} → "address_city, address_geo_lat" [nested object flattened]
        "#]],
    );
}

#[test]
fn an_array_valued_category_becomes_one_flat_taxonomy() {
    let taxonomy = |value: Value| {
        json!({"identifiers": {"uuid": "u"}, "events": [{"event_name": "x", "timestamp": "2024-12-30T00:00:00Z",
        "event_params": {"taxonomy": value}}]})
    };
    check(
        &[
            // What `"taxonomy": ["##item.item_category##", "##item.item_category2##"]` renders for list-valued categories.
            taxonomy(json!([["Home", "Kitchen"], "Mugs"])),
            taxonomy(json!(["Home", ["Kitchen", ["Mugs"]], "", null])),
            taxonomy(json!("Kitchen")),
            taxonomy(json!(["Kitchen", 7])),
            taxonomy(json!(["Kitchen"])),
        ],
        expect![[r#"
            {"identifiers":{"uuid":"u"},"events":[{"event_name":"x","timestamp":"2024-12-30T00:00:00Z","event_params":{"taxonomy":["Home","Kitchen","Mugs"]}}],"not_append":true}
                repaired events.event_params.taxonomy: [["Home","Kitchen"],"Mugs"] → ["Home","Kitchen","Mugs"] [nested lists flattened]
            {"identifiers":{"uuid":"u"},"events":[{"event_name":"x","timestamp":"2024-12-30T00:00:00Z","event_params":{"taxonomy":["Home","Kitchen","Mugs"]}}],"not_append":true}
                repaired events.event_params.taxonomy: ["Home",["Kitchen",["Mugs"]],"",null] → ["Home","Kitchen","Mugs"] [nested lists flattened]
            {"identifiers":{"uuid":"u"},"events":[{"event_name":"x","timestamp":"2024-12-30T00:00:00Z","event_params":{"taxonomy":["Kitchen"]}}],"not_append":true}
                repaired events.event_params.taxonomy: "Kitchen" → ["Kitchen"] [to a list of strings]
            {"identifiers":{"uuid":"u"},"events":[{"event_name":"x","timestamp":"2024-12-30T00:00:00Z","event_params":{"taxonomy":["Kitchen","7"]}}],"not_append":true}
                repaired events.event_params.taxonomy: ["Kitchen",7] → ["Kitchen","7"] [to a list of strings]
            {"identifiers":{"uuid":"u"},"events":[{"event_name":"x","timestamp":"2024-12-30T00:00:00Z","event_params":{"taxonomy":["Kitchen"]}}],"not_append":true}
        "#]],
    );
}

#[test]
fn retention_at_its_boundaries() {
    // NOW is 2025-01-01T00:00:00Z; 730 days before it is 2023-01-02T00:00:00Z.
    let event = |name: &str, at: &str| {
        json!({"event_name": name, "timestamp": at,
        "event_params": {"event_group_id": "T1", "currency": "EUR", "unit_sale_price": 1, "quantity": 1}})
    };
    let user = |events: Vec<Value>| json!({"identifiers": {"uuid": "u"}, "events": events});
    check(
        &[
            user(vec![event("purchase", "2023-01-02T00:00:00Z")]),
            user(vec![event("purchase", "2023-01-01T23:59:59Z")]),
            user(vec![event("sign_up_confirmation", "2024-01-02T00:00:00Z")]),
            user(vec![event("sign_up_confirmation", "2024-01-01T23:59:59Z")]),
            user(vec![event(
                "product_detail_page_view",
                "2024-10-03T00:00:00Z",
            )]),
            user(vec![event(
                "product_detail_page_view",
                "2024-10-02T23:59:59Z",
            )]),
            user(vec![event("registration", "2024-10-02T23:59:59Z")]),
            // A timestamp in the future is not expired.
            user(vec![event("page_view", "2030-01-01T00:00:00Z")]),
            // Some events expired: the rest is sent, with a note.
            user(vec![
                event("purchase", "2024-12-30T00:00:00Z"),
                event("page_view", "2024-01-01T00:00:00Z"),
            ]),
            // Every event expired but attributes remain: the attributes are sent, with a note.
            json!({"identifiers": {"uuid": "u"}, "attributes": {"name": "A"}, "events": [event("page_view", "2024-01-01T00:00:00Z")]}),
        ],
        expect![[r#"
            {"identifiers":{"uuid":"u"},"events":[{"event_name":"purchase","timestamp":"2023-01-02T00:00:00Z","event_params":{"event_group_id":"T1","currency":"EUR","unit_sale_price":1,"quantity":1}}],"not_append":true}
            expired: purchase events are kept 730 days
                expired events: purchase of 2023-01-01T23:59:59Z is older than Insider keeps it [purchase events are kept 730 days]
            {"identifiers":{"uuid":"u"},"events":[{"event_name":"sign_up_confirmation","timestamp":"2024-01-02T00:00:00Z","event_params":{"event_group_id":"T1","currency":"EUR","unit_sale_price":1,"quantity":1}}],"not_append":true}
            expired: sign_up_confirmation events are kept 365 days
                expired events: sign_up_confirmation of 2024-01-01T23:59:59Z is older than Insider keeps it [sign_up_confirmation events are kept 365 days]
            {"identifiers":{"uuid":"u"},"events":[{"event_name":"product_detail_page_view","timestamp":"2024-10-03T00:00:00Z","event_params":{"event_group_id":"T1","currency":"EUR","unit_sale_price":1,"quantity":1}}],"not_append":true}
            expired: product_detail_page_view events are kept 90 days
                expired events: product_detail_page_view of 2024-10-02T23:59:59Z is older than Insider keeps it [product_detail_page_view events are kept 90 days]
            expired: custom events are kept 90 days
                expired events: registration of 2024-10-02T23:59:59Z is older than Insider keeps it [custom events are kept 90 days]
            {"identifiers":{"uuid":"u"},"events":[{"event_name":"page_view","timestamp":"2030-01-01T00:00:00Z","event_params":{"event_group_id":"T1","currency":"EUR","unit_sale_price":1,"quantity":1}}],"not_append":true}
            {"identifiers":{"uuid":"u"},"events":[{"event_name":"purchase","timestamp":"2024-12-30T00:00:00Z","event_params":{"event_group_id":"T1","currency":"EUR","unit_sale_price":1,"quantity":1}}],"not_append":true}
                expired events: page_view of 2024-01-01T00:00:00Z is older than Insider keeps it [custom events are kept 90 days]
            {"identifiers":{"uuid":"u"},"attributes":{"name":"A"},"not_append":true}
                expired events: page_view of 2024-01-01T00:00:00Z is older than Insider keeps it [custom events are kept 90 days]
        "#]],
    );
    // An account that keeps events longer.
    let mut overrides = std::collections::BTreeMap::new();
    overrides.insert("purchase".to_owned(), 1095);
    overrides.insert("page_view".to_owned(), 400);
    let longer = RuleSettings {
        retention: Retention::new(overrides),
        ..settings()
    };
    check_with(
        &longer,
        &[
            user(vec![event("purchase", "2023-01-01T23:59:59Z")]),
            user(vec![event("purchase", "2022-01-01T23:59:59Z")]),
            user(vec![event("page_view", "2024-01-01T00:00:00Z")]),
        ],
        expect![[r#"
            {"identifiers":{"uuid":"u"},"events":[{"event_name":"purchase","timestamp":"2023-01-01T23:59:59Z","event_params":{"event_group_id":"T1","currency":"EUR","unit_sale_price":1,"quantity":1}}],"not_append":true}
            expired: purchase events are kept 1095 days (retention_days)
                expired events: purchase of 2022-01-01T23:59:59Z is older than Insider keeps it [purchase events are kept 1095 days (retention_days)]
            {"identifiers":{"uuid":"u"},"events":[{"event_name":"page_view","timestamp":"2024-01-01T00:00:00Z","event_params":{"event_group_id":"T1","currency":"EUR","unit_sale_price":1,"quantity":1}}],"not_append":true}
        "#]],
    );
}

#[test]
fn send_attributes_never_sends_events_only() {
    let settings = RuleSettings {
        send_attributes: false,
        ..settings()
    };
    check_with(
        &settings,
        &[
            json!({"identifiers": {"uuid": "u"}, "attributes": {"name": "A"}, "events": [{"event_name": "x", "timestamp": "2024-12-30T00:00:00Z"}]}),
            json!({"identifiers": {"uuid": "u"}, "attributes": {"name": "A"}}),
            json!({"identifiers": {"uuid": "u"}, "attributes": {"name": "A"}, "events": [{"event_name": "x", "timestamp": "2024-01-01T00:00:00Z"}]}),
        ],
        expect![[r#"
            {"identifiers":{"uuid":"u"},"events":[{"event_name":"x","timestamp":"2024-12-30T00:00:00Z"}],"not_append":true}
            nothing: neither attributes nor events to send
            expired: custom events are kept 90 days
                expired events: x of 2024-01-01T00:00:00Z is older than Insider keeps it [custom events are kept 90 days]
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
