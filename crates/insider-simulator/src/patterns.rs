//! Hand-written matchers for the few regular expressions in Insider's rules.
//!
//! Each function accepts exactly the strings its documented pattern accepts (RE2 semantics, where
//! `.` does not match a newline and `\d` is ASCII only). They are written by hand so validating a
//! million users a second needs neither a regex engine nor an allocation.

/// The pattern Insider documents for e-mail addresses, as it appears in error keys.
pub const EMAIL: &str = r"^.+@.+\..+$";
/// The E.164 pattern Insider documents for phone numbers, as it appears in error keys.
pub const PHONE: &str = r"^\+[1-9]\d{6,14}$";
/// The event-name pattern: lowercase system names, words joined by underscores.
pub const EVENT_NAME: &str = r"^[a-z0-9][a-z0-9_]*$";
/// The locale pattern of the `language` attribute (`en_US`, or just `en`).
pub const LANGUAGE: &str = r"^[a-z]{2}(_[A-Z]{2})?$";
/// ISO 3166-1 alpha-2 country codes.
pub const COUNTRY: &str = r"^[A-Z]{2}$";
/// ISO 4217 currency codes.
pub const CURRENCY: &str = r"^[A-Z]{3}$";

/// `^.+@.+\..+$`: something, an `@`, something, a `.`, something; no newline anywhere.
pub fn is_email(s: &str) -> bool {
    let b = s.as_bytes();
    if b.contains(&b'\n') {
        return false;
    }
    // The first `@` after at least one character leaves the most room for the domain, and the
    // last `.` leaves the most room before it, so checking that pair decides the whole pattern.
    let Some(at) = b.iter().skip(1).position(|&c| c == b'@').map(|p| p + 1) else {
        return false;
    };
    let Some(dot) = b.iter().rposition(|&c| c == b'.') else {
        return false;
    };
    dot >= at + 2 && dot + 1 < b.len()
}

/// `^\+[1-9]\d{6,14}$`: E.164 with a leading plus.
pub fn is_phone(s: &str) -> bool {
    let b = s.as_bytes();
    (8..=16).contains(&b.len())
        && b[0] == b'+'
        && (b'1'..=b'9').contains(&b[1])
        && b[2..].iter().all(u8::is_ascii_digit)
}

/// `^[a-z0-9][a-z0-9_]*$`.
pub fn is_event_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b[1..]
            .iter()
            .all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_')
}

/// `^[a-z]{2}(_[A-Z]{2})?$`.
pub fn is_language(s: &str) -> bool {
    let b = s.as_bytes();
    match b.len() {
        2 => b.iter().all(u8::is_ascii_lowercase),
        5 => {
            b[..2].iter().all(u8::is_ascii_lowercase)
                && b[2] == b'_'
                && b[3..].iter().all(u8::is_ascii_uppercase)
        }
        _ => false,
    }
}

/// `^[A-Z]{2}$`.
pub fn is_country(s: &str) -> bool {
    s.len() == 2 && s.bytes().all(|c| c.is_ascii_uppercase())
}

/// `^[A-Z]{3}$`.
pub fn is_currency(s: &str) -> bool {
    s.len() == 3 && s.bytes().all(|c| c.is_ascii_uppercase())
}

/// An RFC 3339 date-time with any offset.
pub fn is_rfc3339(s: &str) -> bool {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).is_ok()
}

/// An RFC 3339 date-time in UTC written with a trailing upper-case `Z`, as `birthday` requires.
pub fn is_rfc3339_utc_z(s: &str) -> bool {
    s.ends_with('Z') && is_rfc3339(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matchers_agree_with_their_patterns() {
        type Matcher = fn(&str) -> bool;
        let cases: &[(&str, Matcher, &str, bool)] = &[
            ("email", is_email, "a@b.co", true),
            ("email", is_email, "first.last@sub.example.com", true),
            ("email", is_email, "a@b@c.d", true),
            ("email", is_email, "@b.co", false),
            ("email", is_email, "a@.co", false),
            ("email", is_email, "a@b.", false),
            ("email", is_email, "a@bco", false),
            ("email", is_email, "a.b@co", false),
            ("email", is_email, "a@b.c\n", false),
            ("email", is_email, "", false),
            ("phone", is_phone, "+905551234567", true),
            ("phone", is_phone, "+1234567", true),
            ("phone", is_phone, "+123456789012345", true),
            ("phone", is_phone, "+1234567890123456", false),
            ("phone", is_phone, "+123456", false),
            ("phone", is_phone, "+0234567", false),
            ("phone", is_phone, "12345", false),
            ("phone", is_phone, "905551234567", false),
            ("phone", is_phone, "+90 555 123", false),
            ("event name", is_event_name, "purchase", true),
            ("event name", is_event_name, "item_added_to_cart", true),
            ("event name", is_event_name, "3d_view", true),
            ("event name", is_event_name, "_private", false),
            ("event name", is_event_name, "Add To Cart", false),
            ("event name", is_event_name, "add-to-cart", false),
            ("event name", is_event_name, "", false),
            ("language", is_language, "en_US", true),
            ("language", is_language, "tr", true),
            ("language", is_language, "en-US", false),
            ("language", is_language, "EN_us", false),
            ("language", is_language, "en_", false),
            ("country", is_country, "TR", true),
            ("country", is_country, "tr", false),
            ("country", is_country, "TUR", false),
            ("currency", is_currency, "TRY", true),
            ("currency", is_currency, "try", false),
            ("currency", is_currency, "TL", false),
            ("rfc3339", is_rfc3339, "2024-05-01T10:00:00Z", true),
            ("rfc3339", is_rfc3339, "2024-05-01T10:00:00.123+03:00", true),
            ("rfc3339", is_rfc3339, "2024-05-01 10:00:00", false),
            ("rfc3339", is_rfc3339, "2024-05-01", false),
            ("rfc3339 Z", is_rfc3339_utc_z, "1993-03-12T00:00:00Z", true),
            (
                "rfc3339 Z",
                is_rfc3339_utc_z,
                "1993-03-12T00:00:00+00:00",
                false,
            ),
            ("rfc3339 Z", is_rfc3339_utc_z, "1993-03-12", false),
        ];
        for (name, matcher, input, expected) in cases {
            assert_eq!(matcher(input), *expected, "{name} on {input:?}");
        }
    }
}
