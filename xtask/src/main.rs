//! Project automation, run as `cargo xtask <task>`:
//! - `demo`: the quick start — send the example events to the Insider simulator on loopback.
//! - `schemas`: write the generated JSON Schemas to `schemas/`.
//! - `man`: write the man pages of `hardal` to `man/`.
//! - `completions`: write `hardal`'s bash, zsh and fish completion scripts to `completions/`.
//! - `ci`: everything CI checks — formatting, clippy with warnings denied, all tests, the
//!   freshness of the generated files, and `new-destination --check`.
//! - `bench render`: the criterion benchmark of template rendering.
//! - `bench send [--kind K] [--instructions] [--compare REV] [N...]`: `hardal send` of N generated
//!   events against the simulator (default 1M and 10M); with `--compare`, alternately with the
//!   build of REV, and the ratios; with `--instructions`, instructions per event counted by
//!   callgrind (default 20,000 events) instead of time.
//! - `bench serve [--compare DIR] [FLOWING [BACKLOG]]`: `hardal serve` under load (default 1M flowing, 5M backlog).
//! - `bench nats [--workers LIST] [--binaries DIR] [--compare DIR] [N]`: the same load through
//!   NATS JetStream with 1, 2 and 4 workers (default 1M), or the worker counts listed, with this
//!   build or the binaries in DIR; `--compare` runs another build's binaries alternately and
//!   prints the ratios of the medians.
//! - `new-destination NAME`: a new destination crate, linked, with schemas regenerated;
//!   `new-destination --check [NAME]` generates one in a copy of the workspace and checks it.
//! - `fuzz [--seconds N] [--merge] [TARGET...]`: coverage-guided fuzzing of each target with cargo
//!   fuzz on stable (default 60 s each); `fuzz seeds` writes the seed corpora.
//!
//! `--help` or `-h` anywhere prints the usage; an error is one line on stderr and exit status 1.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context, Result, bail};

mod bench_nats;
mod bench_send;
mod bench_serve;
mod demo;
mod fuzz;
mod new_destination;

const USAGE: &str = "\
usage: cargo xtask <TASK>

tasks:
  demo                      the quick start: the example events through `insider` to the simulator
  schemas                   write the generated JSON Schemas to schemas/
  man                       write the man pages to man/
  completions               write the bash, zsh and fish completion scripts to completions/
  ci                        formatting, clippy with warnings denied, all tests, and
                            new-destination --check
  bench [render]            the criterion benchmark of template rendering
  bench send [--kind K] [--instructions] [--compare REV] [N...]
                            hardal send of N generated events (default 1M and 10M); with
                            --compare, alternately with the build of REV (a git revision, or a
                            directory holding a hardal binary) and the ratios of the medians;
                            with --instructions, the instructions per event under callgrind
                            (default 20,000 events), steadier than CPU time on a busy machine
  bench serve [--compare DIR] [FLOWING [BACKLOG]]
                            hardal serve under load (default 1M flowing, 5M backlog)
  bench nats [--workers LIST] [--binaries DIR] [--compare DIR] [N]
                            the same through NATS JetStream with 1, 2 and 4 workers (default 1M);
                            --workers 1,4 picks the counts, --binaries uses another build's
                            hardal, insider-simulator and hardal-load instead of building,
                            --compare runs such a build alternately and prints the ratios
  new-destination NAME      a new destination crate crates/NAME (dashes) of kind NAME, linked,
                            with its schema and example snapshot written
  new-destination --check [NAME]
                            generate NAME (default demo_kind) in a copy of the workspace and run
                            there what ci runs for it
  fuzz [--seconds N] [--merge] [TARGET...]
                            fuzz each target (all by default) for N seconds (default 60)
  fuzz seeds                write the seed corpora
";

