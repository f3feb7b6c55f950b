//! Project automation, run as `cargo xtask <task>`:
//! - `demo`: the quick start — send the example events to the Insider simulator on loopback.
//! - `schemas`: write the generated JSON Schemas to `schemas/`.
//! - `ci`: everything CI checks — formatting, clippy with warnings denied, all tests, schema freshness.
//! - `bench render`: the criterion benchmark of template rendering.
//! - `bench send [N...]`: `hardal send` of N generated events against the simulator (default 1M and 10M).
//! - `bench serve [FLOWING [BACKLOG]]`: `hardal serve` under load (default 1M flowing, 5M backlog).
//! - `bench nats [N]`: the same load through NATS JetStream with 1, 2 and 4 workers (default 1M).
//! - `fuzz [--seconds N] [--merge] [TARGET...]`: coverage-guided fuzzing of each target with cargo
//!   fuzz on stable (default 60 s each); `fuzz seeds` writes the seed corpora.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

mod bench_nats;
mod bench_send;
mod bench_serve;
mod demo;
mod fuzz;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = workspace_root();
    match args.first().map(String::as_str) {
        Some("schemas") => write_schemas(&root),
        Some("ci") => ci(&root),
        Some("bench") => bench(&root, &args[1..]),
        Some("demo") => demo::run(&root),
        Some("fuzz") => fuzz::run(&root, &args[1..]),
        _ => bail!(
            "usage: cargo xtask demo | schemas | ci | bench [render | send [N...] | serve [FLOWING [BACKLOG]] | nats [N]] \
             | fuzz [--seconds N] [--merge] [TARGET...] | fuzz seeds"
        ),
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask sits in the workspace")
        .to_path_buf()
}

fn write_schemas(root: &Path) -> Result<()> {
    let dir = root.join("schemas");
    std::fs::create_dir_all(&dir)?;
    for (name, text) in hardal_runner::config::schema::schema_files() {
        let path = dir.join(&name);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

fn ci(root: &Path) -> Result<()> {
    cargo(root, &["fmt", "--all", "--check"])?;
    cargo(
        root,
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
    )?;
    ensure_test_programs()?;
    // The test suite includes the schema freshness check (crates/runner/tests/schemas.rs).
    cargo(root, &["test", "--workspace"])?;
    Ok(())
}

/// Programs the tests start that come from the distribution, each with the paths it may have
/// and its Debian package: `nats-server` for the NATS backlog's tests, `prometheus` (with
/// `promtool`) for the operations kit's test.
const DEBIAN_PROGRAMS: &[(&str, &[&str], &str)] = &[
    (
        "nats-server",
        &["/usr/sbin/nats-server", "/usr/bin/nats-server"],
        "nats-server",
    ),
    ("prometheus", &["/usr/bin/prometheus"], "prometheus"),
    ("promtool", &["/usr/bin/promtool"], "prometheus"),
];

/// On a fresh Debian or Ubuntu machine, installs the missing programs the tests start from the
/// distribution.
fn ensure_test_programs() -> Result<()> {
    let mut missing: Vec<&str> = DEBIAN_PROGRAMS
        .iter()
        .filter(|(program, paths, _)| {
            !paths.iter().any(|p| Path::new(p).exists())
                && Command::new(program).arg("--version").output().is_err()
        })
        .map(|(_, _, package)| *package)
        .collect();
    missing.dedup();
    if missing.is_empty() {
        return Ok(());
    }
    let packages = missing.join(" ");
    eprintln!("{packages} missing (the tests start them); installing with apt-get");
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0"));
    let run = |args: &[&str]| -> Result<()> {
        let mut command = if root {
            Command::new(args[0])
        } else {
            let mut sudo = Command::new("sudo");
            sudo.arg(args[0]);
            sudo
        };
        let status = command
            .args(&args[1..])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()?;
        if !status.success() {
            bail!(
                "`{}` failed; install {packages} (apt-get install {packages}) and run again",
                args.join(" ")
            );
        }
        Ok(())
    };
    run(&["apt-get", "update", "-q"])?;
    run(&[&["apt-get", "install", "-y", "-q"][..], &missing].concat())
}

fn bench(root: &Path, args: &[String]) -> Result<()> {
    match args.first().map(String::as_str) {
        None | Some("render") => cargo(root, &["bench", "-p", "hardal-core", "--bench", "render"]),
        Some("send") => {
            let sizes: Vec<u64> = args[1..]
                .iter()
                .map(|a| a.replace('_', "").parse())
                .collect::<Result<_, _>>()?;
            let sizes = if sizes.is_empty() {
                vec![1_000_000, 10_000_000]
            } else {
                sizes
            };
            bench_send::run(root, &sizes, 3)
        }
        Some("serve") => {
            let sizes: Vec<u64> = args[1..]
                .iter()
                .map(|a| a.replace('_', "").parse())
                .collect::<Result<_, _>>()?;
            let flowing = sizes.first().copied().unwrap_or(1_000_000);
            let backlog = sizes.get(1).copied().unwrap_or(5_000_000);
            bench_serve::run(root, flowing, backlog, 3)
        }
        Some("nats") => {
            let n = match args.get(1) {
                Some(n) => n.replace('_', "").parse()?,
                None => 1_000_000,
            };
            bench_nats::run(root, n, &[1, 2, 4], 3)
        }
        Some(other) => bail!(
            "unknown benchmark `{other}`; known: render, send [N...], serve [FLOWING [BACKLOG]], nats [N]"
        ),
    }
}

/// Builds `packages` in release mode; returns where their binaries are.
pub(crate) fn release_build(root: &Path, packages: &[&str]) -> Result<std::path::PathBuf> {
    let mut args = vec!["build", "--release"];
    for package in packages {
        args.extend(["-p", package]);
    }
    cargo(root, &args)?;
    Ok(root.join("target/release"))
}

pub(crate) fn cargo(root: &Path, args: &[&str]) -> Result<()> {
    eprintln!("$ cargo {}", args.join(" "));
    let status = Command::new(env!("CARGO"))
        .args(args)
        .current_dir(root)
        .status()?;
    if !status.success() {
        bail!("cargo {} failed: {status}", args.join(" "));
    }
    Ok(())
}
