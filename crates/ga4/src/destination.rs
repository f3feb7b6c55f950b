//! The built `ga4` destination: mapping through your mappings and the presets, GA4's rules, one
//! record per GA4 event keyed by its request-level fields (so one request carries one
//! `client_id`), the `/mp/collect` request, and judging.
//!
//! A record's payload is a complete one-event request, `PREFIX EVENT]}`, where `PREFIX` is
//! `{"client_id":…,…,"events":[` and is also the record's batch key: records share a request only
//! when everything outside `events` is identical, and the request is `PREFIX` followed by each
//! record's `EVENT`. Such a body is never longer than the records' payloads added up, which is
//! what `body_size` says.

use std::time::{Duration, SystemTime};

use hardal_core::condition::{Condition, Mapping, Mappings};
use hardal_core::destination::SendContext;
use hardal_core::error::under_all;
use hardal_core::{
    BatchLimits, ConfigError, ConsentState, Destination, Event, HttpMethod, HttpRequest,
    HttpResponse, MapContext, Mapped, MappingError, NoteAction, Record, Secret, Template, Verdict,
};
use serde_json::{Map, Value};

use crate::config::Ga4Config;
use crate::limits;
use crate::presets::preset;
use crate::rules::{self, Code, Log, Refusal};
use hardal_core::select::Selector;

/// The collect path under the base URL.
pub const COLLECT_PATH: &str = "/mp/collect";
/// What ends every payload and every body: the `events` array and the request object.
const SUFFIX: &[u8] = b"]}";

/// A built GA4 destination.
#[derive(Debug)]
pub struct Ga4 {
    id: String,
    /// `{base}/mp/collect?measurement_id=…&api_secret=` without the secret.
    url_without_secret: String,
    api_secret: Secret,
    selector: Selector<Target>,
    client_id: Template,
    user_id: Option<Template>,
    user_properties: Option<Template>,
    consent: Option<Template>,
    limits: BatchLimits,
}

/// A mapping or preset: its template and where it comes from (for error messages).
#[derive(Debug)]
struct Target {
    origin: String,
    template: Template,
}

/// Characters an API secret may have, so that it stands in the URL exactly as configured (and the
/// runner, which redacts the configured value, finds it there).
fn url_safe(text: &str) -> bool {
    text.bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~'))
}

/// Compiles an optional template (JSON `null` means none).
fn optional_template(
    value: &Value,
    pointer: &str,
    errors: &mut Vec<ConfigError>,
) -> Option<Template> {
    if value.is_null() {
        return None;
    }
    Template::compile(value)
        .map_err(|e| errors.extend(under_all(e, pointer)))
        .ok()
}

impl Ga4 {
    pub fn build(id: &str, config: Ga4Config) -> Result<Ga4, Vec<ConfigError>> {
        let mut errors = Vec::new();
        let base = hardal_core::error::http_url(&config.base_url, "/base_url")
            .map_err(|e| errors.push(e))
            .unwrap_or_default();
        if base.contains(['?', '#']) {
            errors.push(ConfigError::new(
                "/base_url",
                format!("`{base}` must not have a query or fragment: hardal adds /mp/collect and the query"),
            ));
        }
        if !url_safe(config.api_secret.expose()) {
            errors.push(ConfigError::new(
                "/api_secret",
                "the API secret has characters that are not URL-safe (letters, digits, - _ . ~); GA4's secrets never do",
            ));
        }
        let client_id = optional_template(&config.client_id, "/client_id", &mut errors);
        if config.client_id.is_null() {
            errors.push(ConfigError::new(
                "/client_id",
                "every GA4 request needs a client_id",
            ));
        }
        let user_id = optional_template(&config.user_id, "/user_id", &mut errors);
        let user_properties =
            optional_template(&config.user_properties, "/user_properties", &mut errors);
        let consent = optional_template(&config.consent, "/consent", &mut errors);

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
        if !errors.is_empty() {
            return Err(errors);
        }
        let base = base.trim_end_matches('/');
        Ok(Ga4 {
            id: id.to_owned(),
            url_without_secret: format!(
                "{base}{COLLECT_PATH}?measurement_id={}&api_secret=",
                config.measurement_id
            ),
            api_secret: config.api_secret,
            selector: Selector::new(Mappings::new(targets), presets),
            client_id: client_id.expect("compiled when there are no errors"),
            user_id,
            user_properties,
            consent,
            limits: BatchLimits {
                max_records: config.max_events_per_request,
                max_bytes: limits::MAX_BODY_BYTES,
            },
        })
    }

    /// The request URL, secret included (the runner redacts it wherever it shows a URL).
    fn url(&self) -> String {
        format!("{}{}", self.url_without_secret, self.api_secret.expose())
    }

