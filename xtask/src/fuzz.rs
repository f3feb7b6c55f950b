//! `cargo xtask fuzz`: coverage-guided fuzzing of every target of `hardal-fuzz` with cargo fuzz
//! (libFuzzer), one target after another, on the stable toolchain.
//!
//! - `cargo xtask fuzz [--seconds N] [--merge] [TARGET...]` fuzzes each target (all by default)
//!   for N seconds (default 60), one process, one job, and prints per target the executions, the
//!   corpus size and whether it crashed (with the crash file). New inputs go to the ignored
//!   `fuzz/work/<target>/`; `--merge` then rewrites the committed `fuzz/corpus/<target>/` as the
//!   seeds plus the fewest inputs that reach every edge reached so far (`--seconds 0 --merge`
//!   does only that).
//! - `cargo xtask fuzz seeds` (re)writes the seed inputs, `fuzz/corpus/<target>/seed-*`.
//!
//! Stable needs `--sanitizer none`: cargo fuzz then passes only stable flags (`-Cpasses=
//! sancov-module`, `-Cllvm-args=-sanitizer-coverage-*`, `--cfg fuzzing`, `-Cdebug-assertions`),
//! which is all libFuzzer's coverage feedback needs. Rust code is memory safe without a
//! sanitizer; what the targets look for is panics and broken invariants.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

const USAGE: &str =
    "usage: cargo xtask fuzz [--seconds N] [--merge] [TARGET...] | cargo xtask fuzz seeds";

/// A single input slower than this is reported as a hang.
const TIMEOUT_SECONDS: u32 = 10;

pub fn run(root: &Path, args: &[String]) -> Result<()> {
    let names = hardal_fuzz::target_names();
    let all: Vec<&str> = names.iter().map(String::as_str).collect();
    if args.first().map(String::as_str) == Some("seeds") {
        return write_seeds(root, &all);
    }
    let mut seconds: u64 = 60;
    let mut merge = false;
    let mut targets = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seconds" => {
                let value = args.next().context(USAGE)?;
                seconds = value
                    .parse()
                    .with_context(|| format!("--seconds {value}: not a number of seconds"))?;
            }
            "--merge" => merge = true,
            name if all.contains(&name) => targets.push(name.to_owned()),
            other => bail!(
                "unknown target or option `{other}`; targets: {}; {USAGE}",
                all.join(", ")
            ),
        }
    }
    if targets.is_empty() {
        targets = all.iter().map(|t| t.to_string()).collect();
    }
    if seconds == 0 && !merge {
        bail!("--seconds 0 fuzzes nothing; add --merge to only rebuild the corpora");
    }
    check_cargo_fuzz(root)?;

    // Build every binary first, so that each target's seconds are spent fuzzing.
    cargo_fuzz(root, &["build", "--sanitizer", "none"])?;
    let mut results = Vec::new();
    for target in &targets {
        // libFuzzer reads -max_total_time=0 as "no limit": zero seconds means merge only.
        let result = if seconds > 0 {
            Some(fuzz_one(root, target, seconds)?)
        } else {
            None
        };
        if merge {
            merge_corpus(root, target)?;
        }
        if let Some(result) = result {
            eprintln!("{}", result.line(root));
            results.push(result);
        }
    }

    eprintln!("\nfuzzed {} target(s), {seconds} s each:", results.len());
    for result in &results {
        eprintln!("  {}", result.line(root));
    }
    let crashed = results.iter().filter(|r| r.crash.is_some()).count();
    if crashed > 0 {
        bail!(
            "{crashed} target(s) crashed; reproduce with `cargo fuzz run --sanitizer none TARGET FILE`"
        );
    }
    Ok(())
}

fn check_cargo_fuzz(root: &Path) -> Result<()> {
    let found = Command::new(env!("CARGO"))
        .args(["fuzz", "--version"])
        .current_dir(root)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        bail!(
            "cargo-fuzz is not installed. Install it with\n\n    cargo install --locked cargo-fuzz\n\n\
             (it runs on the stable toolchain; this task passes `--sanitizer none`)"
        );
    }
    Ok(())
}

