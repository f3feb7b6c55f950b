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
    if let Scalar::Number(n) = value
        && let Some(text) = n.as_u64().and_then(epoch_integer)
    {
        return Some(text);
    }
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

/// The common case, epoch seconds or milliseconds as an integer (9 or 10 digits, 12 or 13), as
/// most events carry their time: written with integer arithmetic alone, as the general path
/// through [`from_number_text`] and [`format_utc`] would write it. `None` for any other number.
fn epoch_integer(n: u64) -> Option<String> {
    let millis = match n {
        100_000_000..=9_999_999_999 => n * 1000,
        100_000_000_000..=9_999_999_999_999 => n,
        _ => return None,
    };
    const DAY: u64 = 86_400_000;
    let (year, month, day) = civil_from_days(millis / DAY);
    let in_day = millis % DAY;
    let seconds = in_day / 1000;
    Some(write_utc(
        [
            year,
            month,
            day,
            seconds / 3600,
            seconds / 60 % 60,
            seconds % 60,
        ],
        in_day % 1000,
    ))
}

/// The proleptic Gregorian date of a day since 1970-01-01 (Howard Hinnant's algorithm, for days
/// on or after it).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    (year_of_era + era * 400 + u64::from(month <= 2), month, day)
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
    shaped && !text.ends_with(".000Z") && real_date_and_time(bytes)
}

/// Whether the date and time of a text shaped as [`is_canonical`] wants exist: read by position,
/// as Insider's rules check every event's timestamp with it.
fn real_date_and_time(bytes: &[u8]) -> bool {
    let number = |at: usize, width: usize| {
        bytes[at..at + width]
            .iter()
            .fold(0u32, |n, b| n * 10 + u32::from(b - b'0'))
    };
    let (year, month, day) = (number(0, 4), number(5, 2), number(8, 2));
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => 0,
    };
    (1..=days).contains(&day) && number(11, 2) < 24 && number(14, 2) < 60 && number(17, 2) < 60
}

/// RFC 3339 in UTC, written digit by digit: this runs for every event's timestamp.
fn format_utc(instant: OffsetDateTime) -> Option<String> {
    let utc = instant.to_offset(UtcOffset::UTC);
    let year = u64::try_from(utc.year()).ok().filter(|y| *y <= 9999)?;
    Some(write_utc(
        [
            year,
            u64::from(u8::from(utc.month())),
            u64::from(utc.day()),
            u64::from(utc.hour()),
            u64::from(utc.minute()),
            u64::from(utc.second()),
        ],
        u64::from(utc.millisecond()),
    ))
}

/// `YYYY-MM-DDTHH:MM:SSZ` of year, month, day, hour, minute and second, with `.mmm` when the
/// milliseconds are not zero.
fn write_utc(fields: [u64; 6], millis: u64) -> String {
    let mut text = [0u8; 24];
    let mut at = 0;
    let mut push = |value: u64, width: u32, separator: Option<u8>| {
        for power in (0..width).rev() {
            text[at] = b'0' + (value / 10u64.pow(power) % 10) as u8;
            at += 1;
        }
        if let Some(separator) = separator {
            text[at] = separator;
            at += 1;
        }
    };
    let [year, month, day, hour, minute, second] = fields;
    push(year, 4, Some(b'-'));
    push(month, 2, Some(b'-'));
    push(day, 2, Some(b'T'));
    push(hour, 2, Some(b':'));
    push(minute, 2, Some(b':'));
    if millis == 0 {
        push(second, 2, Some(b'Z'));
    } else {
        push(second, 2, Some(b'.'));
        push(millis, 3, Some(b'Z'));
    }
    String::from_utf8(text[..at].to_vec()).expect("digits and separators are ASCII")
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

    /// Epoch integers take a path of their own: it must write what the general path writes.
    #[test]
    fn epoch_integers_are_written_as_the_general_path_writes_them() {
        let general = |n: u64| super::from_number_text(&n.to_string()).and_then(super::format_utc);
        let mut checked = 0;
        // Each end of each range, leap days and the turns of centuries, and a stride through
        // both ranges that lands on every millisecond remainder.
        let mut numbers = vec![
            99_999_999,
            100_000_000,
            9_999_999_999,
            10_000_000_000,
            99_999_999_999,
            100_000_000_000,
            9_999_999_999_999,
            10_000_000_000_000,
            951_782_400,       // 2000-02-29
            951_868_799_999,   // 2000-02-29T23:59:59.999
            4_107_542_400_000, // 2100-03-01
            1_734_601_539_659,
        ];
        numbers.extend((0..200_000u64).map(|i| 100_000_000 + i * 49_999_999_999 % 9_900_000_000));
        numbers.extend(
            (0..200_000u64).map(|i| 100_000_000_000 + i * 48_611_111_111_117 % 9_900_000_000_000),
        );
        for n in numbers {
            let expected = general(n).filter(|_| matches!(n.to_string().len(), 9 | 10 | 12 | 13));
            assert_eq!(super::epoch_integer(n), expected, "{n}");
            checked += usize::from(expected.is_some());
        }
        assert!(checked > 390_000, "{checked}");
    }

    /// The check by position must agree with reading the date and time with the `time` crate.
    #[test]
    fn a_canonical_date_and_time_is_a_real_one() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = |below: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % below
        };
        for i in 0..300_000 {
            // Mostly plausible fields, sometimes any two digits.
            let mut field = |plausible: u64, any: u64| {
                if i % 3 == 0 {
                    next(any)
                } else {
                    next(plausible)
                }
            };
            let text = format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
                field(10_000, 10_000),
                field(13, 100),
                field(32, 100),
                field(25, 100),
                field(61, 100),
                field(61, 100),
                field(1000, 1000),
            );
            let read = super::from_calendar_text(&text).is_some();
            assert_eq!(super::real_date_and_time(text.as_bytes()), read, "{text}");
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