    /// The request-level fields of `event` as the start of a request body, up to and including
    /// `"events":[`; `consent_state` is what the runner's consent settings read in the event.
    fn prefix(
        &self,
        event: &Event,
        consent_state: ConsentState,
        log: &mut Log<'_>,
    ) -> Result<(String, Vec<u8>), MappingError> {
        let error = |message: String| MappingError::new("/client_id", message);
        let client_id = match self.client_id.render(event).map_err(|e| error(e.message))? {
            Some(Value::String(id)) if !id.trim().is_empty() => id,
            Some(Value::Number(n)) => n.to_string(),
            Some(other) => {
                return Err(error(format!(
                    "VALUE_INVALID: client_id rendered {}, not a string",
                    hardal_core::event::json_type(&other)
                )));
            }
            None => {
                return Err(error(
                    "VALUE_REQUIRED: the event has no client_id (the client_id template rendered nothing)"
                        .to_owned(),
                ));
            }
        };
        let mut head = Map::new();
        head.insert("client_id".into(), Value::String(client_id.clone()));
        if let Some(template) = &self.user_id {
            let rendered = template.render(event).map_err(|e| MappingError {
                pointer: format!("/user_id{}", e.pointer),
                message: e.message,
            })?;
            if let Some(user_id) = rendered.as_ref().and_then(hardal_core::convert::to_text) {
                let chars = user_id.chars().count();
                if chars > limits::MAX_USER_ID_CHARS {
                    log.note(
                        NoteAction::Dropped,
                        "user_id",
                        Code::ValueOutOfBounds,
                        &format!(
                            "user_id is at most {} characters",
                            limits::MAX_USER_ID_CHARS
                        ),
                        || format!("user_id of {chars} characters left out"),
                    );
                } else if !user_id.is_empty() {
                    head.insert("user_id".into(), Value::String(user_id));
                }
            }
        }
        let render = |template: &Option<Template>, pointer: &str| match template {
            None => Ok(None),
            Some(template) => template.render(event).map_err(|e| MappingError {
                pointer: format!("{pointer}{}", e.pointer),
                message: e.message,
            }),
        };
        let mut consent = rules::check_consent(render(&self.consent, "/consent")?, log);
        rules::fill_consent(&mut consent, consent_state);
        if !consent.is_empty() {
            head.insert("consent".into(), Value::Object(consent));
        }
        let properties =
            rules::check_user_properties(render(&self.user_properties, "/user_properties")?, log);
        if !properties.is_empty() {
            head.insert("user_properties".into(), Value::Object(properties));
        }
        let mut prefix = serde_json::to_vec(&Value::Object(head)).expect("a Value serializes");
        prefix.pop(); // the closing brace
        prefix.extend_from_slice(br#","events":["#);
        Ok((client_id, prefix))
    }
}

/// `timestamp_micros` for an event of time `at` mapped at `now`: `Err` with the rule when it is
/// older than GA4 takes, `Ok(None)` when it lies ahead (sent without one, so GA4 uses the time it
/// arrives).
fn timestamp_micros(at: SystemTime, now: SystemTime) -> Result<Option<u64>, String> {
    if now
        .duration_since(at)
        .is_ok_and(|age| age > limits::BACKDATE_WINDOW)
    {
        // The same words for every such event, so that the summary counts them together.
        return Err("GA4 takes events up to 72 hours old (timestamp_micros)".to_owned());
    }
    if at.duration_since(now).unwrap_or(Duration::ZERO) > limits::FUTURE_SKEW {
        return Ok(None);
    }
    let micros = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_err(|_| "events before 1970 are not sent".to_owned())?
        .as_micros();
    Ok(u64::try_from(micros).ok())
}

impl Destination for Ga4 {
    fn id(&self) -> &str {
        &self.id
    }

    fn kind(&self) -> &'static str {
        "ga4"
    }

