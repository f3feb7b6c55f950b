//! The destination contract: a destination maps one event into records, states its batch limits
//! (and, when it needs more, assembles requests with its own [`Batcher`]), encodes a batch of
//! records into an HTTP request and judges the response into one verdict per record; it may also
//! offer the requests that erase a user (`erasure`, `judge_erasure`). It never sleeps, retries,
//! spawns or touches the network; the runner does all of that, once, for every destination.

use std::borrow::Cow;
use std::time::{Duration, SystemTime};

use crate::consent::ConsentState;
use crate::erasure::{Erasure, Identifiers};
use crate::error::MappingError;
use crate::event::Event;
use crate::secret::Secret;

/// A destination built from its configuration. Implementations are pure: the same event always
/// maps to the same records, and the same response always gets the same verdicts.
pub trait Destination: Send + Sync + 'static {
    /// The destination's `id` from the runner configuration.
    fn id(&self) -> &str;

    /// The registered kind, e.g. `insider` or `custom_api`.
    fn kind(&self) -> &'static str;

    /// Maps one event. An error is a per-event rejection (never retried): the event's data cannot
    /// become a request this destination's API would accept. `context` carries what the runner
    /// knows and core must not read for itself (the current time).
    fn map(&self, event: &Event, context: &MapContext) -> Result<Mapped, MappingError>;

    /// How many records, and how many body bytes, one request may carry.
    fn batch_limits(&self) -> BatchLimits;

    /// The exact size in bytes of the body `encode` produces for `records` records whose payloads
    /// add up to `payload_bytes`. The runner batches by it, so it must never undercount.
    fn body_size(&self, records: usize, payload_bytes: usize) -> usize;

    /// Whether a request holding `records` records with `payload_bytes` of payload can take one
    /// more record of `next` bytes without passing either limit.
    fn fits(&self, records: usize, payload_bytes: usize, next: usize) -> bool {
        let limits = self.batch_limits();
        records < limits.max_records
            && self.body_size(records + 1, payload_bytes + next) <= limits.max_bytes
    }

    /// A fresh batcher for one request. The default, [`LimitsBatcher`], applies [`fits`]
    /// (`batch_limits` and `body_size`) and the records' batch keys; a destination whose requests
    /// have other limits (per-user requests, a count of items inside records) gives its own.
    ///
    /// [`fits`]: Destination::fits
    fn batcher(&self) -> Box<dyn Batcher + '_> {
        Box::new(LimitsBatcher::new(self))
    }

    /// The request that delivers `records` (never empty; the records a batcher took, in order:
    /// this order is the request's layout, which `judge` gets back). The body must be
    /// byte-identical for the same records whatever the `context`; only headers (signatures,
    /// freshness) may depend on it.
    fn encode(&self, records: &[&Record], context: &SendContext) -> HttpRequest;

    /// One verdict per record, in the order of `records` (the same slice `encode` got, so a
    /// destination can map per-record errors by position or by payload).
    fn judge(&self, records: &[&Record], response: &HttpResponse) -> Vec<Verdict>;

    /// Requests per minute the destination's API allows, if it states a limit.
    fn requests_per_minute(&self) -> Option<u32> {
        None
    }

    /// The URL every request goes to, when it is one fixed URL (for configuration warnings such
    /// as plain http to another machine).
    fn endpoint(&self) -> Option<&str> {
        None
    }

    /// The requests that make the destination forget the user `who` names, or what the operator
    /// must do instead. The default: no erasure through hardal.
    fn erasure(&self, who: &Identifiers) -> Erasure {
        let _ = who;
        Erasure::Unsupported {
            how: format!(
                "hardal cannot erase users in `{}` destinations: erase the user in the destination's own tools, by the identifiers given to `hardal forget`",
                self.kind()
            ),
        }
    }

    /// The verdict on the answer to one erasure request. The default reads the status alone.
    fn judge_erasure(&self, response: &HttpResponse) -> Verdict {
        response.status_verdict()
    }

    /// Erasure requests per minute the destination's API allows, if it states a limit.
    fn erasure_requests_per_minute(&self) -> Option<u32> {
        None
    }
}

