//! How the targets read structured inputs out of raw bytes, and the inverse encodings that
//! [`crate::seeds`] uses to write meaningful starting points.
//!
//! The layouts keep the interesting text (headers, bodies) as plain text at the end, so seeds stay
//! readable and the fuzzer's text mutations (dictionary words, splices) act on it directly.

use std::time::Duration;

use hardal_core::HttpResponse;

/// Headers read from one input at most; real answers carry a handful that matter.
const MAX_HEADERS: usize = 8;

/// A response to judge and the number of records of its request.
///
/// Layout: two bytes of status (little endian, mapped into 100..=599), one byte of record count
/// (see [`records_from_byte`]), then `name: value` header lines up to the first empty line, and
/// the body after it. Without an empty line there are no headers and everything is body, so a
/// bare JSON answer is a valid tail.
pub fn judged_response(data: &[u8]) -> (usize, HttpResponse) {
    let (status, rest) = match data {
        [a, b, rest @ ..] => (100 + u16::from_le_bytes([*a, *b]) % 500, rest),
        _ => (200, &[][..]),
    };
    let (records, rest) = match rest {
        [r, rest @ ..] => (records_from_byte(*r), rest),
        [] => (1, rest),
    };
    let (headers, body) = match find(rest, b"\n\n") {
        Some(at) => (parse_headers(&rest[..at]), rest[at + 2..].to_vec()),
        None => (Vec::new(), rest.to_vec()),
    };
    let response = HttpResponse {
        status,
        headers,
        body,
    };
    (records, response)
}

/// The bytes that [`judged_response`] reads back as this answer (records rounded up to the next
/// count one byte can say).
pub fn encode_response(
    status: u16,
    records: usize,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Vec<u8> {
    let status = status.clamp(100, 599) - 100;
    let mut out = status.to_le_bytes().to_vec();
    let byte = (0..=u8::MAX)
        .find(|b| records_from_byte(*b) >= records)
        .unwrap_or(u8::MAX);
    out.push(byte);
    if !headers.is_empty() {
        for (name, value) in headers {
            out.extend_from_slice(format!("{name}: {value}\n").as_bytes());
        }
        out.push(b'\n');
    }
    out.extend_from_slice(body);
    out
}

/// 1..=128 one by one (where a user index of an answer can still be matched by hand), then
/// coarser steps up to Insider's 1,000 users per request.
pub fn records_from_byte(byte: u8) -> usize {
    let byte = usize::from(byte);
    if byte < 128 {
        byte + 1
    } else {
        128 + (byte - 127) * 872 / 128
    }
}

/// Header lines as the transport hands them over: names in lower case, values as lossy UTF-8.
fn parse_headers(block: &[u8]) -> Vec<(String, String)> {
    block
        .split(|b| *b == b'\n')
        .filter_map(|line| {
            let colon = line.iter().position(|b| *b == b':')?;
            let name = String::from_utf8_lossy(&line[..colon])
                .trim()
                .to_ascii_lowercase();
            let value = String::from_utf8_lossy(&line[colon + 1..])
                .trim()
                .to_owned();
            Some((name, value))
        })
        .take(MAX_HEADERS)
        .collect()
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// What the retry target decides on.
///
/// Layout: one byte of attempts so far (1..=12, around the default budget of 10), two bytes of
/// jitter sample (a fraction in [0, 1), as the engine's random source gives), one byte of time
/// since the first attempt (in steps of 4 s, up to 1,020 s, past the default budget of 900 s),
/// then the `Retry-After` value as text.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryInput {
    pub attempts: u32,
    pub random: f64,
    pub elapsed: Duration,
    pub header: String,
}

impl RetryInput {
    pub fn from_bytes(data: &[u8]) -> RetryInput {
        let byte = |i: usize| data.get(i).copied().unwrap_or(0);
        RetryInput {
            attempts: 1 + u32::from(byte(0)) % 12,
            random: f64::from(u16::from_le_bytes([byte(1), byte(2)])) / 65_536.0,
            elapsed: Duration::from_secs(4 * u64::from(byte(3))),
            header: String::from_utf8_lossy(data.get(4..).unwrap_or_default()).into_owned(),
        }
    }

    /// The bytes that [`RetryInput::from_bytes`] reads back as attempt `attempts` (1..=12), a
    /// jitter sample of one half, `elapsed_secs` (rounded down to 4 s steps) and `header`.
    pub fn encode(attempts: u32, elapsed_secs: u64, header: &str) -> Vec<u8> {
        let attempts = u8::try_from(attempts.clamp(1, 12) - 1).expect("at most 11");
        let elapsed = u8::try_from(elapsed_secs / 4).unwrap_or(u8::MAX);
        let mut out = vec![attempts, 0x00, 0x80, elapsed];
        out.extend_from_slice(header.as_bytes());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_read_back_as_encoded() {
        let bytes = encode_response(
            429,
            3,
            &[("Retry-After", "12"), ("X-Other", " a:b ")],
            b"{\"error\":\"slow down\"}\n\nmore",
        );
        let (records, response) = judged_response(&bytes);
        assert_eq!(records, 3);
        assert_eq!(response.status, 429);
        assert_eq!(
            response.headers,
            [
                ("retry-after".to_owned(), "12".to_owned()),
                ("x-other".to_owned(), "a:b".to_owned())
            ]
        );
        assert_eq!(response.body, b"{\"error\":\"slow down\"}\n\nmore");

        let (records, response) = judged_response(&encode_response(200, 1000, &[], b"{}"));
        assert_eq!((records, response.status), (1000, 200));
        assert_eq!(
            (response.headers.len(), &response.body[..]),
            (0, &b"{}"[..])
        );
    }

    #[test]
    fn short_inputs_still_make_a_response() {
        assert_eq!(judged_response(b"").0, 1);
        assert_eq!(judged_response(b"").1.status, 200);
        let (records, response) = judged_response(&[0xff, 0xff]);
        assert_eq!((records, response.status), (1, 100 + 65_535 % 500));
    }

    #[test]
    fn record_counts_cover_one_to_a_thousand() {
        let counts: Vec<usize> = (0..=u8::MAX).map(records_from_byte).collect();
        assert_eq!((counts[0], counts[127], counts[255]), (1, 128, 1000));
        assert!(
            counts.windows(2).all(|w| w[0] < w[1]),
            "strictly increasing"
        );
    }

    #[test]
    fn retry_inputs_read_back_as_encoded() {
        let input = RetryInput::from_bytes(&RetryInput::encode(3, 120, " 7 "));
        assert_eq!(
            input,
            RetryInput {
                attempts: 3,
                random: 0.5,
                elapsed: Duration::from_secs(120),
                header: " 7 ".to_owned()
            }
        );
        let empty = RetryInput::from_bytes(b"");
        assert_eq!(
            (empty.attempts, empty.random, empty.header.len()),
            (1, 0.0, 0)
        );
    }
}
