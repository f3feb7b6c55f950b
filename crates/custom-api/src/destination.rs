//! The `custom_api` destination: template selection, optional batching at a JSON pointer,
//! judging by HTTP status, and the optional erasure request.

use hardal_core::condition::{Condition, Mapping, Mappings};
use hardal_core::destination::Envelope;
use hardal_core::erasure::{Erasure, Identifiers};
use hardal_core::error::under_all;
use hardal_core::{
    BatchLimits, ConfigError, Destination, Event, HttpMethod, HttpRequest, HttpResponse,
    MapContext, Mapped, MappingError, Record, Secret, SendContext, Template, Verdict,
};
use serde_json::Value;

use crate::config::CustomApiConfig;
use crate::erasure::CustomErasure;

/// A built Custom API destination.
#[derive(Debug)]
pub struct CustomApi {
    id: String,
    url: String,
    method: HttpMethod,
    headers: Vec<(String, Secret)>,
    mappings: Mappings<Target>,
    batching: Option<Batching>,
    erasure: Option<CustomErasure>,
}

/// What a selected mapping renders, and where its template sits in the configuration (so a
/// mapping error can point at it).
#[derive(Debug)]
struct Target {
    pointer: String,
    /// The whole body, or with batching, the array at the batch pointer.
    template: Template,
}

#[derive(Debug)]
struct Batching {
    envelope: Envelope,
    limits: BatchLimits,
}

/// Stands in for the batched array while the constant rest of a body is serialized, so the
/// envelope can be cut around it.
const ITEMS_MARKER: &str = "\u{0}hardal-batch-items\u{0}";

impl CustomApi {
    pub fn build(id: &str, config: CustomApiConfig) -> Result<CustomApi, Vec<ConfigError>> {
        let mut errors = Vec::new();
        let url = hardal_core::error::http_url(&config.endpoint_url, "/endpoint_url")
            .map_err(|e| errors.push(e))
            .unwrap_or_default();
        if config.request_format.is_none() && config.mappings.is_empty() {
            errors.push(ConfigError::new(
                "",
                "a custom_api destination needs `request_format`, `mappings`, or both",
            ));
        }

        let mut sources: Vec<(String, Condition, &Value)> = Vec::new();
        for (i, mapping) in config.mappings.iter().enumerate() {
            let pointer = format!("/mappings/{i}");
            match Condition::compile(&mapping.when) {
                Ok(when) => sources.push((pointer, when, &mapping.request_format)),
                Err(e) => errors.extend(under_all(e, &format!("{pointer}/when"))),
            }
        }
        if let Some(request_format) = &config.request_format {
            sources.push((String::new(), Condition::always(), request_format));
        }

        let mut envelope: Option<Vec<u8>> = None;
        let mut targets = Vec::new();
        for (prefix, when, source) in sources {
            let pointer = format!("{prefix}/request_format");
            let compiled = match &config.batch {
                None => Template::compile(source).map_err(|e| under_all(e, &pointer)),
                Some(batch) => split_batch(source, &batch.array_pointer, &pointer).and_then(
                    |(items, this_envelope)| {
                        if envelope.get_or_insert_with(|| this_envelope.clone()) != &this_envelope {
                            return Err(vec![ConfigError::new(
                                pointer.clone(),
                                "with batch, every request_format must be the same outside the batched array",
                            )]);
                        }
                        Template::compile(items).map_err(|e| {
                            under_all(e, &format!("{pointer}{}", batch.array_pointer))
                        })
                    },
                ),
            };
            match compiled {
                Ok(template) => targets.push(Mapping {
                    when,
                    target: Target { pointer, template },
                }),
                Err(e) => errors.extend(e),
            }
        }

        for (name, value) in &config.headers {
            let pointer = format!("/headers/{}", name.replace('~', "~0").replace('/', "~1"));
            if let Err(e) = hardal_core::error::check_header(name, value.expose(), &pointer) {
                errors.push(e);
            }
        }
        if let Err(e) =
            hardal_core::error::check_header("Content-Type", &config.content_type, "/content_type")
        {
            errors.push(e);
        }
        let content_type = config.content_type;
        let mut headers: Vec<(String, Secret)> = config.headers.into_iter().collect();
        if !headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("content-type"))
        {
            headers.insert(
                0,
                ("Content-Type".to_owned(), Secret::new(content_type.clone())),
            );
        }

        let batching = config
            .batch
            .as_ref()
            .zip(envelope)
            .map(|(batch, envelope)| {
                let text = String::from_utf8(envelope).expect("serde_json writes UTF-8");
                let marker = serde_json::to_string(ITEMS_MARKER).expect("a string serializes");
                let (before, after) = text.split_once(&marker).expect("the marker was inserted");
                Batching {
                    envelope: Envelope::new(format!("{before}["), format!("]{after}")),
                    limits: BatchLimits {
                        max_records: batch.max_items,
                        max_bytes: batch.max_bytes,
                    },
                }
            });
        if let Some(batching) = &batching
            && batching.envelope.size(0, 0) >= batching.limits.max_bytes
        {
            errors.push(ConfigError::new(
                "/batch/max_bytes",
                "is smaller than the constant part of the request body",
            ));
        }