/// What the runner tells `encode` about one attempt, for headers such as signatures or freshness
/// stamps. The body must still be byte-identical for the same records whatever the context.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendContext {
    /// 1 for the first attempt of every record in the request, else the highest attempt number
    /// among them.
    pub attempt: u32,
    /// The wall-clock time of sending.
    pub now: SystemTime,
}

impl SendContext {
    /// The first attempt, sent at `now`.
    pub fn first(now: SystemTime) -> SendContext {
        SendContext { attempt: 1, now }
    }
}

/// Assembles one request: the runner offers records in order; `offer` takes a record when it
/// fits and returns false when the request is full (that record goes into the next request).
/// A record refused by a fresh batcher is sent alone (it cannot fit any request; destinations
/// refuse such records when they map them, so this is only the runner's safety net).
pub trait Batcher: Send {
    fn offer(&mut self, record: &Record) -> bool;
}

/// The default batcher: records up to `batch_limits`, counted with `body_size` (so a batch's
/// body never passes `max_bytes`), and never two different batch keys in one request.
pub struct LimitsBatcher<'a, D: ?Sized> {
    destination: &'a D,
    records: usize,
    payload_bytes: usize,
    /// The batch key of the request, once a keyed record is in it.
    batch_key: Option<String>,
}

impl<'a, D: Destination + ?Sized> LimitsBatcher<'a, D> {
    pub fn new(destination: &'a D) -> Self {
        LimitsBatcher {
            destination,
            records: 0,
            payload_bytes: 0,
            batch_key: None,
        }
    }
}

impl<D: Destination + ?Sized> Batcher for LimitsBatcher<'_, D> {
    fn offer(&mut self, record: &Record) -> bool {
        if let (Some(batch), Some(key)) = (&self.batch_key, &record.batch_key)
            && batch != key
        {
            return false;
        }
        let size = record.payload.len();
        if !self
            .destination
            .fits(self.records, self.payload_bytes, size)
        {
            return false;
        }
        self.records += 1;
        self.payload_bytes += size;
        if self.batch_key.is_none() {
            self.batch_key.clone_from(&record.batch_key);
        }
        true
    }
}

/// What the runner tells a destination about the moment of mapping. Mapping stays a pure
/// function: the same event in the same context always maps the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MapContext {
    /// The wall-clock time of mapping (for retention rules such as "older than 730 days").
    pub now: SystemTime,
    /// How much of what the destination changes is noted.
    pub notes: Notes,
    /// The consent the event carries, as the destination's consent settings read it (the
    /// runner maps an event that needs consent only once it is granted), for destinations
    /// that pass consent on (GA4's `consent` object).
    pub consent: ConsentState,
}

impl MapContext {
    /// Mapping at `now`, noting everything in detail, for an event that carries no consent.
    pub fn at(now: SystemTime) -> MapContext {
        MapContext {
            now,
            notes: Notes::Detailed,
            consent: ConsentState::Absent,
        }
    }
}

/// How much of what a destination changes in an event is noted. A repair on most events makes
/// notes a noticeable share of mapping, so callers ask only for what they use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notes {
    /// Every repair and left-out field, with this event's details (`render` lists them).
    Detailed,
    /// Every repair and left-out field by field and rule, details only for left-out fields
    /// (`send` counts them).
    Counted,
    /// Left-out fields only (a service that counts nothing; destinations may read their own
    /// notes of left-out fields to explain a refusal).
    LeftOut,
}

/// What mapping one event produced: records to send, or why there are none, and what the
/// destination changed on the way.
#[derive(Debug, Clone, PartialEq)]
pub struct Mapped {
    pub outcome: Outcome,
    /// Repairs and left-out fields, so that nothing changes without a word.
    pub notes: Vec<Note>,
}

