//! Configuration validation, as data: a configuration text in, every diagnostic out.

use expect_test::{Expect, expect};
use hardal_runner::config::load_str;

/// Loads `source` with only `INSIDER_REQUEST_TOKEN` set, and prints every diagnostic as
/// `line:column pointer: message`, or `valid: ids` when it loads. The list of linked kinds reads
/// `<linked kinds>`, so that adding a kind changes no expectation here.
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
    let kinds = hardal_runner::linked_kinds().join(", ");
    expected.assert_eq(&actual.replace(&kinds, "<linked kinds>"));
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
            1:39 /destinations/0/type: unknown destination type "webhook"; known kinds: <linked kinds>
            1:52 /spool: unknown field `spool`; expected one of: $schema, destinations, delivery, server, backlog, privacy
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
            1:69 /destinations/0/endpoint_url: `${URL}` is not a valid URL: relative URL without a base
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
            1:26 /destinations/0/id: destination id "has space" may hold only letters, digits, `_` and `-` (up to 64, starting with a letter or digit): it names NATS consumers and subjects, which cannot hold `.`, `*`, `>` or spaces
        "#]],
    );
}

#[test]
fn header_names_and_values_that_are_not_http_are_refused() {
    check(
        r###"{"destinations": [
  {"id": "a", "type": "custom_api", "endpoint_url": "https://exa mple.com/x", "request_format": {},
   "headers": {"X Token": "a", "X-Inject": "v\r\nX-Evil: 1", "Content-Length": "10",
               "Transfer-Encoding": "chunked", "X-Empty": "", "X-Nul": "a\u0000b"}},
  {"id": "b", "type": "insider", "consent": {"mode": "off"}, "partner_name": "brand", "request_token": "",
   "endpoint": "http://[::1/upsert"}
]}"###,
        expect![[r#"
            2:53 /destinations/0/endpoint_url: `https://exa mple.com/x` is not a valid URL: invalid international domain name
            3:27 /destinations/0/headers/X Token: `X Token` is not a valid HTTP header name (letters, digits and !#$%&'*+-.^_`|~ only)
            3:44 /destinations/0/headers/X-Inject: the value of `X-Inject` is not a valid HTTP header value (line breaks and other control characters are not allowed)
            3:80 /destinations/0/headers/Content-Length: `Content-Length` is set by the HTTP client for every request and cannot be configured
            4:37 /destinations/0/headers/Transfer-Encoding: `Transfer-Encoding` is set by the HTTP client for every request and cannot be configured
            4:59 /destinations/0/headers/X-Empty: this secret is empty
            4:72 /destinations/0/headers/X-Nul: the value of `X-Nul` is not a valid HTTP header value (line breaks and other control characters are not allowed)
            5:104 /destinations/1/request_token: this secret is empty
            6:16 /destinations/1/endpoint: `http://[::1/upsert` is not a valid URL: invalid IPv6 address
        "#]],
    );
}

#[test]
fn every_destination_is_reported_after_a_template_error() {
    // The first destination's template does not compile; the second and third have problems
    // only building them finds. All are reported in one go.
    check(
        r###"{"destinations": [
  {"id": "a", "type": "custom_api", "endpoint_url": "https://x", "request_format": {"e": "##user.email"}},
  {"id": "b", "type": "custom_api", "endpoint_url": "ftp://y", "request_format": {}},
  {"id": "c", "type": "insider", "consent": {"mode": "off"}, "partner_name": "brand", "request_token": "t",
   "event_names": {"identify": "x"}}
]}"###,
        expect![[r###"
            2:90 /destinations/0/request_format/e: unclosed "##" in "##user.email" (at character 1); write #### for a literal ##
            3:53 /destinations/1/endpoint_url: `ftp://y` is not an http:// or https:// URL
            5:32 /destinations/2/event_names/identify: the identify preset sends no event of its own name to rename
        "###]],
    );
}

#[test]
fn duplicate_keys_are_errors_at_the_second_occurrence() {
    check(
        r###"{"destinations": [
  {"id": "a", "type": "insider", "consent": {"mode": "off"}, "partner_name": "brand", "request_token": "t",
   "partner_name": "other"}
]}"###,
        expect![[r#"
            3:4 /destinations/0/partner_name: duplicate key `partner_name` (also at line 2, column 62); a JSON object may name a key once
        "#]],
    );
}

#[test]
fn a_utf8_byte_order_mark_is_accepted() {
    check(
        "\u{feff}{\"destinations\": [{\"id\": \"a\", \"type\": \"insider\", \"consent\": {\"mode\": \"off\"}, \"partner_name\": \"brand\", \"request_token\": \"t0k3n\"}]}",
        expect![[r###"
            valid: a
        "###]],
    );
}

#[test]
fn a_schema_line_for_editors_is_accepted() {
    // Editors attach a schema to a JSON file by its `"$schema"` member; hardal ignores it.
    check(
        r#"{"$schema": "./schemas/hardal.schema.json",
 "destinations": [{"id": "a", "type": "insider", "consent": {"mode": "off"}, "partner_name": "brand", "request_token": "t0k3n"}]}"#,
        expect![[r#"
            valid: a
        "#]],
    );
    check(
        r#"{"$schema": 1, "destinations": [{"id": "a", "type": "insider", "consent": {"mode": "off"}, "partner_name": "brand", "request_token": "t0k3n"}]}"#,
        expect![[r#"
            1:13 /$schema: 1 is not of type "string"
        "#]],
    );
}

#[test]
fn numbers_the_code_narrows_are_bounded_by_the_schema() {
    // Each of these used to pass the schema and then panic, overflow or never work.
    check(
        r###"{"destinations": [{"id": "a", "type": "insider", "consent": {"mode": "off"}, "partner_name": "brand", "request_token": "t0k3n",
   "requests_per_minute": 1e12, "delivery": {"concurrency": 0}}],
 "delivery": {"linger_ms": 1e30, "request_timeout_ms": 0, "max_pending_records": -1,
              "max_retry_seconds": 18446744073709551616, "backoff_max_ms": 1e20, "max_attempts": 5000}}"###,
        expect![[r#"
            2:27 /destinations/0/requests_per_minute: 1000000000000.0 is greater than the maximum of 1000000
            2:61 /destinations/0/delivery/concurrency: 0 is less than the minimum of 1
            3:28 /delivery/linger_ms: 1e+30 is greater than the maximum of 60000
            3:56 /delivery/request_timeout_ms: 0 is less than the minimum of 1
            3:82 /delivery/max_pending_records: -1 is less than the minimum of 1
            4:36 /delivery/max_retry_seconds: 1.8446744073709552e+19 is greater than the maximum of 2592000
            4:76 /delivery/backoff_max_ms: 1e+20 is greater than the maximum of 86400000
            4:98 /delivery/max_attempts: 5000 is greater than the maximum of 1000
        "#]],
    );
}

#[test]
fn listen_addresses_that_cannot_be_bound_are_refused() {
    check(
        r###"{"destinations": [{"id": "a", "type": "insider", "consent": {"mode": "off"}, "partner_name": "brand", "request_token": "t0k3n"}],
 "server": {"listen": "127.0.0.1:99999", "auth_tokens": ["t0k3n"]}}"###,
        expect![[r#"
            2:23 /server/listen: `127.0.0.1:99999` is not an address to listen on: write host:port with a port from 0 to 65535, e.g. `127.0.0.1:8080`, `0.0.0.0:8080` or `[::1]:8080`
        "#]],
    );
    let listen = |address: &str| {
        let text = format!(
            r#"{{"destinations": [{{"id": "a", "type": "insider", "consent": {{"mode": "off"}}, "partner_name": "brand", "request_token": "t0k3n"}}],
                "server": {{"listen": "{address}", "auth_tokens": ["t0k3n"]}}}}"#
        );
        load_str(&text, &|_: &str| None).map(|_| ())
    };
    for bad in [
        "not-an-address",
        "localhost:99999",
        ":8080",
        "127.0.0.1",
        "127.0.0.1:",
        "127.0.0.1:80a",
        "[::1]",
        "::1:8080",
        "exa mple.com:80",
        "",
    ] {
        let problems = listen(bad).expect_err(bad);
        assert_eq!(problems.len(), 1, "{bad}: {problems:?}");
        assert_eq!(problems[0].pointer, "/server/listen", "{bad}");
    }
    for good in [
        "127.0.0.1:8080",
        "0.0.0.0:0",
        "[::1]:8080",
        "[::]:65535",
        "localhost:8080",
        "hardal.internal:80",
    ] {
        assert!(listen(good).is_ok(), "{good}: {:?}", listen(good));
    }
}

#[test]
fn delivery_settings_can_be_set_per_destination() {
    let lookup = |_: &str| None;
    let config = load_str(
        r#"{"destinations": [
  {"id": "slow", "type": "insider", "consent": {"mode": "off"}, "partner_name": "brand", "request_token": "t0k3n",
   "delivery": {"concurrency": 1, "request_timeout_ms": 90000}},
  {"id": "fast", "type": "insider", "consent": {"mode": "off"}, "partner_name": "brand", "request_token": "t0k3n"}],
 "delivery": {"concurrency": 8, "linger_ms": 50}}"#,
        &lookup,
    )
    .unwrap();
    let settings: Vec<(usize, u64, u64)> = config
        .delivery
        .iter()
        .map(|d| (d.concurrency, d.linger_ms, d.request_timeout_ms))
        .collect();
    assert_eq!(settings, [(1, 50, 90_000), (8, 50, 30_000)]);
}

#[test]
fn plain_http_to_another_machine_is_a_warning() {
    let lookup = |_: &str| None;
    let config = load_str(
        r#"{"destinations": [
  {"id": "remote", "type": "insider", "consent": {"mode": "off"}, "partner_name": "brand", "request_token": "t0k3n",
   "endpoint": "http://insider.example/upsert"},
  {"id": "local", "type": "insider", "consent": {"mode": "off"}, "partner_name": "brand", "request_token": "t0k3n",
   "endpoint": "http://127.0.0.1:9000/upsert"}]}"#,
        &lookup,
    )
    .unwrap();
    let warnings: Vec<String> = config
        .warnings
        .iter()
        .map(|w| format!("{}:{} {}", w.position.line, w.position.column, w.message))
        .collect();
    assert_eq!(
        warnings,
        [
            "2:3 destination `remote` sends to `http://insider.example/upsert` over plain http: its credentials and data travel unencrypted"
        ]
    );
}

