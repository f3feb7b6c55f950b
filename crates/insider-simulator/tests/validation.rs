//! Every per-user rule, each with a user that keeps it and one that breaks it, over real HTTP.

mod common;

use common::{batch, simulator, upsert};
use serde_json::{Value, json};

const TS: &str = "2024-05-01T10:00:00Z";

/// A user around these attributes.
fn with_attributes(attributes: Value) -> Value {
    json!({"identifiers": {"uuid": "u1"}, "attributes": attributes})
}

/// A user around these identifiers.
fn with_identifiers(identifiers: Value) -> Value {
    json!({"identifiers": identifiers, "attributes": {"name": "A"}})
}

/// A user with one event of this name and these parameters.
fn with_event(name: &str, params: Value) -> Value {
    json!({"identifiers": {"uuid": "u1"},
           "events": [{"event_name": name, "timestamp": TS, "event_params": params}]})
}

/// A user with this one event object.
fn with_raw_event(event: Value) -> Value {
    json!({"identifiers": {"uuid": "u1"}, "events": [event]})
}

fn purchase_params() -> Value {
    json!({"event_group_id": "o1", "currency": "TRY", "unit_sale_price": 10.5, "quantity": 1})
}

/// (name, user, the broken rule as (key after `users.0.`, messages), or None when valid).
type Case = (
    &'static str,
    Value,
    Option<(&'static str, Vec<&'static str>)>,
);