        let erasure = match config.erasure {
            None => None,
            Some(erasure) => CustomErasure::build(erasure, &headers, &content_type)
                .map_err(|e| errors.extend(e))
                .ok(),
        };

        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(CustomApi {
            id: id.to_owned(),
            url,
            method: config.request_method,
            headers,
            mappings: Mappings(targets),
            batching,
            erasure,
        })
    }
}

/// Splits a batched request format into the array template at `array_pointer` and the serialized
/// constant envelope around it (with `ITEMS_MARKER` in the array's place).
fn split_batch<'a>(
    source: &'a Value,
    array_pointer: &str,
    pointer: &str,
) -> Result<(&'a Value, Vec<u8>), Vec<ConfigError>> {
    let items = match source.pointer(array_pointer) {
        Some(items @ Value::Array(_)) => items,
        _ => {
            return Err(vec![ConfigError::new(
                pointer,
                format!(
                    "batch.array_pointer `{array_pointer}` does not name an array in this request_format"
                ),
            )]);
        }
    };
    let mut rest = source.clone();
    *rest.pointer_mut(array_pointer).expect("found above") = Value::String(ITEMS_MARKER.to_owned());
    let rest_template = Template::compile(&rest).map_err(|e| under_all(e, pointer))?;
    if !rest_template.is_constant() {
        return Err(vec![ConfigError::new(
            pointer,
            format!("with batch, placeholders may appear only inside `{array_pointer}`"),
        )]);
    }
    let empty = Event::from_map(Default::default());
    let mut envelope = Vec::new();
    rest_template
        .render_json(&empty, &mut envelope)
        .map_err(|e| vec![ConfigError::new(pointer, e.to_string())])?;
    Ok((items, envelope))
}

impl Destination for CustomApi {
    fn id(&self) -> &str {
        &self.id
    }

    fn kind(&self) -> &'static str {
        "custom_api"
    }

    fn map(&self, event: &Event, _: &MapContext) -> Result<Mapped, MappingError> {
        let Some(target) = self.mappings.select(event) else {
            return Ok(Mapped::skipped(format!(
                "no mapping selects event_name {}",
                event.quoted_name()
            )));
        };
        let located = |e: MappingError| MappingError {
            pointer: format!("{}{}", target.pointer, e.pointer),
            message: e.message,
        };
        let order_key = event.user_key();
        let payloads = match &self.batching {
            None => {
                let mut payload = Vec::new();
                if !target
                    .template
                    .render_json(event, &mut payload)
                    .map_err(located)?
                {
                    return Ok(Mapped::skipped("every placeholder of the body was missing"));
                }
                vec![payload]
            }
            Some(batching) => {
                let Some(Value::Array(items)) = target.template.render(event).map_err(located)?
                else {
                    return Ok(Mapped::skipped("the batched array rendered empty"));
                };
                let payloads: Vec<Vec<u8>> = items
                    .iter()
                    .map(|item| serde_json::to_vec(item).expect("a Value serializes"))
                    .collect();
                if let Some(big) = payloads
                    .iter()
                    .find(|p| batching.envelope.size(1, p.len()) > batching.limits.max_bytes)
                {
                    return Err(MappingError::new(
                        target.pointer.clone(),
                        format!(
                            "one item is {} bytes, more than batch.max_bytes ({}) allows",
                            big.len(),
                            batching.limits.max_bytes
                        ),
                    ));
                }
                payloads
            }
        };
        Ok(Mapped::records(
            payloads
                .into_iter()
                .map(|payload| Record {
                    payload,
                    order_key: order_key.clone(),
                    batch_key: None,
                })
                .collect(),
        ))
    }

    fn batch_limits(&self) -> BatchLimits {
        match &self.batching {
            Some(batching) => batching.limits,
            None => BatchLimits {
                max_records: 1,
                max_bytes: usize::MAX,
            },
        }
    }

    fn body_size(&self, records: usize, payload_bytes: usize) -> usize {
        match &self.batching {
            Some(batching) => batching.envelope.size(records, payload_bytes),
            None => payload_bytes,
        }
    }

    fn encode(&self, records: &[&Record], _: &SendContext) -> HttpRequest {
        let body = match &self.batching {
            Some(batching) => batching.envelope.encode(records),
            None => records[0].payload.clone(),
        };
        HttpRequest {
            method: self.method,
            url: self.url.clone(),
            headers: self.headers.clone(),
            body,
        }
    }

    fn endpoint(&self) -> Option<&str> {
        Some(&self.url)
    }

    fn judge(&self, records: &[&Record], response: &HttpResponse) -> Vec<Verdict> {
        vec![response.status_verdict(); records.len()]
    }

    fn erasure(&self, who: &Identifiers) -> Erasure {
        match &self.erasure {
            Some(erasure) => erasure.requests(who),
            None => Erasure::Unsupported {
                how: format!(
                    "custom_api `{}` has no `erasure` request: erase the user in the receiving system by the identifiers it received (user_id, user.email, user.phone), or add an `erasure` block ({{\"endpoint_url\", \"request_method\", \"headers\", \"request_format\"}} with ##user_id##, ##email##, ##phone##, ##custom.KEY##)",
                    self.id
                ),
            },
        }
    }
}