/// The records of one event, or why nothing is sent.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Records to deliver (one event may produce several, e.g. one per user object).
    Records(Vec<Record>),
    /// Nothing to send for this event (no mapping matched, or nothing was left to send); counted,
    /// not an error.
    Skipped(String),
    /// Nothing sent because the destination no longer keeps events this old; the rule that
    /// applied (e.g. `purchase events are kept 730 days`). Counted apart from skips.
    Expired(String),
}

impl Mapped {
    pub fn records(records: Vec<Record>) -> Mapped {
        Mapped {
            outcome: Outcome::Records(records),
            notes: Vec::new(),
        }
    }

    pub fn skipped(reason: impl Into<String>) -> Mapped {
        Mapped {
            outcome: Outcome::Skipped(reason.into()),
            notes: Vec::new(),
        }
    }

    pub fn expired(rule: impl Into<String>) -> Mapped {
        Mapped {
            outcome: Outcome::Expired(rule.into()),
            notes: Vec::new(),
        }
    }

    pub fn with_notes(mut self, notes: Vec<Note>) -> Mapped {
        self.notes = notes;
        self
    }

    /// The records, when there are any.
    pub fn into_records(self) -> Option<Vec<Record>> {
        match self.outcome {
            Outcome::Records(records) => Some(records),
            Outcome::Skipped(_) | Outcome::Expired(_) => None,
        }
    }
}

/// Something a destination changed in an event's data instead of refusing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub action: NoteAction,
    /// The field without user or event indexes, so notes of many events count together:
    /// `attributes.country`, `events.event_params.unit_price`. Borrowed when it is one of the
    /// fields the destination knows, as with `rule`.
    pub field: Cow<'static, str>,
    /// The rule, short and the same for every event it applies to: `alpha-3 code to alpha-2`,
    /// `not a country`. Borrowed when it is a constant of the destination's code, as most rules
    /// are: a destination notes several repairs in most events.
    pub rule: Cow<'static, str>,
    /// This event's case: `"Atlantis" is not a country`.
    pub detail: String,
}

/// What happened to a noted field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NoteAction {
    /// The value was rewritten into the one form it unambiguously means (`USA` → `US`).
    Repaired,
    /// The field was left out; the rest of the event was sent.
    Dropped,
    /// Part of the event (e.g. one of several events of a user object) was older than the
    /// destination keeps and was not sent.
    Expired,
}

impl NoteAction {
    pub fn as_str(self) -> &'static str {
        match self {
            NoteAction::Repaired => "repaired",
            NoteAction::Dropped => "dropped",
            NoteAction::Expired => "expired",
        }
    }
}

impl std::fmt::Display for Note {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.action.as_str(),
            self.field,
            self.detail
        )
    }
}

/// One unit of a request body: one Insider user object, one Custom API body or array item. The
/// payload is serialized JSON, so a retry re-sends exactly the same bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub payload: Vec<u8>,
    /// Records with the same key are delivered in the order they were accepted.
    pub order_key: Option<String>,
    /// Records with different batch keys never share a request (GA4: one `client_id` per
    /// request). `None` batches with anything.
    pub batch_key: Option<String>,
}

impl Record {
    /// A record without order or batch key.
    pub fn new(payload: impl Into<Vec<u8>>) -> Record {
        Record {
            payload: payload.into(),
            order_key: None,
            batch_key: None,
        }
    }
}

/// How much one request may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimits {
    pub max_records: usize,
    pub max_bytes: usize,
}

/// Wraps record payloads into a body: `prefix`, the payloads separated by commas, `suffix`. Every
/// destination that sends a JSON array of records uses it, so size accounting is written once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub prefix: Vec<u8>,
    pub suffix: Vec<u8>,
}

impl Envelope {
    /// `{"users":[` … `]}`-style envelope from the text before and after the array items.
    pub fn new(prefix: impl Into<Vec<u8>>, suffix: impl Into<Vec<u8>>) -> Self {
        Envelope {
            prefix: prefix.into(),
            suffix: suffix.into(),
        }
    }

    pub fn size(&self, records: usize, payload_bytes: usize) -> usize {
        self.prefix.len() + self.suffix.len() + payload_bytes + records.saturating_sub(1)
    }

