//! `cargo xtask bench send [--kind K] [--compare REV] [N...]`: generates N realistic Hardal
//! events, starts the stand-in of the kind (`insider` by default, counting only; `meta_capi` or
//! `ga4`) from the release build on loopback, runs `hardal send` through that destination with
//! the rate limit lifted, and prints events/s, the CPU seconds of `hardal`, requests and peak RSS
//! — the median of several runs per size. With `--compare`, the
//! build of another revision runs alternately with this one on the same events and the ratios of
//! the medians are printed: absolute figures depend on the machine and its load, ratios much less.
//!
//! With `--instructions`, each run counts the instructions `hardal send` executes instead (all
//! threads, under `valgrind --tool=callgrind`; default 20,000 events), less those of a run on no
//! events (start-up), per event. The machine's load does not move that count; how the threads
//! happen to wait does, by a few percent between runs (CPU time swings by more), so it too is a
//! median of runs taken in turns.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};

/// One measured run.
struct Measurement {
    seconds: f64,
    /// User plus system CPU time of `hardal` itself.
    cpu_seconds: f64,
    events: u64,
    requests: u64,
    peak_rss_kib: i64,
}

/// The runs of one build on one size.
#[derive(Default)]
struct Runs(Vec<Measurement>);

impl Runs {
    fn median(&self, of: impl Fn(&Measurement) -> f64) -> f64 {
        let mut values: Vec<f64> = self.0.iter().map(of).collect();
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    }

    fn line(&self, n: u64) -> String {
        let mut rss: Vec<i64> = self.0.iter().map(|m| m.peak_rss_kib).collect();
        rss.sort_unstable();
        let seconds = self.median(|m| m.seconds);
        format!(
            "{n:>10} events: median {seconds:.2} s = {:.0} events/s, {:.2} s CPU ({:.2} µs/event), {} requests, peak RSS median {:.1} MB (max {:.1} MB) over {} runs",
            n as f64 / seconds,
            self.median(|m| m.cpu_seconds),
            self.median(|m| m.cpu_seconds) * 1e6 / n as f64,
            self.median(|m| m.requests as f64),
            rss[rss.len() / 2] as f64 / 1024.0,
            rss[rss.len() - 1] as f64 / 1024.0,
            self.0.len()
        )
    }
}

/// The destination kind a benchmark sends to, each with its stand-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Insider,
    MetaCapi,
    Ga4,
}

impl Kind {
    pub fn parse(name: &str) -> Result<Kind> {
        Ok(match name {
            "insider" => Kind::Insider,
            "meta_capi" => Kind::MetaCapi,
            "ga4" => Kind::Ga4,
            other => bail!("unknown kind `{other}` for bench send; known: insider, meta_capi, ga4"),
        })
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Insider => "insider",
            Kind::MetaCapi => "meta_capi",
            Kind::Ga4 => "ga4",
        }
    }

    /// Starts this kind's stand-in and returns it with the destination pointed at it (the
    /// secret read from `INSIDER_REQUEST_TOKEN`, which the benchmark sets to `bench-token`).
    fn start(self, bin_dir: &Path) -> Result<(std::process::Child, serde_json::Value)> {
        let secret = "${INSIDER_REQUEST_TOKEN}";
        Ok(match self {
            Kind::Insider => {
                let (simulator, url) =
                    start_simulator(bin_dir, "bench", "bench-token", &["--no-record"])?;
                let destination = serde_json::json!({"id": "insider", "type": "insider",
                    "partner_name": "bench", "request_token": secret,
                    "endpoint": format!("{url}/api/user/v1/upsert"),
                    "requests_per_minute": 1_000_000});
                (simulator, destination)
            }
            Kind::MetaCapi => {
                let (simulator, url) = start_stand_in(
                    bin_dir,
                    &[
                        "--kind",
                        "meta",
                        "--pixel-id",
                        "1",
                        "--access-token",
                        "bench-token",
                    ],
                )?;
                // The generated events carry no browser user agent, which `website` events need.
                let destination = serde_json::json!({"id": "meta", "type": "meta_capi",
                    "pixel_id": "1", "access_token": secret, "base_url": url,
                    "action_source": "system_generated"});
                (simulator, destination)
            }
            Kind::Ga4 => {
                let (simulator, url) = start_stand_in(
                    bin_dir,
                    &[
                        "--kind",
                        "ga4",
                        "--measurement-id",
                        "G-BENCH",
                        "--api-secret",
                        "bench-token",
                    ],
                )?;
                let destination = serde_json::json!({"id": "ga4", "type": "ga4",
                    "measurement_id": "G-BENCH", "api_secret": secret, "base_url": url});
                (simulator, destination)
            }
        })
    }
}

