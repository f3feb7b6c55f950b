//! The `timestamp` filter: reads the timestamp shapes real events carry (RFC 3339 with any offset,
//! dates and date-times without an offset, compact `YYYYMMDD` dates, epoch seconds or
//! milliseconds) and writes RFC 3339 in UTC with `Z`, with milliseconds when the time has a
//! sub-second part.
//!
//! Numbers are read as epoch times only when their digit count is plausible for one: 9 or 10
//! digits of seconds (March 1973 to November 2286) or 12 or 13 digits of milliseconds (the same
//! span). Anything else (`0`, `42`, `19900101` as an epoch) would silently become a date around
//! 1970, so it is not a timestamp — except 8 digits, which are read as a `YYYYMMDD` date.

use crate::convert::Scalar;
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

/// The timestamp as RFC 3339 UTC text, or `None` when the value is not a timestamp.
pub(crate) fn normalize(value: Scalar<'_>) -> Option<String> {
    let instant = match value {
        Scalar::Number(n) => from_number_text(number_text(n, &mut [0; 40]))?,
        Scalar::String(s) => from_text(s.trim())?,
        _ => return None,
    };
    format_utc(instant)
}

/// The instant a timestamp value names, in any shape [`normalize`] reads.
pub(crate) fn to_system_time(value: Scalar<'_>) -> Option<std::time::SystemTime> {
    let instant = match value {
        Scalar::Number(n) => from_number_text(number_text(n, &mut [0; 40]))?,
        Scalar::String(s) => from_text(s.trim())?,
        _ => return None,
    };
    Some(instant.into())
}

/// A number's JSON text, as `serde_json` writes it, in `buffer`: most events carry their time as
/// a number, and a `String` for each was an allocation per event. (The longest text, a negative
/// float with an exponent, is 24 bytes.)
fn number_text<'b>(n: &serde_json::Number, buffer: &'b mut [u8; 40]) -> &'b str {
    let mut cursor = std::io::Cursor::new(&mut buffer[..]);
    serde_json::to_writer(&mut cursor, n).expect("a number fits 40 bytes");
    let written = cursor.position() as usize;
    std::str::from_utf8(&buffer[..written]).expect("JSON numbers are ASCII")
}

fn from_text(text: &str) -> Option<OffsetDateTime> {
    // JSON number syntax never matches a calendar date, so numeric text is an epoch value or a
    // compact date.
    if text.parse::<serde_json::Number>().is_ok() {
        return from_number_text(text);
    }
    from_calendar_text(text)
}

/// Reads a number written in JSON syntax by its digits, so that precision is never lost to a
/// float on the way: a compact date (`19900101`), epoch seconds or epoch milliseconds, with an
/// optional fraction. Exponents and negative numbers are not timestamps events carry.
fn from_number_text(text: &str) -> Option<OffsetDateTime> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty()
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !fraction.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let seconds_scale: i128 = match whole.len() {
        8 if fraction.is_empty() => return compact_date(whole),
        9 | 10 => 1_000_000_000,
        12 | 13 => 1_000_000,
        _ => return None,
    };
    let whole: i128 = whole.parse().ok()?;
    // The fraction scaled to the unit, truncated past nanoseconds.
    let mut fraction_nanos: i128 = 0;
    let mut scale = seconds_scale;
    for digit in fraction.bytes() {
        scale /= 10;
        if scale == 0 {
            break;
        }
        fraction_nanos += i128::from(digit - b'0') * scale;
    }
    OffsetDateTime::from_unix_timestamp_nanos(whole * seconds_scale + fraction_nanos).ok()
}

/// `YYYYMMDD` as midnight UTC of that date.
fn compact_date(digits: &str) -> Option<OffsetDateTime> {
    let number = |range: std::ops::Range<usize>| digits.get(range)?.parse::<u32>().ok();
    let year = i32::try_from(number(0..4)?).ok()?;
    let month = Month::try_from(u8::try_from(number(4..6)?).ok()?).ok()?;
    let day = u8::try_from(number(6..8)?).ok()?;
    Some(
        Date::from_calendar_date(year, month, day)
            .ok()?
            .midnight()
            .assume_utc(),
    )
}