fn cargo_fuzz(root: &Path, args: &[&str]) -> Result<()> {
    eprintln!("$ cargo fuzz {}", args.join(" "));
    let status = Command::new(env!("CARGO"))
        .arg("fuzz")
        .args(args)
        .current_dir(root)
        .status()?;
    if !status.success() {
        bail!("cargo fuzz {} failed: {status}", args.join(" "));
    }
    Ok(())
}

/// `cargo fuzz run --sanitizer none BINARY` for `target`: the judge targets of every kind share
/// one binary, told the kind by an environment variable.
fn fuzz_run(target: &str) -> Result<Command> {
    let (binary, env) =
        hardal_fuzz::binary(target).with_context(|| format!("no fuzz target `{target}`"))?;
    let mut command = Command::new(env!("CARGO"));
    command.args(["fuzz", "run", "--sanitizer", "none", binary]);
    if let Some((name, value)) = env {
        command.env(name, value);
    }
    Ok(command)
}

/// What one target's run showed.
struct Outcome {
    target: String,
    executions: Option<u64>,
    /// Distinct input files in the working and committed corpora after the run.
    corpus_files: usize,
    /// The crash (or hang) input libFuzzer wrote, and what it said about it.
    crash: Option<(PathBuf, String)>,
    log: PathBuf,
}

impl Outcome {
    fn line(&self, root: &Path) -> String {
        let executions = self
            .executions
            .map_or("? executions".to_owned(), |n| format!("{n} executions"));
        let relative = |p: &Path| p.strip_prefix(root).unwrap_or(p).display().to_string();
        let verdict = match &self.crash {
            None => "no crash".to_owned(),
            Some((path, what)) => format!("CRASH {} ({what})", relative(path)),
        };
        format!(
            "{}: {executions}, corpus {} files, {verdict}; log {}",
            self.target,
            self.corpus_files,
            relative(&self.log)
        )
    }
}

fn fuzz_one(root: &Path, target: &str, seconds: u64) -> Result<Outcome> {
    let fuzz = root.join("fuzz");
    let work = fuzz.join("work").join(target);
    let corpus = fuzz.join("corpus").join(target);
    std::fs::create_dir_all(&work)?;
    std::fs::create_dir_all(&corpus)?;
    let log_path = fuzz.join("work").join(format!("{target}.log"));
    let mut log = std::fs::File::create(&log_path)
        .with_context(|| format!("creating {}", log_path.display()))?;

    // libFuzzer writes new inputs to the first directory and reads all of them.
    let mut command = fuzz_run(target)?;
    command
        .arg(&work)
        .arg(&corpus)
        .arg("--")
        .arg(format!("-max_total_time={seconds}"))
        .arg(format!("-timeout={TIMEOUT_SECONDS}"))
        .arg("-print_final_stats=1");
    let dict = fuzz.join("dict").join(format!("{target}.dict"));
    if dict.is_file() {
        command.arg(format!("-dict={}", dict.display()));
    }
    eprintln!("\n$ cargo fuzz run --sanitizer none {target} … -max_total_time={seconds}");
    let mut child = command
        .current_dir(root)
        .stderr(Stdio::piped())
        .spawn()
        .context("starting cargo fuzz")?;

    let mut executions = None;
    let mut crash_file = None;
    let mut what = String::new();
    let mut message_follows = false;
    let stderr = child.stderr.take().expect("stderr is piped");
    for line in BufReader::new(stderr).lines() {
        let line = line?;
        writeln!(log, "{line}")?;
        // Keep the terminal readable: libFuzzer's periodic lines and anything unusual, not every
        // new corpus entry.
        let routine = line.starts_with('#') && !line.contains("pulse") && !line.contains("DONE");
        if !routine {
            eprintln!("{line}");
        }
        if let Some(n) = line.strip_prefix("stat::number_of_executed_units:") {
            executions = n.trim().parse().ok();
        } else if let Some((_, path)) = line.split_once("Test unit written to ") {
            crash_file = Some(root.join(path.trim()));
        } else if message_follows {
            // A panic prints its location on one line and its message on the next.
            what = format!("{what}: {}", line.trim());
            message_follows = false;
        } else if what.is_empty() && line.contains("panicked at") {
            what = line.trim().trim_end_matches(':').to_owned();
            message_follows = true;
        } else if what.is_empty() && line.contains("ERROR: libFuzzer:") {
            what = line
                .split_once("ERROR: ")
                .map_or(line.as_str(), |(_, e)| e)
                .to_owned();
        }
    }
    let status = child.wait()?;
    let crash = match (status.success(), crash_file) {
        (true, _) => None,
        (false, Some(path)) => Some((path, what)),
        (false, None) => bail!(
            "cargo fuzz run {target} failed ({status}) without a crash input; see {}",
            log_path.display()
        ),
    };
    Ok(Outcome {
        target: target.to_owned(),
        executions,
        corpus_files: count_inputs(&[&work, &corpus])?,
        crash,
        log: log_path,
    })
}