/// A build of `hardal` to measure, and what to call it.
struct Build {
    name: String,
    hardal: PathBuf,
}

pub fn run(
    root: &Path,
    kind: Kind,
    sizes: &[u64],
    repeats: usize,
    compare: Option<&str>,
    instructions: bool,
) -> Result<()> {
    let release = super::release_build(root, &["hardal-runner", "hardal-insider-simulator"])?;
    let mut builds = vec![Build {
        name: "this tree".into(),
        hardal: release.join("hardal"),
    }];
    if let Some(rev) = compare {
        builds.push(Build {
            name: rev.to_owned(),
            hardal: build_revision(root, rev)?,
        });
    }
    let work = root.join("target/bench-send");
    std::fs::create_dir_all(&work)?;
    if instructions {
        let report = run_instructions(kind, &builds, &release, &work, sizes)?;
        println!(
            "bench send --instructions ({} destination):\n{report}",
            kind.name()
        );
        return Ok(());
    }
    let mut report = String::new();
    for &n in sizes {
        let events = events_file(&work, n)?;
        let mut runs: Vec<Runs> = builds.iter().map(|_| Runs::default()).collect();
        // The builds take turns, so a change in the machine's load falls on both alike.
        for attempt in 1..=repeats {
            for (build, runs) in builds.iter().zip(&mut runs) {
                let m = measure(kind, &build.hardal, &release, &work, &events)?;
                eprintln!(
                    "  {n} events, {}, run {attempt}: {:.2} s, {:.0} events/s, {:.2} s CPU, {} requests, peak RSS {:.1} MB",
                    build.name,
                    m.seconds,
                    m.events as f64 / m.seconds,
                    m.cpu_seconds,
                    m.requests,
                    m.peak_rss_kib as f64 / 1024.0
                );
                if m.events != n {
                    bail!("only {} of {n} events were resolved", m.events);
                }
                runs.0.push(m);
            }
        }
        for (build, runs) in builds.iter().zip(&runs) {
            if compare.is_some() {
                writeln!(report, "{}:", build.name)?;
            }
            writeln!(report, "{}", runs.line(n))?;
        }
        if let [this, other] = runs.as_slice() {
            writeln!(
                report,
                "{n:>10} events: this tree / {}: events/s {:.3}×, CPU seconds {:.3}×, peak RSS {:.3}×",
                builds[1].name,
                other.median(|m| m.seconds) / this.median(|m| m.seconds),
                this.median(|m| m.cpu_seconds) / other.median(|m| m.cpu_seconds),
                this.median(|m| m.peak_rss_kib as f64) / other.median(|m| m.peak_rss_kib as f64),
            )?;
        }
    }
    println!(
        "bench send ({} destination → its stand-in on 127.0.0.1, rate limit lifted):\n{report}",
        kind.name()
    );
    Ok(())
}

