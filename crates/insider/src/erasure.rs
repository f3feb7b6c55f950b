//! Erasing a user in Insider: the requests of Insider's Delete User Profile API
//! (`POST /api/user/v1/delete`) or Delete User's PII Data API (`POST /api/user/v1/anonymize`),
//! and the verdicts on their answers. Both take one user a request, found by one identifier in
//! `{"identifiers": {...}}`, with the upsert's headers (docs/reference/insider-erasure.md).
//!
//! One request goes out per identifier hardal was given, not one with all of them: Insider looks
//! a user up by the identifiers of a request, and a request naming an identifier Insider never
//! saw could miss the profile the others name. Each request is idempotent (deleting a deleted
//! user changes nothing), so a retry or a repeat after a restart is harmless.

use hardal_core::erasure::{Erasure, ErasureRequest, Identifiers};
use hardal_core::{HttpMethod, HttpRequest, HttpResponse, Path, Secret, Verdict};
use serde_json::{Value, json};

use crate::config::{ANONYMIZE_REQUESTS_PER_MINUTE, DELETE_REQUESTS_PER_MINUTE, ErasureMode};
use crate::rules::normalize_phone;

/// Insider's answer to an erasure request for identifiers it has no user of (documented for the
/// anonymize API; the delete API answers 200 either way).
const NO_SUCH_USER: &str = "no such user for these identifiers";

/// What the insider destination needs to erase a user.
#[derive(Debug)]
pub(crate) struct InsiderErasure {
    mode: ErasureMode,
    /// The erasure URL, derived from the upsert endpoint; `Err` says why there is none.
    url: Result<String, String>,
    headers: Vec<(String, Secret)>,
    phone_country_code: Option<String>,
    /// The custom identifiers of the account, which `--custom NAME=V` may name.
    custom_identifiers: Vec<String>,
}

impl InsiderErasure {
    pub(crate) fn new(
        mode: ErasureMode,
        upsert_url: &str,
        headers: Vec<(String, Secret)>,
        phone_country_code: Option<String>,
        custom_identifiers: Vec<String>,
    ) -> InsiderErasure {
        let path = match mode {
            ErasureMode::Delete => "delete",
            ErasureMode::Anonymize => "anonymize",
        };
        InsiderErasure {
            mode,
            url: sibling_url(upsert_url, path),
            headers,
            phone_country_code,
            custom_identifiers,
        }
    }

    pub(crate) fn requests(&self, who: &Identifiers) -> Erasure {
        let url = match &self.url {
            Ok(url) => url,
            Err(why) => return Erasure::Unsupported { how: why.clone() },
        };
        let verb = match self.mode {
            ErasureMode::Delete => "delete user profile",
            ErasureMode::Anonymize => "anonymize user",
        };
        let mut bodies: Vec<(String, Value)> = Vec::new();
        let mut add = |by: String, identifiers: Value| {
            let body = json!({ "identifiers": identifiers });
            if !bodies.iter().any(|(_, b)| *b == body) {
                bodies.push((format!("{verb} by {by}"), body));
            }
        };
        for uuid in &who.user_id {
            let uuid = uuid.trim();
            if !uuid.is_empty() {
                add("uuid".into(), json!({ "uuid": uuid }));
            }
        }
        for email in &who.email {
            // Insider keeps an email as it was sent (trimmed), so both the operator's spelling
            // and its lower case are asked for.
            let email = email.trim();
            if !email.is_empty() {
                add("email".into(), json!({ "email": email }));
                add("email".into(), json!({ "email": email.to_lowercase() }));
            }
        }
        for phone in &who.phone {
            // A number that cannot be made E.164 was never accepted by Insider as an identifier.
            if let Some(e164) = normalize_phone(
                &Value::from(phone.as_str()),
                self.phone_country_code.as_deref(),
            ) {
                add("phone_number".into(), json!({ "phone_number": e164 }));
            }
        }
        for (key, value) in &who.custom {
            if let Some(name) = self.custom_identifier(key) {
                add(
                    format!("custom identifier {name}"),
                    json!({ "custom": { name: value.trim() } }),
                );
            }
        }
        if bodies.is_empty() {
            return Erasure::Unsupported {
                how: format!(
                    "Insider finds users by uuid (--user-id), email, phone_number (E.164, or national with phone_country_code) or a custom identifier of the account ({}); none of the given identifiers is one: erase the user in Insider's panel, or give one of those",
                    if self.custom_identifiers.is_empty() {
                        "none configured in `identifiers`".to_owned()
                    } else {
                        self.custom_identifiers.join(", ")
                    }
                ),
            };
        }
        Erasure::Requests(
            bodies
                .into_iter()
                .map(|(what, body)| ErasureRequest {
                    what,
                    request: HttpRequest {
                        method: HttpMethod::Post,
                        url: url.clone(),
                        headers: self.headers.clone(),
                        body: body.to_string().into_bytes(),
                    },
                })
                .collect(),
        )
    }

