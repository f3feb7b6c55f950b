//! The `insider-simulator` binary: the simulator as a process, for benchmarks and the quick start.
//!
//! It prints `listening on http://IP:PORT` as its only line on stdout once it accepts connections,
//! so a script can wait for that line, and stops on Ctrl-C or SIGTERM.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use hardal_insider_simulator::ga4::{Ga4Config, Ga4Simulator};
use hardal_insider_simulator::{MetaConfig, MetaSimulator, Simulator, SimulatorConfig};

// Parsing request bodies allocates per JSON value; mimalloc keeps the simulator's share of a
// shared 2-core benchmark small.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A simulator of Insider's UCD user upsert API (or, with `--kind meta`, of Meta's Conversions
/// API, or with `--kind ga4`, of GA4's Measurement Protocol), on loopback only.
#[derive(Debug, Parser)]
#[command(name = "insider-simulator", version)]
struct Args {
    /// Which API to stand in for.
    #[arg(long, value_enum, default_value = "insider")]
    kind: Kind,
    /// Loopback address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: String,
    /// The partner name requests must carry in X-PARTNER-NAME (insider).
    #[arg(long)]
    partner_name: Option<String>,
    /// The token requests must carry in X-REQUEST-TOKEN (insider).
    #[arg(
        long,
        env = "INSIDER_REQUEST_TOKEN",
        hide_env_values = true,
        required_if_eq("kind", "insider")
    )]
    request_token: Option<String>,
    /// The pixel ID requests must name (meta).
    #[arg(long)]
    pixel_id: Option<String>,
    /// The access token requests must carry (meta).
    #[arg(
        long,
        env = "META_ACCESS_TOKEN",
        hide_env_values = true,
        required_if_eq("kind", "meta")
    )]
    access_token: Option<String>,
    /// The measurement ID requests must carry (ga4).
    #[arg(long)]
    measurement_id: Option<String>,
    /// The API secret requests must carry (ga4).
    #[arg(long, env = "GA4_API_SECRET", hide_env_values = true)]
    api_secret: Option<String>,
    /// Count accepted users and events without keeping them, for long benchmarks.
    #[arg(long)]
    no_record: bool,
    /// Custom identifiers defined in the simulated account (repeatable); without it any is accepted.
    #[arg(long = "custom-identifier", value_name = "NAME")]
    custom_identifiers: Vec<String>,
}

/// The API a process stands in for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Kind {
    /// Insider's UCD user upsert API.
    Insider,
    /// Meta's Conversions API (`/{version}/{pixel_id}/events`).
    Meta,
    /// GA4's Measurement Protocol (`/mp/collect`, `/debug/mp/collect`).
    Ga4,
}

/// A running stand-in of either kind; dropping it stops the server.
enum Running {
    Insider(Simulator),
    Meta(MetaSimulator),
    Ga4(Ga4Simulator),
}

impl Running {
    fn base_url(&self) -> String {
        match self {
            Running::Insider(simulator) => simulator.base_url(),
            Running::Meta(simulator) => simulator.base_url(),
            Running::Ga4(simulator) => simulator.base_url(),
        }
    }
}

/// Completes on SIGTERM or Ctrl-C. The handlers are installed when this is called (not when it is
/// first polled), so a signal that comes right after the address is printed is not missed.
fn stop_signal() -> impl std::future::Future<Output = ()> {
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

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    // Which flags are required depends on the kind, which has a default; clap's conditional
    // requirements do not see defaults, so the check is made here, in clap's words.
    let required: &[(&str, bool)] = match args.kind {
        Kind::Insider => &[
            ("--partner-name", args.partner_name.is_some()),
            ("--request-token", args.request_token.is_some()),
        ],
        Kind::Meta => &[
            ("--pixel-id", args.pixel_id.is_some()),
            ("--access-token", args.access_token.is_some()),
        ],
        Kind::Ga4 => &[
            ("--measurement-id", args.measurement_id.is_some()),
            ("--api-secret", args.api_secret.is_some()),
        ],
    };
    if let Some((flag, _)) = required.iter().find(|(_, given)| !given) {
        use clap::CommandFactory;
        Args::command()
            .error(
                clap::error::ErrorKind::MissingRequiredArgument,
                format!("the following required argument was not provided: {flag}"),
            )
            .exit();
    }
    let started = match args.kind {
        Kind::Insider => {
            let config = SimulatorConfig {
                partner_name: args.partner_name.unwrap_or_default(),
                request_token: args.request_token.unwrap_or_default(),
                listen: args.listen,
                record_users: !args.no_record,
                custom_identifiers: (!args.custom_identifiers.is_empty())
                    .then_some(args.custom_identifiers),
                ..SimulatorConfig::default()
            };
            Simulator::start_async(config).await.map(Running::Insider)
        }
        Kind::Meta => {
            let config = MetaConfig {
                pixel_id: args.pixel_id.unwrap_or_default(),
                access_token: args.access_token.unwrap_or_default(),
                listen: args.listen,
            };
            MetaSimulator::start_async(config).await.map(Running::Meta)
        }
        Kind::Ga4 => {
            let config = Ga4Config {
                measurement_id: args.measurement_id.unwrap_or_default(),
                api_secret: args.api_secret.unwrap_or_default(),
                listen: args.listen,
            };
            Ga4Simulator::start_async(config).await.map(Running::Ga4)
        }
    };
    let simulator = match started {
        Ok(simulator) => simulator,
        Err(error) => {
            eprintln!("insider-simulator: {error}");
            return ExitCode::FAILURE;
        }
    };
    let stop = stop_signal();
    let mut stdout = std::io::stdout();
    let _ = writeln!(stdout, "listening on {}", simulator.base_url());
    let _ = stdout.flush();
    stop.await;
    eprintln!("insider-simulator: stopping");
    drop(simulator);
    ExitCode::SUCCESS
}