/// The shells whose completion scripts are committed in `completions/`.
const SHELLS: [&str; 3] = ["bash", "zsh", "fish"];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        print!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line, the causes after the message; a backtrace helps nobody who mistyped.
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &[String]) -> Result<()> {
    let root = workspace_root();
    match args.first().map(String::as_str) {
        Some("schemas") => write_schemas(&root),
        Some("man") => write_man(&root),
        Some("completions") => write_completions(&root),
        Some("ci") => ci(&root),
        Some("bench") => bench(&root, &args[1..]),
        Some("demo") => demo::run(&root),
        Some("fuzz") => fuzz::run(&root, &args[1..]),
        Some("new-destination") => new_destination::run(&root, &args[1..]),
        Some(other) => bail!("unknown task `{other}`; `cargo xtask --help` lists them"),
        None => bail!("no task given; `cargo xtask --help` lists them"),
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

/// Replaces `man/` with the pages `hardal man` writes, so a removed command loses its page.
fn write_man(root: &Path) -> Result<()> {
    let dir = root.join("man");
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let dir_arg = dir.to_str().context("the workspace path is not UTF-8")?;
    cargo(
        root,
        &[
            "run",
            "-q",
            "-p",
            "hardal-runner",
            "--bin",
            "hardal",
            "--",
            "man",
            dir_arg,
        ],
    )?;
    eprintln!("wrote {}", dir.display());
    Ok(())
}

fn write_completions(root: &Path) -> Result<()> {
    let dir = root.join("completions");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    for shell in SHELLS {
        let output = Command::new(env!("CARGO"))
            .args(["run", "-q", "-p", "hardal-runner", "--bin", "hardal", "--"])
            .args(["completions", shell])
            .current_dir(root)
            .output()
            .context("running cargo")?;
        if !output.status.success() {
            bail!(
                "`hardal completions {shell}` failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        let path = dir.join(format!("hardal.{shell}"));
        std::fs::write(&path, &output.stdout)
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

fn ci(root: &Path) -> Result<()> {
    ensure_test_programs()?;
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
    // The test suite includes the freshness checks of schemas/, man/ and completions/
    // (crates/runner/tests/schemas.rs and generated.rs).
    cargo(root, &["test", "--workspace"])?;
    // A kind generated by `new-destination` passes the same checks, in a copy of the workspace.
    new_destination::run(root, &["--check".to_owned()])
}

/// Programs the build and the tests run that the workspace does not build, each with its Debian
/// package: `make` (jemalloc, hardal's allocator, is built with it), `nats-server` (the NATS
/// backlog's tests start it), `prometheus` and `promtool` (the operations kit's test) and zsh
/// and fish (the completion tests load their scripts in them). On a fresh Debian or Ubuntu
/// machine the missing ones are installed from the distribution.
const DEBIAN_PROGRAMS: &[(&str, &str)] = &[
    ("make", "make"),
    ("nats-server", "nats-server"),
    ("prometheus", "prometheus"),
    ("promtool", "prometheus"),
    ("zsh", "zsh"),
    ("fish", "fish"),
];

fn ensure_test_programs() -> Result<()> {
    let found = |program: &str| {
        ["/usr/sbin", "/usr/bin"]
            .iter()
            .any(|dir| Path::new(dir).join(program).exists())
            || Command::new(program).arg("--version").output().is_ok()
    };
    let mut missing: Vec<&str> = DEBIAN_PROGRAMS
        .iter()
        .filter(|(program, _)| !found(program))
        .map(|(_, package)| *package)
        .collect();
    missing.dedup();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!(
        "{} missing (the tests run them); installing with apt-get",
        missing.join(", ")
    );
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
                "`{}` failed; install {} (apt-get install) and run again",
                args.join(" "),
                missing.join(", ")
            );
        }
        Ok(())
    };
    run(&["apt-get", "update", "-q"])?;
    run(&[&["apt-get", "install", "-y", "-q"][..], &missing].concat())
}

/// Marks the benchmarks' destination `consent` off when `hardal` knows consent mode, so that
/// every generated event (none carries consent) is delivered as before consent mode. A build from
/// before it refuses the member, and `--compare` runs such builds on the same configuration.
pub(crate) fn bench_consent(hardal: &Path, destination: &mut serde_json::Value) -> Result<()> {
    let schema = Command::new(hardal)
        .arg("schema")
        .output()
        .with_context(|| format!("running {} schema", hardal.display()))?;
    if String::from_utf8_lossy(&schema.stdout).contains("\"consent\"") {
        destination["consent"] = serde_json::json!({"mode": "off"});
    }
    Ok(())
}

fn bench(root: &Path, args: &[String]) -> Result<()> {
    match args.first().map(String::as_str) {
        None | Some("render") => cargo(root, &["bench", "-p", "hardal-core", "--bench", "render"]),
        Some("send") => {
            let mut rest = &args[1..];
            let mut kind = bench_send::Kind::Insider;
            if rest.first().is_some_and(|a| a == "--kind") {
                let name = rest
                    .get(1)
                    .context("--kind needs insider, meta_capi or ga4")?;
                kind = bench_send::Kind::parse(name)?;
                rest = &rest[2..];
            }
            let instructions = rest.first().is_some_and(|a| a == "--instructions");
            if instructions {
                rest = &rest[1..];
            }
            let mut compare = None;
            if let Some(i) = rest.iter().position(|a| a == "--compare") {
                let rev = rest.get(i + 1).context(
                    "--compare needs a revision (or a directory holding a hardal binary)",
                )?;
                compare = Some(rev.as_str());
                if i != 0 {
                    bail!("--compare REV comes before the numbers of events");
                }
                rest = &rest[2..];
            }
            let sizes = counts(rest)?;
            let sizes = match (sizes.is_empty(), instructions) {
                (false, _) => sizes,
                (true, false) => vec![1_000_000, 10_000_000],
                (true, true) => vec![20_000],
            };
            bench_send::run(root, kind, &sizes, 3, compare, instructions)
        }
        Some("serve") => {
            let mut rest = &args[1..];
            let mut compare = None;
            if rest.first().is_some_and(|a| a == "--compare") {
                let dir = rest.get(1).context(
                    "--compare needs a directory holding another build's hardal, insider-simulator and hardal-load",
                )?;
                compare = Some(std::path::PathBuf::from(dir));
                rest = &rest[2..];
            }
            let sizes = counts(rest)?;
            let flowing = sizes.first().copied().unwrap_or(1_000_000);
            let backlog = sizes.get(1).copied().unwrap_or(5_000_000);
            bench_serve::run(root, flowing, backlog, 3, compare.as_deref())
        }
        Some("nats") => {
            let mut rest = &args[1..];
            let mut workers = vec![1, 2, 4];
            let (mut binaries, mut compare) = (None, None);
            loop {
                match rest.first().map(String::as_str) {
                    Some("--workers") => {
                        let list = rest
                            .get(1)
                            .context("--workers needs a list such as 1,2,4")?;
                        workers =
                            list.split(',')
                                .map(|w| {
                                    w.parse::<usize>().ok().filter(|w| *w > 0).with_context(|| {
                                        format!("`{w}` is not a number of workers")
                                    })
                                })
                                .collect::<Result<_>>()?;
                        rest = &rest[2..];
                    }
                    Some(flag @ ("--binaries" | "--compare")) => {
                        let dir = PathBuf::from(rest.get(1).with_context(|| {
                            format!(
                                "{flag} needs a directory holding hardal, insider-simulator and hardal-load"
                            )
                        })?);
                        if flag == "--binaries" {
                            binaries = Some(dir);
                        } else {
                            compare = Some(dir);
                        }
                        rest = &rest[2..];
                    }
                    _ => break,
                }
            }
            let n = counts(rest)?.first().copied().unwrap_or(1_000_000);
            bench_nats::run(
                root,
                n,
                &workers,
                3,
                binaries.as_deref(),
                compare.as_deref(),
            )
        }
        Some(other) => bail!(
            "unknown benchmark `{other}`; known: render, send [--kind K] [--compare REV] [N...], serve [--compare DIR] [FLOWING [BACKLOG]], nats [--workers LIST] [--binaries DIR] [N]"
        ),
    }
}

/// Numbers of events as given on the command line (`1_000_000` or `1000000`).
fn counts(args: &[String]) -> Result<Vec<u64>> {
    args.iter()
        .map(|a| {
            a.replace('_', "")
                .parse()
                .with_context(|| format!("`{a}` is not a number of events"))
        })
        .collect()
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
