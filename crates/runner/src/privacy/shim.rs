//! TEMPORARY stand-in for `hardal_core::erasure` until the erase-dest branch is merged.
#![allow(dead_code)]
use hardal_core::{Destination, Event, HttpRequest, HttpResponse, Path, Verdict};

#[derive(Debug, Clone, Default)]
pub struct Identifiers {
    pub user_id: Vec<String>,
    pub email: Vec<String>,
    pub phone: Vec<String>,
    pub custom: Vec<(String, String)>,
}
impl Identifiers {
    pub fn is_empty(&self) -> bool {
        self.user_id.is_empty()
            && self.email.is_empty()
            && self.phone.is_empty()
            && self.custom.is_empty()
    }
    pub fn hashes(&self) -> Vec<String> {
        let mut out: Vec<String> = self.user_id.iter().map(|v| format!("u:{v}")).collect();
        out.extend(
            self.email
                .iter()
                .map(|v| format!("e:{}", v.trim().to_lowercase())),
        );
        out.extend(self.phone.iter().map(|v| format!("p:{v}")));
        out.extend(self.custom.iter().map(|(k, v)| format!("c:{k}:{v}")));
        out.into_iter()
            .map(|h| format!("{:x}", xxhash_rust::xxh3::xxh3_64(h.as_bytes())))
            .collect()
    }
    pub fn digest(&self) -> String {
        let mut h = self.hashes();
        h.sort();
        format!("{:x}", xxhash_rust::xxh3::xxh3_64(h.join(",").as_bytes()))
    }
}
pub fn event_identifier_hashes(event: &Event, custom_paths: &[Path]) -> Vec<String> {
    let mut out = Vec::new();
    let s = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    if let Some(v) = event.field("user_id").and_then(s) {
        out.push(format!("u:{v}"));
    }
    if let Some(v) = event.field("user").and_then(|u| u.get("email")).and_then(s) {
        out.push(format!("e:{}", v.trim().to_lowercase()));
    }
    for p in custom_paths {
        if let Some(v) = event.get(p).and_then(s) {
            out.push(format!("c:{p}:{v}"));
        }
    }
    out.into_iter()
        .map(|h| format!("{:x}", xxhash_rust::xxh3::xxh3_64(h.as_bytes())))
        .collect()
}
pub enum Erasure {
    Requests(Vec<ErasureRequest>),
    Unsupported { how: String },
}
pub struct ErasureRequest {
    pub what: String,
    pub request: HttpRequest,
}
pub trait ErasureExt {
    fn erasure(&self, who: &Identifiers) -> Erasure;
    fn judge_erasure(&self, response: &HttpResponse) -> Verdict;
    fn erasure_requests_per_minute(&self) -> Option<u32>;
}
impl<T: Destination + ?Sized> ErasureExt for T {
    fn erasure(&self, _: &Identifiers) -> Erasure {
        Erasure::Unsupported { how: "shim".into() }
    }
    fn judge_erasure(&self, response: &HttpResponse) -> Verdict {
        response.status_verdict()
    }
    fn erasure_requests_per_minute(&self) -> Option<u32> {
        None
    }
}