fn cases() -> Vec<Case> {
    vec![
        // The user object itself.
        (
            "not an object",
            json!("user"),
            Some(("type(object)", vec!["user must be an object: user"])),
        ),
        (
            "no identifiers",
            json!({"attributes": {"name": "A"}}),
            Some(("identifiers.required", vec!["identifiers is required"])),
        ),
        (
            "insider_id instead",
            json!({"insider_id": "i1", "attributes": {"name": "A"}}),
            None,
        ),
        (
            "insider_id beside identifiers",
            json!({"insider_id": "i1", "identifiers": {"uuid": "u1"}, "attributes": {"name": "A"}}),
            None,
        ),
        (
            "insider_id beside identifiers not a string",
            json!({"insider_id": 1, "identifiers": {"uuid": "u1"}, "attributes": {"name": "A"}}),
            Some((
                "insider_id.type(string)",
                vec!["insider_id must be a string: 1"],
            )),
        ),
        (
            "insider_id not a string",
            json!({"insider_id": 5, "attributes": {"name": "A"}}),
            Some((
                "insider_id.type(string)",
                vec!["insider_id must be a string: 5"],
            )),
        ),
        (
            "neither attributes nor events",
            json!({"identifiers": {"uuid": "u1"}}),
            Some((
                "attributes.required_without(events)",
                vec!["user must have attributes or events"],
            )),
        ),
        (
            "only an empty events array",
            json!({"identifiers": {"uuid": "u1"}, "events": []}),
            Some((
                "attributes.required_without(events)",
                vec!["user must have attributes or events"],
            )),
        ),
        (
            "empty attributes",
            json!({"identifiers": {"uuid": "u1"}, "attributes": {}}),
            Some((
                "attributes.min(1)",
                vec!["attributes must hold at least one attribute"],
            )),
        ),
        (
            "attributes not an object",
            json!({"identifiers": {"uuid": "u1"}, "attributes": [1]}),
            Some((
                "attributes.type(object)",
                vec!["attributes must be an object: [1]"],
            )),
        ),
        (
            "unknown user key",
            json!({"identifiers": {"uuid": "u1"}, "attributes": {"name": "A"}, "attribute": {}}),
            Some((
                "attribute.in(identifiers,insider_id,attributes,events,not_append)",
                vec![
                    "attribute is not a user field; a user holds identifiers,insider_id,attributes,events,not_append",
                ],
            )),
        ),
        (
            "not_append true",
            json!({"identifiers": {"uuid": "u1"}, "attributes": {"list_id": [1]}, "not_append": true}),
            None,
        ),
        (
            "not_append not a boolean",
            json!({"identifiers": {"uuid": "u1"}, "attributes": {"name": "A"}, "not_append": "true"}),
            Some((
                "not_append.type(bool)",
                vec!["not_append must be a boolean: true"],
            )),
        ),
        // Identifiers.
        (
            "email identifier",
            with_identifiers(json!({"email": "a@b.co"})),
            None,
        ),
        (
            "bad email identifier",
            with_identifiers(json!({"email": "a@b"})),
            Some((
                "identifiers.*.regexp(^.+@.+\\..+$)",
                vec!["user has an invalid email: a@b"],
            )),
        ),
        (
            "phone identifier",
            with_identifiers(json!({"phone_number": "+905551234567"})),
            None,
        ),
        (
            "phone identifier without plus",
            with_identifiers(json!({"phone_number": "905551234567"})),
            Some((
                r"identifiers.*.regexp(^\+[1-9]\d{6,14}$)",
                vec!["user has an invalid phone number: 905551234567"],
            )),
        ),
        (
            "uuid identifier",
            with_identifiers(json!({"uuid": "123"})),
            None,
        ),
        (
            "uuid identifier as a number",
            with_identifiers(json!({"uuid": 123})),
            Some((
                "identifiers.*.type(string)",
                vec!["user has an invalid uuid: 123"],
            )),
        ),
        (
            "custom identifier",
            with_identifiers(json!({"custom": {"hardal_id": "h1"}})),
            None,
        ),
        (
            "custom identifiers not an object",
            with_identifiers(json!({"custom": "h1"})),
            Some((
                "identifiers.custom.type(object)",
                vec!["custom identifiers must be an object: h1"],
            )),
        ),
        (
            "custom identifier not a string",
            with_identifiers(json!({"custom": {"hardal_id": 7}})),
            Some((
                "identifiers.custom.*.type(string)",
                vec!["custom identifier hardal_id must be a string: 7"],
            )),
        ),
        (
            "unknown identifier",
            with_identifiers(json!({"user_id": "u1"})),
            Some((
                "identifiers.*.in(email,phone_number,uuid,custom)",
                vec!["user has an unknown identifier: user_id"],
            )),
        ),
        (
            "empty identifiers",
            with_identifiers(json!({})),
            Some((
                "identifiers.*.required",
                vec!["user must have at least one identifier"],
            )),
        ),
        (
            "identifiers not an object",
            with_identifiers(json!("a@b.co")),
            Some((
                "identifiers.type(object)",
                vec!["identifiers must be an object: a@b.co"],
            )),
        ),
        // Default attributes.
        (
            "booleans",
            with_attributes(
                json!({"email_optin": true, "sms_optin": false, "whatsapp_optin": true, "gdpr_optin": false}),
            ),
            None,
        ),
        (
            "email_optin as a string",
            with_attributes(json!({"email_optin": "true"})),
            Some((
                "attributes.email_optin.type(bool)",
                vec!["email_optin must be a boolean: true"],
            )),
        ),
        (
            "gdpr_optin as a number",
            with_attributes(json!({"gdpr_optin": 1})),
            Some((
                "attributes.gdpr_optin.type(bool)",
                vec!["gdpr_optin must be a boolean: 1"],
            )),
        ),
        (
            "strings",
            with_attributes(
                json!({"name": "A", "surname": "B", "gender": "f", "city": "Izmir", "uuid": "x"}),
            ),
            None,
        ),
        (
            "city as a number",
            with_attributes(json!({"city": 35})),
            Some((
                "attributes.city.type(string)",
                vec!["city must be a string: 35"],
            )),
        ),
        ("age", with_attributes(json!({"age": 31})), None),
        (
            "age as a string",
            with_attributes(json!({"age": "31"})),
            Some((
                "attributes.age.type(number)",
                vec!["age must be a number: 31"],
            )),
        ),
        (
            "birthday",
            with_attributes(json!({"birthday": "1993-03-12T00:00:00Z"})),
            None,
        ),
        (
            "birthday with an offset",
            with_attributes(json!({"birthday": "1993-03-12T00:00:00+03:00"})),
            Some((
                "attributes.birthday.datetime(rfc3339,Z)",
                vec![
                    "birthday must be an RFC 3339 date-time in UTC ending in Z: 1993-03-12T00:00:00+03:00",
                ],
            )),
        ),
        (
            "birthday as a date",
            with_attributes(json!({"birthday": "1993-03-12"})),
            Some((
                "attributes.birthday.datetime(rfc3339,Z)",
                vec!["birthday must be an RFC 3339 date-time in UTC ending in Z: 1993-03-12"],
            )),
        ),
        (
            "language",
            with_attributes(json!({"language": "en_US"})),
            None,
        ),
        (
            "language with a hyphen",
            with_attributes(json!({"language": "en-US"})),
            Some((
                "attributes.language.regexp(^[a-z]{2}(_[A-Z]{2})?$)",
                vec!["language must be a locale such as en_US: en-US"],
            )),
        ),
        ("country", with_attributes(json!({"country": "TR"})), None),
        (
            "country alpha-3",
            with_attributes(json!({"country": "TUR"})),
            Some((
                "attributes.country.regexp(^[A-Z]{2}$)",
                vec!["country must be an ISO 3166-1 alpha-2 country code: TUR"],
            )),
        ),
        (
            "email attribute",
            with_attributes(json!({"email": "a@b.co"})),
            None,
        ),
        (
            "bad email attribute",
            with_attributes(json!({"email": "nobody"})),
            Some((
                "attributes.email.regexp(^.+@.+\\..+$)",
                vec!["user has an invalid email: nobody"],
            )),
        ),
        (
            "phone attribute",
            with_attributes(json!({"phone_number": "+905551234567"})),
            None,
        ),
        (
            "bad phone attribute",
            with_attributes(json!({"phone_number": "0555 123 45 67"})),
            Some((
                r"attributes.phone_number.regexp(^\+[1-9]\d{6,14}$)",
                vec!["user has an invalid phone number: 0555 123 45 67"],
            )),
        ),
        (
            "uuid attribute as a number",
            with_attributes(json!({"uuid": 5})),
            Some((
                "attributes.uuid.type(string)",
                vec!["uuid must be a string: 5"],
            )),
        ),
        (
            "list ids",
            with_attributes(json!({"list_id": [1, 2], "static_segment_id": [3]})),
            None,
        ),
        (
            "list_id of strings",
            with_attributes(json!({"list_id": ["1"]})),
            Some((
                "attributes.list_id.type(array[number])",
                vec![r#"list_id must be an array of numbers: ["1"]"#],
            )),
        ),
        (
            "static_segment_id not an array",
            with_attributes(json!({"static_segment_id": 3})),
            Some((
                "attributes.static_segment_id.type(array[number])",
                vec!["static_segment_id must be an array of numbers: 3"],
            )),
        ),
        (
            "custom attributes",
            with_attributes(json!({"custom": {"tier": "gold", "Points": 3}})),
            None,
        ),
        (
            "custom attributes not an object",
            with_attributes(json!({"custom": "gold"})),
            Some((
                "attributes.custom.type(object)",
                vec!["custom must be an object: gold"],
            )),
        ),
        (
            "unknown default attribute",
            with_attributes(json!({"tier": "gold"})),
            Some((
                "attributes.tier.unknown_default_attribute",
                vec![
                    "tier is not a default attribute; custom attributes belong under attributes.custom",
                ],
            )),
        ),
        // Events.
        (
            "plain event",
            with_raw_event(json!({"event_name": "homepage_view", "timestamp": TS})),
            None,
        ),
        (
            "events not an array",
            json!({"identifiers": {"uuid": "u1"}, "events": {"event_name": "x"}}),
            Some((
                "events.type(array)",
                vec![r#"events must be an array: {"event_name":"x"}"#],
            )),
        ),
        (
            "event not an object",
            with_raw_event(json!("purchase")),
            Some((
                "events.0.type(object)",
                vec!["event must be an object: purchase"],
            )),
        ),
        (
            "event without a name",
            with_raw_event(json!({"timestamp": TS})),
            Some((
                "events.0.event_name.required",
                vec!["event_name is required"],
            )),
        ),
        (
            "event name with spaces",
            with_raw_event(json!({"event_name": "Add To Cart", "timestamp": TS})),
            Some((
                "events.0.event_name.regexp(^[a-z0-9][a-z0-9_]*$)",
                vec!["event has an invalid event_name: Add To Cart"],
            )),
        ),
        (
            "event without a timestamp",
            with_raw_event(json!({"event_name": "homepage_view"})),
            Some(("events.0.timestamp.required", vec!["timestamp is required"])),
        ),
        (
            "timestamp with an offset",
            with_raw_event(
                json!({"event_name": "homepage_view", "timestamp": "2024-05-01T13:00:00+03:00"}),
            ),
            None,
        ),
        (
            "timestamp in epoch seconds",
            with_raw_event(json!({"event_name": "homepage_view", "timestamp": 1714557600})),
            Some((
                "events.0.timestamp.datetime(rfc3339)",
                vec!["timestamp must be an RFC 3339 date-time: 1714557600"],
            )),
        ),
        (
            "unknown event key",
            with_raw_event(json!({"event_name": "homepage_view", "timestamp": TS, "params": {}})),
            Some((
                "events.0.params.in(event_name,timestamp,event_params)",
                vec![
                    "params is not an event field; an event holds event_name,timestamp,event_params",
                ],
            )),
        ),
        (
            "event_params not an object",
            with_event("homepage_view", json!([])),
            Some((
                "events.0.event_params.type(object)",
                vec!["event_params must be an object: []"],
            )),
        ),
        (
            "every default param",
            with_event(
                "product_detail_page_view",
                json!({
                "event_group_id": "o1", "product_id": "p1", "name": "Shoe", "taxonomy": ["a", "b"],
                "url": "https://shop.example/p1", "product_image_url": "https://shop.example/p1.jpg",
                "currency": "EUR", "quantity": 2, "unit_price": 10, "unit_sale_price": 9.5,
                "locale": "en_US", "color": "red", "size": "42", "shipping_cost": 0,
                "promotion_name": "spring", "promotion_discount": 0.5, "referrer": "x",
                "custom": {"anything": [1]}}),
            ),
            None,
        ),
        (
            "quantity not an integer",
            with_event(
                "purchase",
                json!({"event_group_id": "o1", "currency": "TRY", "unit_sale_price": 1, "quantity": 1.5}),
            ),
            Some((
                "events.0.event_params.quantity.type(integer)",
                vec!["quantity must be an integer: 1.5"],
            )),
        ),
        (
            "currency lower-case",
            with_event(
                "purchase",
                json!({"event_group_id": "o1", "currency": "try", "unit_sale_price": 1, "quantity": 1}),
            ),
            Some((
                "events.0.event_params.currency.regexp(^[A-Z]{3}$)",
                vec!["currency must be an ISO 4217 currency code: try"],
            )),
        ),
        (
            "unit_price as a string",
            with_event("product_detail_page_view", json!({"unit_price": "10"})),
            Some((
                "events.0.event_params.unit_price.type(number)",
                vec!["unit_price must be a number: 10"],
            )),
        ),
        (
            "taxonomy as a string",
            with_event("product_detail_page_view", json!({"taxonomy": "shoes"})),
            Some((
                "events.0.event_params.taxonomy.type(array[string])",
                vec!["taxonomy must be an array of strings: shoes"],
            )),
        ),
        (
            "product_id as a number",
            with_event("product_detail_page_view", json!({"product_id": 5})),
            Some((
                "events.0.event_params.product_id.type(string)",
                vec!["product_id must be a string: 5"],
            )),
        ),
        (
            "event custom not an object",
            with_event("product_detail_page_view", json!({"custom": 1})),
            Some((
                "events.0.event_params.custom.type(object)",
                vec!["custom must be an object: 1"],
            )),
        ),
        (
            "unknown default param",
            with_event("product_detail_page_view", json!({"brand": "acme"})),
            Some((
                "events.0.event_params.brand.unknown_default_param",
                vec![
                    "brand is not a default event parameter; custom parameters belong under event_params.custom",
                ],
            )),
        ),
        (
            "purchase with its required params",
            with_event("purchase", purchase_params()),
            None,
        ),
        (
            "purchase without quantity",
            with_event(
                "purchase",
                json!({"event_group_id": "o1", "currency": "TRY", "unit_sale_price": 1}),
            ),
            Some((
                "events.0.event_params.*.required",
                vec!["quantity parameter is required on purchase event"],
            )),
        ),
        (
            "purchase without params",
            with_raw_event(json!({"event_name": "purchase", "timestamp": TS})),
            Some((
                "events.0.event_params.*.required",
                vec![
                    "event_group_id parameter is required on purchase event",
                    "currency parameter is required on purchase event",
                    "unit_sale_price parameter is required on purchase event",
                    "quantity parameter is required on purchase event",
                ],
            )),
        ),
        (
            "cart_page_view with its required params",
            with_event(
                "cart_page_view",
                json!({"event_group_id": "c1", "currency": "TRY", "unit_sale_price": 1}),
            ),
            None,
        ),
        (
            "cart_page_view without currency",
            with_event(
                "cart_page_view",
                json!({"event_group_id": "c1", "unit_sale_price": 1}),
            ),
            Some((
                "events.0.event_params.*.required",
                vec!["currency parameter is required on cart_page_view event"],
            )),
        ),
        (
            "other events need no params",
            with_event("item_added_to_cart", json!({})),
            None,
        ),
    ]
}

#[test]
fn every_rule_accepts_and_rejects() {
    let sim = simulator();
    for (name, user, broken) in cases() {
        let reply = upsert(&sim, &batch(std::slice::from_ref(&user)));
        assert_eq!(reply.status, 200, "{name}: {}", reply.body);
        let expected = match &broken {
            None => json!({"data": {"successful": {"count": 1}, "fail": {}}}),
            Some((path, messages)) => json!({"data": {
                "successful": {"count": 0},
                "fail": {"count": 1, "errors": {format!("users.0.{path}"): messages}}}}),
        };
        assert_eq!(reply.json(), expected, "{name}: sent {user}");
    }
}

#[test]
fn documented_examples_are_reproduced_byte_for_byte() {
    let sim = simulator();
    let good = json!({"identifiers": {"email": "a@b.co"}, "attributes": {"name": "A"}});
    let bad = json!({
        "identifiers": {"phone_number": "12345"},
        "events": [{"event_name": "purchase", "timestamp": TS,
                    "event_params": {"currency": "TRY", "unit_sale_price": 1, "quantity": 1}}]});
    let reply = upsert(&sim, &batch(&[good.clone(), bad]));
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.body,
        r#"{"data":{"successful":{"count":1},"fail":{"count":1,"errors":{"users.1.events.0.event_params.*.required":["event_group_id parameter is required on purchase event"],"users.1.identifiers.*.regexp(^\\+[1-9]\\d{6,14}$)":["user has an invalid phone number: 12345"]}}}}"#
    );
    let reply = upsert(&sim, &batch(&[good.clone(), good]));
    assert_eq!(
        reply.body,
        r#"{"data":{"successful":{"count":2},"fail":{}}}"#
    );
}

#[test]
fn a_mixed_batch_reports_failures_at_their_indexes() {
    let sim = simulator();
    let valid =
        |n: usize| json!({"identifiers": {"uuid": format!("u{n}")}, "attributes": {"age": n}});
    let users = vec![
        valid(0),
        json!({"identifiers": {"uuid": 1}, "attributes": {"age": 1}}),
        valid(2),
        valid(3),
        json!({"identifiers": {"uuid": "u4"}, "attributes": {"sms_optin": "yes", "fav": 1}}),
        valid(5),
    ];
    let reply = upsert(&sim, &batch(&users));
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.json(),
        json!({"data": {"successful": {"count": 4}, "fail": {"count": 2, "errors": {
            "users.1.identifiers.*.type(string)": ["user has an invalid uuid: 1"],
            "users.4.attributes.fav.unknown_default_attribute":
                ["fav is not a default attribute; custom attributes belong under attributes.custom"],
            "users.4.attributes.sms_optin.type(bool)": ["sms_optin must be a boolean: yes"],
        }}}})
    );
    let kept: Vec<_> = sim
        .accepted_users()
        .iter()
        .map(|u| (u.index, u.user.clone()))
        .collect();
    assert_eq!(
        kept,
        vec![(0, valid(0)), (2, valid(2)), (3, valid(3)), (5, valid(5))]
    );
    let stats = sim.stats();
    assert_eq!((stats.users_accepted, stats.users_failed), (4, 2));
}
