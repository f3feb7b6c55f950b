//! Table-driven tests of the template language: each row is a template, an event and what it
//! must render to (or the error it must give).

use serde_json::{Value, json};

use super::Template;
use crate::event::Event;

fn event() -> Value {
    json!({
        "id": "5f0c8a1e",
        "event_name": "purchase",
        "created_at": "2024-12-19T12:45:39+03:00",
        "user_id": "u42",
        "nothing": null,
        "user": {"email": "  Ada@Example.COM ", "name": "Ada", "country": "TR", "email_optin": true},
        "properties": {
            "transaction_id": "T-1",
            "order_id": "O-9",
            "value": 120.5,
            "count": 3,
            "price_text": "19.90",
            "int_text": "2",
            "float_int": 2.0,
            "half": 2.5,
            "blank": "  ",
            "yes": "Yes",
            "flag_text": "off",
            "word": "abc",
            "epoch_s": 1734601539,
            "epoch_ms": 1734601539659_i64,
            "epoch_ms_text": "1734601539659",
            "date": "2024-12-19",
            "first name": "Grace",
            "empty_list": [],
            "empty_object": {},
            "items": [
                {"item_id": "SKU-1", "price": 60.25, "quantity": 2, "tags": ["a", "b"]},
                {"item_id": "SKU-2", "price": "5", "quantity": null, "tags": []},
            ],
            "product": {"item_id": "SKU-3", "price": 1},
        },
    })
}

/// Renders `template` against `event` and compares with `expected` (`None` = missing); also
/// checks that `render_json` writes exactly the serialized `render` result.
fn check(template: Value, event: Value, expected: Option<Value>) {
    let compiled = Template::compile(&template).unwrap_or_else(|e| panic!("{template}: {e:?}"));
    let event = Event::from_value(event).expect("events are objects");
    let rendered = compiled
        .render(&event)
        .unwrap_or_else(|e| panic!("{template}: {e}"));
    assert_eq!(rendered, expected, "rendering {template}");
    let mut bytes = b"prefix".to_vec();
    let written = compiled
        .render_json(&event, &mut bytes)
        .expect("render_json agrees on errors");
    let mut wanted = b"prefix".to_vec();
    if let Some(value) = &rendered {
        wanted.extend(serde_json::to_vec(value).expect("serializable"));
    }
    assert_eq!(
        written,
        rendered.is_some(),
        "render_json result of {template}"
    );
    assert_eq!(
        String::from_utf8_lossy(&bytes),
        String::from_utf8_lossy(&wanted),
        "{template}"
    );
}

/// Rows of (template, expected) against the shared event.
fn check_all(rows: Vec<(Value, Option<Value>)>) {
    for (template, expected) in rows {
        check(template, event(), expected);
    }
}

/// Renders and expects a mapping error at `pointer` whose message contains `message`.
fn check_error(template: Value, pointer: &str, message: &str) {
    let compiled = Template::compile(&template).unwrap_or_else(|e| panic!("{template}: {e:?}"));
    let event = Event::from_value(event()).expect("events are objects");
    let error = compiled.render(&event).expect_err(&template.to_string());
    assert_eq!(error.pointer, pointer, "{template}: {error}");
    assert!(
        error.message.contains(message),
        "{template}: got {:?}, want {message:?}",
        error.message
    );
    let json_error = compiled
        .render_json(&event, &mut Vec::new())
        .expect_err("same error");
    assert_eq!(json_error, error);
}

/// Compiles and expects exactly these (pointer, message fragment) errors, in order.
fn check_compile_errors(template: Value, expected: &[(&str, &str)]) {
    let errors = Template::compile(&template).expect_err(&template.to_string());
    let found: Vec<(String, String)> = errors
        .iter()
        .map(|e| (e.pointer.clone(), e.message.clone()))
        .collect();
    assert_eq!(errors.len(), expected.len(), "{template}: {found:#?}");
    for ((pointer, message), (want_pointer, want_message)) in found.iter().zip(expected) {
        assert_eq!(pointer, want_pointer, "{template}: {found:#?}");
        assert!(
            message.contains(want_message),
            "{template}: {message:?} lacks {want_message:?}"
        );
    }
}

