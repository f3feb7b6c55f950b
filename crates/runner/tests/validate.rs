//! Configuration validation, as data: a configuration text in, every diagnostic out.

use expect_test::{Expect, expect};
use hardal_runner::config::load_str;

/// Loads `source` with only `INSIDER_REQUEST_TOKEN` set, and prints every diagnostic as
/// `line:column pointer: message`, or `valid: ids` when it loads.
fn check(source: &str, expected: Expect) {
    let lookup = |name: &str| (name == "INSIDER_REQUEST_TOKEN").then(|| "tok".to_owned());
    let actual = match load_str(source, &lookup) {
        Ok(config) => {
            let ids: Vec<&str> = config.destinations.iter().map(|d| d.id()).collect();
            format!("valid: {}\n", ids.join(", "))
        }
        Err(diagnostics) => diagnostics
            .iter()
            .map(|d| {
                format!(
                    "{}:{} {}: {}\n",
                    d.position.line, d.position.column, d.pointer, d.message
                )
            })
            .collect(),
    };
    expected.assert_eq(&actual);
}

#[test]
fn the_example_configuration_is_valid() {
    check(
        include_str!("../../../examples/custom-api-insider.json"),
        expect![[r#"
        valid: insider-integration
    "#]],
    );
}

#[test]
fn several_mistakes_are_reported_at_once_with_positions() {
    check(
        r###"{
  "destinations": [
    {
      "id": "insider-integration",
      "type": "custom_api",
      "endpoint_urll": "https://unification.useinsider.com/api/user/v1/upsert",
      "request_method": 7,
      "headers": {"X-REQUEST-TOKEN": "${HARDAL_TEST_UNSET}"},
      "request_format": {"users": [{"identifiers": {"email": "##user.email"}}]}
    }
  ]
}"###,
        expect![[r###"
            3:5 /destinations/0: "endpoint_url" is a required property
            6:7 /destinations/0/endpoint_urll: unknown field `endpoint_urll`; did you mean `endpoint_url`?
            7:25 /destinations/0/request_method: 7 is not of type "string"
            8:38 /destinations/0/headers/X-REQUEST-TOKEN: environment variable HARDAL_TEST_UNSET is not set
            9:62 /destinations/0/request_format/users/0/identifiers/email: unclosed "##" in "##user.email" (at character 1); write #### for a literal ##
        "###]],
    );
}

#[test]
fn syntax_errors_name_line_and_column() {
    check(
        "{\n  \"destinations\": [\n    {\"id\": \"a\",}\n  ]\n}",
        expect![[r#"
        3:16 : not valid JSON: trailing comma
    "#]],
    );
}

#[test]
fn unknown_kinds_and_fields_say_what_would_be_right() {
    check(
        r#"{"destinations": [{"id": "w", "type": "webhook"}], "spool": {}}"#,
        expect![[r#"
            1:39 /destinations/0/type: unknown destination type "webhook"; known kinds: custom_api, insider
            1:52 /spool: unknown field `spool`; expected one of: destinations, delivery
        "#]],
    );
}

#[test]
fn environment_references_only_in_secrets() {
    check(
        r#"{"destinations": [{"id": "a", "type": "custom_api", "endpoint_url": "${URL}",
            "headers": {"X-REQUEST-TOKEN": "${INSIDER_REQUEST_TOKEN}"},
            "request_format": {"token": "${INSIDER_REQUEST_TOKEN}"}}]}"#,
        expect![[r#"
            1:69 /destinations/0/endpoint_url: `${NAME}` environment references are allowed only in secret and header values
            3:41 /destinations/0/request_format/token: `${NAME}` environment references are allowed only in secret and header values
        "#]],
    );
}

#[test]
fn semantic_errors_after_the_schema() {
    check(
        r#"{"destinations": [
  {"id": "a", "type": "custom_api", "endpoint_url": "ftp://x"},
  {"id": "a", "type": "custom_api", "endpoint_url": "https://x", "request_format": {"users": []},
   "batch": {"array_pointer": "/people"}}
]}"#,
        expect![[r#"
            2:3 /destinations/0: a custom_api destination needs `request_format`, `mappings`, or both
            2:53 /destinations/0/endpoint_url: `ftp://x` is not an http:// or https:// URL
            3:10 /destinations/1/id: destination id `a` is used twice
            3:84 /destinations/1/request_format: batch.array_pointer `/people` does not name an array in this request_format
        "#]],
    );
}

#[test]
fn duplicate_ids_and_bad_id_patterns() {
    check(
        r#"{"destinations": [{"id": "has space", "type": "custom_api", "endpoint_url": "https://x", "request_format": {}}]}"#,
        expect![[r#"
            1:26 /destinations/0/id: "has space" does not match "^[A-Za-z0-9][A-Za-z0-9_.-]*$"
        "#]],
    );
}
