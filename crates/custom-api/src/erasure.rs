//! The `custom_api` erasure request: an `erasure` block's URL, method, headers and body template,
//! rendered from the identifiers of `hardal forget` instead of an event.
//!
//! The template renders against a small JSON object, `{"user_id", "email", "phone", "custom"}`,
//! so the template language, its filters and its rule that nothing missing is sent all apply.
//! Several identifiers of a kind give several requests: the first user id, email and phone
//! together, then the second of each, and so on; custom identifiers go into every request.

use std::collections::BTreeMap;

use hardal_core::erasure::{Erasure, ErasureRequest, Identifiers};
use hardal_core::error::under_all;
use hardal_core::{ConfigError, Event, HttpMethod, HttpRequest, Path, Secret, Template};
use serde_json::{Map, Value};

use crate::config::ErasureConfig;

/// A built erasure request.
#[derive(Debug)]
pub(crate) struct CustomErasure {
    url: String,
    method: HttpMethod,
    headers: Vec<(String, Secret)>,
    template: Template,
}

impl CustomErasure {
    /// Builds the `erasure` block; `headers` are the destination's, sent when the block names
    /// none. Problems are located under `/erasure`.
    pub(crate) fn build(
        config: ErasureConfig,
        headers: &[(String, Secret)],
        content_type: &str,
    ) -> Result<CustomErasure, Vec<ConfigError>> {
        let mut errors = Vec::new();
        let url = hardal_core::error::http_url(&config.endpoint_url, "/erasure/endpoint_url")
            .map_err(|e| errors.push(e))
            .unwrap_or_default();
        let template = Template::compile(&config.request_format)
            .map_err(|e| errors.extend(under_all(e, "/erasure/request_format")))
            .ok();
        let headers = match config.headers {
            None => headers.to_vec(),
            Some(own) => own_headers(own, content_type, &mut errors),
        };
        match template {
            Some(template) if errors.is_empty() => Ok(CustomErasure {
                url,
                method: config.request_method,
                headers,
                template,
            }),
            _ => Err(errors),
        }
    }

    pub(crate) fn requests(&self, who: &Identifiers) -> Erasure {
        let custom = custom_object(&who.custom);
        let sets = who
            .user_id
            .len()
            .max(who.email.len())
            .max(who.phone.len())
            .max(usize::from(!custom.is_empty()));
        let mut requests = Vec::with_capacity(sets);
        for i in 0..sets {
            let mut fields = Map::new();
            let mut named = Vec::new();
            for (name, values) in [
                ("user_id", &who.user_id),
                ("email", &who.email),
                ("phone", &who.phone),
            ] {
                if let Some(value) = values.get(i).map(|v| v.trim()).filter(|v| !v.is_empty()) {
                    fields.insert(name.into(), Value::from(value));
                    named.push(name);
                }
            }
            if !custom.is_empty() {
                fields.insert("custom".into(), Value::Object(custom.clone()));
                named.push("custom");
            }
            let mut body = Vec::new();
            // Rendering fails only for a value a filter refuses; such a set is left out, as an
            // event would be.
            let rendered = self
                .template
                .render_json(&Event::from_map(fields), &mut body);
            if let Ok(true) = rendered {
                requests.push(ErasureRequest {
                    what: format!("erasure request by {}", named.join(", ")),
                    request: HttpRequest {
                        method: self.method,
                        url: self.url.clone(),
                        headers: self.headers.clone(),
                        body,
                    },
                });
            }
        }
        if requests.is_empty() {
            return Erasure::Unsupported {
                how: "the `erasure.request_format` of this custom_api destination renders nothing from the given identifiers (it reads ##user_id##, ##email##, ##phone## or ##custom.KEY##): erase the user in the receiving system, or give the identifiers it reads".into(),
            };
        }
        Erasure::Requests(requests)
    }
}

/// The erasure block's own headers, checked as the destination's are, with the destination's
/// Content-Type when they name none.
fn own_headers(
    own: BTreeMap<String, Secret>,
    content_type: &str,
    errors: &mut Vec<ConfigError>,
) -> Vec<(String, Secret)> {
    for (name, value) in &own {
        let pointer = format!(
            "/erasure/headers/{}",
            name.replace('~', "~0").replace('/', "~1")
        );
        if let Err(e) = hardal_core::error::check_header(name, value.expose(), &pointer) {
            errors.push(e);
        }
    }
    let mut headers: Vec<(String, Secret)> = own.into_iter().collect();
    if !headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("content-type"))
    {
        headers.insert(0, ("Content-Type".to_owned(), Secret::new(content_type)));
    }
    headers
}

/// `--custom K=V` pairs as the `custom` object: each under its key as written, and, when the key
/// is a path of plain keys, also nested along it, so both `##custom."a.b"##` and `##custom.a.b##`
/// read it.
fn custom_object(pairs: &[(String, String)]) -> Map<String, Value> {
    let mut custom = Map::new();
    for (key, value) in pairs {
        let value = value.trim();
        if value.is_empty() {
            continue;
        }
        custom.insert(key.clone(), Value::from(value));
        let plain = Path::parse(key).is_ok() && !key.contains('"');
        let keys: Vec<&str> = key.split('.').collect();
        if plain && keys.len() > 1 {
            let mut node = &mut custom;
            for part in &keys[..keys.len() - 1] {
                let entry = node
                    .entry((*part).to_owned())
                    .or_insert_with(|| Value::Object(Map::new()));
                if !entry.is_object() {
                    *entry = Value::Object(Map::new());
                }
                node = entry.as_object_mut().expect("made an object above");
            }
            node.insert(keys[keys.len() - 1].to_owned(), Value::from(value));
        }
    }
    custom
}