#[test]
fn whole_value_placeholders_keep_the_json_type() {
    check_all(vec![
        (json!("##event_name##"), Some(json!("purchase"))),
        (json!("##properties.value##"), Some(json!(120.5))),
        (json!("##properties.count##"), Some(json!(3))),
        (json!("##user.email_optin##"), Some(json!(true))),
        (
            json!("##properties.product##"),
            Some(json!({"item_id": "SKU-3", "price": 1})),
        ),
        (
            json!("##properties.items.0.tags##"),
            Some(json!(["a", "b"])),
        ),
        (json!("##properties.empty_list##"), Some(json!([]))),
        (json!("##properties.empty_object##"), Some(json!({}))),
        (json!("##properties.\"first name\"##"), Some(json!("Grace"))),
        (json!("## user_id ##"), Some(json!("u42"))),
        (
            json!({"a": "##user_id##", "n": 1, "b": [true, "##properties.count##"]}),
            Some(json!({"a": "u42", "n": 1, "b": [true, 3]})),
        ),
    ]);
}

#[test]
fn text_interpolation_of_every_type() {
    check_all(vec![
        (json!("Hi ##user.name##!"), Some(json!("Hi Ada!"))),
        (json!("v=##properties.value##"), Some(json!("v=120.5"))),
        (json!("n=##properties.count##"), Some(json!("n=3"))),
        (
            json!("optin=##user.email_optin##"),
            Some(json!("optin=true")),
        ),
        (
            json!("p=##properties.product##"),
            Some(json!("p={\"item_id\":\"SKU-3\",\"price\":1}")),
        ),
        (
            json!("t=##properties.items.0.tags##"),
            Some(json!("t=[\"a\",\"b\"]")),
        ),
        (json!("##user_id##-##id##"), Some(json!("u42-5f0c8a1e"))),
        (json!("##user_id####id##"), Some(json!("u425f0c8a1e"))),
        (json!(" ##user_id##"), Some(json!(" u42"))),
    ]);
}

#[test]
fn literals_and_escapes() {
    check_all(vec![
        (json!("plain"), Some(json!("plain"))),
        (json!(""), Some(json!(""))),
        (json!("Issue ####42"), Some(json!("Issue ##42"))),
        (json!("####"), Some(json!("##"))),
        (
            json!("######## and ##user_id##"),
            Some(json!("#### and u42")),
        ),
        (json!("# single # hashes"), Some(json!("# single # hashes"))),
        (
            json!({"##key##": "value"}),
            Some(json!({"##key##": "value"})),
        ),
        (json!(null), Some(json!(null))),
        (
            json!({"empty": {}, "list": [], "n": null}),
            Some(json!({"empty": {}, "list": [], "n": null})),
        ),
    ]);
}

#[test]
fn missing_is_removed_never_empty_or_null() {
    check_all(vec![
        (json!("##absent##"), None),
        (json!("##nothing##"), None),
        (json!("##user.name.first##"), None),
        (
            json!({"a": "##absent##", "b": "##user_id##"}),
            Some(json!({"b": "u42"})),
        ),
        (json!({"a": "##absent##", "b": "##nothing##"}), None),
        (
            json!(["##absent##", "##user_id##", "##nothing##"]),
            Some(json!(["u42"])),
        ),
        (json!(["##absent##"]), None),
        (
            json!({"outer": {"inner": {"x": "##absent##"}}, "keep": 1}),
            Some(json!({"keep": 1})),
        ),
        (json!({"outer": {"inner": ["##absent##"]}}), None),
        (
            json!({"users": [{"identifiers": {"email": "##absent##"}, "x": "##nothing##"}]}),
            None,
        ),
        (
            json!({"a": "##absent##", "literal": {}}),
            Some(json!({"literal": {}})),
        ),
        (json!("Hi ##user.name## ##absent##"), None),
        (
            json!({"greeting": "Hi ##absent##", "id": "##user_id##"}),
            Some(json!({"id": "u42"})),
        ),
    ]);
}

