//! Loading a configuration file: parse, resolve `${NAME}` in secrets, validate against the
//! generated JSON Schema, build every destination. Every problem found on the way is reported
//! at once, each with its JSON pointer and `line:column` in the file.

mod env;
mod position;
pub mod schema;
mod walk;

use std::fmt;
use std::path::Path;

use hardal_core::consent::ConsentConfig;
use hardal_core::{
    Condition, ConfigError, Consent, Destination, DestinationPlugin, Template, WhenConfig,
};
use serde_json::{Map, Value};

pub use position::{Position, SourceMap, Target, locate};
pub use schema::{
    BacklogConfig, DeliveryConfig, Durability, NatsConfig, NatsTls, PrivacyConfig, ServerConfig,
    TapConfig,
};

use crate::redact::Redactor;

/// A loaded, validated configuration with its destinations built.
pub struct Config {
    pub destinations: Vec<Box<dyn Destination>>,
    /// Each destination's delivery settings, in the order of `destinations`.
    pub delivery: Vec<DeliveryConfig>,
    /// Each destination's consent settings, in the order of `destinations`: checked before an
    /// event is mapped for it.
    pub consent: Vec<Consent>,
    /// The service of `hardal serve`, when configured.
    pub server: Option<ServerConfig>,
    /// Where `hardal serve` keeps accepted events.
    pub backlog: BacklogConfig,
    /// Erasure settings.
    pub privacy: PrivacyConfig,
    /// Every secret value of the file, to be kept out of anything printed or stored.
    pub redactor: Redactor,
    /// What works but is probably not meant (plain http to another machine).
    pub warnings: Vec<Diagnostic>,
}

impl Config {
    /// Keeps only the destination `id`; `Err` lists the ids there are.
    pub fn select(&mut self, id: &str) -> Result<(), Vec<String>> {
        let ids: Vec<String> = self
            .destinations
            .iter()
            .map(|d| d.id().to_owned())
            .collect();
        let Some(index) = ids.iter().position(|d| d == id) else {
            return Err(ids);
        };
        let destination = self.destinations.swap_remove(index);
        let delivery = self.delivery.swap_remove(index);
        let consent = self.consent.swap_remove(index);
        self.destinations = vec![destination];
        self.delivery = vec![delivery];
        self.consent = vec![consent];
        Ok(())
    }
}

/// One problem in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub pointer: String,
    pub position: Position,
    pub message: String,
}

/// Why a configuration file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{}", render_diagnostics(path, diagnostics))]
    Invalid {
        path: String,
        diagnostics: Vec<Diagnostic>,
    },
}

fn render_diagnostics(path: &str, diagnostics: &[Diagnostic]) -> String {
    let mut text = String::new();
    for d in diagnostics {
        let pointer = if d.pointer.is_empty() {
            "(root)"
        } else {
            &d.pointer
        };
        text.push_str(&format!(
            "{path}:{}:{}: {pointer}: {}\n",
            d.position.line, d.position.column, d.message
        ));
    }
    let count = diagnostics.len();
    text.push_str(&format!(
        "{path}: {count} error{}",
        if count == 1 { "" } else { "s" }
    ));
    text
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.destinations.iter().map(|d| (d.id(), d.kind())))
            .finish()
    }
}

/// Whether `${NAME}` references must be set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Secrets {
    /// Every referenced variable must be set (validate, send, serve).
    Required,
    /// Unset variables read as a placeholder: for commands that never send (render), so that
    /// previewing bodies needs no credentials.
    Unused,
    /// Only the variables the `backlog` names must be set (`hardal dlq`: it reaches the backlog,
    /// a NATS server perhaps, but sends nothing to a destination).
    Backlog,
}

/// What an unset `${NAME}` reads as when secrets are not needed: never sent, never printed.
const UNSET: &str = "unset";

