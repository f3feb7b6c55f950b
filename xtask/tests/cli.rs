//! `cargo xtask` as people type it: help exits 0 with the usage, a mistake is one line of error
//! with exit status 1 and no backtrace. Only arguments that start no task are used here.

use std::process::{Command, Output};

fn xtask(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        // A backtrace would be printed with this set, if an error still carried one.
        .env("RUST_BACKTRACE", "1")
        .output()
        .expect("xtask runs")
}

#[test]
fn help_prints_the_usage_and_exits_zero() {
    for args in [
        &["--help"][..],
        &["-h"],
        &["bench", "--help"],
        &["bench", "send", "-h"],
        &["fuzz", "--help"],
        &["man", "--help"],
    ] {
        let output = xtask(args);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{args:?}: {output:?}");
        assert!(
            stdout.starts_with("usage: cargo xtask")
                && stdout.contains("bench send [--kind K] [--instructions] [--compare REV] [N...]"),
            "{args:?}: {stdout}"
        );
        assert!(output.stderr.is_empty(), "{args:?}: {output:?}");
    }
}

#[test]
fn errors_are_one_line_without_a_backtrace() {
    for (args, expected) in [
        (
            &[][..],
            "error: no task given; `cargo xtask --help` lists them\n",
        ),
        (
            &["deploy"],
            "error: unknown task `deploy`; `cargo xtask --help` lists them\n",
        ),
        (
            &["bench", "fast"],
            "error: unknown benchmark `fast`; known: render, send [--kind K] [--compare REV] [N...], serve [--compare DIR] [FLOWING [BACKLOG]], nats [--workers LIST] [--binaries DIR] [N]\n",
        ),
        (
            &["bench", "send", "many"],
            "error: `many` is not a number of events: invalid digit found in string\n",
        ),
        (
            &["new-destination"],
            "error: usage: cargo xtask new-destination NAME | cargo xtask new-destination --check [NAME]\n",
        ),
        (
            &["new-destination", "Acme"],
            "error: `Acme` cannot name a kind: use lower-case letters and digits in words joined by `_`, starting with a letter (e.g. `acme_events`)\n",
        ),
    ] {
        let output = xtask(args);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {output:?}");
        assert_eq!(
            String::from_utf8_lossy(&output.stderr),
            expected,
            "{args:?}"
        );
        assert!(output.stdout.is_empty(), "{args:?}: {output:?}");
    }
}