#[test]
fn fallbacks_with_paths_and_literals() {
    check_all(vec![
        (
            json!("##properties.absent ?? properties.order_id ?? id##"),
            Some(json!("O-9")),
        ),
        (
            json!("##properties.transaction_id ?? properties.order_id##"),
            Some(json!("T-1")),
        ),
        (
            json!("##nothing ?? absent ?? id##"),
            Some(json!("5f0c8a1e")),
        ),
        (json!("##absent ?? \"TR\"##"), Some(json!("TR"))),
        (
            json!("##absent ?? \"with \\\"quotes\\\" and ## hashes\"##"),
            Some(json!("with \"quotes\" and ## hashes")),
        ),
        (json!("##absent??0##"), Some(json!(0))),
        (json!("##absent ?? 1.5##"), Some(json!(1.5))),
        (json!("##absent ?? -2##"), Some(json!(-2))),
        (json!("##absent ?? true##"), Some(json!(true))),
        (json!("##absent ?? false##"), Some(json!(false))),
        (json!("##\"odd\".key ?? \"odd\"##"), Some(json!("odd"))),
        (json!("##absent ?? nothing##"), None),
        (json!("c=##user.country ?? \"XX\"##"), Some(json!("c=TR"))),
        (json!("c=##absent ?? \"XX\"##"), Some(json!("c=XX"))),
    ]);
}

#[test]
fn conversion_filters() {
    check_all(vec![
        (json!("##properties.count | string##"), Some(json!("3"))),
        (json!("##properties.value | string##"), Some(json!("120.5"))),
        (json!("##user.email_optin | string##"), Some(json!("true"))),
        (json!("##user_id | string##"), Some(json!("u42"))),
        (
            json!("##properties.product | string##"),
            Some(json!("{\"item_id\":\"SKU-3\",\"price\":1}")),
        ),
        (
            json!("##properties.price_text | number##"),
            Some(json!(19.9)),
        ),
        (json!("##properties.int_text | number##"), Some(json!(2))),
        (json!("##properties.value | number##"), Some(json!(120.5))),
        (json!("##properties.blank | number##"), None),
        (json!("##properties.float_int | integer##"), Some(json!(2))),
        (json!("##properties.int_text | integer##"), Some(json!(2))),
        (json!("##properties.count | integer##"), Some(json!(3))),
        (json!("##absent ?? \"3.0\" | integer##"), Some(json!(3))),
        (json!("##properties.blank | integer##"), None),
        (json!("##user.email_optin | boolean##"), Some(json!(true))),
        (json!("##properties.yes | boolean##"), Some(json!(true))),
        (
            json!("##properties.flag_text | boolean##"),
            Some(json!(false)),
        ),
        (json!("##absent ?? \" N \" | boolean##"), Some(json!(false))),
        (json!("##absent ?? 1 | boolean##"), Some(json!(true))),
        (json!("##absent ?? 0 | boolean##"), Some(json!(false))),
        (json!("##properties.blank | boolean##"), None),
        (
            json!("##user.email | trim | lower##"),
            Some(json!("ada@example.com")),
        ),
        (
            json!("##user.email | upper##"),
            Some(json!("  ADA@EXAMPLE.COM ")),
        ),
        (json!("##properties.count | lower##"), Some(json!("3"))),
        (json!("##user.email_optin | upper##"), Some(json!("TRUE"))),
        (json!("##properties.blank | trim##"), Some(json!(""))),
        (
            json!("##properties.product | json##"),
            Some(json!("{\"item_id\":\"SKU-3\",\"price\":1}")),
        ),
        (json!("##user_id | json##"), Some(json!("\"u42\""))),
        (json!("##properties.count | json##"), Some(json!("3"))),
        (json!("##absent | string##"), None),
        (json!("##absent | json##"), None),
        (json!("##absent | lower | number##"), None),
        (
            json!("n=##properties.price_text | number##"),
            Some(json!("n=19.9")),
        ),
    ]);
}

