//! The committed `schemas/` must be what the code generates, and every linked destination kind
//! must be registered.

use std::path::Path;

#[test]
fn committed_schemas_are_fresh() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas");
    let mut stale = Vec::new();
    for (name, generated) in hardal_runner::config::schema::schema_files() {
        let committed = std::fs::read_to_string(dir.join(&name)).unwrap_or_default();
        if committed != generated {
            stale.push(name);
        }
    }
    assert!(
        stale.is_empty(),
        "stale schemas {stale:?}: run `cargo xtask schemas`"
    );
}

#[test]
fn every_linked_kind_is_registered() {
    assert_eq!(
        hardal_runner::linked_kinds(),
        ["custom_api", "insider", "meta_capi"]
    );
}

#[test]
fn every_schema_file_has_an_id_and_a_title() {
    for (name, text) in hardal_runner::config::schema::schema_files() {
        let schema: serde_json::Value = serde_json::from_str(&text).unwrap();
        let id = schema["$id"].as_str().unwrap_or_default();
        assert!(
            id == format!("urn:hardal:schemas:{name}"),
            "{name}: `$id` is {id:?}"
        );
        assert!(
            schema["title"].as_str().is_some_and(|t| !t.is_empty()),
            "{name} has no title"
        );
    }
}