/// The `hardal` binary of `rev`: a directory that holds one is taken as it is (a build kept from
/// earlier); anything else is a git revision, checked out in `target/compare/src` and built in
/// release mode into `target/compare/target`, which later comparisons reuse.
fn build_revision(root: &Path, rev: &str) -> Result<PathBuf> {
    let given = Path::new(rev).join("hardal");
    if given.is_file() {
        return Ok(given);
    }
    let compare = root.join("target/compare");
    let src = compare.join("src");
    let git = |args: &[&str], dir: &Path| -> Result<()> {
        let status = Command::new("git").args(args).current_dir(dir).status()?;
        if !status.success() {
            bail!("git {} failed: {status}", args.join(" "));
        }
        Ok(())
    };
    if src.join(".git").exists() {
        git(&["checkout", "--detach", "--quiet", rev], &src)?;
    } else {
        std::fs::create_dir_all(&compare)?;
        let src = src.to_str().context("a UTF-8 path")?;
        git(&["worktree", "add", "--detach", src, rev], root)?;
    }
    eprintln!("$ cargo build --release -p hardal-runner (revision {rev})");
    let status = Command::new(env!("CARGO"))
        .args(["build", "--release", "-p", "hardal-runner"])
        .env("CARGO_TARGET_DIR", compare.join("target"))
        .current_dir(&src)
        .status()?;
    if !status.success() {
        bail!("building revision {rev} failed: {status}");
    }
    Ok(compare.join("target/release/hardal"))
}

/// Starts the simulator binary on a free loopback port; returns it and its base URL.
pub fn start_simulator(
    bin_dir: &Path,
    partner: &str,
    token: &str,
    extra: &[&str],
) -> Result<(std::process::Child, String)> {
    let mut args = vec!["--partner-name", partner, "--request-token", token];
    args.extend(extra);
    start_stand_in(bin_dir, &args)
}

/// Starts the simulator binary with `args` on a free loopback port; returns it and its base URL.
fn start_stand_in(bin_dir: &Path, args: &[&str]) -> Result<(std::process::Child, String)> {
    let mut simulator = Command::new(bin_dir.join("insider-simulator"))
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .context("starting the simulator")?;
    let mut line = String::new();
    BufReader::new(simulator.stdout.take().expect("piped")).read_line(&mut line)?;
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .context("the simulator's first line")?
        .to_owned();
    Ok((simulator, url))
}

/// Starts the stand-in and writes the configuration for one run of `hardal send`; returns the
/// stand-in and the command's arguments after the program.
fn prepare(
    kind: Kind,
    hardal: &Path,
    release: &Path,
    work: &Path,
    events: &Path,
) -> Result<(std::process::Child, Vec<std::ffi::OsString>)> {
    let (simulator, mut destination) = kind.start(release)?;
    super::bench_consent(hardal, &mut destination)?;
    let config = work.join("config.json");
    std::fs::write(
        &config,
        serde_json::json!({"destinations": [destination], "delivery": {"concurrency": 4}})
            .to_string(),
    )?;
    for stale in [
        "state.db",
        "state.db-wal",
        "state.db-shm",
        "dead-letters.ndjson",
    ] {
        let _ = std::fs::remove_file(work.join(stale));
    }
    let args = [
        "send".as_ref(),
        "--config".as_ref(),
        config.as_os_str(),
        events.as_os_str(),
        "--json".as_ref(),
        "--progress-interval".as_ref(),
        "0".as_ref(),
        "--state".as_ref(),
        work.join("state.db").as_os_str(),
        "--dead-letters".as_ref(),
        work.join("dead-letters.ndjson").as_os_str(),
    ]
    .map(std::ffi::OsStr::to_os_string);
    Ok((simulator, args.to_vec()))
}

/// The instructions one run of `hardal send` on `events` executes, counted by callgrind.
fn count_instructions(
    kind: Kind,
    hardal: &Path,
    release: &Path,
    work: &Path,
    events: &Path,
) -> Result<u64> {
    let (mut simulator, args) = prepare(kind, hardal, release, work, events)?;
    let output = Command::new("valgrind")
        .args(["--tool=callgrind", "--callgrind-out-file=/dev/null"])
        .arg(hardal)
        .args(args)
        .env("INSIDER_REQUEST_TOKEN", "bench-token")
        .stdout(Stdio::null())
        .output()
        .context("running valgrind (apt-get install valgrind)")?;
    let _ = simulator.kill();
    let _ = simulator.wait();
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        bail!("hardal send under valgrind failed:\n{stderr}");
    }
    stderr
        .lines()
        .find_map(|line| line.split("Collected : ").nth(1))
        .and_then(|count| count.trim().parse().ok())
        .context("callgrind reported no instruction count")
}

