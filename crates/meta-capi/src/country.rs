//! Countries as Meta wants them before hashing: ISO 3166-1 alpha-2 codes in lower case. A code in
//! either case, an alpha-3 code (`USA`, `TUR`) or an English name or common alias (`Türkiye`,
//! `Turkey`, `United States`) has one meaning and is read as its code, using the `celes` crate's
//! table; anything else is not a country.

use celes::Country;

/// The lower-case alpha-2 code `text` means, or `None` when it is not a country or could be more
/// than one.
pub fn to_alpha2(text: &str) -> Option<String> {
    let text = text.trim();
    if text.len() == 2 {
        let upper = text.to_ascii_uppercase();
        // `UK` is reserved by ISO 3166 for the United Kingdom; it is the one two-letter spelling
        // in common use that is not the assigned code.
        if upper == "UK" {
            return Some("gb".to_owned());
        }
        return Country::from_alpha2(&upper)
            .ok()
            .map(|c| c.alpha2.to_ascii_lowercase());
    }
    if text.len() == 3 && text.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Country::from_alpha3(text)
            .ok()
            .map(|c| c.alpha2.to_ascii_lowercase());
    }
    // Names are looked up without spaces and punctuation, as the table writes them
    // (`unitedstates`); a leading "the" is optional in the official names.
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
        .map(|c| c.alpha2.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_names_and_aliases() {
        let cases = [
            ("TR", Some("tr")),
            ("tr", Some("tr")),
            (" us ", Some("us")),
            ("USA", Some("us")),
            ("Türkiye", Some("tr")),
            ("Turkey", Some("tr")),
            ("United States", Some("us")),
            ("Germany", Some("de")),
            ("UK", Some("gb")),
            ("Atlantis", None),
            ("XX", None),
            ("792", None),
            ("", None),
        ];
        for (text, expected) in cases {
            assert_eq!(to_alpha2(text).as_deref(), expected, "{text:?}");
        }
    }
}
