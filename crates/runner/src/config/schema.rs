//! The runner configuration's JSON Schema: the runner's own fields, generated from `RunnerConfig`
//! by schemars, with one `if type == kind then <kind's schema>` branch per registered destination
//! kind. `cargo xtask schemas` writes these to `schemas/`; a test keeps the files fresh.

use std::borrow::Cow;

use hardal_core::DestinationPlugin;
use hardal_core::consent::{ConsentConfig, Purpose};
use serde_json::{Map, Value, json};

/// The hardal configuration file.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunnerConfig {
    /// The JSON Schema this file follows, for editors (e.g. `./schemas/hardal.schema.json`);
    /// hardal reads it as a comment.
    #[serde(rename = "$schema", default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub schema: Option<String>,
    /// Where events go. Every event is offered to every destination.
    #[schemars(length(min = 1))]
    pub destinations: Vec<DestinationEntry>,
    /// How events are delivered: batching time, concurrency, retries (for every destination;
    /// each may change them in its own `delivery`).
    #[serde(default)]
    pub delivery: DeliveryConfig,
    /// The service of `hardal serve`: where it listens and who may post events to it.
    pub server: Option<ServerConfig>,
    /// Where events accepted by `hardal serve` wait until every destination is done with them.
    #[serde(default)]
    pub backlog: BacklogConfig,
    /// Erasure requests (`hardal forget`, `POST /v1/privacy/erasure`): how long erased users
    /// stay suppressed.
    #[serde(default)]
    pub privacy: PrivacyConfig,
}

/// Erasure requests.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PrivacyConfig {
    /// For how many days an erased user's new events are still dropped at ingestion (their
    /// identifiers' hashes kept in the suppression list). Absent: for ever.
    #[schemars(range(min = 1, max = 36_500))]
    pub suppression_days: Option<u32>,
}

/// The ingestion service of `hardal serve`.
#[derive(Debug, Clone, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// The address and port to listen on, e.g. `127.0.0.1:8080` (put a TLS-terminating proxy in
    /// front of it for traffic from other machines).
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Bearer tokens that may post events (`Authorization: Bearer …`); several, so a token can be
    /// rotated without downtime. Usually `${HARDAL_INGEST_TOKEN}`.
    #[schemars(length(min = 1))]
    pub auth_tokens: Vec<hardal_core::Secret>,
    /// Bearer tokens that may post erasure requests to `/v1/privacy/erasure` and read their
    /// state; none of them may be an ingestion token. Absent or empty: the route answers 404.
    #[serde(default)]
    pub privacy_tokens: Vec<hardal_core::Secret>,
    /// The largest request body in bytes, also after gzip decompression.
    #[serde(default = "default_max_body_bytes")]
    #[schemars(range(min = 1024, max = 100_000_000))]
    pub max_body_bytes: usize,
    /// The largest single event in bytes.
    #[serde(default = "default_max_event_bytes")]
    #[schemars(range(min = 64, max = 100_000_000))]
    pub max_event_bytes: usize,
    /// For how long (seconds) an event's identity (its `id`, or a hash of its content) is
    /// remembered, so that a producer's retry of an accepted event is not stored twice (0: off).
    #[serde(default = "default_dedup_window")]
    #[schemars(range(min = 0, max = 2_592_000))]
    pub dedup_window_seconds: u64,
    /// The longest wait (seconds) between probes of a destination paused by 401/403: it is tried
    /// with one request, sooner at first, and resumes by itself when the probe succeeds.
    #[serde(default = "default_probe_interval")]
    #[schemars(range(min = 1, max = 86_400))]
    pub probe_interval_seconds: u64,
    /// Seconds a client has to send a request's head (request line and headers), counted also
    /// while a kept-alive connection waits for its next request; a connection that takes longer
    /// is closed.
    #[serde(default = "default_header_read_timeout")]
    #[schemars(range(min = 1, max = 300))]
    pub header_read_timeout_seconds: u64,
    /// Seconds a client has to send a request's whole body; a body still incomplete then is
    /// answered 408 and its connection closed.
    #[serde(default = "default_body_read_timeout")]
    #[schemars(range(min = 1, max = 3600))]
    pub body_read_timeout_seconds: u64,
    /// The most connections open at once (health checks and scrapes count too); more wait in
    /// the operating system's queue until one closes. The process needs as many file
    /// descriptors, and some more (`LimitNOFILE` under systemd).
    #[serde(default = "default_max_connections")]
    #[schemars(range(min = 1, max = 1_000_000))]
    pub max_connections: usize,
    /// `hardal tap`: watching what the service does with events as they pass (absent: off).
    pub tap: Option<TapConfig>,
}

