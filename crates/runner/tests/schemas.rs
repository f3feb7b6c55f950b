//! The committed `schemas/` must be what the code generates (no more, no less), and every
//! destination crate linked by `hardal-destinations` must register the kind its name says. No
//! kind is named here: the lists come from the registry and from crates/destinations/Cargo.toml.

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

/// A kind removed leaves no schema behind.
#[test]
fn every_committed_schema_is_generated() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas");
    let generated: Vec<String> = hardal_runner::config::schema::schema_files()
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    let mut committed: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    committed.sort();
    let extra: Vec<&String> = committed
        .iter()
        .filter(|n| !generated.contains(n))
        .collect();
    assert!(
        extra.is_empty(),
        "schemas/ holds {extra:?}, which no linked kind generates: remove them"
    );
}

/// `hardal-<name>` registers the kind `<name>` with underscores, and nothing else registers a
/// kind: the crates linked and the kinds registered are the same list.
#[test]
fn every_linked_crate_registers_its_kind() {
    let expected: Vec<String> = hardal_destinations::CRATES
        .iter()
        .map(|name| {
            name.strip_prefix("hardal-")
                .unwrap_or_else(|| panic!("{name}: a destination crate is named hardal-<kind>"))
                .replace('-', "_")
        })
        .collect();
    let mut expected_sorted = expected.clone();
    expected_sorted.sort();
    assert!(!expected.is_empty(), "no destination crate is linked");
    assert_eq!(hardal_runner::linked_kinds(), expected_sorted);
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