#[test]
fn without_leaves_keys_out_of_an_object() {
    check_all(vec![
        (
            json!(
                "##properties | without(items, product, transaction_id, order_id, \"first name\", empty_list, empty_object, blank, yes, flag_text, word, epoch_s, epoch_ms, epoch_ms_text, date, price_text, int_text, float_int, half)##"
            ),
            Some(json!({"value": 120.5, "count": 3})),
        ),
        // Nothing to leave out: the object as it is; not an object: unchanged.
        (
            json!("##properties.product | without(absent)##"),
            Some(json!({"item_id": "SKU-3", "price": 1})),
        ),
        (
            json!("##properties.value | without(x)##"),
            Some(json!(120.5)),
        ),
        (json!("##absent | without(x)##"), None),
        (
            json!({"##each properties.items as item##": "##item | without( tags ,price)##"}),
            Some(
                json!([{"item_id": "SKU-1", "quantity": 2}, {"item_id": "SKU-2", "quantity": null}]),
            ),
        ),
    ]);
}

#[test]
fn timestamps() {
    check_all(vec![
        (
            json!("##created_at | timestamp##"),
            Some(json!("2024-12-19T09:45:39Z")),
        ),
        (
            json!("##properties.epoch_s | timestamp##"),
            Some(json!("2024-12-19T09:45:39Z")),
        ),
        (
            json!("##properties.epoch_ms | timestamp##"),
            Some(json!("2024-12-19T09:45:39.659Z")),
        ),
        (
            json!("##properties.epoch_ms_text | timestamp##"),
            Some(json!("2024-12-19T09:45:39.659Z")),
        ),
        (
            json!("##properties.date | timestamp##"),
            Some(json!("2024-12-19T00:00:00Z")),
        ),
        (json!("##properties.blank | timestamp##"), None),
        (json!("##absent | timestamp##"), None),
    ]);
}

#[test]
fn filters_report_what_they_cannot_convert() {
    check_error(
        json!({"p": "##properties.word | number##"}),
        "/p",
        "properties.word | number: cannot convert \"abc\" to a number",
    );
    check_error(
        json!({"p": "##user.email_optin | number##"}),
        "/p",
        "cannot convert true to a number",
    );
    check_error(
        json!(["##properties.half | integer##"]),
        "/0",
        "cannot convert 2.5 to an integer",
    );
    check_error(
        json!("##properties.word | integer##"),
        "",
        "cannot convert \"abc\" to an integer",
    );
    check_error(
        json!("##properties.word | boolean##"),
        "",
        "cannot convert \"abc\" to a boolean",
    );
    check_error(
        json!("##properties.count | boolean##"),
        "",
        "cannot convert 3 to a boolean",
    );
    check_error(
        json!("##properties.product | lower##"),
        "",
        "cannot change the case or trim {",
    );
    check_error(
        json!("##properties.items | trim##"),
        "",
        "properties.items | trim: cannot",
    );
    check_error(
        json!("##properties.word | timestamp##"),
        "",
        "cannot convert \"abc\" to a timestamp",
    );
    check_error(
        json!("##properties.word | string | upper | number##"),
        "",
        "properties.word | string | upper | number: cannot convert \"ABC\"",
    );
    check_error(
        json!("##user.email | trim | number | lower##"),
        "",
        "user.email | trim | number: cannot convert \"Ada@Example.COM\" to a number",
    );
    check_error(
        json!({"users": [{"events": [{"timestamp": "x ##properties.word | timestamp##"}]}]}),
        "/users/0/events/0/timestamp",
        "to a timestamp",
    );
    check_error(
        json!({"a/b~c": "##properties.word | number##"}),
        "/a~1b~0c",
        "number",
    );
}

#[test]
fn long_values_are_cut_short_in_messages() {
    let long = "x".repeat(500);
    let template = Template::compile(&json!("##text | number##")).expect("valid");
    let event = Event::from_value(json!({"text": long})).expect("object");
    let error = template.render(&event).expect_err("not a number");
    assert!(error.message.len() < 150, "{}", error.message);
    assert!(error.message.contains("xxx…"), "{}", error.message);
}