fn default_header_read_timeout() -> u64 {
    10
}

fn default_body_read_timeout() -> u64 {
    30
}

fn default_max_connections() -> usize {
    4096
}

/// Why `listen` cannot be bound, if it cannot: an IP address and port, or a host name and port
/// (resolved when the service starts), the port from 0 to 65535.
pub fn listen_problem(listen: &str) -> Option<String> {
    if listen.parse::<std::net::SocketAddr>().is_ok() {
        return None;
    }
    let host_name = |host: &str| {
        !host.is_empty()
            && host.len() <= 253
            && host.split('.').all(|label| {
                !label.is_empty()
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            })
    };
    match listen.rsplit_once(':') {
        Some((host, port))
            if host_name(host)
                && port.bytes().all(|b| b.is_ascii_digit())
                && port.parse::<u16>().is_ok() =>
        {
            None
        }
        _ => Some(format!(
            "`{listen}` is not an address to listen on: write host:port with a port from 0 to 65535, e.g. `127.0.0.1:8080`, `0.0.0.0:8080` or `[::1]:8080`"
        )),
    }
}

/// Where `hardal tap` connects, and who may. Whoever taps sees events as they arrive, personal
/// data included: its own tokens, and this machine only unless `listen` says otherwise.
#[derive(Debug, Clone, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TapConfig {
    /// Whether the tap listens (`false` keeps the settings but opens no port).
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// The address and port the tap listens on, apart from ingestion's: loopback by default, so
    /// only this machine can tap.
    #[serde(default = "default_tap_listen")]
    pub listen: String,
    /// Bearer tokens that may tap (`HARDAL_TAP_TOKEN` for `hardal tap`); ingestion's tokens
    /// are not accepted here. Usually `${HARDAL_TAP_TOKEN}`.
    #[schemars(length(min = 1))]
    pub auth_tokens: Vec<hardal_core::Secret>,
    /// Messages held for each tap whose client reads slower than events pass; beyond them,
    /// messages are dropped (and the client told how many), so a slow tap never slows the
    /// service.
    #[serde(default = "default_tap_buffer")]
    #[schemars(range(min = 16, max = 1_000_000))]
    pub buffer_messages: usize,
    /// The most taps connected at once.
    #[serde(default = "default_tap_clients")]
    #[schemars(range(min = 1, max = 64))]
    pub max_clients: usize,
}

fn default_true() -> bool {
    true
}

fn default_tap_listen() -> String {
    "127.0.0.1:8081".to_owned()
}

fn default_tap_buffer() -> usize {
    1024
}

fn default_tap_clients() -> usize {
    4
}

fn default_listen() -> String {
    "127.0.0.1:8080".to_owned()
}

fn default_max_body_bytes() -> usize {
    5_000_000
}

fn default_max_event_bytes() -> usize {
    1_000_000
}

fn default_dedup_window() -> u64 {
    86_400
}

fn default_probe_interval() -> u64 {
    60
}

/// Where accepted events wait.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum BacklogConfig {
    /// An SQLite file on this machine (the default).
    Sqlite {
        /// The spool file.
        #[serde(default = "default_spool_path")]
        path: String,
        /// `full` (the default): an event is on disk (fsync) before it is acknowledged, so a
        /// power cut loses nothing acknowledged. `normal`: acknowledged once the operating system
        /// has it; a crash of hardal loses nothing, a power cut can lose the last moments.
        #[serde(default)]
        durability: Durability,
        /// The most bytes the spool may hold; at the limit, ingestion answers 503 with
        /// Retry-After until delivery makes room.
        #[serde(default = "default_spool_max_bytes")]
        #[schemars(range(min = 1_000_000, max = 10_000_000_000_000_u64))]
        max_bytes: u64,
    },
    /// NATS JetStream: a replicated stream shared by many ingestion nodes and delivery workers.
    Nats(Box<NatsConfig>),
}

