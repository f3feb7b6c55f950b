//! The built `meta_capi` destination: mapping through your mappings and the presets, Meta's
//! rules, the `{"data": [...]}` envelope (with `test_event_code` and `partner_agent` when
//! configured) with exact byte accounting, the URL with the access token, and judging.

use hardal_core::condition::{Condition, Mapping, Mappings};
use hardal_core::destination::{Envelope, SendContext};
use hardal_core::error::under_all;
use hardal_core::{
    BatchLimits, ConfigError, Destination, Event, HttpMethod, HttpRequest, HttpResponse,
    MapContext, Mapped, MappingError, Record, Secret, Template, Verdict,
};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::Value;

use crate::config::MetaCapiConfig;
use crate::normalize;
use crate::presets::preset;
use crate::rules::{Checked, RuleSettings, check_event};
use hardal_core::select::Selector;

/// A built Meta Conversions API destination.
#[derive(Debug)]
pub struct MetaCapi {
    id: String,
    /// `{base}/{version}/{pixel}/events`, without the token: what is shown.
    endpoint: String,
    access_token: Secret,
    selector: Selector<Target>,
    settings: RuleSettings,
    envelope: Envelope,
    limits: BatchLimits,
}

/// A mapping or preset: its template and where it comes from (for error messages).
#[derive(Debug)]
struct Target {
    origin: String,
    template: Template,
}

impl MetaCapi {
    pub fn build(id: &str, config: MetaCapiConfig) -> Result<MetaCapi, Vec<ConfigError>> {
        let mut errors = Vec::new();
        let base = hardal_core::error::http_url(&config.base_url, "/base_url")
            .map_err(|e| errors.push(e))
            .unwrap_or_default();
        if config.access_token.expose().trim().is_empty() {
            errors.push(ConfigError::new(
                "/access_token",
                "the access token is empty",
            ));
        }

        let mut targets = Vec::new();
        for (i, mapping) in config.mappings.iter().enumerate() {
            let pointer = format!("/mappings/{i}");
            let when = Condition::compile(&mapping.when)
                .map_err(|e| under_all(e, &format!("{pointer}/when")));
            let template = Template::compile(&mapping.event)
                .map_err(|e| under_all(e, &format!("{pointer}/event")));
            match (when, template) {
                (Ok(when), Ok(template)) => targets.push(Mapping::new(
                    when,
                    Target {
                        origin: format!("{pointer}/event"),
                        template,
                    },
                )),
                (when, template) => {
                    errors.extend(when.err().into_iter().flatten());
                    errors.extend(template.err().into_iter().flatten());
                }
            }
        }
        let mut presets = Vec::new();
        for (i, name) in config.presets.iter().enumerate() {
            if config.presets[..i].contains(name) {
                errors.push(ConfigError::new(
                    format!("/presets/{i}"),
                    format!("preset `{}` is listed twice", name.as_str()),
                ));
                continue;
            }
            let file = preset(*name);
            let template =
                Template::compile(&file.event).expect("preset templates compile (tested)");
            presets.push((
                file.when,
                Target {
                    origin: format!("preset {}", name.as_str()),
                    template,
                },
            ));
        }
        for (pointer, value) in [
            ("/test_event_code", &config.test_event_code),
            ("/partner_agent", &config.partner_agent),
        ] {
            if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
                errors.push(ConfigError::new(pointer, "is empty; leave it out instead"));
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }

        // The optional body fields go before `data`, so the records' array closes the body.
        let mut prefix = String::from("{");
        for (key, value) in [
            ("test_event_code", &config.test_event_code),
            ("partner_agent", &config.partner_agent),
        ] {
            if let Some(value) = value {
                prefix.push_str(&format!("\"{key}\":{},", Value::String(value.clone())));
            }
        }
        prefix.push_str("\"data\":[");
        Ok(MetaCapi {
            id: id.to_owned(),
            endpoint: format!(
                "{}/{}/{}/events",
                base.trim_end_matches('/'),
                config.api_version,
                config.pixel_id
            ),
            access_token: config.access_token,
            selector: Selector::new(Mappings::new(targets), presets),
            settings: RuleSettings {
                action_source: config.action_source,
                normalize: normalize::Settings {
                    phone_country_code: config.phone_country_code,
                },
            },
            envelope: Envelope::new(prefix, "]}"),
            limits: BatchLimits {
                max_records: config.max_events_per_request,
                max_bytes: config.max_bytes_per_request,
            },
        })
    }
}