    pub fn encode(&self, records: &[&Record]) -> Vec<u8> {
        let payload: usize = records.iter().map(|r| r.payload.len()).sum();
        let mut body = Vec::with_capacity(self.size(records.len(), payload));
        body.extend_from_slice(&self.prefix);
        for (i, record) in records.iter().enumerate() {
            if i > 0 {
                body.push(b',');
            }
            body.extend_from_slice(&record.payload);
        }
        body.extend_from_slice(&self.suffix);
        body
    }
}

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    serde::Deserialize,
    serde::Serialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    #[default]
    Post,
    Put,
    Patch,
    Get,
    Delete,
}

impl HttpMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            HttpMethod::Post => "POST",
            HttpMethod::Put => "PUT",
            HttpMethod::Patch => "PATCH",
            HttpMethod::Get => "GET",
            HttpMethod::Delete => "DELETE",
        }
    }
}

/// A request as a destination describes it. Header values are `Secret`s because they carry
/// credentials; printing a request never shows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    pub method: HttpMethod,
    pub url: String,
    pub headers: Vec<(String, Secret)>,
    pub body: Vec<u8>,
}

/// A response as the runner's transport received it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HttpResponse {
    pub status: u16,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// How many characters of a response body a rejection reason quotes.
const EXCERPT_CHARS: usize = 300;

/// The longest wait a `Retry-After` header can ask for; longer asks are read as this. A day is
/// far beyond any retry budget, so the record is dead-lettered rather than held for years.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(86_400);

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The `Retry-After` header, as delay seconds or an HTTP date; `None` when absent or unreadable.
    /// Delays are capped at [`MAX_RETRY_AFTER`]: a server's number must never overflow the
    /// arithmetic of whoever schedules the retry.
    pub fn retry_after(&self) -> Option<RetryAfter> {
        let value = self.header("retry-after")?.trim();
        if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
            let seconds = value.parse::<u64>().unwrap_or(u64::MAX);
            return Some(RetryAfter::Delay(
                Duration::from_secs(seconds).min(MAX_RETRY_AFTER),
            ));
        }
        httpdate::parse_http_date(value).ok().map(RetryAfter::At)
    }

    /// The start of the body as text, at most a few hundred characters, for rejection reasons.
    pub fn body_excerpt(&self) -> String {
        excerpt(&String::from_utf8_lossy(&self.body))
    }

    /// The verdict HTTP semantics give a whole request: 2xx delivered; 408, 425, 429 and 5xx
    /// retried (with Retry-After when given); 401 and 403 pause the destination; 3xx pauses it
    /// too, because redirects are never followed (they would carry the credentials to wherever
    /// they point) and a moved endpoint needs a person; anything else rejected with the status and
    /// an excerpt of the body.
    pub fn status_verdict(&self) -> Verdict {
        let status = self.status;
        match status {
            200..=299 => Verdict::Delivered,
            300..=399 => Verdict::Pause {
                reason: format!(
                    "HTTP {status}: the endpoint redirects to {}; hardal never follows redirects (they would take the credentials along), so check the configured URL",
                    self.header("location")
                        .map_or("(no Location header)".to_owned(), |l| format!(
                            "`{}`",
                            excerpt(l)
                        ))
                ),
            },
            401 | 403 => Verdict::Pause {
                reason: format!("HTTP {status}: {}", self.body_excerpt()),
            },
            408 | 425 | 429 | 500..=599 => Verdict::Retry {
                reason: format!("HTTP {status}: {}", self.body_excerpt()),
                after: self.retry_after(),
            },
            _ => Verdict::Rejected {
                reason: format!("HTTP {status}: {}", self.body_excerpt()),
            },
        }
    }
}

/// The start of a server's text, at most a few hundred characters, with control characters
/// escaped so that a hostile answer cannot rewrite the terminal or forge log lines.
fn excerpt(text: &str) -> String {
    let text = text.trim();
    let (cut, more) = match text.char_indices().nth(EXCERPT_CHARS) {
        Some((cut, _)) => (&text[..cut], "…"),
        None => (text, ""),
    };
    let mut out = String::with_capacity(cut.len() + 3);
    for c in cut.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out.push_str(more);
    out
}

