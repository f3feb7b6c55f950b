//! `hardal dlq list|show|replay|purge`: the dead letters of `hardal serve`'s backlog, filtered by
//! destination, reason text and time; replaying puts events back in line for their destination.
//! It opens the backlog beside a running service (SQLite allows both), so nothing needs to stop.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::backlog::{DeadLetter, DeadLetterFilter};

/// Reads `--since`/`--until`: an RFC 3339 time, or a span ago such as `30m`, `2h` or `7d`.
pub fn parse_time(text: &str) -> Result<SystemTime, String> {
    let text = text.trim();
    let span = |unit: char, seconds: u64| {
        text.strip_suffix(unit)
            .and_then(|n| n.parse::<u64>().ok())
            .map(|n| Duration::from_secs(n.saturating_mul(seconds)))
    };
    if let Some(ago) = span('s', 1)
        .or_else(|| span('m', 60))
        .or_else(|| span('h', 3600))
        .or_else(|| span('d', 86_400))
    {
        return Ok(SystemTime::now().checked_sub(ago).unwrap_or(UNIX_EPOCH));
    }
    let canonical = hardal_core::convert::to_timestamp(&serde_json::Value::String(text.into()))
        .filter(|_| text.contains('-'))
        .ok_or_else(|| {
            format!("`{text}` is neither an RFC 3339 time (2024-12-19T09:00:00Z) nor a span ago (30m, 2h, 7d)")
        })?;
    let parsed =
        time::OffsetDateTime::parse(&canonical, &time::format_description::well_known::Rfc3339)
            .map_err(|e| format!("`{text}`: {e}"))?;
    let seconds = parsed.unix_timestamp();
    Ok(if seconds >= 0 {
        UNIX_EPOCH + Duration::from_secs(seconds as u64)
    } else {
        UNIX_EPOCH
    })
}

/// One dead letter as a line for people: id, destination, time, ending, first reason.
pub fn line(letter: &DeadLetter) -> String {
    let at = time::OffsetDateTime::from_unix_timestamp(letter.at as i64)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| letter.at.to_string());
    let reason = letter.reasons.first().map_or("", String::as_str);
    let reason: String = reason.chars().take(120).collect();
    format!(
        "{}\t{}\t{at}\t{}\t{reason}",
        letter.id, letter.destination, letter.ending
    )
}

/// A filter from the command line's options.
pub fn filter(
    destination: Option<String>,
    reason: Option<String>,
    since: Option<&str>,
    until: Option<&str>,
    id: Option<u64>,
    limit: Option<usize>,
) -> Result<DeadLetterFilter, String> {
    Ok(DeadLetterFilter {
        destination,
        reason,
        since: since.map(parse_time).transpose()?,
        until: until.map(parse_time).transpose()?,
        id,
        limit,
    })
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use super::parse_time;

    #[test]
    fn times_are_rfc3339_or_spans_ago() {
        assert_eq!(
            parse_time("2024-12-19T09:45:39Z").unwrap(),
            UNIX_EPOCH + Duration::from_secs(1_734_601_539)
        );
        let hour_ago = parse_time("1h").unwrap();
        let elapsed = SystemTime::now().duration_since(hour_ago).unwrap();
        assert!((3599..3602).contains(&elapsed.as_secs()));
        assert!(parse_time("yesterday").is_err());
        assert!(parse_time("12345").is_err());
    }
}
