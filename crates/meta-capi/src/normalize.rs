//! Meta's customer information parameters: how each is normalized before hashing, the SHA-256
//! hashing itself, and which parameters Meta wants unhashed. The rules are Meta's
//! ("Customer Information Parameters", see docs/reference/meta-capi.md); where the page is silent
//! (city, state, zip, country details) they follow Meta's own Business SDK (`normalize.py`).

use sha2::{Digest, Sha256};

/// The parameters that are normalized and hashed, in the order they are written.
pub const HASHED: [&str; 9] = [
    "em",
    "ph",
    "fn",
    "ln",
    "ct",
    "st",
    "zp",
    "country",
    "external_id",
];

/// The parameters sent as they are (Meta asks for them unhashed).
pub const PLAIN: [&str; 4] = ["client_ip_address", "client_user_agent", "fbc", "fbp"];

/// Settings the normalization needs from the configuration.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// Calling code for phone numbers written without one.
    pub phone_country_code: Option<String>,
}

/// Why a value cannot be normalized: the rule, short and the same for every value it applies to.
pub type Rule = &'static str;

/// The lower-case hex SHA-256 of `text`.
pub fn sha256_hex(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    let mut out = String::with_capacity(64);
    for byte in digest {
        out.push(char::from(b"0123456789abcdef"[usize::from(byte >> 4)]));
        out.push(char::from(b"0123456789abcdef"[usize::from(byte & 15)]));
    }
    out
}

/// Whether `text` already is a SHA-256 hash as Meta takes it: 64 lower-case hex digits.
pub fn is_sha256(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The value of parameter `key` as Meta wants it hashed: normalized, then SHA-256. A value that
/// already is a hash (in any case) is kept, lower-cased, so hashed data can be passed through.
pub fn hash(key: &str, raw: &str, settings: &Settings) -> Result<String, Rule> {
    let trimmed = raw.trim();
    let lower = trimmed.to_lowercase();
    if is_sha256(&lower) {
        return Ok(lower);
    }
    let normalized = normalize(key, trimmed, settings)?;
    Ok(sha256_hex(&normalized))
}

/// The normalized (not yet hashed) value of parameter `key`.
pub fn normalize(key: &str, raw: &str, settings: &Settings) -> Result<String, Rule> {
    let raw = raw.trim();
    let normalized = match key {
        "em" => email(raw)?,
        "ph" => phone(raw, settings.phone_country_code.as_deref())?,
        "fn" | "ln" => name(raw),
        "ct" | "st" => letters(raw),
        "zp" => zip(raw),
        "country" => crate::country::to_alpha2(raw).ok_or("not a country")?,
        // Meta recommends hashing external IDs and gives no normalization: IDs may be
        // case-sensitive, so only the surrounding spaces go.
        "external_id" => raw.to_owned(),
        _ => raw.to_lowercase(),
    };
    if normalized.is_empty() {
        return Err("nothing left after normalization");
    }
    Ok(normalized)
}

/// Email: trimmed and lower-cased. Something that is not an address would only be a hash that
/// matches nobody, so it is refused.
fn email(raw: &str) -> Result<String, Rule> {
    let email = raw.to_lowercase();
    let valid = match email.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !domain.contains('@')
                && !email.chars().any(char::is_whitespace)
        }
        None => false,
    };
    if valid {
        Ok(email)
    } else {
        Err("not an email address")
    }
}

/// Phone: digits only, with the country code and without leading zeros. `+` or `00` in front
/// means the number carries its country code; a number starting with a single 0 is national
/// and gets the configured calling code; other numbers are taken to carry their country code,
/// as Meta's SDK takes them.
fn phone(raw: &str, calling_code: Option<&str>) -> Result<String, Rule> {
    let international = raw.starts_with('+') || raw.starts_with("00");
    let digits: String = raw.chars().filter(char::is_ascii_digit).collect();
    let national = !international && digits.starts_with('0');
    let digits = digits.trim_start_matches('0');
    let number = if national {
        match calling_code {
            Some(code) => format!("{code}{digits}"),
            None => return Err("no country code (set phone_country_code)"),
        }
    } else {
        digits.to_owned()
    };
    // E.164 numbers have at most 15 digits; fewer than 7 cannot hold a country code and a number.
    if (7..=15).contains(&number.len()) {
        Ok(number)
    } else {
        Err("not a phone number")
    }
}