/// Reads `YYYY-MM-DD`, optionally followed by `T`, `t` or a space, `HH:MM:SS`, an optional
/// fraction and an optional offset (`Z`, `z`, `±HH:MM`); a missing offset means UTC.
fn from_calendar_text(text: &str) -> Option<OffsetDateTime> {
    let mut reader = Reader {
        bytes: text.as_bytes(),
        pos: 0,
    };
    let year = reader.digits(4)? as i32;
    reader.expect(b'-')?;
    let month = Month::try_from(reader.digits(2)? as u8).ok()?;
    reader.expect(b'-')?;
    let day = reader.digits(2)? as u8;
    let date = Date::from_calendar_date(year, month, day).ok()?;
    if reader.done() {
        return Some(date.midnight().assume_utc());
    }
    if !matches!(reader.next()?, b'T' | b't' | b' ') {
        return None;
    }
    let hour = reader.digits(2)? as u8;
    reader.expect(b':')?;
    let minute = reader.digits(2)? as u8;
    reader.expect(b':')?;
    let second = reader.digits(2)? as u8;
    let mut nanos = 0u32;
    if reader.peek() == Some(b'.') {
        reader.pos += 1;
        let start = reader.pos;
        while reader.peek().is_some_and(|b| b.is_ascii_digit()) {
            // Digits past nanoseconds are dropped: no event clock is that precise.
            if reader.pos - start < 9 {
                nanos = nanos * 10 + u32::from(reader.bytes[reader.pos] - b'0');
            }
            reader.pos += 1;
        }
        let count = reader.pos - start;
        if count == 0 {
            return None;
        }
        nanos *= 10u32.pow(9u32.saturating_sub(count as u32));
    }
    let time = Time::from_hms_nano(hour, minute, second, nanos).ok()?;
    let offset = match reader.next() {
        None => UtcOffset::UTC,
        Some(b'Z' | b'z') => UtcOffset::UTC,
        Some(sign @ (b'+' | b'-')) => {
            let hours = reader.digits(2)? as i8;
            reader.expect(b':')?;
            let minutes = reader.digits(2)? as i8;
            let (hours, minutes) = if sign == b'-' {
                (-hours, -minutes)
            } else {
                (hours, minutes)
            };
            UtcOffset::from_hms(hours, minutes, 0).ok()?
        }
        Some(_) => return None,
    };
    if !reader.done() {
        return None;
    }
    Some(PrimitiveDateTime::new(date, time).assume_offset(offset))
}

/// A cursor over ASCII text for the calendar reader.
struct Reader<'t> {
    bytes: &'t [u8],
    pos: usize,
}

impl Reader<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let byte = self.peek()?;
        self.pos += 1;
        Some(byte)
    }

    fn done(&self) -> bool {
        self.pos == self.bytes.len()
    }

    fn expect(&mut self, wanted: u8) -> Option<()> {
        (self.next()? == wanted).then_some(())
    }

    /// Exactly `count` ASCII digits as a number.
    fn digits(&mut self, count: usize) -> Option<u32> {
        let mut value = 0u32;
        for _ in 0..count {
            let byte = self.next().filter(u8::is_ascii_digit)?;
            value = value * 10 + u32::from(byte - b'0');
        }
        Some(value)
    }
}

/// RFC 3339 in UTC: `YYYY-MM-DDTHH:MM:SSZ`, or with `.mmm` when the milliseconds are not zero
/// (finer digits are truncated). Years outside 0000–9999 have no RFC 3339 form.
/// Whether `text` is exactly what `normalize` writes: `YYYY-MM-DDTHH:MM:SSZ`, or with three
/// fraction digits that are not all zero, and a real date and time.
pub(crate) fn is_canonical(text: &str) -> bool {
    let bytes = text.as_bytes();
    let shape: &[u8] = match bytes.len() {
        20 => b"dddd-dd-ddTdd:dd:ddZ",
        24 => b"dddd-dd-ddTdd:dd:dd.dddZ",
        _ => return false,
    };
    let shaped = bytes.iter().zip(shape).all(|(b, s)| {
        if *s == b'd' {
            b.is_ascii_digit()
        } else {
            b == s
        }
    });
    shaped && !text.ends_with(".000Z") && from_calendar_text(text).is_some()
}

/// RFC 3339 in UTC, written digit by digit: this runs for every event's timestamp.
fn format_utc(instant: OffsetDateTime) -> Option<String> {
    let utc = instant.to_offset(UtcOffset::UTC);
    let year = u32::try_from(utc.year()).ok().filter(|y| *y <= 9999)?;
    let mut text = String::with_capacity(24);
    push_digits(&mut text, year, 4);
    for (separator, value) in [
        ('-', u8::from(utc.month())),
        ('-', utc.day()),
        ('T', utc.hour()),
        (':', utc.minute()),
        (':', utc.second()),
    ] {
        text.push(separator);
        push_digits(&mut text, u32::from(value), 2);
    }
    let millis = u32::from(utc.millisecond());
    if millis != 0 {
        text.push('.');
        push_digits(&mut text, millis, 3);
    }
    text.push('Z');
    Some(text)
}

