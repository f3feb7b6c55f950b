//! The built `insider` destination: mapping through your mappings and the presets, Insider's
//! field rules, the `{"users": [...]}` envelope with exact byte accounting, and judging.

use std::cell::OnceCell;

use hardal_core::condition::{Condition, Mapping, Mappings};
use hardal_core::destination::Envelope;
use hardal_core::erasure::{Erasure, Identifiers};
use hardal_core::error::under_all;
use hardal_core::value::{Map, Value};
use hardal_core::{
    BatchLimits, ConfigError, Destination, Event, HttpMethod, HttpRequest, HttpResponse,
    MapContext, Mapped, MappingError, Note, NoteAction, Notes, Record, Secret, SendContext,
    Template, Verdict,
};

use crate::config::{InsiderConfig, OnInvalidField, SendAttributes};
use crate::erasure::InsiderErasure;
use crate::presets::preset;
use crate::retention::Retention;
use crate::rules::{
    CheckContext, Checked, RuleSettings, STANDARD_IDENTIFIERS, check_user, normalize_event_name,
};
use hardal_core::select::Selector;

/// A built Insider destination.
#[derive(Debug)]
pub struct Insider {
    id: String,
    url: String,
    headers: Vec<(String, Secret)>,
    selector: Selector<Target>,
    settings: RuleSettings,
    envelope: Envelope,
    limits: BatchLimits,
    requests_per_minute: u32,
    erasure: InsiderErasure,
}

/// A mapping or preset: its template, where it comes from (for error messages) and the event name
/// its events get.
#[derive(Debug)]
struct Target {
    origin: String,
    template: Template,
    event_name: Option<String>,
}

impl Insider {
    pub fn build(id: &str, config: InsiderConfig) -> Result<Insider, Vec<ConfigError>> {
        let mut errors = Vec::new();
        let url = hardal_core::error::http_url(&config.endpoint, "/endpoint")
            .map_err(|e| errors.push(e))
            .unwrap_or_default();

        if let Err(e) = hardal_core::error::check_header(
            "X-REQUEST-TOKEN",
            config.request_token.expose(),
            "/request_token",
        ) {
            errors.push(e);
        }

        let (mut targets, mut presets) = (Vec::new(), Vec::new());
        for (i, mapping) in config.mappings.iter().enumerate() {
            let pointer = format!("/mappings/{i}");
            let when = Condition::compile(&mapping.when)
                .map_err(|e| under_all(e, &format!("{pointer}/when")));
            let template = Template::compile(&mapping.user)
                .map_err(|e| under_all(e, &format!("{pointer}/user")));
            match (when, template) {
                (Ok(when), Ok(template)) => targets.push(Mapping::new(
                    when,
                    Target {
                        origin: format!("{pointer}/user"),
                        template,
                        event_name: None,
                    },
                )),
                (when, template) => {
                    errors.extend(when.err().into_iter().flatten());
                    errors.extend(template.err().into_iter().flatten());
                }
            }
        }

        for (preset_name, event_name) in &config.event_names {
            let pointer = format!("/event_names/{}", preset_name.as_str());
            if preset_name.event_name().is_none() {
                errors.push(ConfigError::new(
                    pointer,
                    format!(
                        "the {} preset sends no event of its own name to rename",
                        preset_name.as_str()
                    ),
                ));
            } else if normalize_event_name(event_name) != *event_name {
                errors.push(ConfigError::new(
                    pointer,
                    format!("`{event_name}` is not an Insider event name (lower case letters, digits and _)"),
                ));
            }
        }
        let mut retention = std::collections::BTreeMap::new();
        for (event_name, days) in &config.retention_days {
            if normalize_event_name(event_name) != *event_name {
                errors.push(ConfigError::new(
                    format!("/retention_days/{}", event_name.replace('~', "~0").replace('/', "~1")),
                    format!("`{event_name}` is not an Insider event name (lower case letters, digits and _)"),
                ));
            }
            retention.insert(event_name.clone(), days.0);
        }
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
                Template::compile(&file.user).expect("preset templates compile (tested)");
            let event_name = config
                .event_names
                .get(name)
                .cloned()
                .or_else(|| name.event_name().map(str::to_owned));
            presets.push((
                file.when,
                Target {
                    origin: format!("preset {}", name.as_str()),
                    template,
                    event_name,
                },
            ));
        }