/// A NATS JetStream backlog. Events are published on subjects partitioned by a hash of their user;
/// each partition is delivered by one worker at a time (a lease in a JetStream key-value
/// bucket), so a user's events keep their order across workers.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NatsConfig {
    /// The servers to connect to, e.g. `["nats://10.0.0.1:4222", "nats://10.0.0.2:4222"]`.
    #[schemars(length(min = 1))]
    pub servers: Vec<String>,
    /// A token to authenticate with (a secret, e.g. `${NATS_TOKEN}`).
    pub token: Option<hardal_core::Secret>,
    /// A user name to authenticate with, together with `password`.
    pub user: Option<String>,
    /// The password of `user` (a secret).
    pub password: Option<hardal_core::Secret>,
    /// A NATS credentials file (JWT and seed) to authenticate with.
    pub credentials_file: Option<String>,
    /// TLS to the servers.
    pub tls: Option<NatsTls>,
    /// The JetStream stream of events; the dead letters go to `<stream>_DLQ`, the leases to the
    /// key-value bucket `<stream>_LEASES`.
    #[serde(default = "default_nats_stream")]
    #[schemars(regex(pattern = r"^[A-Za-z0-9_-]+$"))]
    pub stream: String,
    /// The first token of every subject hardal publishes on (`<prefix>.events.<partition>`).
    #[serde(default = "default_nats_prefix")]
    #[schemars(regex(pattern = r"^[A-Za-z0-9_-]+$"))]
    pub subject_prefix: String,
    /// Copies of each stream on a JetStream cluster (1, 3 or 5).
    #[serde(default = "default_replicas")]
    #[schemars(range(min = 1, max = 5))]
    pub replicas: usize,
    /// Partitions of the user space: the most workers that can deliver to one destination at
    /// once. Fixed once the stream holds events.
    #[serde(default = "default_partitions")]
    #[schemars(range(min = 1, max = 1024))]
    pub partitions: u32,
    /// How many times an event may be delivered to workers, counting the first and each time
    /// the worker holding it stopped before the destination's verdict (events handed back in
    /// good order, on SIGTERM or a hand-over, do not count), before it goes to the dead letters
    /// instead of being sent once more; -1 (or 0): without end.
    #[serde(default = "default_max_deliver")]
    #[schemars(range(min = -1, max = 1_000_000))]
    pub max_deliver: i64,
    /// Seconds a worker has to acknowledge an event (it extends this while the event waits for a
    /// retry); after a worker dies, its events are delivered again this long after its last sign.
    #[serde(default = "default_ack_wait")]
    #[schemars(range(min = 1, max = 3600))]
    pub ack_wait_seconds: u64,
    /// Seconds a worker's lease on a partition lasts without renewal (it renews three times as
    /// often): how soon the partitions of a dead worker move to the others.
    #[serde(default = "default_lease")]
    #[schemars(range(min = 1, max = 3600))]
    pub lease_seconds: u64,
    /// The most bytes the event stream may hold; at the limit, ingestion answers 503.
    #[serde(default = "default_spool_max_bytes")]
    #[schemars(range(min = 1_000_000, max = 10_000_000_000_000_u64))]
    pub max_bytes: u64,
    /// Seconds in which a request published again is stored once, whichever node it reached
    /// (JetStream recognises its messages: their ids derive from their events' identities; a
    /// node also leaves out events it stored itself within the window); with NATS this replaces
    /// `server.dedup_window_seconds`. JetStream keeps every message id of the window in the
    /// memory of the stream's servers (about 100 bytes each), so it is short by default.
    #[serde(default = "default_duplicate_window")]
    #[schemars(range(min = 1, max = 86_400))]
    pub duplicate_window_seconds: u64,
}

fn default_duplicate_window() -> u64 {
    120
}

/// TLS to the NATS servers.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NatsTls {
    /// Require TLS even if the server does not ask for it.
    #[serde(default)]
    pub required: bool,
    /// A PEM file of certificate authorities to trust.
    pub ca_file: Option<String>,
    /// A client certificate (PEM) for mutual TLS, with `key_file`.
    pub cert_file: Option<String>,
    /// The client certificate's private key (PEM).
    pub key_file: Option<String>,
}

fn default_nats_stream() -> String {
    "HARDAL_EVENTS".to_owned()
}

fn default_nats_prefix() -> String {
    "hardal".to_owned()
}

fn default_replicas() -> usize {
    1
}

fn default_partitions() -> u32 {
    16
}

fn default_max_deliver() -> i64 {
    -1
}

fn default_ack_wait() -> u64 {
    30
}

fn default_lease() -> u64 {
    15
}

impl Default for BacklogConfig {
    fn default() -> Self {
        BacklogConfig::Sqlite {
            path: default_spool_path(),
            durability: Durability::default(),
            max_bytes: default_spool_max_bytes(),
        }
    }
}

/// How durable an acknowledged event is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Durability {
    #[default]
    Full,
    Normal,
}

fn default_spool_path() -> String {
    "hardal-spool.db".to_owned()
}