/// When the server asked to be retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryAfter {
    Delay(Duration),
    At(SystemTime),
}

/// The fate of one record after one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Delivered,
    /// A transient failure: send the record again later, no sooner than `after` when given.
    Retry {
        reason: String,
        after: Option<RetryAfter>,
    },
    /// The destination refused the record for good; retrying cannot help.
    Rejected {
        reason: String,
    },
    /// Credentials or permissions are wrong: stop sending to this destination, keep everything.
    Pause {
        reason: String,
    },
    /// The whole request was refused because of a record the answer does not identify (Meta
    /// CAPI: one malformed event makes the whole request a 400). The runner splits the request
    /// in halves and sends each again, until the bad record stands alone; a lone record with
    /// this verdict is rejected with `reason`. Give it to every record of the request (the runner
    /// retries records that got it alongside other verdicts, as it could not split without
    /// breaking per-user order). Splitting uses neither attempts nor backoff.
    Split {
        reason: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::MappingError;
    use crate::event::Event;

    fn response(status: u16, headers: &[(&str, &str)], body: &str) -> HttpResponse {
        HttpResponse {
            status,
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn status_verdicts() {
        let check = |status: u16, expected: &str| {
            let verdict = response(status, &[], "nope").status_verdict();
            let got = match verdict {
                Verdict::Delivered => "delivered",
                Verdict::Retry { .. } => "retry",
                Verdict::Rejected { .. } => "rejected",
                Verdict::Pause { .. } => "pause",
                Verdict::Split { .. } => "split",
            };
            assert_eq!(got, expected, "HTTP {status}");
        };
        for (status, expected) in [
            (200, "delivered"),
            (204, "delivered"),
            (400, "rejected"),
            (401, "pause"),
            (403, "pause"),
            (404, "rejected"),
            (408, "retry"),
            (413, "rejected"),
            (422, "rejected"),
            (425, "retry"),
            (429, "retry"),
            (500, "retry"),
            (503, "retry"),
            (522, "retry"),
            (301, "pause"),
            (302, "pause"),
            (307, "pause"),
            (308, "pause"),
        ] {
            check(status, expected);
        }
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let r = response(429, &[("Retry-After", "7")], "");
        assert_eq!(
            r.retry_after(),
            Some(RetryAfter::Delay(Duration::from_secs(7)))
        );
        let r = response(503, &[("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT")], "");
        let expected = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480);
        assert_eq!(r.retry_after(), Some(RetryAfter::At(expected)));
        assert_eq!(
            response(429, &[("retry-after", "soon")], "").retry_after(),
            None
        );
        // Absurd delays are capped, however many digits they have.
        for huge in [
            "18446744073709551615",
            "99999999999999999999999999",
            "86401",
        ] {
            assert_eq!(
                response(429, &[("retry-after", huge)], "").retry_after(),
                Some(RetryAfter::Delay(MAX_RETRY_AFTER)),
                "{huge}"
            );
        }
        match r.status_verdict() {
            Verdict::Retry { after, .. } => assert_eq!(after, Some(RetryAfter::At(expected))),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_redirect_pauses_and_names_where_it_pointed() {
        let Verdict::Pause { reason } =
            response(302, &[("location", "https://evil.example/steal")], "").status_verdict()
        else {
            panic!("a redirect must pause");
        };
        assert!(
            reason.contains("redirects to `https://evil.example/steal`"),
            "{reason}"
        );
    }

    #[test]
    fn excerpts_escape_control_characters() {
        let r = response(400, &[], "bad\r\n\u{1b}[31mred\u{7}");
        assert_eq!(r.body_excerpt(), "bad\\r\\n\\u{1b}[31mred\\u{7}");
    }

    #[test]
    fn rejection_quotes_a_bounded_excerpt() {
        let long = "x".repeat(10_000);
        let Verdict::Rejected { reason } = response(400, &[], &long).status_verdict() else {
            panic!("400 must reject");
        };
        assert!(reason.starts_with("HTTP 400: xxx"));
        assert!(reason.chars().count() < 320, "{}", reason.len());
        let unicode = "ş".repeat(1000);
        assert!(response(422, &[], &unicode).body_excerpt().ends_with('…'));
    }

    /// Three records or 20 body bytes per request, in a `[…]` envelope.
    struct Small;

    impl Destination for Small {
        fn id(&self) -> &str {
            "small"
        }
        fn kind(&self) -> &'static str {
            "test"
        }
        fn map(&self, _: &Event, _: &MapContext) -> Result<Mapped, MappingError> {
            unreachable!("batching only")
        }
        fn batch_limits(&self) -> BatchLimits {
            BatchLimits {
                max_records: 3,
                max_bytes: 20,
            }
        }
        fn body_size(&self, records: usize, payload_bytes: usize) -> usize {
            Envelope::new("[", "]").size(records, payload_bytes)
        }
        fn encode(&self, _: &[&Record], _: &SendContext) -> HttpRequest {
            unreachable!("batching only")
        }
        fn judge(&self, _: &[&Record], _: &HttpResponse) -> Vec<Verdict> {
            unreachable!("batching only")
        }
    }

    /// How the default batcher cuts `records` (`payload` or `payload@key`) into requests, each
    /// starting with a fresh batcher; a record a fresh batcher refuses is marked `!`.
    fn cut(records: &[&str]) -> String {
        let destination = Small;
        let mut out = Vec::new();
        let mut batcher = destination.batcher();
        let mut current: Vec<&str> = Vec::new();
        for text in records {
            let (payload, key) = match text.split_once('@') {
                Some((payload, key)) => (payload, Some(key.to_owned())),
                None => (*text, None),
            };
            let record = Record {
                payload: payload.as_bytes().to_vec(),
                order_key: None,
                batch_key: key,
            };
            if batcher.offer(&record) {
                current.push(text);
                continue;
            }
            if !current.is_empty() {
                out.push(current.join(" "));
                current.clear();
            }
            batcher = destination.batcher();
            if batcher.offer(&record) {
                current.push(text);
            } else {
                out.push(format!("!{text}"));
                batcher = destination.batcher();
            }
        }
        if !current.is_empty() {
            out.push(current.join(" "));
        }
        out.join(" | ")
    }

    #[test]
    fn the_default_batcher_applies_the_limits_and_the_batch_keys() {
        // The record limit.
        assert_eq!(cut(&["a", "b", "c", "d"]), "a b c | d");
        // The byte limit: `[` + 8 + `,` + 9 + `]` is exactly 20; one byte more is refused.
        assert_eq!(
            cut(&["12345678", "abcdefghi", "x"]),
            "12345678 abcdefghi | x"
        );
        assert_eq!(cut(&["123456789", "abcdefghi"]), "123456789 | abcdefghi");
        assert_eq!(
            cut(&["a", &"x".repeat(19), "b"]),
            "a | !xxxxxxxxxxxxxxxxxxx | b"
        );
        // Keys: a keyed request takes unkeyed records and records of its key only; an unkeyed
        // start takes the first key that comes.
        assert_eq!(cut(&["a@1", "b", "c@2", "d@2"]), "a@1 b | c@2 d@2");
        assert_eq!(cut(&["a", "b@2", "c@1"]), "a b@2 | c@1");
    }

    #[test]
    fn envelope_size_is_exact() {
        let envelope = Envelope::new(&b"{\"users\":["[..], &b"]}"[..]);
        let records: Vec<Record> = ["{\"a\":1}", "{}", "[\"ü\"]"]
            .iter()
            .map(|p| Record::new(p.as_bytes()))
            .collect();
        for n in 1..=records.len() {
            let batch: Vec<&Record> = records[..n].iter().collect();
            let payload = batch.iter().map(|r| r.payload.len()).sum();
            let body = envelope.encode(&batch);
            assert_eq!(body.len(), envelope.size(n, payload));
            serde_json::from_slice::<serde_json::Value>(&body).unwrap();
        }
    }
}