        let mut standard_identifiers = Vec::new();
        let mut custom_identifiers = Vec::new();
        for (i, name) in config.identifiers.iter().enumerate() {
            if name.trim().is_empty() || name == "custom" {
                errors.push(ConfigError::new(
                    format!("/identifiers/{i}"),
                    format!("`{name}` is not an identifier name"),
                ));
            } else if STANDARD_IDENTIFIERS.contains(&name.as_str()) {
                standard_identifiers.push(name.clone());
            } else {
                custom_identifiers.push(name.clone());
            }
        }
        if config.identifiers.is_empty() {
            errors.push(ConfigError::new(
                "/identifiers",
                "at least one identifier is needed to address users",
            ));
        }

        let prefix = if config.skip_hook {
            r#"{"skip_hook":true,"users":["#
        } else {
            r#"{"users":["#
        };
        if !errors.is_empty() {
            return Err(errors);
        }
        let headers = vec![
            ("Content-Type".to_owned(), Secret::new("application/json")),
            (
                "X-PARTNER-NAME".to_owned(),
                Secret::new(config.partner_name),
            ),
            ("X-REQUEST-TOKEN".to_owned(), config.request_token),
        ];
        let erasure = InsiderErasure::new(
            config.erasure,
            &url,
            headers.clone(),
            config.phone_country_code.clone(),
            custom_identifiers.clone(),
        );
        Ok(Insider {
            id: id.to_owned(),
            url,
            headers,
            erasure,
            selector: Selector::new(Mappings::new(targets), presets),
            settings: RuleSettings {
                standard_identifiers,
                custom_identifiers,
                not_append: !config.append_arrays,
                phone_country_code: config.phone_country_code,
                reject_invalid: config.on_invalid_field == OnInvalidField::Reject,
                send_attributes: config.send_attributes == SendAttributes::Always,
                retention: Retention::new(retention),
            },
            envelope: Envelope::new(prefix, "]}"),
            limits: BatchLimits {
                max_records: config.max_users_per_request,
                max_bytes: config.max_bytes_per_request,
            },
            requests_per_minute: config.requests_per_minute,
        })
    }
}

impl Destination for Insider {
    fn id(&self) -> &str {
        &self.id
    }