fn default_spool_max_bytes() -> u64 {
    10_000_000_000
}

/// Delivery settings. At the top level they apply to every destination; a destination's own
/// `delivery` object changes them for that destination only. Rate limits and batch sizes are the
/// destinations' own (e.g. Insider's `requests_per_minute`).
#[derive(Debug, Clone, PartialEq, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct DeliveryConfig {
    /// Requests in flight at once, per destination.
    #[schemars(range(min = 1, max = 256))]
    pub concurrency: usize,
    /// How long a partly filled batch waits for more events before it is sent, in milliseconds.
    #[schemars(range(min = 0, max = 60_000))]
    pub linger_ms: u64,
    /// Attempts per record, the first send included, before its event is dead-lettered.
    #[schemars(range(min = 1, max = 1000))]
    pub max_attempts: u32,
    /// Seconds after a record's first attempt after which it is dead-lettered instead of retried
    /// (at most 30 days); time its destination spent paused (401/403) is not counted.
    #[schemars(range(min = 0, max = 2_592_000))]
    pub max_retry_seconds: u64,
    /// The first retry delay in milliseconds; it doubles with every attempt (full jitter) unless
    /// the destination answered with Retry-After.
    #[schemars(range(min = 0, max = 3_600_000))]
    pub backoff_initial_ms: u64,
    /// The longest retry delay in milliseconds (at most a day).
    #[schemars(range(min = 0, max = 86_400_000))]
    pub backoff_max_ms: u64,
    /// The longest wait for one response, in milliseconds (above zero, at most an hour); a
    /// request that takes longer is retried.
    #[schemars(range(min = 1, max = 3_600_000))]
    pub request_timeout_ms: u64,
    /// Most records held in memory per destination; reading waits while a destination is this
    /// far behind, so memory stays bounded however large the input.
    #[schemars(range(min = 1, max = 10_000_000))]
    pub max_pending_records: usize,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            concurrency: 4,
            linger_ms: 200,
            max_attempts: 10,
            max_retry_seconds: 900,
            backoff_initial_ms: 500,
            backoff_max_ms: 60_000,
            request_timeout_ms: 30_000,
            max_pending_records: 20_000,
        }
    }
}

/// One destination: `id`, `type` (a registered kind) and the kind's own fields.
#[derive(Debug, serde::Deserialize)]
pub struct DestinationEntry {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
}

const ID_DESCRIPTION: &str = "A name for this destination, unique in the file; used in logs, dead letters and `--destination`. Only letters, digits, `_` and `-`, up to 64, starting with a letter or digit.";
/// What every backlog accepts in a name made of the id: NATS consumer and subject names cannot
/// hold `.`, `*`, `>` or whitespace, and a leading `-` would read as a flag after `--destination`.
const ID_PATTERN: &str = "^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$";
/// The rule of `ID_PATTERN` in words, for the message when an id breaks it.
pub const ID_RULE: &str = "may hold only letters, digits, `_` and `-` (up to 64, starting with a letter or digit): it names NATS consumers and subjects, which cannot hold `.`, `*`, `>` or spaces";

impl schemars::JsonSchema for DestinationEntry {
    fn schema_name() -> Cow<'static, str> {
        "Destination".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let plugins = DestinationPlugin::all();
        let kinds: Vec<&str> = plugins.iter().map(|p| p.kind).collect();
        let branches: Vec<Value> = plugins
            .iter()
            .map(|plugin| {
                json!({
                    "if": {"properties": {"type": {"const": plugin.kind}}, "required": ["type"]},
                    "then": kind_schema(plugin),
                })
            })
            .collect();
        let schema = json!({
            "type": "object",
            "description": "A destination: `id`, `type` and the fields of that type.",
            "required": ["id", "type"],
            "properties": {
                "id": {"type": "string", "pattern": ID_PATTERN, "description": ID_DESCRIPTION},
                "type": {"enum": kinds, "description": "The destination kind; `hardal list` shows them."},
            },
            "allOf": branches,
        });
        schemars::Schema::try_from(schema).expect("an object is a schema")
    }
}