impl Destination for MetaCapi {
    fn id(&self) -> &str {
        &self.id
    }

    fn kind(&self) -> &'static str {
        "meta_capi"
    }

    fn map(&self, event: &Event, context: &MapContext) -> Result<Mapped, MappingError> {
        let Some(target) = self.selector.select(event) else {
            return Ok(Mapped::skipped(format!(
                "no mapping or preset selects event_name {}",
                event.quoted_name()
            )));
        };
        let rendered = target.template.render(event).map_err(|e| MappingError {
            pointer: format!("{}{}", target.origin, e.pointer),
            message: e.message,
        })?;
        let events = match rendered {
            None => {
                return Ok(Mapped::skipped(format!(
                    "{} rendered nothing",
                    target.origin
                )));
            }
            Some(Value::Array(events)) => events,
            Some(event) => vec![event],
        };
        let mut notes = Vec::new();
        let mut records = Vec::with_capacity(events.len());
        let mut expired = None;
        for rendered in events {
            let checked =
                check_event(rendered, &self.settings, context, &mut notes).map_err(|refusal| {
                    MappingError::new(
                        format!("{}/{}", target.origin, refusal.field.replace('.', "/")),
                        format!("{} {}", refusal.field, refusal.message),
                    )
                })?;
            match checked {
                Checked::Event(server_event) => {
                    let payload =
                        serde_json::to_vec(&server_event).expect("a JSON object serializes");
                    if self.envelope.size(1, payload.len()) > self.limits.max_bytes {
                        return Err(MappingError::new(
                            target.origin.clone(),
                            format!(
                                "the server event is {} bytes, more than one request may carry ({})",
                                payload.len(),
                                self.limits.max_bytes
                            ),
                        ));
                    }
                    records.push(Record {
                        payload,
                        order_key: event.user_key(),
                        batch_key: None,
                    });
                }
                Checked::Expired(rule) => expired = Some(rule),
            }
        }
        if records.is_empty() {
            return Ok(match expired {
                Some(rule) => Mapped::expired(rule),
                None => Mapped::skipped(format!("{} rendered no event", target.origin)),
            });
        }
        Ok(Mapped::records(records).with_notes(notes))
    }

    fn batch_limits(&self) -> BatchLimits {
        self.limits
    }

    fn body_size(&self, records: usize, payload_bytes: usize) -> usize {
        self.envelope.size(records, payload_bytes)
    }

    fn encode(&self, records: &[&Record], _context: &SendContext) -> HttpRequest {
        HttpRequest {
            method: HttpMethod::Post,
            // Meta documents the token as the `access_token` query parameter. It is a `Secret`
            // of the configuration, so the runner redacts it wherever a URL is shown.
            url: format!(
                "{}?access_token={}",
                self.endpoint,
                utf8_percent_encode(self.access_token.expose(), NON_ALPHANUMERIC)
            ),
            headers: vec![("Content-Type".to_owned(), Secret::new("application/json"))],
            body: self.envelope.encode(records),
        }
    }

    fn judge(&self, records: &[&Record], response: &HttpResponse) -> Vec<Verdict> {
        crate::judge::judge(records.len(), response)
    }

    fn endpoint(&self) -> Option<&str> {
        Some(&self.endpoint)
    }

    /// The Conversions API only creates events (`POST /{pixel}/events`); it has no request that
    /// deletes them or a person (docs/reference/meta-capi.md).
    fn erasure(&self, _who: &hardal_core::erasure::Identifiers) -> hardal_core::erasure::Erasure {
        hardal_core::erasure::Erasure::Unsupported {
            how: "Meta's Conversions API only creates events and has no deletion request: events already sent stay with Meta under its Business Tools terms; ask Meta through its own data deletion and privacy tools (Events Manager, Meta's privacy request channels) with the user's email / phone / external_id".into(),
        }
    }
}