    fn kind(&self) -> &'static str {
        "insider"
    }

    fn map(&self, event: &Event, context: &MapContext) -> Result<Mapped, MappingError> {
        let Some(mut target) = self.selector.select(event) else {
            return Ok(Mapped::skipped(format!(
                "no mapping or preset selects event_name {}",
                event.quoted_name()
            )));
        };
        let mut rendered = render(target, event)?;
        let mut notes = Vec::new();
        // A standard event whose preset found nothing to make an event of (a product view without
        // a product) is still something the user did: sent as a custom event of its own name by
        // `default`, with a note, rather than skipped with nothing recorded.
        if target.event_name.is_some()
            && !has_events(&rendered)
            && let Some(fallback) = self.selector.fallback()
        {
            if context.notes != Notes::LeftOut {
                notes.push(Note {
                    action: NoteAction::Repaired,
                    field: "events".into(),
                    rule: "standard event without its product, sent as a custom event".into(),
                    detail: match context.notes {
                        Notes::Detailed => format!(
                            "{} found no product in {}; sent by preset default",
                            target.origin,
                            event.quoted_name()
                        ),
                        _ => String::new(),
                    },
                });
            }
            target = fallback;
            rendered = render(target, event)?;
        }
        let error = |message: String| MappingError::new(target.origin.clone(), message);
        let (one, many) = match rendered {
            None => {
                return Ok(Mapped::skipped(format!(
                    "{} rendered nothing",
                    target.origin
                )));
            }
            Some(Value::Array(users)) => (None, users),
            // Most templates render one user: it goes without a vector of its own.
            Some(user) => (Some(user), Vec::new()),
        };
        let users = one.into_iter().chain(many);
        // Derived once per event, and only when an event needs it: every line of an order shares it.
        let group_id = OnceCell::new();
        let derive = || {
            group_id
                .get_or_init(|| crate::group_id::derive(event))
                .clone()
        };
        let check_context = CheckContext {
            now: context.now,
            group_id: &derive,
            notes: context.notes,
        };
        let mut records = Vec::with_capacity(users.size_hint().0);
        let (mut nothing, mut expired) = (None, None);
        for mut user in users {
            if let Some(name) = &target.event_name {
                rename_events(&mut user, name);
            }
            match check_user(user, &self.settings, &check_context, &mut notes).map_err(&error)? {
                Checked::User(user) => {
                    // Room for a usual user object at once: one of an event with a product and
                    // a few attributes outgrows 512 bytes, and growing copies it.
                    let mut payload = Vec::with_capacity(1024);
                    user.write_json(&mut payload);
                    if self.envelope.size(1, payload.len()) > self.limits.max_bytes {
                        return Err(error(format!(
                            "the user object is {} bytes, more than one request may carry ({})",
                            payload.len(),
                            self.limits.max_bytes
                        )));
                    }
                    records.push(Record {
                        payload,
                        order_key: user_key(&user).or_else(|| event.user_key()),
                        batch_key: None,
                    });
                }
                Checked::Nothing(reason) => nothing = Some(reason),
                Checked::Expired(rule) => expired = Some(rule),
            }
        }
        if records.is_empty() {
            // Nothing is sent, so repairs and left-out fields of what was not sent do not count.
            return Ok(match expired {
                Some(rule) => Mapped::expired(rule),
                None => Mapped::skipped(nothing.unwrap_or_else(|| "no user object to send".into())),
            });
        }
        // The lines of an order repeat the same repair word for word; once says it.
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

    fn body_size(&self, records: usize, payload_bytes: usize) -> usize {
        self.envelope.size(records, payload_bytes)
    }

    fn encode(&self, records: &[&Record], _: &SendContext) -> HttpRequest {
        HttpRequest {
            method: HttpMethod::Post,
            url: self.url.clone(),
            headers: self.headers.clone(),
            body: self.envelope.encode(records),
        }
    }

    fn endpoint(&self) -> Option<&str> {
        Some(&self.url)
    }

    fn judge(&self, records: &[&Record], response: &HttpResponse) -> Vec<Verdict> {
        crate::judge::judge(records.len(), response)
    }

    fn requests_per_minute(&self) -> Option<u32> {
        Some(self.requests_per_minute)
    }

    fn erasure(&self, who: &Identifiers) -> Erasure {
        self.erasure.requests(who)
    }

    fn judge_erasure(&self, response: &HttpResponse) -> Verdict {
        crate::erasure::judge_erasure(response)
    }

    fn erasure_requests_per_minute(&self) -> Option<u32> {
        Some(self.erasure.requests_per_minute())
    }
}

/// A target's user object (or objects) for `event`; `None` when it renders nothing.
fn render<'a>(target: &'a Target, event: &'a Event) -> Result<Option<Value<'a>>, MappingError> {
    target
        .template
        .render_borrowed(event)
        .map_err(|e| MappingError {
            pointer: format!("{}{}", target.origin, e.pointer),
            message: e.message,
        })
}

/// Whether any rendered user object carries an event.
fn has_events(rendered: &Option<Value>) -> bool {
    let carries = |user: &Value| match user.as_object().and_then(|u| u.get("events")) {
        Some(Value::Array(events)) => !events.is_empty(),
        Some(Value::Object(_)) => true,
        _ => false,
    };
    match rendered {
        Some(Value::Array(users)) => users.iter().any(carries),
        Some(user) => carries(user),
        None => false,
    }
}

/// Gives every event of a preset's user object the preset's (possibly renamed) event name.
fn rename_events(user: &mut Value, name: &str) {
    let events = match user.as_object_mut().and_then(|u| u.get_mut("events")) {
        Some(Value::Array(events)) => events,
        _ => return,
    };
    for event in events.iter_mut().filter_map(Value::as_object_mut) {
        // Presets mostly render the name they send already: then nothing is rewritten.
        match event.get_mut("event_name") {
            Some(Value::String(rendered)) if rendered == name => {}
            Some(rendered) => *rendered = Value::from(name.to_owned()),
            None => {
                event.insert("event_name", Value::from(name.to_owned()));
            }
        }
    }
}

/// The identity that orders a user's records: uuid, else email, else phone, else a custom id.
fn user_key(user: &Map<'_>) -> Option<String> {
    let identifiers = user.get("identifiers")?.as_object()?;
    ["uuid", "email", "phone_number"]
        .iter()
        .find_map(|k| identifiers.get(k).and_then(Value::as_str))
        .or_else(|| {
            identifiers
                .get("custom")?
                .as_object()?
                .values()
                .find_map(Value::as_str)
        })
        .map(str::to_owned)
}