#[test]
fn validation_time_is_linear_in_the_number_of_problems() {
    // n destinations, each with an unknown field: the time for 4n problems stays near four
    // times that for n (it was quadratic: every problem re-scanned the whole file).
    let source = |n: usize| {
        let destinations: Vec<String> = (0..n)
            .map(|i| {
                format!(
                    r#"{{"id": "d{i}", "type": "insider", "consent": {{"mode": "off"}}, "partner_name": "brand", "request_token": "t0k3n", "nope": {i}}}"#
                )
            })
            .collect();
        format!("{{\"destinations\": [\n{}\n]}}", destinations.join(",\n"))
    };
    let time = |n: usize| {
        let text = source(n);
        let started = std::time::Instant::now();
        let problems = load_str(&text, &|_| None).err().unwrap();
        assert_eq!(problems.len(), n);
        started.elapsed().as_secs_f64()
    };
    time(200);
    let (small, large) = (time(1000), time(4000));
    assert!(
        large < small * 10.0,
        "1000 problems took {small:.3} s, 4000 took {large:.3} s"
    );
}

#[test]
fn a_tap_token_must_not_be_an_ingestion_token() {
    // Whoever may post events must not thereby read every event.
    check(
        r#"{"destinations": [{"id": "a", "type": "insider", "consent": {"mode": "off"}, "partner_name": "brand", "request_token": "t0k3n"}],
 "server": {"auth_tokens": ["post-token"],
            "tap": {"auth_tokens": ["tap-token", "post-token"]}}}"#,
        expect![[r#"
            3:50 /server/tap/auth_tokens/1: this token is also one of `server.auth_tokens`: whoever may post events could read every event through the tap; give the tap its own token
        "#]],
    );
}

#[test]
fn an_erasure_token_must_not_be_an_ingestion_token() {
    // Whoever may post events must not thereby have any user erased.
    check(
        r#"{"destinations": [{"id": "a", "type": "insider", "consent": {"mode": "off"}, "partner_name": "brand", "request_token": "t0k3n"}],
 "server": {"auth_tokens": ["post-token"], "privacy_tokens": ["post-token", "privacy-token"]}}"#,
        expect![[r#"
            2:63 /server/privacy_tokens/0: this token is also one of `server.auth_tokens`: whoever may post events could have any user erased; give erasure requests their own token
        "#]],
    );
}

#[test]
fn a_meta_capi_destination_names_its_bad_fields() {
    check(
        r###"{
  "destinations": [
    {
      "id": "meta",
      "type": "meta_capi",
      "pixel_id": "my-pixel",
      "acces_token": "tok",
      "action_source": "web",
      "max_events_per_request": 5000,
      "presets": ["purchase", "checkout"],
      "mappings": [{"when": {"event_name": "lead"}, "event": {"event_name": "Lead", "event_time": "##created_at"}}]
    }
  ]
}"###,
        expect![[r###"
            3:5 /destinations/0: "access_token" is a required property
            3:5 /destinations/0/consent: `meta_capi` destinations (marketing) must say what they do with consent: add `"consent": {"mode": "required"}` to forward only events that carry consent (`properties.consent` or `consent` is "true"), as Hardal's Consent Mode does, or `"consent": {"mode": "off"}` to forward every event, as hardal did before consent mode
            6:19 /destinations/0/pixel_id: "my-pixel" does not match "^[0-9]{1,32}$"
            7:7 /destinations/0/acces_token: unknown field `acces_token`; did you mean `access_token`?
            8:24 /destinations/0/action_source: "web" is not valid under any of the schemas listed in the 'oneOf' keyword
            9:33 /destinations/0/max_events_per_request: 5000 is greater than the maximum of 1000
            10:31 /destinations/0/presets/1: "checkout" is not valid under any of the schemas listed in the 'oneOf' keyword
            11:99 /destinations/0/mappings/0/event/event_time: unclosed "##" in "##created_at" (at character 1); write #### for a literal ##
        "###]],
    );
}

#[test]
fn a_marketing_or_analytics_destination_without_consent_is_refused_with_the_fix() {
    // Written before consent mode: the insider and ga4 destinations forwarded every event, and
    // Hardal's default would forward only some; neither is assumed. A webhook (custom_api) keeps
    // forwarding every event, as Hardal's custom webhooks do.
    check(
        r###"{"destinations": [
  {"id": "insider", "type": "insider", "partner_name": "brand", "request_token": "t0k3n"},
  {"id": "ga4", "type": "ga4", "measurement_id": "G-1", "api_secret": "t0k3n"},
  {"id": "hook", "type": "custom_api", "endpoint_url": "https://x", "request_format": {}}
]}"###,
        expect![[r#"
            2:3 /destinations/0/consent: `insider` destinations (marketing) must say what they do with consent: add `"consent": {"mode": "required"}` to forward only events that carry consent (`properties.consent` or `consent` is "true"), as Hardal's Consent Mode does, or `"consent": {"mode": "off"}` to forward every event, as hardal did before consent mode
            3:3 /destinations/1/consent: `ga4` destinations (analytics) must say what they do with consent: add `"consent": {"mode": "required"}` to forward only events that carry consent (`properties.consent` or `consent` is "true"), as Hardal's Consent Mode does, or `"consent": {"mode": "off"}` to forward every event, as hardal did before consent mode
        "#]],
    );
}

#[test]
fn consent_settings_are_checked() {
    check(
        r###"{"destinations": [
  {"id": "a", "type": "insider", "partner_name": "brand", "request_token": "t0k3n",
   "consent": {"mode": "maybe", "paths": []}},
  {"id": "b", "type": "insider", "partner_name": "brand", "request_token": "t0k3n",
   "consent": {"mode": "required", "paths": ["properties.consent", "a..b"], "categry": "x"}},
  {"id": "c", "type": "insider", "partner_name": "brand", "request_token": "t0k3n",
   "consent": {"mode": "required", "paths": ["ok", "a..b"]}},
  {"id": "d", "type": "custom_api", "endpoint_url": "https://x", "request_format": {},
   "consent": {"mode": "required", "category": "analytics", "granted": ["true", true, "yes"]}}
]}"###,
        expect![[r#"
            3:24 /destinations/0/consent/mode: "maybe" is not one of "required", "off"
            3:42 /destinations/0/consent/paths: [] has less than 1 item
            5:77 /destinations/1/consent/categry: unknown field `categry`; did you mean `category`?
            7:52 /destinations/2/consent/paths/1: `a..b` is not a path: empty key at character 3
        "#]],
    );
}
