//! How long Insider keeps events, by event type: Insider does not write an event older than that,
//! so hardal does not send it and counts it as expired instead. The table is Insider Academy's
//! data-retention page (https://academy.insiderone.com/v1/docs/data-retention): purchase 730 days;
//! page, cart and wishlist events 90 days; sign-up 365 days; custom events 3 months (90 days here).
//! Accounts can have longer retention: `retention_days` in the configuration overrides it per event
//! name.

use std::collections::BTreeMap;
use std::time::SystemTime;

/// Insider's retention in days per event name, from the page cited above.
/// Wishlist events have no system name in the documentation this project follows; as custom events
/// they get the same 90 days.
pub const RETENTION_DAYS: [(&str, u32); 10] = [
    ("purchase", 730),
    ("sign_up_confirmation", 365),
    ("homepage_view", 90),
    ("listing_page_view", 90),
    ("product_detail_page_view", 90),
    ("item_added_to_cart", 90),
    ("item_removed_from_cart", 90),
    ("cart_page_view", 90),
    ("checkout_page_view", 90),
    ("confirmation_page_view", 90),
];

/// Every other event is a custom event: "3 months by default", taken as 90 days.
pub const CUSTOM_EVENT_DAYS: u32 = 90;

const DAY: i64 = 86_400;

/// The retention in force: Insider's table with the configuration's overrides.
#[derive(Debug, Clone, Default)]
pub struct Retention {
    overrides: BTreeMap<String, u32>,
}

impl Retention {
    pub fn new(overrides: BTreeMap<String, u32>) -> Retention {
        Retention { overrides }
    }

    /// Whether an event of `name` at `timestamp` (RFC 3339 in UTC, as the rules write it) is
    /// older than it is kept at `now`; if so, the rule that applies, e.g.
    /// `purchase events are kept 730 days`. An event exactly as old as the retention is kept.
    pub fn expired(&self, name: &str, timestamp: &str, now: SystemTime) -> Option<String> {
        let at = epoch_seconds(timestamp)?;
        let now = match now.duration_since(SystemTime::UNIX_EPOCH) {
            Ok(since) => i64::try_from(since.as_secs()).unwrap_or(i64::MAX),
            Err(before) => -i64::try_from(before.duration().as_secs()).unwrap_or(i64::MAX),
        };
        let (days, source) = self.days(name);
        if now.saturating_sub(at) <= i64::from(days) * DAY {
            return None;
        }
        Some(match source {
            Source::Configured => format!("{name} events are kept {days} days (retention_days)"),
            Source::Insider => format!("{name} events are kept {days} days"),
            Source::Custom => format!("custom events are kept {days} days"),
        })
    }

    fn days(&self, name: &str) -> (u32, Source) {
        if let Some(days) = self.overrides.get(name) {
            return (*days, Source::Configured);
        }
        match RETENTION_DAYS.iter().find(|(event, _)| *event == name) {
            Some((_, days)) => (*days, Source::Insider),
            None => (CUSTOM_EVENT_DAYS, Source::Custom),
        }
    }
}

enum Source {
    Insider,
    Custom,
    Configured,
}

/// Seconds since the epoch of `YYYY-MM-DDTHH:MM:SS[.mmm]Z`, the form the rules write every
/// timestamp in; read by position, as this runs for every event.
pub(crate) fn epoch_seconds(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    if bytes.len() < 20 || bytes[10] != b'T' || !text.ends_with('Z') {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> Option<i64> {
        bytes[range].iter().try_fold(0i64, |n, b| {
            b.is_ascii_digit().then(|| n * 10 + i64::from(b - b'0'))
        })
    };
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    Some(days_from_civil(year, month, day) * DAY + hour * 3600 + minute * 60 + second)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let shifted_month = (month + 9) % 12;
    let day_of_year = (153 * shifted_month + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_seconds_of_canonical_timestamps() {
        for (text, seconds) in [
            ("1970-01-01T00:00:00Z", Some(0)),
            ("2024-12-19T09:45:39Z", Some(1_734_601_539)),
            ("2024-12-19T09:45:39.659Z", Some(1_734_601_539)),
            ("2000-02-29T23:59:59Z", Some(951_868_799)),
            ("1969-12-31T23:59:59Z", Some(-1)),
            ("2024-12-19 09:45:39Z", None),
            ("2024-12-19T09:45:39+03:00", None),
        ] {
            assert_eq!(epoch_seconds(text), seconds, "{text}");
        }
    }
}