/// `bench send --instructions`: instructions per event of each build, and their ratio.
fn run_instructions(
    kind: Kind,
    builds: &[Build],
    release: &Path,
    work: &Path,
    sizes: &[u64],
) -> Result<String> {
    let nothing = work.join("events-0.ndjson");
    std::fs::write(&nothing, "")?;
    let start_ups: Vec<u64> = builds
        .iter()
        .map(|build| count_instructions(kind, &build.hardal, release, work, &nothing))
        .collect::<Result<_>>()?;
    let mut report = String::new();
    for &n in sizes {
        let events = events_file(work, n)?;
        let mut per_event: Vec<Vec<f64>> = vec![Vec::new(); builds.len()];
        for attempt in 1..=3 {
            for ((build, start_up), counts) in builds.iter().zip(&start_ups).zip(&mut per_event) {
                let total = count_instructions(kind, &build.hardal, release, work, &events)?;
                let each = total.saturating_sub(*start_up) as f64 / n as f64;
                eprintln!(
                    "  {n} events, {}, run {attempt}: {total} instructions, {each:.0} per event",
                    build.name
                );
                counts.push(each);
            }
        }
        let medians: Vec<f64> = per_event
            .iter_mut()
            .map(|counts| {
                counts.sort_by(f64::total_cmp);
                counts[counts.len() / 2]
            })
            .collect();
        for (build, median) in builds.iter().zip(&medians) {
            writeln!(
                report,
                "{:>10} events, {}: {median:.0} instructions per event (median of 3)",
                n, build.name
            )?;
        }
        if let [this, other] = medians.as_slice() {
            writeln!(
                report,
                "{n:>10} events: this tree / {}: instructions per event {:.3}×",
                builds[1].name,
                this / other
            )?;
        }
    }
    Ok(report)
}

/// The file of `n` generated events, made again when it is a day old (its events would be older
/// than Insider keeps by now).
fn events_file(work: &Path, n: u64) -> Result<PathBuf> {
    let events = work.join(format!("events-{n}.ndjson"));
    let fresh = std::fs::metadata(&events)
        .and_then(|m| m.modified())
        .is_ok_and(|t| t.elapsed().is_ok_and(|age| age.as_secs() < 86_400));
    if !fresh {
        eprintln!("generating {n} events in {}", events.display());
        generate(&events, n)?;
    }
    Ok(events)
}

fn measure(
    kind: Kind,
    hardal: &Path,
    release: &Path,
    work: &Path,
    events: &Path,
) -> Result<Measurement> {
    let (mut simulator, args) = prepare(kind, hardal, release, work, events)?;
    let started = Instant::now();
    let mut child = Command::new(hardal)
        .args(args)
        .env("INSIDER_REQUEST_TOKEN", "bench-token")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("running hardal send")?;
    let mut stdout = child.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut text = Vec::new();
        std::io::Read::read_to_end(&mut stdout, &mut text).map(|_| text)
    });
    let (success, usage) = wait_with_usage(child.id())?;
    let seconds = started.elapsed().as_secs_f64();
    let stdout = reader.join().expect("the reader thread ends")?;
    let _ = simulator.kill();
    let _ = simulator.wait();
    if !success {
        bail!("hardal send failed: {}", String::from_utf8_lossy(&stdout));
    }
    let summary: serde_json::Value = serde_json::from_slice(&stdout)?;
    let destination = &summary["destinations"][0];
    Ok(Measurement {
        seconds,
        // Every event resolved: the stand-ins of other kinds refuse what their API would.
        events: [
            "delivered",
            "skipped",
            "expired",
            "rejected",
            "dead_lettered",
        ]
        .iter()
        .map(|field| destination[*field].as_u64().unwrap_or(0))
        .sum(),
        requests: destination["requests"].as_u64().unwrap_or(0),
        cpu_seconds: usage.cpu_seconds,
        peak_rss_kib: usage.peak_rss_kib,
    })
}