/// First and last names: lower case, letters in any script, no punctuation.
fn name(raw: &str) -> String {
    let kept: String = raw
        .chars()
        .flat_map(char::to_lowercase)
        .filter(|c| c.is_alphabetic() || c.is_whitespace())
        .collect();
    kept.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// City and state: lower case, letters only (no spaces, punctuation or digits).
fn letters(raw: &str) -> String {
    raw.chars()
        .flat_map(char::to_lowercase)
        .filter(|c| c.is_alphabetic())
        .collect()
}

/// Zip code: lower case without spaces; a US ZIP+4 keeps its first five digits.
fn zip(raw: &str) -> String {
    let compact: String = raw
        .chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect();
    compact.split('-').next().unwrap_or("").to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Meta's own examples from the Customer Information Parameters page: input, normalized
    /// form and the SHA-256 Meta expects.
    #[test]
    fn metas_documented_examples() {
        let settings = Settings::default();
        let cases = [
            (
                "em",
                "John_Smith@gmail.com",
                "john_smith@gmail.com",
                "62a14e44f765419d10fea99367361a727c12365e2520f32218d505ed9aa0f62f",
            ),
            (
                "ph",
                "+1 (650)555-1212",
                "16505551212",
                "e323ec626319ca94ee8bff2e4c87cf613be6ea19919ed1364124e16807ab3176",
            ),
            (
                "fn",
                "Mary",
                "mary",
                "6915771be1c5aa0c886870b6951b03d7eafc121fea0e80a5ea83beb7c449f4ec",
            ),
            (
                "fn",
                "정",
                "정",
                "8fa8cd9c440be61d0151429310034083132b35975c4bea67fdd74158eb51db14",
            ),
            (
                "fn",
                "Valéry",
                "valéry",
                "08e1996b5dd49e62a4b4c010d44e4345592a863bb9f8e3976219bac29417149c",
            ),
        ];
        for (key, input, normalized, expected) in cases {
            assert_eq!(
                normalize(key, input, &settings).unwrap(),
                normalized,
                "{key} {input}"
            );
            assert_eq!(
                hash(key, input, &settings).unwrap(),
                expected,
                "{key} {input}"
            );
        }
    }

    #[test]
    fn normalization_rules() {
        let turkey = Settings {
            phone_country_code: Some("90".into()),
        };
        let none = Settings::default();
        let cases: &[(&str, &str, &Settings, Result<&str, Rule>)] = &[
            ("em", "  Ada@Example.COM ", &none, Ok("ada@example.com")),
            (
                "em",
                "kemal(at)example.com",
                &none,
                Err("not an email address"),
            ),
            ("em", "a b@example.com", &none, Err("not an email address")),
            ("ph", "+90 532 123 45 67", &none, Ok("905321234567")),
            ("ph", "0090 532 123 45 67", &none, Ok("905321234567")),
            ("ph", "0532 123 45 67", &turkey, Ok("905321234567")),
            (
                "ph",
                "0532 123 45 67",
                &none,
                Err("no country code (set phone_country_code)"),
            ),
            ("ph", "12", &none, Err("not a phone number")),
            ("fn", " Zoë-Anne! ", &none, Ok("zoëanne")),
            ("ln", "O'Brien", &none, Ok("obrien")),
            ("ct", "Menlo Park", &none, Ok("menlopark")),
            ("ct", "St. Louis 2", &none, Ok("stlouis")),
            ("st", "CA", &none, Ok("ca")),
            ("zp", "94025-1234", &none, Ok("94025")),
            ("zp", "SW1A 2AA", &none, Ok("sw1a2aa")),
            ("country", "Türkiye", &none, Ok("tr")),
            ("country", "US", &none, Ok("us")),
            ("country", "Atlantis", &none, Err("not a country")),
            ("external_id", " U42 ", &none, Ok("U42")),
            ("ct", "123", &none, Err("nothing left after normalization")),
        ];
        for (key, input, settings, expected) in cases {
            assert_eq!(
                normalize(key, input, settings).as_deref(),
                expected.as_deref(),
                "{key} {input:?}"
            );
        }
    }

    #[test]
    fn hashes_pass_through_lower_cased() {
        let hashed = "62A14E44F765419D10FEA99367361A727C12365E2520F32218D505ED9AA0F62F";
        assert_eq!(
            hash("em", hashed, &Settings::default()).unwrap(),
            hashed.to_lowercase()
        );
        assert!(!is_sha256(hashed) && is_sha256(&hashed.to_lowercase()));
    }
}
