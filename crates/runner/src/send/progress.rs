//! Progress while sending: a bar on a terminal (events/s, delivered, retried, dead-lettered, ETA
//! from the share of the input read), plain periodic lines otherwise.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::pipeline::ReadProgress;

/// Totals across destinations, as progress shows them.
#[derive(Debug, Default, Clone, Copy)]
pub struct Counts {
    pub delivered: u64,
    pub retried: u64,
    pub dead_lettered: u64,
    pub requests: u64,
}

pub enum Progress {
    Bar {
        bar: ProgressBar,
        read: Arc<ReadProgress>,
    },
    Lines {
        every: Duration,
        last: Instant,
        started: Instant,
        read: Arc<ReadProgress>,
        total_bytes: Option<u64>,
    },
    Quiet,
}

impl Progress {
    /// A bar when stderr is a terminal, else a line every `every` (none when `every` is zero).
    pub fn new(read: Arc<ReadProgress>, total_bytes: Option<u64>, every: Duration) -> Progress {
        let now = Instant::now();
        if std::io::stderr().is_terminal() {
            let bar =
                ProgressBar::with_draw_target(total_bytes, ProgressDrawTarget::stderr_with_hz(4));
            let style = ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {percent:>3}% ETA {eta} · {msg}",
            )
            .expect("a valid template");
            bar.set_style(style);
            Progress::Bar { bar, read }
        } else if every.is_zero() {
            Progress::Quiet
        } else {
            Progress::Lines {
                every,
                last: now,
                started: now,
                read,
                total_bytes,
            }
        }
    }

    pub fn update(&mut self, counts: Counts, started: Instant) {
        match self {
            Progress::Bar { bar, read } => {
                let lines = read.lines.load(Ordering::Relaxed);
                bar.set_position(read.bytes.load(Ordering::Relaxed));
                bar.set_message(describe(counts, lines, started.elapsed()));
            }
            Progress::Lines {
                every,
                last,
                started,
                read,
                total_bytes,
            } => {
                if last.elapsed() < *every {
                    return;
                }
                *last = Instant::now();
                let lines = read.lines.load(Ordering::Relaxed);
                let share = total_bytes
                    .filter(|t| *t > 0)
                    .map(|t| {
                        format!(
                            " · {:.0}% read",
                            100.0 * read.bytes.load(Ordering::Relaxed) as f64 / t as f64
                        )
                    })
                    .unwrap_or_default();
                eprintln!(
                    "progress: {}{share}",
                    describe(counts, lines, started.elapsed())
                );
            }
            Progress::Quiet => {}
        }
    }

    pub fn finish(&mut self) {
        if let Progress::Bar { bar, .. } = self {
            bar.finish_and_clear();
        }
    }
}

fn describe(counts: Counts, lines: u64, elapsed: Duration) -> String {
    let rate = lines as f64 / elapsed.as_secs_f64().max(0.001);
    format!(
        "{lines} events read ({rate:.0}/s) · {} delivered · {} retried · {} dead-lettered · {} requests",
        counts.delivered, counts.retried, counts.dead_lettered, counts.requests
    )
}