/// Distinct file names across the directories (libFuzzer names inputs by their hash, so the
/// same input in two directories counts once).
fn count_inputs(dirs: &[&Path]) -> Result<usize> {
    let mut names = BTreeSet::new();
    for dir in dirs {
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                names.insert(entry.file_name());
            }
        }
    }
    Ok(names.len())
}

/// Rebuilds the committed corpus from itself and the working corpus: the seeds, plus the fewest
/// inputs that reach every edge the seeds do not. Edges only (`-use_counters=0`): libFuzzer's
/// finer features (hit counts) would keep thousands of near-duplicates, and the committed corpus
/// must stay small enough to replay in seconds.
fn merge_corpus(root: &Path, target: &str) -> Result<()> {
    let fuzz = root.join("fuzz");
    let corpus = fuzz.join("corpus").join(target);
    let work = fuzz.join("work").join(target);
    let merged = fuzz.join("work").join(format!("{target}.merged"));
    let _ = std::fs::remove_dir_all(&merged);
    std::fs::create_dir_all(&merged)?;
    let before = count_inputs(&[&corpus])?;
    // Inputs already in the first directory are kept as they are: the seeds, by their names.
    for entry in std::fs::read_dir(&corpus)? {
        let path = entry?.path();
        if is_seed(&path) {
            std::fs::copy(&path, merged.join(path.file_name().expect("a file name")))?;
        }
    }
    let status = fuzz_run(target)?
        .args([&merged, &corpus, &work])
        .args(["--", "-set_cover_merge=1", "-use_counters=0"])
        .current_dir(root)
        .stderr(Stdio::null())
        .status()?;
    if !status.success() {
        bail!("merging the corpus of {target} failed: {status}");
    }
    for entry in std::fs::read_dir(&corpus)? {
        std::fs::remove_file(entry?.path())?;
    }
    for entry in std::fs::read_dir(&merged)? {
        let path = entry?.path();
        std::fs::rename(&path, corpus.join(path.file_name().expect("a file name")))?;
    }
    std::fs::remove_dir(&merged)?;
    let after = count_inputs(&[&corpus])?;
    eprintln!("{target}: fuzz/corpus/{target} now has {after} input(s) (was {before})");
    Ok(())
}

fn is_seed(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with("seed-"))
}

fn write_seeds(root: &Path, targets: &[&str]) -> Result<()> {
    for target in targets {
        let dir = root.join("fuzz/corpus").join(target);
        std::fs::create_dir_all(&dir)?;
        let seeds = hardal_fuzz::seeds::for_target(target).expect("every target has seeds");
        for (name, bytes) in &seeds {
            std::fs::write(dir.join(format!("seed-{name}")), bytes)?;
        }
        eprintln!("wrote {} seed(s) to {}", seeds.len(), dir.display());
    }
    Ok(())
}