/// What one process used, as `wait4` reports it.
struct Usage {
    cpu_seconds: f64,
    peak_rss_kib: i64,
}

/// Waits for one child and returns whether it succeeded and its own CPU time and peak RSS in KiB
/// (wait4 reports the resource use of exactly that process, unlike RUSAGE_CHILDREN).
fn wait_with_usage(pid: u32) -> Result<(bool, Usage)> {
    let mut status = 0;
    // SAFETY: wait4 only writes the status and the rusage struct it is given.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        if libc::wait4(pid as libc::pid_t, &mut status, 0, &mut usage) < 0 {
            bail!("wait4 failed: {}", std::io::Error::last_os_error());
        }
        usage
    };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Ok((
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        Usage {
            cpu_seconds: seconds(usage.ru_utime) + seconds(usage.ru_stime),
            peak_rss_kib: usage.ru_maxrss,
        },
    ))
}

/// Writes `n` events shaped like Hardal's: page views, GA4-style purchases with items, cart
/// additions and identifies, for `n / 10` users, with the messy values real traffic has.
pub(crate) fn generate(path: &PathBuf, n: u64) -> Result<()> {
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    let users = (n / 10).max(1);
    // Live data: the events end an hour ago, 37 ms apart, so none is older than Insider keeps
    // events (which hardal would count as expired instead of sending).
    let now_ms = u64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_millis(),
    )?;
    let start_ms = now_ms - 3_600_000 - n * 37;
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for i in 0..n {
        let user = next() % users;
        let ts = start_ms + i * 37;
        let kind = next() % 10;
        let user_part = if user.is_multiple_of(7) {
            format!(r#""user_id":"anon-{user}""#)
        } else {
            format!(
                r#""user_id":"u{user}","user":{{"email":"user{user}@example.com","name":"User {user}","country":"tr","language":"tr-TR","email_optin":{}}}"#,
                if user.is_multiple_of(2) {
                    "true"
                } else {
                    "\"false\""
                }
            )
        };
        match kind {
            0..=5 => writeln!(
                out,
                r#"{{"id":"e{i}","event_name":"page_view","created_at":{ts},{user_part},"session_id":"s{}","page":{{"url":"https://shop.example/p/{}","title":"Product {}","referrer":"https://www.google.com/"}},"properties":{{"page_type":"product","position":{}}}}}"#,
                next() % 100_000,
                next() % 5000,
                i % 5000,
                i % 20
            )?,
            6 | 7 => writeln!(
                out,
                r#"{{"id":"e{i}","event_name":"purchase","created_at":{ts},{user_part},"properties":{{"transaction_id":"T-{i}","currency":"TRY","value":"120.50","items":[{{"item_id":"SKU-{}","item_name":"Mug","item_category":"Kitchen","price":"60.25","quantity":"2"}},{{"item_id":"SKU-{}","item_name":"Tea","item_category":"Food","price":19.9,"quantity":1}}]}}}}"#,
                next() % 5000,
                next() % 5000
            )?,
            8 => writeln!(
                out,
                r#"{{"id":"e{i}","event_name":"add_to_cart","created_at":{ts},{user_part},"properties":{{"currency":"EUR","value":12.0,"product_id":"SKU-{}"}}}}"#,
                next() % 5000
            )?,
            _ => writeln!(
                out,
                r#"{{"id":"e{i}","event_name":"identify","created_at":{ts},{user_part},"properties":{{}}}}"#
            )?,
        }
    }
    out.flush()?;
    Ok(())
}
