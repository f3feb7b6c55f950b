//! Countries as Insider wants them: ISO 3166-1 alpha-2 codes. Values with exactly one meaning are
//! repaired — a code in lower case, an alpha-3 code (`USA`, `TUR`) or an English name or common
//! alias (`Türkiye`, `Turkey`, `United States`) — using the `celes` crate's table; anything else is
//! not a country. The table lookup runs only for values that are not already an assigned alpha-2
//! code, and that check is a bit lookup without allocation.

use std::sync::OnceLock;

use celes::Country;

/// Every assigned alpha-2 code as one bit of a 26 × 26 table, built once from `celes`.
fn assigned() -> &'static [u32; 26] {
    static TABLE: OnceLock<[u32; 26]> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut table = [0u32; 26];
        for country in Country::get_countries() {
            if let [a, b] = country.alpha2.as_bytes() {
                table[usize::from(a - b'A')] |= 1 << (b - b'A');
            }
        }
        table
    })
}

/// Whether `text` is an assigned alpha-2 code, in upper case (`TR`, not `tr` or `XX`).
pub fn is_alpha2(text: &str) -> bool {
    match text.as_bytes() {
        [a, b] if a.is_ascii_uppercase() && b.is_ascii_uppercase() => {
            assigned()[usize::from(a - b'A')] & (1 << (b - b'A')) != 0
        }
        _ => false,
    }
}

/// The alpha-2 code `text` means and the rule that found it, or `None` when it is not a country
/// or could be more than one.
pub fn to_alpha2(text: &str) -> Option<(String, &'static str)> {
    let text = hardal_core::convert::trim(text);
    if text.len() == 2 {
        let upper = text.to_ascii_uppercase();
        if is_alpha2(&upper) {
            return Some((upper, "upper case"));
        }
        // `UK` is reserved by ISO 3166 for the United Kingdom at its request; it is the one
        // two-letter spelling in common use that is not the assigned code.
        return (upper == "UK").then(|| ("GB".to_owned(), "UK to GB"));
    }
    if text.len() == 3 && text.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Country::from_alpha3(text)
            .ok()
            .map(|c| (c.alpha2.to_owned(), "alpha-3 code to alpha-2"));
    }
    // Names are looked up without spaces and punctuation, as the table writes them
    // (`unitedstates`, `cotedivoire`); a leading "the" is optional in the official names.
    let key: String = text
        .chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect();
    if key.is_empty() || key.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Country::from_alias(&key)
        .or_else(|_| Country::from_name(&key))
        .or_else(|_| Country::from_name(format!("the{key}")))
        .ok()
        .map(|c| (c.alpha2.to_owned(), "country name to alpha-2"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_names_and_aliases() {
        let cases = [
            ("TR", Some("TR")),
            ("tr", Some("TR")),
            (" us ", Some("US")),
            ("USA", Some("US")),
            ("tur", Some("TR")),
            ("Türkiye", Some("TR")),
            ("Turkey", Some("TR")),
            ("United States", Some("US")),
            ("united states of america", Some("US")),
            ("Germany", Some("DE")),
            ("United Kingdom", Some("GB")),
            ("UK", Some("GB")),
            ("Netherlands", Some("NL")),
            ("Russian Federation", Some("RU")),
            ("Atlantis", None),
            ("XX", None),
            ("ZZZ", None),
            ("792", None),
            ("", None),
            ("Korea", None),
        ];
        for (text, expected) in cases {
            assert_eq!(
                to_alpha2(text).map(|(code, _)| code).as_deref(),
                expected,
                "{text:?}"
            );
        }
        assert!(is_alpha2("TR") && !is_alpha2("tr") && !is_alpha2("XX") && !is_alpha2("TUR"));
    }
}