    fn map(&self, event: &Event, context: &MapContext) -> Result<Mapped, MappingError> {
        let Some(target) = self.selector.select(event) else {
            return Ok(Mapped::skipped(format!(
                "no mapping or preset selects event_name {}",
                event.quoted_name()
            )));
        };
        let error = |message: String| MappingError::new(target.origin.clone(), message);
        // The time first: an event GA4 would no longer take is expired whatever else it holds.
        let mut notes = Vec::new();
        let mut log = Log {
            notes: &mut notes,
            mode: context.notes,
        };
        let micros = match event.field("created_at") {
            None | Some(hardal_core::value::Value::Null) => None,
            Some(value) => {
                match hardal_core::convert::to_system_time(value) {
                    Some(at) => match timestamp_micros(at, context.now) {
                        Ok(Some(micros)) => Some(micros),
                        Ok(None) => {
                            log.note(
                            NoteAction::Dropped,
                            "timestamp_micros",
                            Code::ValueInvalid,
                            "an event time ahead of the clock is left to GA4",
                            || format!("created_at {value} lies ahead; GA4 uses the time it arrives"),
                        );
                            None
                        }
                        Err(rule) => return Ok(Mapped::expired(rule)),
                    },
                    None => {
                        log.note(
                        NoteAction::Dropped,
                        "timestamp_micros",
                        Code::ValueInvalid,
                        "created_at is not a timestamp",
                        || format!("created_at {value} is not a timestamp; GA4 uses the time it arrives"),
                    );
                        None
                    }
                }
            }
        };
        let rendered = target.template.render(event).map_err(|e| MappingError {
            pointer: format!("{}{}", target.origin, e.pointer),
            message: e.message,
        })?;
        let rendered = match rendered {
            None => {
                return Ok(Mapped::skipped(format!(
                    "{} rendered nothing",
                    target.origin
                )));
            }
            Some(Value::Array(events)) => events,
            Some(one) => vec![one],
        };
        let checked = rendered
            .into_iter()
            .map(|one| rules::check_event(one, &mut log).map_err(|Refusal(m)| error(m)))
            .collect::<Result<Vec<_>, _>>()?;
        let (client_id, prefix) = self.prefix(event, context.consent, &mut log)?;
        let batch_key = String::from_utf8(prefix.clone()).expect("serde_json writes UTF-8");
        let mut records = Vec::with_capacity(checked.len());
        for mut checked in checked {
            if let Some(micros) = micros {
                checked.insert("timestamp_micros".into(), Value::from(micros));
            }
            let mut payload = prefix.clone();
            serde_json::to_writer(&mut payload, &Value::Object(checked))
                .expect("a Value serializes");
            payload.extend_from_slice(SUFFIX);
            if payload.len() > self.limits.max_bytes {
                return Err(error(format!(
                    "the event is {} bytes, more than one GA4 request may carry ({})",
                    payload.len(),
                    self.limits.max_bytes
                )));
            }
            records.push(Record {
                payload,
                order_key: Some(client_id.clone()),
                batch_key: Some(batch_key.clone()),
            });
        }
        if records.is_empty() {
            return Ok(Mapped::skipped(format!(
                "{} rendered no event",
                target.origin
            )));
        }
        // One event repeats the same repair word for word only when a template repeats a field;
        // once says it.
        let mut i = 1;
        while i < notes.len() {
            if notes[..i].contains(&notes[i]) {
                notes.remove(i);
            } else {
                i += 1;
            }
        }
        Ok(Mapped::records(records).with_notes(notes))
    }

    fn batch_limits(&self) -> BatchLimits {
        self.limits
    }

    fn body_size(&self, _records: usize, payload_bytes: usize) -> usize {
        // The body shares one prefix among the records, so it is never longer than the payloads
        // added up (see the module's documentation).
        payload_bytes
    }

    fn encode(&self, records: &[&Record], _context: &SendContext) -> HttpRequest {
        HttpRequest {
            method: HttpMethod::Post,
            url: self.url(),
            headers: vec![("Content-Type".to_owned(), Secret::new("application/json"))],
            body: encode_body(records),
        }
    }

    fn endpoint(&self) -> Option<&str> {
        Some(&self.url_without_secret)
    }

    fn judge(&self, records: &[&Record], response: &HttpResponse) -> Vec<Verdict> {
        judge(records.len(), response)
    }

    /// GA4 deletes a user's data only through Google's User Deletion API, which takes OAuth
    /// credentials with the `analytics.user.deletion` scope; the Measurement Protocol's
    /// `api_secret` cannot authorize it (docs/reference/ga4-measurement-protocol.md).
    fn erasure(&self, _who: &hardal_core::erasure::Identifiers) -> hardal_core::erasure::Erasure {
        hardal_core::erasure::Erasure::Unsupported {
            how: "GA4 deletes a user's data only through Google Analytics' User Deletion API (POST https://www.googleapis.com/analytics/v3/userDeletion/userDeletionRequests:upsert, OAuth scope analytics.user.deletion, by client_id or user_id and the property id) or in the property's user explorer; the Measurement Protocol's api_secret cannot do it: request the deletion there with the user's client_id / user_id".into(),
        }
    }
}

/// The body of one request: the first record's prefix, then every record's event.
pub fn encode_body(records: &[&Record]) -> Vec<u8> {
    let total: usize = records.iter().map(|r| r.payload.len()).sum();
    let mut body = Vec::with_capacity(total + 16);
    match records.first().and_then(|r| prefix_of(r)) {
        Some(prefix) => body.extend_from_slice(prefix),
        None => body.extend_from_slice(br#"{"events":["#),
    }
    for (i, record) in records.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(event_of(record));
    }
    body.extend_from_slice(SUFFIX);
    body
}

/// The prefix a record's payload starts with: its batch key (records this destination mapped
/// always have one).
fn prefix_of(record: &Record) -> Option<&[u8]> {
    let key = record.batch_key.as_deref()?.as_bytes();
    record.payload.starts_with(key).then_some(key)
}

/// The event of a record: its payload less its prefix and the closing `]}`.
fn event_of(record: &Record) -> &[u8] {
    let start = prefix_of(record).map_or(0, <[u8]>::len);
    match record.payload.strip_suffix(SUFFIX) {
        Some(rest) if start > 0 && start <= rest.len() => &rest[start..],
        _ => &record.payload,
    }
}

/// GA4's answers: the Measurement Protocol answers 2xx to everything it receives (even what it
/// then drops, which is why hardal checks GA4's rules before sending), so the status is all there
/// is: 2xx delivered, 429 and 5xx retried, 401/403 pause, other 4xx rejected.
pub fn judge(records: usize, response: &HttpResponse) -> Vec<Verdict> {
    vec![response.status_verdict(); records]
}