#[test]
fn required() {
    check_all(vec![
        (json!("##user_id | required##"), Some(json!("u42"))),
        (
            json!("##absent ?? user_id | required | lower##"),
            Some(json!("u42")),
        ),
    ]);
    check_error(
        json!({"email": "##absent | required##"}),
        "/email",
        "absent | required: a required value is missing",
    );
    check_error(
        json!({"e": "##nothing ?? absent | lower | required##"}),
        "/e",
        "required value is missing",
    );
    check_error(
        json!({"e": "##properties.blank | required | number##"}),
        "/e",
        "required value is missing",
    );
    check_error(json!({"e": "x ##absent | required##"}), "/e", "required");
    check_error(
        json!({"l": [{"##each properties.items as item##": {"q": "##item.quantity | required##"}}]}),
        "/l/0/##each properties.items as item##/q",
        "item.quantity | required",
    );
}

#[test]
fn each_iterates_items() {
    check_all(vec![
        (
            json!({"##each properties.items as item##": {"id": "##item.item_id##", "p": "##item.price | number##"}}),
            Some(json!([{"id": "SKU-1", "p": 60.25}, {"id": "SKU-2", "p": 5}])),
        ),
        (
            json!({"##each properties.items as item##": "##item.item_id##"}),
            Some(json!(["SKU-1", "SKU-2"])),
        ),
        (
            json!({"##each properties.items as item##": {"q": "##item.quantity##"}}),
            Some(json!([{"q": 2}])),
        ),
        (
            json!({"##each properties.items as item##": "##item.quantity##"}),
            Some(json!([2])),
        ),
        (
            json!({"##each properties.items as item##": {"id": "##item.item_id##", "tx": "##properties.transaction_id##"}}),
            Some(json!([{"id": "SKU-1", "tx": "T-1"}, {"id": "SKU-2", "tx": "T-1"}])),
        ),
        (
            json!({"##each properties.product as item##": {"id": "##item.item_id##"}}),
            Some(json!([{"id": "SKU-3"}])),
        ),
        (
            json!({"##each properties.absent ?? properties.product as p##": "##p.item_id##"}),
            Some(json!(["SKU-3"])),
        ),
        (
            json!({"##each properties.items ?? properties.product as p##": "##p.item_id##"}),
            Some(json!(["SKU-1", "SKU-2"])),
        ),
        (
            json!({"##each properties.items.0.tags as tag##": "tag ##tag##"}),
            Some(json!(["tag a", "tag b"])),
        ),
        (json!({"##each absent as item##": {"x": 1}}), None),
        (
            json!({"##each properties.empty_list as item##": {"x": 1}}),
            None,
        ),
        (
            json!({"list": {"##each properties.empty_list as item##": {"x": 1}}, "k": 1}),
            Some(json!({"k": 1})),
        ),
        (
            json!({"##each properties.items as item##": {"x": "##item.absent##"}}),
            None,
        ),
        (
            json!({"##each properties.items as item##": {"x": 1}}),
            Some(json!([{"x": 1}, {"x": 1}])),
        ),
        (
            json!({"##each   properties.items   as   item  ##": "##item.item_id##"}),
            Some(json!(["SKU-1", "SKU-2"])),
        ),
    ]);
}

/// Items of every shape, each read through its loop's slots as a path reads it: an item that
/// is `null`, text or a list has no keys; a key whose value is `null` is missing; `item` alone is
/// the item, unless it is `null`.
#[test]
fn items_of_any_shape_are_read_as_paths_read_them() {
    let event = json!({"list": [
        {"a": {"b": 1}, "x y": "spaced", "n": null, "0": "key zero"},
        null,
        "text",
        [10, {"a": {"b": 2}}],
        {"a": 3, "b": [4, 5]}
    ]});
    let template = json!({"##each list as item##": {
        "whole": "##item##",
        "a": "##item.a##",
        "ab": "##item.a.b##",
        "spaced": "##item.\"x y\"##",
        "n": "##item.n ?? \"none\"##",
        "zero": "##item.0##",
        "deep": "##item.1.a.b ?? item.b.1##"
    }});
    check(
        template,
        event,
        Some(json!([
            {"whole": {"a": {"b": 1}, "x y": "spaced", "n": null, "0": "key zero"},
             "a": {"b": 1}, "ab": 1, "spaced": "spaced", "n": "none", "zero": "key zero"},
            {"n": "none"},
            {"whole": "text", "n": "none"},
            {"whole": [10, {"a": {"b": 2}}], "n": "none", "zero": 10, "deep": 2},
            {"whole": {"a": 3, "b": [4, 5]}, "a": 3, "n": "none", "deep": 5}
        ])),
    );
}

