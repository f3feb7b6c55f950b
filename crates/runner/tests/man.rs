//! The man pages committed in `man/` are what `hardal man` writes: one per command, none left
//! over from a removed one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Every file of `dir` by name, with its contents.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .map(|entry| {
            let entry = entry.unwrap();
            let name = entry.file_name().to_string_lossy().into_owned();
            (name, std::fs::read(entry.path()).unwrap())
        })
        .collect()
}

#[test]
fn committed_man_pages_are_fresh() {
    let dir = std::env::temp_dir().join(format!("hardal-man-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_hardal"))
        .arg("man")
        .arg(&dir)
        .output()
        .expect("hardal runs");
    assert!(output.status.success(), "{output:?}");
    let generated = files(&dir);
    let committed = files(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../man"));
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(generated.contains_key("hardal.1") && generated.contains_key("hardal-send.1"));
    let stale: Vec<&String> = generated
        .keys()
        .chain(committed.keys())
        .filter(|name| generated.get(*name) != committed.get(*name))
        .collect();
    assert!(
        stale.is_empty(),
        "stale man pages {stale:?}: run `cargo xtask man`"
    );
}
