//! The `hardal` command line.

use std::io::{self, BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::builder::TypedValueParser as _;
use clap::{CommandFactory as _, Parser, Subcommand};
use hardal_core::{Destination, DestinationPlugin};
use hardal_runner::backlog::sqlite::SqliteSpool;
use hardal_runner::config::{self, Secrets, schema};
use hardal_runner::dlq;
use hardal_runner::send::{self, SendOptions};
use hardal_runner::serve::{self, ServeOptions};
use hardal_runner::{input, render, tap};

// Mapping is allocation-heavy (JSON values in, JSON bytes out), and what the mapping threads
// allocate the delivery thread frees: jemalloc handles that hand-over with the least CPU of the
// allocators measured (the system's, mimalloc, snmalloc; see the workspace's Cargo.toml).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Forward analytics events to marketing destinations such as Insider.
#[derive(Parser)]
#[command(name = "hardal", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// How log lines are written: `text` for people, `json` for log collectors.
    #[arg(long, global = true, value_enum, default_value = "text")]
    log_format: LogFormat,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Check a configuration: schema, environment variables, templates. Exit 0 when valid.
    Validate {
        /// The configuration file (JSON).
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Print the request body each destination would send for each event, one per line.
    /// Nothing is sent.
    Render {
        /// The configuration file (JSON).
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// Render for this destination only.
        #[arg(long, value_name = "ID")]
        destination: Option<String>,
        /// Render as of this time (RFC 3339 or epoch seconds) instead of now: destinations judge
        /// their retention against it, e.g. to preview old example events as they were sent.
        #[arg(long, value_name = "TIME", value_parser = parse_time)]
        now: Option<std::time::SystemTime>,
        /// Events: NDJSON, or a JSON event or array of events. Standard input when absent or `-`.
        events: Option<PathBuf>,
        /// The largest event in bytes; a longer one is reported and skipped unread.
        #[arg(long, value_name = "BYTES", default_value_t = input::DEFAULT_MAX_EVENT_BYTES,
              value_parser = clap::value_parser!(u64).range(64..=1_000_000_000).map(|n| n as usize))]
        max_event_bytes: usize,
    },
    /// Deliver a file of events (a backfill) to every destination, with progress and a summary.
    /// Running the same command again after an interruption continues where it stopped.
    Send {
        /// The configuration file (JSON).
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// Events as NDJSON, one per line. Standard input when absent or `-`.
        events: Option<PathBuf>,
        /// Send to this destination only.
        #[arg(long, value_name = "ID")]
        destination: Option<String>,
        /// Map and batch every event, but send nothing and write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Print the final summary as JSON on stdout.
        #[arg(long)]
        json: bool,
        /// The checkpoint store that makes runs resumable (SQLite).
        #[arg(long, value_name = "FILE", default_value = "hardal-send.db")]
        state: PathBuf,
        /// Where events that were not delivered are written, with their reasons (NDJSON).
        #[arg(
            long,
            value_name = "FILE",
            default_value = "hardal-dead-letters.ndjson"
        )]
        dead_letters: PathBuf,
        /// Forget what earlier runs did with this input (for every destination) and start from
        /// the first event.
        #[arg(long)]
        restart: bool,
        /// Seconds between progress lines when stderr is not a terminal (0: none).
        #[arg(long, value_name = "SECONDS", default_value_t = 10,
              value_parser = clap::value_parser!(u64).range(0..=86_400))]
        progress_interval: u64,
        /// Seconds in-flight requests may take to finish after Ctrl-C.
        #[arg(long, value_name = "SECONDS", default_value_t = 10,
              value_parser = clap::value_parser!(u64).range(0..=86_400))]
        drain_timeout: u64,
        /// Threads that parse and map events (default: one per core).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=256).map(|n| n as usize))]
        workers: Option<usize>,
        /// The largest event (input line) in bytes; a longer line is dead-lettered with its line
        /// number and skipped unread.
        #[arg(long, value_name = "BYTES", default_value_t = input::DEFAULT_MAX_EVENT_BYTES,
              value_parser = clap::value_parser!(u64).range(64..=1_000_000_000).map(|n| n as usize))]
        max_event_bytes: usize,
    },
    /// Run the service: take events over HTTP (`POST /v1/events`), keep them in the backlog,
    /// and deliver them to every destination; `/healthz`, `/readyz` and `/metrics` for operators.
    Serve {
        /// The configuration file (JSON), with `server` and optionally `backlog`.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// Seconds in-flight requests may take to finish after SIGTERM or Ctrl-C.
        #[arg(long, value_name = "SECONDS", default_value_t = 10,
              value_parser = clap::value_parser!(u64).range(0..=86_400))]
        drain_timeout: u64,
        /// Only deliver: `POST /v1/events` answers 503 and `/readyz` is never ready (a worker
        /// on a shared NATS backlog).
        #[arg(long, conflicts_with = "no_deliver")]
        no_ingest: bool,
        /// Only accept events into the backlog; other nodes deliver them (NATS backlog).
        #[arg(long)]
        no_deliver: bool,
    },
    /// The dead letters of `hardal serve`'s backlog: list, show, replay or purge them (also while
    /// the service runs).
    Dlq {
        #[command(subcommand)]
        action: DlqAction,
    },
    /// Erase a user: suppress their events from now on, remove those waiting in the backlog and
    /// its dead letters, and ask each destination to delete them. Through the running `hardal
    /// serve` that owns the spool (with the first of `server.privacy_tokens`), else here. Prints
    /// the job's audit record (JSON).
    Forget {
        /// The configuration file (JSON).
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// The user's `user_id` (repeatable, as every identifier).
        #[arg(long = "user-id", value_name = "ID")]
        user_id: Vec<String>,
        /// The user's e-mail address.
        #[arg(long, value_name = "E")]
        email: Vec<String>,
        /// The user's phone number.
        #[arg(long, value_name = "P")]
        phone: Vec<String>,
        /// A custom identifier: an event path and its value, e.g. `properties.customer_no=42`.
        #[arg(long, value_name = "K=V", value_parser = parse_custom)]
        custom: Vec<(String, String)>,
        /// When a running service carries the job out, wait until it is complete.
        #[arg(long)]
        wait: bool,
        /// A dead-letter file of `hardal send` (a backfill) to rewrite without the user's
        /// letters (repeatable; not while that `hardal send` runs). The backfill's input is
        /// yours: take the user's lines out of it before sending it again.
        #[arg(long = "dead-letters", value_name = "FILE")]
        dead_letters: Vec<PathBuf>,
    },
    /// The audit records of erasures: when, which destinations confirmed, which failed and
    /// why; a digest of the identifiers, never the identifiers. JSON lines.
    Privacy {
        #[command(subcommand)]
        action: PrivacyAction,
    },
    /// Watch a running `hardal serve`: each event as received, each destination's record, and
    /// each verdict, as they happen. The token is read from HARDAL_TAP_TOKEN (one of the
    /// configuration's `server.tap.auth_tokens`).
    Tap {
        /// The service's tap listener (`server.tap.listen`).
        #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:8081")]
        url: String,
        /// Only this destination's records and verdicts (repeatable).
        #[arg(long, value_name = "ID")]
        destination: Vec<String>,
        /// Only events with this `event_name` (repeatable).
        #[arg(long, value_name = "NAME")]
        event_name: Vec<String>,
        /// Only this user's events: `user_id`, else `user.email` (repeatable).
        #[arg(long, value_name = "USER")]
        user: Vec<String>,
        /// Only this share of events, e.g. 0.1 (each event shown whole or not at all).
        #[arg(long, value_name = "RATE", value_parser = parse_sample)]
        sample: Option<f64>,
        /// Print the service's NDJSON lines as they come, rather than readable lines.
        #[arg(long)]
        json: bool,
    },
    /// Print the built-in mappings (presets) of a destination kind.
    Presets {
        /// The destination kind, e.g. `insider`.
        #[arg(long, value_name = "KIND")]
        kind: String,
        /// The preset to print; without it, the names are listed.
        name: Option<String>,
    },
    /// List the destination kinds this binary knows.
    List {
        #[arg(long, value_name = "FILE", hide = true)]
        config: Option<PathBuf>,
    },
    /// Print the JSON Schema of the configuration file, or of one destination kind.
    Schema {
        #[arg(long, value_name = "FILE", hide = true)]
        config: Option<PathBuf>,
        /// Print the schema of this destination kind only.
        #[arg(long, value_name = "KIND")]
        kind: Option<String>,
    },
    /// Print the completion script of a shell.
    ///
    /// E.g. `hardal completions bash > ~/.local/share/bash-completion/completions/hardal`; the
    /// scripts for bash, zsh and fish are also in the repository's `completions/`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Write the man pages into a directory.
    ///
    /// `hardal.1` and one page per command (`hardal-send.1`, …), e.g. `hardal man
    /// ~/.local/share/man/man1`; they are also in the repository's `man/`.
    Man {
        /// The directory (it must exist).
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
}

