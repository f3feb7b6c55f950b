//! The `hardal` command line.

use std::io::{self, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use hardal_core::{Destination, DestinationPlugin};
use hardal_runner::config::{self, Secrets, schema};
use hardal_runner::send::{self, SendOptions};
use hardal_runner::{input, render};

// Mapping is allocation-heavy (JSON values in, JSON bytes out); mimalloc makes it markedly
// faster than the system allocator on the send path.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// hardal forwards analytics events to marketing destinations such as Insider.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
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
        /// Forget an earlier run of this command and start from the first event.
        #[arg(long)]
        restart: bool,
        /// Seconds between progress lines when stderr is not a terminal (0: none).
        #[arg(long, value_name = "SECONDS", default_value_t = 10)]
        progress_interval: u64,
        /// Seconds in-flight requests may take to finish after Ctrl-C or a pause.
        #[arg(long, value_name = "SECONDS", default_value_t = 10)]
        drain_timeout: u64,
        /// Threads that parse and map events (default: one per core).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(usize))]
        workers: Option<usize>,
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let level = match std::env::var("HARDAL_LOG").as_deref() {
        Ok("debug") => tracing::Level::DEBUG,
        Ok("info") => tracing::Level::INFO,
        Ok("error") => tracing::Level::ERROR,
        _ => tracing::Level::WARN,
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(io::stderr().is_terminal())
        .with_max_level(level)
        .init();
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
        } => {
            let loaded = load(&config, Secrets::Unused)?;
            let destinations = select(loaded.destinations, destination.as_deref(), &config)?;
            let selected: Vec<&dyn Destination> = destinations.iter().map(|d| d.as_ref()).collect();
            let text = read_input(events.as_deref())?;
            let stdout = io::stdout();
            let mut out = io::BufWriter::new(stdout.lock());
            let summary = render::render(
                &selected,
                input::read_events(&text),
                now.unwrap_or_else(std::time::SystemTime::now),
                &mut out,
                &mut io::stderr(),
            )
            .and_then(|s| out.flush().map(|()| s))
            .map_err(|e| format!("cannot write the output: {e}"))?;
            eprintln!(
                "rendered {} events: {} bodies, {} skipped, {} expired, {} repaired, {} with fields left out, {} errors",
                summary.events,
                summary.bodies,
                summary.skipped,
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
        } => {
            let secrets = if dry_run {
                Secrets::Unused
            } else {
                Secrets::Required
            };
            let loaded = load(&config, secrets)?;
            let identity = std::fs::read_to_string(&config).unwrap_or_default()
                + "\u{0}"
                + destination.as_deref().unwrap_or("");
            let destinations = select(loaded.destinations, destination.as_deref(), &config)?;
            let options = SendOptions {
                input: events.filter(|p| p != Path::new("-")),
                identity,
                state,
                dead_letters,
                restart,
                dry_run,
                drain_timeout: Duration::from_secs(drain_timeout),
                progress_every: Duration::from_secs(progress_interval),
                workers: workers
                    .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
            };
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .map_err(|e| format!("cannot start the async runtime: {e}"))?;
            let summary = runtime.block_on(send::send(
                destinations,
                &loaded.delivery,
                options,
                interrupted(),
            ));
            eprintln!("{}", summary.text());
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&summary).expect("a summary serializes")
                );
            }
            Ok(if summary.success() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
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
    }
}

/// The destinations to use: all, or the one `--destination` names.
fn select(
    destinations: Vec<Box<dyn Destination>>,
    id: Option<&str>,
    config: &Path,
) -> Result<Vec<Box<dyn Destination>>, String> {
    let Some(id) = id else {
        return Ok(destinations);
    };
    let ids: Vec<String> = destinations.iter().map(|d| d.id().to_owned()).collect();
    let selected: Vec<_> = destinations.into_iter().filter(|d| d.id() == id).collect();
    if selected.is_empty() {
        return Err(format!(
            "no destination `{id}` in {}; its destinations: {}",
            config.display(),
            ids.join(", ")
        ));
    }
    Ok(selected)
}

/// Completes on Ctrl-C or SIGTERM.
async fn interrupted() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}

fn load(path: &Path, secrets: Secrets) -> Result<config::Config, String> {
    config::load_file(path, secrets).map_err(|e| e.to_string())
}

fn read_input(path: Option<&Path>) -> Result<String, String> {
    match path {
        Some(path) if path != Path::new("-") => std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read events from {}: {e}", path.display())),
        _ => {
            if io::stdin().is_terminal() {
                eprintln!("reading events from standard input (end with Ctrl-D)");
            }
            let mut text = String::new();
            io::stdin()
                .read_to_string(&mut text)
                .map_err(|e| format!("cannot read standard input: {e}"))?;
            Ok(text)
        }
    }
}

/// A time written as RFC 3339 (any offset), a date, or epoch seconds or milliseconds.
fn parse_time(text: &str) -> Result<std::time::SystemTime, String> {
    hardal_core::convert::to_system_time(&serde_json::Value::String(text.to_owned()))
        .ok_or_else(|| format!("`{text}` is not a time (RFC 3339, a date, or epoch seconds)"))
}
