//! Judging Insider's answers. Insider reports most validation failures with HTTP 200 and a map of
//! `users.<index>.<path>.<rule>` keys to messages; the user at that index failed (for good), every
//! other user of the request succeeded.
//!
//! A 2xx is trusted only when its body is Insider's documented answer (`{"data": {"successful":
//! …, "fail": …}}`): a captive portal's HTML page, a proxy's `{}` or an empty body say nothing
//! about whether Insider stored the users, so those requests are retried, never counted as
//! delivered.

use std::collections::BTreeMap;

use hardal_core::{HttpResponse, Verdict};
use serde_json::Value;

/// One verdict per user of the request.
pub fn judge(users: usize, response: &HttpResponse) -> Vec<Verdict> {
    if !(200..300).contains(&response.status) {
        return vec![response.status_verdict(); users];
    }
    let body = serde_json::from_slice::<Value>(&response.body).ok();
    let Some(body) = body.filter(is_insiders_answer) else {
        let reason = format!(
            "HTTP {}: the answer is not Insider's (no data.successful or data.fail), so nothing says the users were stored: {}",
            response.status,
            response.body_excerpt()
        );
        return vec![
            Verdict::Retry {
                reason,
                after: response.retry_after(),
            };
            users
        ];
    };
    let fail = &body["data"]["fail"];
    let errors = fail["errors"].as_object().filter(|e| !e.is_empty());
    if fail["count"].as_u64().unwrap_or(0) == 0 && errors.is_none() {
        return vec![Verdict::Delivered; users];
    }
    let mut reasons: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    let mut unattributed = Vec::new();
    for (key, messages) in errors.into_iter().flatten() {
        let messages: Vec<&str> = match messages {
            Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
            Value::String(s) => vec![s.as_str()],
            _ => Vec::new(),
        };
        let text = format!("{key}: {}", messages.join("; "));
        match user_index(key).filter(|i| *i < users) {
            Some(index) => reasons.entry(index).or_default().push(text),
            None => unattributed.push(text),
        }
    }
    if reasons.is_empty() {
        // Insider said some users failed but not which: none can be called delivered. Rejected
        // records go to the dead letters with Insider's words, from where they can be replayed.
        let reason = format!(
            "Insider reported {} failed user(s) without saying which: {}",
            fail["count"],
            if unattributed.is_empty() {
                response.body_excerpt()
            } else {
                unattributed.join(" | ")
            }
        );
        return vec![Verdict::Rejected { reason }; users];
    }
    (0..users)
        .map(|i| match reasons.remove(&i) {
            Some(messages) => Verdict::Rejected {
                reason: format!("Insider: {}", messages.join(" | ")),
            },
            None => Verdict::Delivered,
        })
        .collect()
}

/// Whether a 2xx body has the shape of Insider's upsert answer.
fn is_insiders_answer(body: &Value) -> bool {
    let data = &body["data"];
    let part = |key: &str| data.get(key).is_some_and(Value::is_object);
    data.is_object() && (part("successful") || part("fail"))
}

/// The user index of an error key such as `users.1.identifiers.*.regexp(…)`.
fn user_index(key: &str) -> Option<usize> {
    key.strip_prefix("users.")?.split('.').next()?.parse().ok()
}