/// Which dead letters a `dlq` command means.
#[derive(clap::Args)]
struct DlqFilter {
    /// The configuration file (JSON) whose backlog holds the dead letters.
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// Only this destination's.
    #[arg(long, value_name = "ID")]
    destination: Option<String>,
    /// Only those with a reason containing this text.
    #[arg(long, value_name = "TEXT")]
    reason: Option<String>,
    /// Only those dead-lettered since this time (RFC 3339, or a span ago: 30m, 2h, 7d).
    #[arg(long, value_name = "TIME")]
    since: Option<String>,
    /// Only those dead-lettered until this time (RFC 3339, or a span ago).
    #[arg(long, value_name = "TIME")]
    until: Option<String>,
}

#[derive(Subcommand)]
enum PrivacyAction {
    /// Every erasure job, oldest first.
    List {
        /// The configuration file (JSON).
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// One erasure job.
    Show {
        /// The configuration file (JSON).
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// The job's id (from `forget` or `list`).
        id: String,
    },
}

#[derive(Subcommand)]
enum DlqAction {
    /// List dead letters, one line each (id, destination, time, ending, first reason).
    List {
        #[command(flatten)]
        filter: DlqFilter,
        /// At most this many.
        #[arg(long, value_name = "N")]
        limit: Option<usize>,
        /// Print them as a JSON array on stdout, with the events.
        #[arg(long)]
        json: bool,
    },
    /// Print one dead letter (its event and every reason) as JSON.
    Show {
        /// The configuration file (JSON).
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// The dead letter's id (from `list`).
        id: u64,
    },
    /// Put dead letters back in line for their destination.
    Replay {
        #[command(flatten)]
        filter: DlqFilter,
        /// Only this one.
        #[arg(long, value_name = "ID")]
        id: Option<u64>,
    },
    /// Delete dead letters for good.
    Purge {
        #[command(flatten)]
        filter: DlqFilter,
        /// Only this one.
        #[arg(long, value_name = "ID")]
        id: Option<u64>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let serving = matches!(cli.command, Command::Serve { .. });
    let level = match std::env::var("HARDAL_LOG").as_deref() {
        Ok("debug") => tracing::Level::DEBUG,
        Ok("info") => tracing::Level::INFO,
        Ok("warn") => tracing::Level::WARN,
        Ok("error") => tracing::Level::ERROR,
        // A service tells its operators what it does; a command tells only what went wrong.
        _ if serving => tracing::Level::INFO,
        _ => tracing::Level::WARN,
    };
    let logs = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(level);
    match cli.log_format {
        LogFormat::Json => logs.json().init(),
        LogFormat::Text => logs.with_ansi(io::stderr().is_terminal()).init(),
    }
    match run(cli.command) {
        Ok(code) => code,
        Err(message) => {
            // Configuration reports are already one `file:line:column: …` line per problem.
            if message.contains('\n') {
                eprintln!("{message}");
            } else {
                eprintln!("error: {message}");
            }
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> Result<ExitCode, String> {
    match command {
        Command::Validate { config } => {
            let loaded = load(&config, Secrets::Required)?;
            print_warnings(&config, &loaded);
            let names: Vec<String> = loaded
                .destinations
                .iter()
                .map(|d| format!("{} ({})", d.id(), d.kind()))
                .collect();
            eprintln!(
                "{}: valid; destinations: {}",
                config.display(),
                names.join(", ")
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Render {
            config,
            destination,
            now,
            events,
            max_event_bytes,
        } => {
            let mut loaded = load(&config, Secrets::Unused)?;
            select(&mut loaded, destination.as_deref(), &config)?;
            let selected: Vec<(&dyn Destination, &hardal_core::Consent)> = loaded
                .destinations
                .iter()
                .map(|d| d.as_ref())
                .zip(&loaded.consent)
                .collect();
            let items = input::EventReader::new(open_input(events.as_deref())?, max_event_bytes);
            let stdout = io::stdout();
            let mut out = io::BufWriter::new(stdout.lock());
            let mut messages = io::BufWriter::new(io::stderr().lock());
            let summary = render::render(
                &selected,
                items,
                now.unwrap_or_else(std::time::SystemTime::now),
                &mut out,
                &mut messages,
            )
            .and_then(|s| messages.flush().and_then(|()| out.flush()).map(|()| s))
            .map_err(|e| format!("cannot read the events or write the output: {e}"))?;
            drop(messages);
            eprintln!(
                "rendered {} events: {} bodies, {} skipped{}, {} expired, {} repaired, {} with fields left out, {} errors",
                summary.events,
                summary.bodies,
                summary.skipped,
                if summary.no_consent > 0 {
                    format!(" ({} without consent)", summary.no_consent)
                } else {
                    String::new()
                },
                summary.expired,
                summary.repaired,
                summary.dropped,
                summary.errors
            );
            Ok(if summary.errors == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Send {
            config,
            events,
            destination,
            dry_run,
            json,
            state,
            dead_letters,
            restart,
            progress_interval,
            drain_timeout,
            workers,
            max_event_bytes,
        } => {
            let secrets = if dry_run {
                Secrets::Unused
            } else {
                Secrets::Required
            };
            let mut loaded = load(&config, secrets)?;
            select(&mut loaded, destination.as_deref(), &config)?;
            let redactor = loaded.redactor.clone();
            let options = SendOptions {
                input: events.filter(|p| p != Path::new("-")),
                state,
                dead_letters,
                restart,
                dry_run,
                drain_timeout: Duration::from_secs(drain_timeout),
                progress_every: Duration::from_secs(progress_interval),
                workers: workers
                    .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
                max_event_bytes,
            };
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .map_err(|e| format!("cannot start the async runtime: {e}"))?;
            let interrupt = {
                let _inside = runtime.enter();
                interrupted()
            };
            let summary = runtime.block_on(send::send(loaded, options, interrupt));
            // The summary quotes servers' answers; no configured secret may leave with them.
            eprintln!("{}", redactor.redact(&summary.text()));
            if json {
                let text = serde_json::to_string_pretty(&summary).expect("a summary serializes");
                println!("{}", redactor.redact(&text));
            }
            Ok(if summary.success() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Serve {
            config,
            drain_timeout,
            no_ingest,
            no_deliver,
        } => {
            let loaded = load(&config, Secrets::Required)?;
            print_warnings(&config, &loaded);
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .map_err(|e| format!("cannot start the async runtime: {e}"))?;
            let interrupt = {
                let _inside = runtime.enter();
                interrupted()
            };
            runtime.block_on(serve::serve(
                loaded,
                ServeOptions {
                    drain_timeout: Duration::from_secs(drain_timeout),
                    ingest: !no_ingest,
                    deliver: !no_deliver,
                },
                interrupt,
                |address| eprintln!("hardal serve: listening on http://{address}"),
            ))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Dlq { action } => dlq(action),
        Command::Forget {
            config,
            user_id,
            email,
            phone,
            custom,
            wait,
            dead_letters,
        } => {
            let mut who = hardal_runner::privacy::request::Who {
                user_id,
                email,
                phone,
                ..Default::default()
            };
            for (key, value) in custom {
                who.custom.entry(key).or_default().0.push(value);
            }
            // Deletion requests need the destinations' credentials.
            let loaded = load(&config, Secrets::Required)?;
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .map_err(|e| format!("cannot start the async runtime: {e}"))?;
            let stop = tokio_util::sync::CancellationToken::new();
            let record = runtime.block_on(async {
                let interrupt = interrupted();
                let cancel = stop.clone();
                tokio::spawn(async move {
                    interrupt.await;
                    cancel.cancel();
                });
                hardal_runner::privacy::command::forget(loaded, who.clone(), wait, stop).await
            })?;
            for path in &dead_letters {
                let removed = hardal_runner::privacy::command::forget_in_dead_letters(path, &who)?;
                eprintln!(
                    "{removed} dead letters of the user removed from {}",
                    path.display()
                );
            }
            print(&format!(
                "{}\n",
                serde_json::to_string(&record).expect("a record serializes")
            ))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Privacy { action } => {
            let (config, id) = match &action {
                PrivacyAction::List { config } => (config, None),
                PrivacyAction::Show { config, id } => (config, Some(id.as_str())),
            };
            let loaded = load(config, Secrets::Backlog)?;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| format!("cannot start the async runtime: {e}"))?;
            let records =
                runtime.block_on(hardal_runner::privacy::command::records(&loaded, id))?;
            for record in records {
                let line = serde_json::to_string(&record).expect("a record serializes");
                if !print(&format!("{line}\n"))? {
                    break;
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Tap {
            url,
            destination,
            event_name,
            user,
            sample,
            json,
        } => {
            let token = std::env::var(tap::TOKEN_VARIABLE).map_err(|_| {
                format!(
                    "set {} to one of the service's `server.tap.auth_tokens`",
                    tap::TOKEN_VARIABLE
                )
            })?;
            let options = tap::TapOptions {
                url,
                token,
                destinations: destination,
                event_names: event_name,
                users: user,
                sample,
                json,
            };
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| format!("cannot start the async runtime: {e}"))?;
            let interrupt = {
                let _inside = runtime.enter();
                interrupted()
            };
            let stdout = io::stdout();
            let mut out = stdout.lock();
            let ended = runtime
                .block_on(tap::tap(&options, &mut out, interrupt))
                .map_err(|e| e.to_string())?;
            if ended == tap::Ended::Closed {
                eprintln!("hardal tap: the service closed the tap (it is stopping)");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Presets { kind, name } => {
            let plugin = DestinationPlugin::find(&kind).ok_or_else(|| {
                format!(
                    "unknown destination kind `{kind}`; known kinds: {}",
                    hardal_runner::linked_kinds().join(", ")
                )
            })?;
            match name {
                None => {
                    for (name, _) in plugin.presets {
                        println!("{name}");
                    }
                }
                Some(name) => {
                    let (_, text) =
                        plugin
                            .presets
                            .iter()
                            .find(|(n, _)| *n == name)
                            .ok_or_else(|| {
                                let names: Vec<&str> =
                                    plugin.presets.iter().map(|(n, _)| *n).collect();
                                format!(
                                    "`{kind}` has no preset `{name}`; its presets: {}",
                                    names.join(", ")
                                )
                            })?;
                    print!("{text}");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::List { .. } => {
            let plugins = DestinationPlugin::all();
            let width = plugins.iter().map(|p| p.kind.len()).max().unwrap_or(0);
            for plugin in plugins {
                println!("{:width$}  {}", plugin.kind, plugin.description);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Schema { kind, .. } => {
            let schema = match kind {
                None => schema::runner_schema(),
                Some(kind) => {
                    let plugin = DestinationPlugin::find(&kind).ok_or_else(|| {
                        format!(
                            "unknown destination kind `{kind}`; known kinds: {}",
                            hardal_runner::linked_kinds().join(", ")
                        )
                    })?;
                    schema::standalone_kind_schema(plugin)
                }
            };
            println!(
                "{}",
                serde_json::to_string_pretty(&schema).expect("a schema serializes")
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "hardal", &mut io::stdout());
            Ok(ExitCode::SUCCESS)
        }
        Command::Man { dir } => {
            clap_mangen::generate_to(Cli::command(), &dir)
                .map_err(|e| format!("cannot write the man pages to {}: {e}", dir.display()))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Runs a `dlq` action against the configuration's backlog.
fn dlq(action: DlqAction) -> Result<ExitCode, String> {
    let (config, filter, what) = match &action {
        DlqAction::List { filter, limit, .. } => (
            &filter.config,
            dlq::filter(
                filter.destination.clone(),
                filter.reason.clone(),
                filter.since.as_deref(),
                filter.until.as_deref(),
                None,
                *limit,
            )?,
            "list",
        ),
        DlqAction::Show { config, id } => (
            config,
            dlq::filter(None, None, None, None, Some(*id), None)?,
            "show",
        ),
        DlqAction::Replay { filter, id } | DlqAction::Purge { filter, id } => (
            &filter.config,
            dlq::filter(
                filter.destination.clone(),
                filter.reason.clone(),
                filter.since.as_deref(),
                filter.until.as_deref(),
                *id,
                None,
            )?,
            if matches!(action, DlqAction::Replay { .. }) {
                "replay"
            } else {
                "purge"
            },
        ),
    };
    // Secrets are not needed to read dead letters, except those to reach the backlog.
    let loaded = load(config, Secrets::Backlog)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    runtime.block_on(async {
        let backlog = match &loaded.backlog {
            // The spool is opened as it is, beside its owner if one runs: never created.
            config::BacklogConfig::Sqlite {
                path, durability, ..
            } => {
                let ids: Vec<String> = loaded
                    .destinations
                    .iter()
                    .map(|d| d.id().to_owned())
                    .collect();
                std::sync::Arc::new(
                    SqliteSpool::open_for_commands(Path::new(path), &ids, *durability)
                        .map_err(|e| e.to_string())?,
                ) as std::sync::Arc<dyn hardal_runner::backlog::Backlog>
            }
            config::BacklogConfig::Nats(_) => serve::open_backlog(&loaded).await?,
        };
        match what {
            "list" => {
                let letters = backlog
                    .dead_letters(&filter)
                    .await
                    .map_err(|e| e.to_string())?;
                if matches!(action, DlqAction::List { json: true, .. }) {
                    let text =
                        serde_json::to_string_pretty(&letters).expect("dead letters serialize");
                    if !print(&format!("{text}\n"))? {
                        return Ok(());
                    }
                } else {
                    for letter in &letters {
                        if !print(&format!("{}\n", dlq::line(letter)))? {
                            return Ok(());
                        }
                    }
                    eprintln!("{} dead letters", letters.len());
                }
            }
            "show" => {
                let letters = backlog
                    .dead_letters(&filter)
                    .await
                    .map_err(|e| e.to_string())?;
                let letter = letters
                    .first()
                    .ok_or_else(|| format!("no dead letter {}", filter.id.unwrap_or(0)))?;
                let text = serde_json::to_string_pretty(letter).expect("a dead letter serializes");
                print(&format!("{text}\n"))?;
            }
            "replay" => {
                // Letters of a destination this configuration lacks are left where they are:
                // put back in line, nothing would ever take them.
                let configured: Vec<&str> = loaded.destinations.iter().map(|d| d.id()).collect();
                let mut left: std::collections::BTreeMap<String, usize> = Default::default();
                for letter in backlog
                    .dead_letters(&filter)
                    .await
                    .map_err(|e| e.to_string())?
                {
                    if !configured.contains(&letter.destination.as_str()) {
                        *left.entry(letter.destination).or_default() += 1;
                    }
                }
                let count = backlog.replay(&filter).await.map_err(|e| e.to_string())?;
                eprintln!("{count} dead letters put back in line for their destinations");
                for (destination, count) in left {
                    eprintln!(
                        "{count} dead letters for `{destination}` were left as they are: `{destination}` is not in {}; replay them with a configuration that has it, or purge them",
                        config.display()
                    );
                }
            }
            _ => {
                let count = backlog.purge(&filter).await.map_err(|e| e.to_string())?;
                eprintln!("{count} dead letters deleted");
            }
        }
        Ok::<_, String>(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Writes to standard output; false when its reader went away (`hardal dlq list | head`), which
/// ends the output quietly rather than as a panic.
fn print(text: &str) -> Result<bool, String> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(format!("cannot write to standard output: {e}")),
    }
}

/// Keeps only the destination `--destination` names, if any.
fn select(config: &mut config::Config, id: Option<&str>, path: &Path) -> Result<(), String> {
    let Some(id) = id else {
        return Ok(());
    };
    config.select(id).map_err(|ids| {
        format!(
            "no destination `{id}` in {}; its destinations: {}",
            path.display(),
            ids.join(", ")
        )
    })
}

/// Configuration warnings, one `file:line:column: pointer: warning: message` line each.
fn print_warnings(path: &Path, config: &config::Config) {
    for warning in &config.warnings {
        eprintln!(
            "{}:{}:{}: {}: warning: {}",
            path.display(),
            warning.position.line,
            warning.position.column,
            warning.pointer,
            warning.message
        );
    }
}

/// Completes on Ctrl-C or SIGTERM. The handlers are installed when this is called (within the
/// runtime), not when the future is first polled, so a signal that arrives while a command is
/// still starting is not missed.
fn interrupted() -> impl std::future::Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::{SignalKind, signal};
    let term = signal(SignalKind::terminate()).ok();
    let interrupt = signal(SignalKind::interrupt()).ok();
    async move {
        let wait = |signal: Option<tokio::signal::unix::Signal>| async move {
            match signal {
                Some(mut signal) => {
                    signal.recv().await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = wait(term) => {}
            () = wait(interrupt) => {}
        }
    }
}

fn load(path: &Path, secrets: Secrets) -> Result<config::Config, String> {
    config::load_file(path, secrets).map_err(|e| e.to_string())
}

/// The events to read: a file, or standard input when absent or `-`.
fn open_input(path: Option<&Path>) -> Result<Box<dyn BufRead>, String> {
    match path {
        Some(path) if path != Path::new("-") => std::fs::File::open(path)
            .map(|file| Box::new(io::BufReader::with_capacity(1 << 16, file)) as Box<dyn BufRead>)
            .map_err(|e| format!("cannot read events from {}: {e}", path.display())),
        _ => {
            if io::stdin().is_terminal() {
                eprintln!("reading events from standard input (end with Ctrl-D)");
            }
            Ok(Box::new(io::BufReader::with_capacity(1 << 16, io::stdin())))
        }
    }
}

/// A custom identifier, `K=V`: an event path and its value.
fn parse_custom(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() && !value.is_empty() => {
            Ok((key.trim().to_owned(), value.to_owned()))
        }
        _ => Err(format!(
            "`{text}` is not K=V (an event path and its value, e.g. properties.customer_no=42)"
        )),
    }
}

/// A share of events: above 0, at most 1.
fn parse_sample(text: &str) -> Result<f64, String> {
    text.parse::<f64>()
        .ok()
        .filter(|s| *s > 0.0 && *s <= 1.0)
        .ok_or_else(|| format!("`{text}` is not a share of events above 0 and at most 1"))
}

/// A time written as RFC 3339 (any offset), a date, or epoch seconds or milliseconds.
fn parse_time(text: &str) -> Result<std::time::SystemTime, String> {
    hardal_core::convert::to_system_time(&serde_json::Value::String(text.to_owned()))
        .ok_or_else(|| format!("`{text}` is not a time (RFC 3339, a date, or epoch seconds)"))
}