/// Appends `value` as exactly `width` decimal digits, zero-padded.
fn push_digits(text: &mut String, value: u32, width: u32) {
    for power in (0..width).rev() {
        text.push(char::from(b'0' + (value / 10u32.pow(power) % 10) as u8));
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    #[test]
    fn canonical_timestamps_are_recognised() {
        use super::is_canonical;
        for (text, canonical) in [
            ("2024-12-19T09:45:39Z", true),
            ("2024-12-19T09:45:39.659Z", true),
            ("2024-12-19T09:45:39.000Z", false),
            ("2024-12-19T09:45:39.65Z", false),
            ("2024-13-19T09:45:39Z", false),
            ("2024-12-19 09:45:39Z", false),
            ("2024-12-19T09:45:39+00:00", false),
        ] {
            assert_eq!(is_canonical(text), canonical, "{text}");
            if canonical {
                assert_eq!(
                    crate::convert::to_timestamp(&json!(text)).as_deref(),
                    Some(text)
                );
            }
        }
    }

    #[test]
    fn numbers_are_read_by_the_text_serde_json_writes() {
        for n in [
            json!(0),
            json!(u64::MAX),
            json!(i64::MIN),
            json!(1_734_601_539.659_f64),
            json!(-1.797_693_134_862_315_7e308_f64),
            json!(5e-324_f64),
        ] {
            let Value::Number(n) = n else { unreachable!() };
            assert_eq!(super::number_text(&n, &mut [0; 40]), n.to_string());
        }
    }

    #[test]
    fn shapes_events_carry() {
        let table: &[(Value, Option<&str>)] = &[
            (
                json!("2024-12-19T09:45:39.659Z"),
                Some("2024-12-19T09:45:39.659Z"),
            ),
            (
                json!("2024-12-19T12:45:39+03:00"),
                Some("2024-12-19T09:45:39Z"),
            ),
            (
                json!("2024-12-19T02:15:39.5-07:30"),
                Some("2024-12-19T09:45:39.500Z"),
            ),
            (json!("2024-12-19t09:45:39z"), Some("2024-12-19T09:45:39Z")),
            (
                json!("2024-12-19T09:45:39.123456789123Z"),
                Some("2024-12-19T09:45:39.123Z"),
            ),
            (
                json!("2024-12-19T09:45:39.000Z"),
                Some("2024-12-19T09:45:39Z"),
            ),
            (
                json!("2024-12-19T09:45:39.0009Z"),
                Some("2024-12-19T09:45:39Z"),
            ),
            (json!("2024-12-19"), Some("2024-12-19T00:00:00Z")),
            (json!("2024-12-19 09:45:39"), Some("2024-12-19T09:45:39Z")),
            (
                json!("2024-12-19T09:45:39.25"),
                Some("2024-12-19T09:45:39.250Z"),
            ),
            (
                json!("2024-01-01T01:00:00+02:00"),
                Some("2023-12-31T23:00:00Z"),
            ),
            (json!(1734601539), Some("2024-12-19T09:45:39Z")),
            (json!(1734601539659_i64), Some("2024-12-19T09:45:39.659Z")),
            (json!("1734601539659"), Some("2024-12-19T09:45:39.659Z")),
            (json!(" 1734601539 "), Some("2024-12-19T09:45:39Z")),
            (json!(1734601539.5), Some("2024-12-19T09:45:39.500Z")),
            (json!(1734601539659.0), Some("2024-12-19T09:45:39.659Z")),
            // Implausible epochs are not timestamps: never a silent 1970.
            (json!(0), None),
            (json!(-86400), None),
            (json!(42), None),
            (json!("12345"), None),
            (json!(12345678901_i64), None),
            (json!(12345678901234_i64), None),
            // Eight digits are a compact date, as birthdays are often written.
            (json!("19900101"), Some("1990-01-01T00:00:00Z")),
            (json!(19900101), Some("1990-01-01T00:00:00Z")),
            (json!("19901341"), None),
            (json!("19900101.5"), None),
            (json!(100000000), Some("1973-03-03T09:46:40Z")),
            (json!(9999999999999_i64), Some("2286-11-20T17:46:39.999Z")),
            (json!("2024-13-01"), None),
            (json!("2024-02-30"), None),
            (json!("2024-12-19T25:00:00Z"), None),
            (json!("2024-12-19T09:45:39+3:00"), None),
            (json!("2024-12-19T09:45"), None),
            (json!("2024-12-19T09:45:39.Z"), None),
            (json!("2024-12-19Tjunk"), None),
            (json!("yesterday"), None),
            (json!("1-2-3"), None),
            (json!(1e300), None),
            (json!(true), None),
            (json!({"a": 1}), None),
        ];
        for (input, expected) in table {
            assert_eq!(
                crate::convert::to_timestamp(input).as_deref(),
                *expected,
                "timestamp of {input}"
            );
        }
    }
}
