//! What a `hardal send` reports: per destination, the totals of the whole backfill (earlier runs
//! of the same input included, from the checkpoint), what this run did, and what is left; the
//! exit status follows the whole backfill, so resuming a run that dead-lettered events never ends
//! in a misleading 0.

use std::collections::BTreeMap;

use crate::delivery::Ending;

/// How events ended for one destination, counted; kept in the checkpoint for the whole backfill.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Totals {
    pub delivered: u64,
    pub skipped: u64,
    /// Of the skipped: events without the consent the destination's consent mode requires.
    pub no_consent: u64,
    /// Not sent: older than the destination keeps such events.
    pub expired: u64,
    /// Refused for good: by the destination's rules while mapping, or by its answer.
    pub rejected: u64,
    /// Given up after the retry budget.
    pub dead_lettered: u64,
    /// Input lines that are not events (not JSON, not UTF-8, too long).
    pub invalid: u64,
    /// Events with a field repaired, with a field left out, and with some of their parts
    /// expired (the rest was sent).
    pub repaired: u64,
    pub fields_dropped: u64,
    pub partly_expired: u64,
    /// Events per change: `dropped attributes.country: not a country` → count.
    pub field_changes: BTreeMap<String, u64>,
}

impl Totals {
    pub fn add(&mut self, ending: Ending) {
        match ending {
            Ending::Delivered => self.delivered += 1,
            Ending::Skipped => self.skipped += 1,
            Ending::Expired => self.expired += 1,
            Ending::Rejected => self.rejected += 1,
            Ending::DeadLettered => self.dead_lettered += 1,
        }
    }

    /// Events that did not reach the destination and are in the dead letters.
    pub fn failed(&self) -> u64 {
        self.rejected + self.dead_lettered + self.invalid
    }
}

/// One destination's part of the summary.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct DestinationSummary {
    pub id: String,
    /// The whole backfill, earlier runs included.
    #[serde(flatten)]
    pub totals: Totals,
    /// What this run did.
    pub this_run: Totals,
    /// Still unresolved when the run stopped (interrupted or paused); the next run sends them.
    pub unresolved: u64,
    pub requests: u64,
    pub records_retried: u64,
    /// Requests split in halves because the destination refused them for a record it did not
    /// name (left out of the report when there were none).
    #[serde(skip_serializing_if = "is_zero")]
    pub batch_splits: u64,
    /// Why the destination stopped taking events (credentials refused, a redirect).
    pub paused: Option<String>,
}

/// The outcome of a run.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Summary {
    /// Non-empty input lines read in this run that earlier runs had not finished.
    pub events: u64,
    /// Lines earlier runs of the same input had already resolved for every destination.
    pub already_done: u64,
    /// Lines of the input that are not events, in the whole backfill (dead-lettered).
    pub invalid: u64,
    pub destinations: Vec<DestinationSummary>,
    /// Dead letters this run made durable.
    pub dead_letters_written: u64,
    pub dead_letters_file: Option<String>,
    pub elapsed_seconds: f64,
    pub interrupted: bool,
    /// Whether running the same command again continues this run (false for standard input).
    pub resumable: bool,
    /// Every event read was resolved for every destination and the input was read to its end.
    pub complete: bool,
    pub dry_run: bool,
    pub error: Option<String>,
    /// Configuration warnings (plain http to another machine, …).
    pub warnings: Vec<String>,
}

impl Summary {
    /// Exit status 0 only when every event of the whole backfill was delivered or deliberately
    /// skipped (or expired), and nothing is left.
    pub fn success(&self) -> bool {
        self.complete
            && self.error.is_none()
            && self.invalid == 0
            && self.destinations.iter().all(|d| {
                d.totals.rejected == 0
                    && d.totals.dead_lettered == 0
                    && d.paused.is_none()
                    && d.unresolved == 0
            })
    }

    pub fn text(&self) -> String {
        let mut text = format!(
            "{}{} events read in {:.1} s",
            if self.dry_run { "dry run: " } else { "" },
            self.events,
            self.elapsed_seconds
        );
        if self.already_done > 0 {
            text.push_str(&format!(
                " ({} already handled by an earlier run)",
                self.already_done
            ));
        }
        if self.invalid > 0 {
            text.push_str(&format!("; {} invalid lines", self.invalid));
        }
        text.push('\n');
        let verb = if self.dry_run {
            "would deliver"
        } else {
            "delivered"
        };
        let resumed = self.destinations.iter().any(|d| d.totals != d.this_run);
        for d in &self.destinations {
            let t = &d.totals;
            text.push_str(&format!(
                "  {}: {} {verb}, {} skipped, {} expired, {} rejected, {} dead-lettered, {} unresolved · {} requests, {} records retried\n",
                d.id, t.delivered, t.skipped, t.expired, t.rejected, t.dead_lettered, d.unresolved, d.requests, d.records_retried
            ));
            if d.batch_splits > 0 {
                // The line above ends with a newline; the splits belong to its tally.
                text.pop();
                text.push_str(&format!(", {} requests split\n", d.batch_splits));
            }
            if resumed {
                let r = &d.this_run;
                text.push_str(&format!(
                    "    (the whole backfill so far; this run: {} {verb}, {} skipped, {} expired, {} rejected, {} dead-lettered)\n",
                    r.delivered, r.skipped, r.expired, r.rejected, r.dead_lettered
                ));
            }
            if t.no_consent > 0 {
                text.push_str(&format!(
                    "    skipped: {}: {} events\n",
                    hardal_core::consent::NO_CONSENT,
                    t.no_consent
                ));
            }
            for (change, events) in &t.field_changes {
                text.push_str(&format!("    {change}: {events} events\n"));
            }
            if let Some(reason) = &d.paused {
                text.push_str(&format!(
                    "  {}: PAUSED — {reason}; nothing more was sent to it and nothing was dropped: fix its configuration and run the same command again\n",
                    d.id
                ));
            }
        }
        if let Some(file) = &self.dead_letters_file {
            text.push_str(&format!(
                "  dead letters: {} written to {file}\n",
                self.dead_letters_written
            ));
        }
        for warning in &self.warnings {
            text.push_str(&format!("  warning: {warning}\n"));
        }
        if let Some(error) = &self.error {
            text.push_str(&format!("  error: {error}\n"));
        }
        let earlier_failures = self
            .destinations
            .iter()
            .any(|d| d.totals.failed() > d.this_run.failed());
        text.push_str(if self.success() {
            "  complete: every event was delivered or skipped"
        } else if self.complete && earlier_failures {
            "  complete, with dead letters (some from earlier runs of this backfill)"
        } else if self.complete {
            "  complete, with dead letters"
        } else if !self.resumable {
            "  incomplete: standard input cannot be resumed; send the events that were not delivered again"
        } else if self.interrupted {
            "  interrupted: run the same command again to continue where this run stopped"
        } else {
            "  incomplete: run the same command again to continue"
        });
        text
    }
}

/// Whether a count is zero (counts that are usually zero stay out of the JSON report).
fn is_zero(count: &u64) -> bool {
    *count == 0
}