/// A kind's own schema with the runner's `id`, `type`, `delivery` and `consent` members added,
/// so that its `additionalProperties: false` still accepts them (`consent` is required of
/// marketing and analytics kinds).
pub fn kind_schema(plugin: &DestinationPlugin) -> Value {
    let mut schema = (plugin.config_schema)().to_value();
    let object = schema
        .as_object_mut()
        .expect("destination configs are objects");
    object.remove("$schema");
    object.insert("title".into(), Value::String(plugin.kind.to_owned()));
    object.insert(
        "description".into(),
        Value::String(plugin.description.to_owned()),
    );
    let properties = object
        .entry("properties")
        .or_insert_with(|| Value::Object(Map::new()))
        .as_object_mut()
        .expect("properties is an object");
    properties.insert(
        "id".into(),
        json!({"type": "string", "pattern": ID_PATTERN, "description": ID_DESCRIPTION}),
    );
    properties.insert(
        "type".into(),
        json!({"const": plugin.kind, "description": "The destination kind."}),
    );
    let mut delivery = hardal_core::registry::schema_for::<DeliveryConfig>().to_value();
    if let Some(object) = delivery.as_object_mut() {
        object.remove("$schema");
        object.remove("title");
        object.insert(
            "description".into(),
            Value::String(
                "This destination's own delivery settings, on top of the file's `delivery`.".into(),
            ),
        );
    }
    properties.insert("delivery".into(), delivery);
    properties.insert("consent".into(), consent_schema(plugin.purpose));
    if plugin.purpose.consent_must_be_configured() {
        object
            .entry("required")
            .or_insert_with(|| Value::Array(Vec::new()))
            .as_array_mut()
            .expect("required is an array")
            .push(json!("consent"));
    }
    schema
}

/// The schema of a destination's `consent` member, its description saying the kind's default.
fn consent_schema(purpose: Purpose) -> Value {
    let mut consent = hardal_core::registry::schema_for::<ConsentConfig>().to_value();
    if let Some(object) = consent.as_object_mut() {
        object.remove("$schema");
        object.remove("title");
        let default = if purpose.consent_must_be_configured() {
            format!(
                "Required for {} destinations: `{{\"mode\": \"required\"}}` forwards only events that carry consent, as Hardal's Consent Mode does; `{{\"mode\": \"off\"}}` forwards every event.",
                purpose.as_str()
            )
        } else {
            "Without it, every event is forwarded (consent mode off, as Hardal's custom webhooks)."
                .to_owned()
        };
        object.insert(
            "description".into(),
            Value::String(format!(
                "Consent Mode: whether this destination forwards only events that carry the user's consent. {default}"
            )),
        );
    }
    consent
}

/// What a marketing or analytics destination without `consent` is told: what to add.
pub fn missing_consent(kind: &str, purpose: Purpose) -> String {
    format!(
        "`{kind}` destinations ({}) must say what they do with consent: add `\"consent\": {{\"mode\": \"required\"}}` to forward only events that carry consent (`properties.consent` or `consent` is \"true\"), as Hardal's Consent Mode does, or `\"consent\": {{\"mode\": \"off\"}}` to forward every event, as hardal did before consent mode",
        purpose.as_str()
    )
}

/// The schema of the whole configuration file.
pub fn runner_schema() -> Value {
    let schema = hardal_core::registry::schema_for::<RunnerConfig>().to_value();
    document(schema, "hardal.schema.json", "hardal configuration")
}

/// The schema of one kind as a standalone document (what `hardal schema --kind` prints).
pub fn standalone_kind_schema(plugin: &DestinationPlugin) -> Value {
    document(
        kind_schema(plugin),
        &format!("{}.schema.json", plugin.kind),
        plugin.kind,
    )
}

/// A schema as a document of its own: the dialect, an `$id` and a `title` first, where editors
/// and readers look. The `$id` is a URN, an identity that claims no location, because the
/// schemas are published nowhere but in `schemas/` (editors are pointed at those files).
fn document(schema: Value, file: &str, title: &str) -> Value {
    let mut head = Map::new();
    head.insert(
        "$schema".into(),
        json!("https://json-schema.org/draft/2020-12/schema"),
    );
    head.insert("$id".into(), json!(format!("urn:hardal:schemas:{file}")));
    head.insert("title".into(), json!(title));
    if let Value::Object(body) = schema {
        for (key, value) in body {
            head.entry(key).or_insert(value);
        }
    }
    Value::Object(head)
}

/// Every schema file of `schemas/`, as (file name, pretty JSON with a final newline).
pub fn schema_files() -> Vec<(String, String)> {
    let pretty = |v: &Value| {
        format!(
            "{}\n",
            serde_json::to_string_pretty(v).expect("serializable")
        )
    };
    let mut files = vec![("hardal.schema.json".to_owned(), pretty(&runner_schema()))];
    for plugin in DestinationPlugin::all() {
        files.push((
            format!("{}.schema.json", plugin.kind),
            pretty(&standalone_kind_schema(plugin)),
        ));
    }
    files
}