#[test]
fn each_splices_into_arrays_and_nests() {
    check_all(vec![
        (
            json!({"events": [
                {"##each properties.items as item##": {"name": "view", "id": "##item.item_id##"}},
                {"name": "purchase"},
            ]}),
            Some(json!({"events": [
               {"name": "view", "id": "SKU-1"}, {"name": "view", "id": "SKU-2"}, {"name": "purchase"},
            ]})),
        ),
        (
            json!(["first", {"##each absent as item##": "##item##"}, "last"]),
            Some(json!(["first", "last"])),
        ),
        (json!([{"##each absent as item##": "##item##"}]), None),
        (
            json!({"##each properties.items as item##": {
                "id": "##item.item_id##",
                "tags": {"##each item.tags as tag##": "##item.item_id##:##tag##"},
            }}),
            Some(json!([{"id": "SKU-1", "tags": ["SKU-1:a", "SKU-1:b"]}, {"id": "SKU-2"}])),
        ),
        (
            json!({"##each properties.items as x##": {"##each x.tags as x##": "##x##"}}),
            Some(json!([["a", "b"]])),
        ),
        (
            json!({"##each properties.items as item##": [{"##each item.tags as tag##": "##tag##"}, "##item.item_id##"]}),
            Some(json!([["a", "b", "SKU-1"], ["SKU-2"]])),
        ),
        (
            json!({"##each properties.items as item##": "##item##"}),
            Some(json!(event()["properties"]["items"].clone())),
        ),
        (
            json!({"##each properties.product as properties##": "##properties.item_id## / ##\"properties\".transaction_id##"}),
            Some(json!(["SKU-3 / T-1"])),
        ),
    ]);
}

#[test]
fn the_seed_request_format() {
    let template = seed_request_format();
    check(
        template.clone(),
        json!({
            "event_name": "purchase", "created_at": "2024-12-19T09:45:39.659Z", "user_id": "u42",
            "user": {"email": "ada@example.com", "name": "Ada", "email_optin": true},
            "properties": {"value": 120.5},
        }),
        Some(json!({"users": [{
            "identifiers": {"email": "ada@example.com", "uuid": "u42", "custom": {"hardal_id": "u42"}},
            "attributes": {"email_optin": true, "name": "Ada", "custom": {"source": "hardal_analytics"}},
            "events": [{"event_name": "purchase", "timestamp": "2024-12-19T09:45:39.659Z", "event_params": {"value": 120.5}}],
        }]})),
    );
    // An anonymous event keeps only what it has; nothing becomes "" or null.
    check(
        template,
        json!({"event_name": "page_view"}),
        Some(json!({"users": [{
            "attributes": {"custom": {"source": "hardal_analytics"}},
            "events": [{"event_name": "page_view"}],
        }]})),
    );
}

pub(crate) fn seed_request_format() -> Value {
    json!({"users": [{
        "identifiers": {"email": "##user.email##", "uuid": "##user_id##", "custom": {"hardal_id": "##user_id##"}},
        "attributes": {"email_optin": "##user.email_optin##", "name": "##user.name##", "country": "##user.country##",
                       "language": "##user.language##", "custom": {"source": "hardal_analytics"}},
        "events": [{"event_name": "##event_name##", "timestamp": "##created_at##", "event_params": "##properties##"}],
    }]})
}

#[test]
fn is_constant() {
    let constant = |v: Value| Template::compile(&v).expect("valid").is_constant();
    assert!(constant(
        json!({"a": [1, "two", {"three": null}], "b": "Issue ####1"})
    ));
    assert!(constant(json!("")));
    assert!(!constant(json!({"a": [1, "##x##"]})));
    assert!(!constant(json!("a ##x## b")));
    assert!(!constant(json!({"##each x as y##": 1})));
}

