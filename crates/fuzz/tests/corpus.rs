//! Replays every committed fuzz input as an ordinary test: each file of `fuzz/corpus/<target>/`
//! (what the fuzzer found worth keeping) and `fuzz/regressions/<target>/` (inputs that once broke
//! a target), plus the generated seeds, through the target's function. A panic or a broken
//! invariant fails the test and names the file.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

/// The files of a directory, sorted; none when it does not exist.
fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("a readable directory entry").path())
        .filter(|p| p.is_file() && p.file_name().is_some_and(|n| n != ".gitkeep"))
        .collect();
    files.sort();
    files
}

/// Runs every input of `target`; fails listing each input that panicked. A fixed target must
/// have a committed corpus; a judge target of a new kind starts from its generated seeds.
fn replay(target: &str) {
    let corpus = files(&fuzz_dir().join("corpus").join(target));
    assert!(
        !corpus.is_empty() || target.starts_with(hardal_fuzz::judge::PREFIX),
        "fuzz/corpus/{target} is empty or missing: run `cargo xtask fuzz seeds`"
    );
    let regressions = files(&fuzz_dir().join("regressions").join(target));
    let seeds = hardal_fuzz::seeds::for_target(target).expect("every target has seeds");

    let inputs = corpus
        .iter()
        .chain(&regressions)
        .map(|path| {
            let bytes = std::fs::read(path).expect("a readable input");
            (path.display().to_string(), bytes)
        })
        .chain(
            seeds
                .into_iter()
                .map(|(name, bytes)| (format!("seed {name}"), bytes)),
        );
    let mut failed = Vec::new();
    let mut count = 0;
    for (name, bytes) in inputs {
        count += 1;
        if catch_unwind(AssertUnwindSafe(|| {
            assert!(hardal_fuzz::run_target(target, &bytes))
        }))
        .is_err()
        {
            failed.push(name);
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {count} inputs of {target} failed:\n{}",
        failed.len(),
        failed.join("\n")
    );
}

#[test]
fn event_line() {
    replay("event_line");
}

#[test]
fn config_load() {
    replay("config_load");
}

#[test]
fn template() {
    replay("template");
}

/// Every linked kind's judge, with the generated seeds and any committed corpus.
#[test]
fn judge_every_kind() {
    let targets = hardal_fuzz::judge::targets();
    assert!(!targets.is_empty(), "no destination kind is linked");
    for target in targets {
        replay(&target);
    }
}

#[test]
fn retry_after() {
    replay("retry_after");
}

#[test]
fn checkpoint_open() {
    replay("checkpoint_open");
}

/// Every fixed target has a fuzzer binary and a replay test above, the judge targets share the
/// `judge` binary, and nothing else has a binary: a target added to the library but not wired up
/// would silently never be fuzzed.
#[test]
fn targets_binaries_and_tests_match() {
    let mut binaries: Vec<String> = files(&fuzz_dir().join("fuzz_targets"))
        .iter()
        .filter_map(|p| Some(p.file_stem()?.to_str()?.to_owned()))
        .collect();
    binaries.sort();
    let mut expected: Vec<String> = hardal_fuzz::target_names()
        .iter()
        .filter_map(|name| hardal_fuzz::binary(name).map(|(binary, _)| binary.to_owned()))
        .collect();
    expected.sort();
    expected.dedup();
    assert_eq!(binaries, expected, "fuzz/fuzz_targets/*.rs");

    let manifest = std::fs::read_to_string(fuzz_dir().join("Cargo.toml")).expect("fuzz/Cargo.toml");
    for binary in &expected {
        assert!(
            manifest.contains(&format!("name = \"{binary}\"")),
            "fuzz/Cargo.toml lacks the binary {binary}"
        );
    }
    let this = include_str!("corpus.rs");
    for (name, _) in hardal_fuzz::FIXED_TARGETS {
        assert!(
            this.contains(&format!("replay(\"{name}\")")),
            "no replay test for {name}"
        );
    }
}
