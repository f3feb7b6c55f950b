//! The `hardal` command line.

use std::io::{self, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use hardal_core::{Destination, DestinationPlugin};
use hardal_runner::config::{self, Secrets, schema};
use hardal_runner::{input, render};

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
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Print the request body each destination would send for each event, one per line.
    /// Nothing is sent.
    Render {
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// Render for this destination only.
        #[arg(long, value_name = "ID")]
        destination: Option<String>,
        /// Events: NDJSON, or a JSON event or array of events. Standard input when absent or `-`.
        events: Option<PathBuf>,
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
            events,
        } => {
            let loaded = load(&config, Secrets::Unused)?;
            let selected: Vec<&dyn Destination> = loaded
                .destinations
                .iter()
                .map(|d| d.as_ref())
                .filter(|d| destination.as_deref().is_none_or(|id| d.id() == id))
                .collect();
            if selected.is_empty() {
                let ids: Vec<&str> = loaded.destinations.iter().map(|d| d.id()).collect();
                return Err(format!(
                    "no destination `{}` in {}; its destinations: {}",
                    destination.unwrap_or_default(),
                    config.display(),
                    ids.join(", ")
                ));
            }
            let text = read_input(events.as_deref())?;
            let stdout = io::stdout();
            let mut out = io::BufWriter::new(stdout.lock());
            let summary = render::render(
                &selected,
                input::read_events(&text),
                &mut out,
                &mut io::stderr(),
            )
            .and_then(|s| out.flush().map(|()| s))
            .map_err(|e| format!("cannot write the output: {e}"))?;
            eprintln!(
                "rendered {} events: {} bodies, {} skipped, {} errors",
                summary.events, summary.bodies, summary.skipped, summary.errors
            );
            Ok(if summary.errors == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
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