#[test]
fn compile_errors_name_the_pointer_and_the_problem() {
    let table: Vec<(Value, &str)> = vec![
        (json!("##user.email"), "unclosed \"##\" in \"##user.email\""),
        (json!("a ##b## ##c"), "unclosed \"##\""),
        (json!("##  ##"), "empty placeholder"),
        (json!("##a..b##"), "bad path: empty key at character 3"),
        (json!("##a b##"), "unexpected 'b' at character 3"),
        (
            json!("##a | nope##"),
            "unknown filter \"nope\" (known filters: string, number, integer, boolean, lower, upper, trim, timestamp, json, without(KEY, …), required)",
        ),
        (json!("##a |##"), "expected a filter name after \"|\""),
        (json!("##a | without##"), "`without` needs the keys"),
        (json!("##a | without()##"), "expected a key in without(…)"),
        (
            json!("##a | without(x y)##"),
            "expected \",\" or \")\" in without(…)",
        ),
        (
            json!("##a | without(x##"),
            "expected \",\" or \")\" in without(…)",
        ),
        (
            json!("##a | lower(x)##"),
            "the filter \"lower\" takes no arguments",
        ),
        (
            json!("##a ??##"),
            "\"??\" must be followed by a path or a literal",
        ),
        (json!("##?? a##"), "expected a path or a literal"),
        (json!("##a | lower ?? b##"), "\"??\" after a filter"),
        (json!("##\"unclosed##"), "unclosed quote"),
        (json!("##a.\"x\\q\"##"), "unknown escape \\q"),
        (json!({"##each items##": 1}), "missing \"as NAME\""),
        (json!({"##each items as##": 1}), "identifier"),
        (json!({"##each items as 1x##": 1}), "found \"1x\""),
        (json!({"##each items as a b##": 1}), "found \"a b\""),
        (
            json!({"##each items | lower as x##": 1}),
            "filters are not allowed on an each source",
        ),
        (json!({"##each items ax x##": 1}), "expected \"as\""),
        (
            json!({"##each items as x": 1}),
            "missing the closing \"##\"",
        ),
        (json!({"##each##": 1}), "empty placeholder"),
    ];
    for (template, message) in table {
        let pointer = match &template {
            Value::Object(map) => format!(
                "/{}",
                map.keys().next().map(String::as_str).unwrap_or_default()
            ),
            _ => String::new(),
        };
        check_compile_errors(template, &[(pointer.as_str(), message)]);
    }
}

#[test]
fn every_compile_error_is_reported() {
    check_compile_errors(
        json!({
            "users": [{
                "email": "##user.email",
                "ok": "##user_id##",
                "events": [{"t": "##created_at | stamp##", "n": "##a ?? ##"}],
            }],
            "a/b": {"c~d": "## ##"},
            "loop": {"##each items as item##": {"x": "##item.x | nope##"}, "other": 1},
            "bad each": {"##each items as 9##": {"y": "##item..y##"}},
            "two": "##a..b## and ##c | what##",
        }),
        &[
            ("/users/0/email", "unclosed"),
            ("/users/0/events/0/t", "unknown filter \"stamp\""),
            ("/users/0/events/0/n", "\"??\" must be followed"),
            ("/a~1b/c~0d", "empty placeholder"),
            ("/loop", "must have no other keys; found \"other\""),
            ("/loop/##each items as item##/x", "unknown filter \"nope\""),
            ("/bad each/##each items as 9##", "identifier"),
            ("/bad each/##each items as 9##/y", "bad path"),
            ("/two", "in \"##a..b##\": bad path"),
            ("/two", "in \"##c | what##\": unknown filter"),
        ],
    );
}

#[test]
fn messages_quote_the_offending_text() {
    let errors = Template::compile(&json!({"x": "##user.email | lowercase##"})).expect_err("bad");
    assert_eq!(errors[0].to_string().split(':').next(), Some("/x"));
    assert!(
        errors[0].message.contains("##user.email | lowercase##"),
        "{}",
        errors[0].message
    );
}