    /// The account's custom identifier a `--custom K=V` names: `K`'s last key, when the account
    /// defines it (`hardal_id`, `user.hardal_id` and `identifiers.custom.hardal_id` all name
    /// `hardal_id`).
    fn custom_identifier(&self, key: &str) -> Option<&str> {
        let path = Path::parse(key).ok()?;
        let text = path.to_string();
        let last = text.rsplit('.').next()?.trim_matches('"');
        self.custom_identifiers
            .iter()
            .find(|name| name.as_str() == last)
            .map(String::as_str)
    }

    pub(crate) fn requests_per_minute(&self) -> u32 {
        match self.mode {
            ErasureMode::Delete => DELETE_REQUESTS_PER_MINUTE,
            ErasureMode::Anonymize => ANONYMIZE_REQUESTS_PER_MINUTE,
        }
    }
}

/// The verdict on one erasure answer. Insider documents 200 for success (`{}` from delete), 404
/// `{"error":"no such user for these identifiers: no data"}` from anonymize, 403 for credentials
/// and 500 for its own failures; 429 is every Insider API's rate limit. A user Insider does not
/// have is erased as far as Insider goes, so that 404 is success; everything else reads as any
/// answer does (401/403 pause, 429 and 5xx retry, other 4xx reject with the body's excerpt).
pub fn judge_erasure(response: &HttpResponse) -> Verdict {
    if response.status == 404 && String::from_utf8_lossy(&response.body).contains(NO_SUCH_USER) {
        return Verdict::Delivered;
    }
    response.status_verdict()
}

/// The URL of Insider's `path` API beside the upsert endpoint: `…/api/user/v1/upsert` becomes
/// `…/api/user/v1/<path>`, so a test server set as `endpoint` gets the erasures too.
fn sibling_url(upsert_url: &str, path: &str) -> Result<String, String> {
    let (base, query) = match upsert_url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (upsert_url, None),
    };
    match base.strip_suffix("/upsert") {
        Some(stem) => Ok(match query {
            Some(query) => format!("{stem}/{path}?{query}"),
            None => format!("{stem}/{path}"),
        }),
        None => Err(format!(
            "the `endpoint` does not end in /upsert, so hardal cannot tell where Insider's {path} API is: erase the user in Insider's panel or with `POST https://unification.useinsider.com/api/user/v1/{path}`"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_erasure_url_sits_beside_the_upsert_url() {
        for (upsert, path, expected) in [
            (
                "https://unification.useinsider.com/api/user/v1/upsert",
                "delete",
                Ok("https://unification.useinsider.com/api/user/v1/delete"),
            ),
            (
                "http://127.0.0.1:8089/api/user/v1/upsert?x=1",
                "anonymize",
                Ok("http://127.0.0.1:8089/api/user/v1/anonymize?x=1"),
            ),
            ("https://proxy.example/insider", "delete", Err(())),
        ] {
            assert_eq!(
                sibling_url(upsert, path).map_err(|_| ()),
                expected.map(str::to_owned),
                "{upsert}"
            );
        }
    }

    #[test]
    fn judging_as_data() {
        let answer = |status: u16, body: &str| HttpResponse {
            status,
            headers: Vec::new(),
            body: body.as_bytes().to_vec(),
        };
        let verdicts: Vec<String> = [
            (200, "{}"),
            (200, ""),
            (404, r#"{"error":"no such user for these identifiers: no data"}"#),
            (404, "not found"),
            (
                403,
                r#"{"success":false,"message":"Access Denied. You do not have sufficient access to perform this action."}"#,
            ),
            (401, r#"{"error":"unauthorized"}"#),
            (429, r#"{"error":"rejected: too many requests"}"#),
            (
                500,
                r#"{"success":false,"message":"The request processing has failed because of an unknown error."}"#,
            ),
            (400, r#"{"error":"identifiers must be defined"}"#),
        ]
        .iter()
        .map(|(status, body)| format!("{status} {:?}", judge_erasure(&answer(*status, body))))
        .collect();
        expect_test::expect![[r#"
            [
                "200 Delivered",
                "200 Delivered",
                "404 Delivered",
                "404 Rejected { reason: \"HTTP 404: not found\" }",
                "403 Pause { reason: \"HTTP 403: {\\\"success\\\":false,\\\"message\\\":\\\"Access Denied. You do not have sufficient access to perform this action.\\\"}\" }",
                "401 Pause { reason: \"HTTP 401: {\\\"error\\\":\\\"unauthorized\\\"}\" }",
                "429 Retry { reason: \"HTTP 429: {\\\"error\\\":\\\"rejected: too many requests\\\"}\", after: None }",
                "500 Retry { reason: \"HTTP 500: {\\\"success\\\":false,\\\"message\\\":\\\"The request processing has failed because of an unknown error.\\\"}\", after: None }",
                "400 Rejected { reason: \"HTTP 400: {\\\"error\\\":\\\"identifiers must be defined\\\"}\" }",
            ]
        "#]]
        .assert_debug_eq(&verdicts);
    }
}