/// Loads a configuration file, reading `${NAME}` from the process environment.
pub fn load_file(path: &Path, secrets: Secrets) -> Result<Config, LoadError> {
    let label = path.display().to_string();
    let source = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
        path: label.clone(),
        source,
    })?;
    let backlog_names = match secrets {
        Secrets::Backlog => serde_json::from_str::<Value>(&source)
            .ok()
            .and_then(|v| v.get("backlog").map(|b| b.to_string()))
            .unwrap_or_default(),
        _ => String::new(),
    };
    let lookup = |name: &str| match secrets {
        Secrets::Required => std::env::var(name).ok(),
        Secrets::Backlog if backlog_names.contains(&format!("${{{name}}}")) => {
            std::env::var(name).ok()
        }
        Secrets::Unused | Secrets::Backlog => {
            Some(std::env::var(name).unwrap_or_else(|_| UNSET.to_owned()))
        }
    };
    load_str(&source, &lookup).map_err(|diagnostics| LoadError::Invalid {
        path: label,
        diagnostics,
    })
}

/// Loads a configuration from its text; `lookup` reads environment variables.
pub fn load_str(
    source: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, Vec<Diagnostic>> {
    // Editors on some systems save UTF-8 with a byte order mark; it carries no meaning.
    let source = source.strip_prefix('\u{feff}').unwrap_or(source);
    let mut value: Value = serde_json::from_str(source).map_err(|e| {
        let message = e.to_string();
        let message = message
            .rsplit_once(" at line ")
            .map_or(message.as_str(), |(m, _)| m);
        vec![Diagnostic {
            pointer: String::new(),
            position: Position {
                line: e.line().max(1),
                column: e.column().max(1),
            },
            message: format!("not valid JSON: {message}"),
        }]
    })?;
    let map = SourceMap::new(source);

    // (pointer, target, message) until positions are looked up at the end.
    let mut problems: Vec<(String, Target, String)> = Vec::new();
    for (pointer, first, _) in map.duplicate_keys() {
        let key = pointer.rsplit('/').next().unwrap_or_default();
        let key = key.replace("~1", "/").replace("~0", "~");
        problems.push((
            pointer.clone(),
            Target::Key,
            format!(
                "duplicate key `{key}` (also at line {}, column {}); a JSON object may name a key once",
                first.line, first.column
            ),
        ));
    }
    let mut secrets = Vec::new();
    let mut env_errors = Vec::new();
    if let Some(Value::Array(destinations)) = value.get_mut("destinations") {
        for (i, destination) in destinations.iter_mut().enumerate() {
            let plugin = destination
                .get("type")
                .and_then(Value::as_str)
                .and_then(DestinationPlugin::find);
            if let Some(plugin) = plugin {
                let schema = schema::kind_schema(plugin);
                let pointer = format!("/destinations/{i}");
                env::resolve(
                    destination,
                    &schema,
                    &pointer,
                    lookup,
                    &mut env_errors,
                    &mut secrets,
                );
                check_templates(destination, &schema, &pointer, &mut env_errors);
            }
        }
    }
    // The runner's own secrets: the ingestion tokens, the backlog's credentials.
    let runner_schema = schema::runner_schema();
    for part in ["server", "backlog"] {
        if let (Some(value), Some(schema)) = (
            value.get_mut(part),
            runner_schema.pointer(&format!("/properties/{part}")),
        ) {
            env::resolve(
                value,
                schema,
                &format!("/{part}"),
                lookup,
                &mut env_errors,
                &mut secrets,
            );
        }
    }
    problems.extend(
        env_errors
            .into_iter()
            .map(|e| (e.pointer, Target::Value, e.message)),
    );
    let schema = schema_problems(&value);

    // Every destination whose part of the file the schema accepts is built (an unset variable
    // or a template error does not stop a build), so that the problems only a build finds are
    // reported together with everyone else's.
    let clean = |pointer: &str| {
        !schema.iter().any(|(p, _, _)| {
            p.strip_prefix(pointer)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        })
    };
    let built = build(&value, &clean);
    let delivery = delivery_settings(&value, &clean);
    let consent = consent_settings(&value, &clean);
    let service = service_settings(&value, &clean);
    problems.extend(schema);
    let mut warnings = Vec::new();
    match (built, delivery, consent, service) {
        (Ok(destinations), Ok(delivery), Ok(consent), Ok((server, backlog, privacy)))
            if problems.is_empty() =>
        {
            // A warning may quote a URL, and a URL may carry a key (GA4's `api_secret`).
            let redactor = Redactor::new(secrets);
            for (i, destination) in destinations.iter().enumerate() {
                if let Some(url) = destination.endpoint()
                    && hardal_core::error::is_plain_http_off_loopback(url)
                {
                    warnings.push((
                        format!("/destinations/{i}"),
                        Target::Value,
                        redactor
                            .redact(&format!(
                                "destination `{}` sends to `{url}` over plain http: its credentials and data travel unencrypted",
                                destination.id()
                            ))
                            .into_owned(),
                    ));
                }
            }
            return Ok(Config {
                destinations,
                delivery,
                consent,
                server,
                backlog,
                privacy,
                redactor,
                warnings: diagnostics(&map, warnings),
            });
        }
        (built, delivery, consent, service) => {
            for errors in [built.err(), delivery.err(), consent.err(), service.err()]
                .into_iter()
                .flatten()
            {
                problems.extend(
                    errors
                        .into_iter()
                        .map(|e| (e.pointer, Target::Value, e.message)),
                );
            }
        }
    }
    Err(diagnostics(&map, problems))
}

/// Problems with their positions, in the order they stand in the file.
fn diagnostics(map: &SourceMap, problems: Vec<(String, Target, String)>) -> Vec<Diagnostic> {
    let offsets: Vec<usize> = problems
        .iter()
        .map(|(pointer, target, _)| map.offset(pointer, *target))
        .collect();
    let positions = map.positions(&offsets);
    let mut diagnostics: Vec<Diagnostic> = problems
        .into_iter()
        .zip(positions)
        .map(|((pointer, _, message), position)| Diagnostic {
            pointer,
            position,
            message,
        })
        .collect();
    diagnostics.sort_by(|a, b| (a.position, &a.pointer).cmp(&(b.position, &b.pointer)));
    diagnostics.dedup();
    diagnostics
}

/// The service's settings and the backlog's, when the schema accepted them.
fn service_settings(
    value: &Value,
    clean: &dyn Fn(&str) -> bool,
) -> Result<(Option<ServerConfig>, BacklogConfig, PrivacyConfig), Vec<ConfigError>> {
    let mut errors = Vec::new();
    let mut server = None;
    let mut backlog = BacklogConfig::default();
    let mut privacy = PrivacyConfig::default();
    if let Some(found) = value.get("privacy").filter(|_| clean("/privacy")) {
        match serde_json::from_value(found.clone()) {
            Ok(parsed) => privacy = parsed,
            Err(e) => errors.push(ConfigError::new("/privacy", e.to_string())),
        }
    }
    if let Some(found) = value.get("server").filter(|_| clean("/server")) {
        match serde_json::from_value::<ServerConfig>(found.clone()) {
            Ok(parsed) => {
                if let Some(problem) = schema::listen_problem(&parsed.listen) {
                    errors.push(ConfigError::new("/server/listen", problem));
                }
                if let Some(problem) = parsed
                    .tap
                    .as_ref()
                    .and_then(|tap| schema::listen_problem(&tap.listen))
                {
                    errors.push(ConfigError::new("/server/tap/listen", problem));
                }
                errors.extend(tokens_shared_with_ingestion(&parsed));
                server = Some(parsed);
            }
            Err(e) => errors.push(ConfigError::new("/server", e.to_string())),
        }
    }
    if let Some(found) = value.get("backlog").filter(|_| clean("/backlog")) {
        match serde_json::from_value(found.clone()) {
            Ok(parsed) => backlog = parsed,
            Err(e) => errors.push(ConfigError::new("/backlog", e.to_string())),
        }
    }
    if let BacklogConfig::Sqlite { path, .. } = &backlog
        && let Err(problem) = crate::backlog::sqlite::check_path(Path::new(path))
    {
        errors.push(ConfigError::new("/backlog/path", problem));
    }
    if errors.is_empty() {
        Ok((server, backlog, privacy))
    } else {
        Err(errors)
    }
}

/// Tap tokens and erasure tokens that are also ingestion tokens: whoever may post events could
/// then read every event, or have any user erased (unset secrets, empty where they are not
/// needed, are not compared).
fn tokens_shared_with_ingestion(server: &ServerConfig) -> Vec<ConfigError> {
    let tap = server
        .tap
        .as_ref()
        .map_or(&[][..], |tap| &tap.auth_tokens[..]);
    let lists = [
        (
            tap,
            "/server/tap/auth_tokens",
            "could read every event through the tap; give the tap its own token",
        ),
        (
            &server.privacy_tokens[..],
            "/server/privacy_tokens",
            "could have any user erased; give erasure requests their own token",
        ),
    ];
    let mut errors = Vec::new();
    for (tokens, pointer, why) in lists {
        for (i, token) in tokens.iter().enumerate() {
            if !token.expose().is_empty()
                && server
                    .auth_tokens
                    .iter()
                    .any(|ingest| ingest.expose() == token.expose())
            {
                errors.push(ConfigError::new(
                    format!("{pointer}/{i}"),
                    format!("this token is also one of `server.auth_tokens`: whoever may post events {why}"),
                ));
            }
        }
    }
    errors
}

/// The delivery settings of every destination: the file's `delivery`, with the destination's
/// own `delivery` members on top.
fn delivery_settings(
    value: &Value,
    clean: &dyn Fn(&str) -> bool,
) -> Result<Vec<DeliveryConfig>, Vec<ConfigError>> {
    let empty = Map::new();
    let top = value
        .get("delivery")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let entries = value["destinations"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut settings = Vec::new();
    let mut errors = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let pointer = format!("/destinations/{i}/delivery");
        if !clean("/delivery") || !clean(&pointer) {
            continue;
        }
        let mut merged = top.clone();
        if let Some(own) = entry.get("delivery").and_then(Value::as_object) {
            merged.extend(own.clone());
        }
        match serde_json::from_value::<DeliveryConfig>(Value::Object(merged)) {
            Ok(delivery) => settings.push(delivery),
            // The schema bounds every number, so this is a safety net, not a path users meet.
            Err(e) => errors.push(ConfigError::new(pointer, e.to_string())),
        }
    }
    if errors.is_empty() {
        Ok(settings)
    } else {
        Err(errors)
    }
}

/// The consent settings of every destination: its `consent` member compiled, or the default of
/// its kind's purpose (off; the schema requires `consent` of the kinds whose default it is not
/// safe to assume).
fn consent_settings(
    value: &Value,
    clean: &dyn Fn(&str) -> bool,
) -> Result<Vec<Consent>, Vec<ConfigError>> {
    let entries = value["destinations"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut settings = Vec::new();
    let mut errors = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let pointer = format!("/destinations/{i}/consent");
        let plugin = entry["type"].as_str().and_then(DestinationPlugin::find);
        let Some(plugin) = plugin.filter(|_| clean(&pointer)) else {
            continue;
        };
        let Some(member) = entry.get("consent") else {
            settings.push(Consent::off(plugin.purpose));
            continue;
        };
        let compiled = serde_json::from_value::<ConsentConfig>(member.clone())
            .map_err(|e| vec![ConfigError::new("", e.to_string())])
            .and_then(|config| Consent::compile(&config, plugin.purpose));
        match compiled {
            Ok(consent) => settings.push(consent),
            Err(e) => errors.extend(hardal_core::error::under_all(e, &pointer)),
        }
    }
    if errors.is_empty() {
        Ok(settings)
    } else {
        Err(errors)
    }
}

/// Compiles every template and condition of a destination (found by the schema annotations
/// `x-hardal-template` and `x-hardal-condition`), so their errors are reported together with the
/// schema's, before the destination is built.
fn check_templates(
    destination: &mut Value,
    schema: &Value,
    pointer: &str,
    errors: &mut Vec<ConfigError>,
) {
    walk::walk(
        destination,
        &[schema],
        pointer,
        &mut |value, schemas, pointer| {
            if walk::annotated(schemas, "x-hardal-template") {
                if let Err(e) = Template::compile(value) {
                    errors.extend(hardal_core::error::under_all(e, pointer));
                }
                return false;
            }
            if walk::annotated(schemas, "x-hardal-condition") {
                if let Ok(when) = serde_json::from_value::<WhenConfig>(value.clone())
                    && let Err(e) = Condition::compile(&when)
                {
                    errors.extend(hardal_core::error::under_all(e, pointer));
                }
                return false;
            }
            true
        },
    );
}

/// Checks the configuration against the generated schema; messages for the common mistakes
/// (unknown fields, unknown kinds) are rewritten to say what would be right.
fn schema_problems(value: &Value) -> Vec<(String, Target, String)> {
    schema_problems_under(&schema::runner_schema(), value)
}

fn schema_problems_under(schema: &Value, value: &Value) -> Vec<(String, Target, String)> {
    let validator = jsonschema::validator_for(schema).expect("the generated schema is valid");
    let mut problems = Vec::new();
    for error in validator.iter_errors(value) {
        let pointer = error.instance_path().as_str().to_owned();
        match error.kind() {
            jsonschema::error::ValidationErrorKind::AdditionalProperties { unexpected } => {
                let parent = error
                    .schema_path()
                    .as_str()
                    .rsplit_once('/')
                    .map_or("", |(p, _)| p);
                let known: Vec<&str> = schema
                    .pointer(parent)
                    .and_then(|s| s.get("properties"))
                    .and_then(Value::as_object)
                    .map(|p| p.keys().map(String::as_str).collect())
                    .unwrap_or_default();
                for key in unexpected {
                    let member = format!("{pointer}/{}", key.replace('~', "~0").replace('/', "~1"));
                    problems.push((member, Target::Key, unknown_field(key, &known)));
                }
            }
            jsonschema::error::ValidationErrorKind::Pattern { .. }
                if pointer.starts_with("/destinations/") && pointer.ends_with("/id") =>
            {
                let found = value
                    .pointer(&pointer)
                    .map_or(String::new(), Value::to_string);
                problems.push((
                    pointer,
                    Target::Value,
                    format!("destination id {found} {}", schema::ID_RULE),
                ));
            }
            // A marketing or analytics destination without `consent`: the fix, at the member
            // that is missing (its position is the destination's).
            jsonschema::error::ValidationErrorKind::Required { property }
                if property.as_str() == Some("consent")
                    && pointer.starts_with("/destinations/") =>
            {
                let kind = value
                    .pointer(&format!("{pointer}/type"))
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                if let Some(plugin) = DestinationPlugin::find(kind) {
                    problems.push((
                        format!("{pointer}/consent"),
                        Target::Value,
                        schema::missing_consent(kind, plugin.purpose),
                    ));
                }
            }
            jsonschema::error::ValidationErrorKind::Enum { .. }
                if pointer.starts_with("/destinations/") && pointer.ends_with("/type") =>
            {
                let kinds: Vec<&str> = DestinationPlugin::all().iter().map(|p| p.kind).collect();
                let found = value
                    .pointer(&pointer)
                    .map_or(String::new(), Value::to_string);
                problems.push((
                    pointer,
                    Target::Value,
                    format!(
                        "unknown destination type {found}; known kinds: {}",
                        kinds.join(", ")
                    ),
                ));
            }
            jsonschema::error::ValidationErrorKind::Enum { options } => {
                let found = value
                    .pointer(&pointer)
                    .map_or(String::new(), Value::to_string);
                let options: Vec<String> = options
                    .as_array()
                    .map(|o| o.iter().map(Value::to_string).collect())
                    .unwrap_or_default();
                problems.push((
                    pointer,
                    Target::Value,
                    format!("{found} is not one of {}", options.join(", ")),
                ));
            }
            // The backlog is one of several kinds; what is wrong is said against the kind its
            // `type` names, not as "valid under none of them".
            jsonschema::error::ValidationErrorKind::OneOfNotValid { .. }
                if pointer == "/backlog" =>
            {
                let kinds = schema
                    .pointer("/properties/backlog/oneOf")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                let kind_of = |variant: &Value| variant.pointer("/properties/type/const").cloned();
                let wanted = value.pointer("/backlog/type").cloned();
                match kinds
                    .iter()
                    .find(|v| kind_of(v).is_some() && kind_of(v) == wanted)
                {
                    Some(variant) => {
                        let mut narrowed = schema.clone();
                        narrowed["properties"]["backlog"] = variant.clone();
                        problems.extend(
                            schema_problems_under(&narrowed, value)
                                .into_iter()
                                .filter(|(p, _, _)| p.starts_with("/backlog")),
                        );
                    }
                    None => {
                        let names: Vec<String> = kinds
                            .iter()
                            .filter_map(kind_of)
                            .map(|k| k.to_string())
                            .collect();
                        problems.push((
                            format!("{pointer}/type"),
                            Target::Value,
                            format!(
                                "unknown backlog type {}; known: {}",
                                wanted.map_or("(none)".into(), |w| w.to_string()),
                                names.join(", ")
                            ),
                        ));
                    }
                }
            }
            _ => problems.push((pointer, Target::Value, error.to_string())),
        }
    }
    // One message per value is enough: a wrong type also fails that value's `enum` or `pattern`.
    let mut seen = std::collections::HashSet::new();
    problems.retain(|(pointer, target, _)| seen.insert((pointer.clone(), *target == Target::Key)));
    problems
}

fn unknown_field(key: &str, known: &[&str]) -> String {
    let closest = known
        .iter()
        .map(|k| (strsim::jaro_winkler(key, k), *k))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0));
    match closest {
        Some((_, suggestion)) => format!("unknown field `{key}`; did you mean `{suggestion}`?"),
        None if known.is_empty() => format!("unknown field `{key}`"),
        None => format!(
            "unknown field `{key}`; expected one of: {}",
            known.join(", ")
        ),
    }
}

/// Builds every destination whose part of the file is `clean` (schema-valid).
fn build(
    value: &Value,
    clean: &dyn Fn(&str) -> bool,
) -> Result<Vec<Box<dyn Destination>>, Vec<ConfigError>> {
    let mut errors = Vec::new();
    let mut built: Vec<Box<dyn Destination>> = Vec::new();
    let mut ids = std::collections::HashSet::new();
    let entries = value["destinations"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    for (i, entry) in entries.iter().enumerate() {
        let pointer = format!("/destinations/{i}");
        if !clean(&pointer) {
            continue;
        }
        let id = entry["id"].as_str().unwrap_or_default();
        let kind = entry["type"].as_str().unwrap_or_default();
        if !ids.insert(id) {
            errors.push(ConfigError::new(
                format!("{pointer}/id"),
                format!("destination id `{id}` is used twice"),
            ));
        }
        let Some(plugin) = DestinationPlugin::find(kind) else {
            continue;
        };
        match (plugin.build)(id, entry) {
            Ok(destination) => built.push(destination),
            Err(e) => errors.extend(hardal_core::error::under_all(e, &pointer)),
        }
    }
    if errors.is_empty() {
        Ok(built)
    } else {
        Err(errors)
    }
}
