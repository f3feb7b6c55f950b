//! The kit catches each broken promise: a destination with one deliberate flaw at a time must
//! fail the check with a message naming it, and without a flaw it must pass.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};

use hardal_core::destination::Envelope;
use hardal_core::erasure::{Erasure, ErasureRequest, Identifiers};
use hardal_core::{
    BatchLimits, Batcher, ConfigError, Destination, Event, HttpMethod, HttpRequest, HttpResponse,
    LimitsBatcher, MapContext, Mapped, MappingError, Note, NoteAction, Record, Secret, SendContext,
    Verdict,
};
use serde_json::{Value, json};

/// Which promise the destination breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
enum Flaw {
    None,
    /// Maps differently every time.
    Unstable,
    /// Puts the send time into the body.
    TimedBody,
    /// Counts one byte less than it encodes.
    Undercount,
    /// Its batcher takes any number of records.
    GreedyBatcher,
    /// Gives every record its own batch key, and its batcher ignores them.
    MixedKeys,
    /// One verdict too few for requests of more than one record.
    Verdicts,
    /// Writes the token into the body.
    SecretInBody,
    /// Puts the token into the URL's path.
    SecretInPath,
    /// Quotes the token in a note.
    SecretInNote,
    /// Writes the token into an erasure request's body.
    SecretInErasure,
    /// Says which email it erases in the erasure request's `what`.
    IdentifierInWhat,
    /// Splits an erasure request.
    SplitErasure,
}

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct FlawedConfig {
    flaw: Flaw,
    token: Secret,
}

/// A test destination: records are `{"n":…}` in a `[…]` body, three per request.
struct Flawed {
    config: FlawedConfig,
    calls: AtomicU64,
}

impl Flawed {
    fn build(_: &str, config: FlawedConfig) -> Result<Flawed, Vec<ConfigError>> {
        Ok(Flawed {
            config,
            calls: AtomicU64::new(0),
        })
    }

    fn flaw(&self) -> Flaw {
        self.config.flaw
    }
}

hardal_core::register_destination! {
    kind: "flawed",
    description: "A destination with one deliberate flaw, for the kit's own tests.",
    config: FlawedConfig,
    build: Flawed::build,
}

/// A batcher that counts records up to a bound and looks at nothing else.
struct Counting {
    taken: usize,
    most: usize,
}

impl Batcher for Counting {
    fn offer(&mut self, _: &Record) -> bool {
        self.taken += 1;
        self.taken <= self.most
    }
}

impl Destination for Flawed {
    fn id(&self) -> &str {
        "flawed"
    }
    fn kind(&self) -> &'static str {
        "flawed"
    }
    fn map(&self, event: &Event, _: &MapContext) -> Result<Mapped, MappingError> {
        let n = event.as_value()["n"].as_u64().unwrap_or(0);
        let call = self.calls.fetch_add(1, Ordering::Relaxed);
        let n = if self.flaw() == Flaw::Unstable {
            n + call
        } else {
            n
        };
        let record = Record {
            payload: format!("{{\"n\":{n}}}").into_bytes(),
            order_key: None,
            batch_key: (self.flaw() == Flaw::MixedKeys).then(|| n.to_string()),
        };
        let mut mapped = Mapped::records(vec![record]);
        if self.flaw() == Flaw::SecretInNote {
            mapped.notes.push(Note {
                action: NoteAction::Repaired,
                field: "token".into(),
                rule: "quoted".into(),
                detail: format!("token {}", self.config.token.expose()),
            });
        }
        Ok(mapped)
    }
    fn batch_limits(&self) -> BatchLimits {
        BatchLimits {
            max_records: 3,
            max_bytes: 1000,
        }
    }
    fn body_size(&self, records: usize, payload_bytes: usize) -> usize {
        let exact = Envelope::new("[", "]").size(records, payload_bytes);
        if self.flaw() == Flaw::Undercount {
            exact - 1
        } else {
            exact
        }
    }
    fn batcher(&self) -> Box<dyn Batcher + '_> {
        match self.flaw() {
            Flaw::GreedyBatcher => Box::new(Counting {
                taken: 0,
                most: usize::MAX,
            }),
            Flaw::MixedKeys => Box::new(Counting { taken: 0, most: 3 }),
            _ => Box::new(LimitsBatcher::new(self)),
        }
    }
    fn encode(&self, records: &[&Record], context: &SendContext) -> HttpRequest {
        let mut body = Envelope::new("[", "]").encode(records);
        match self.flaw() {
            Flaw::TimedBody => body.extend_from_slice(format!("{:?}", context.now).as_bytes()),
            Flaw::SecretInBody => body.extend_from_slice(self.config.token.expose().as_bytes()),
            _ => {}
        }
        let token = self.config.token.expose();
        let url = if self.flaw() == Flaw::SecretInPath {
            format!("https://api.example/{token}/collect")
        } else {
            // A key as a query parameter, as GA4 takes it: allowed.
            format!("https://api.example/collect?key={token}")
        };
        HttpRequest {
            method: HttpMethod::Post,
            url,
            headers: vec![("Authorization".into(), self.config.token.clone())],
            body,
        }
    }
    fn judge(&self, records: &[&Record], response: &HttpResponse) -> Vec<Verdict> {
        let n = if self.flaw() == Flaw::Verdicts && records.len() > 1 {
            records.len() - 1
        } else {
            records.len()
        };
        vec![response.status_verdict(); n]
    }
    fn erasure(&self, who: &Identifiers) -> Erasure {
        let email = who.email.first().map_or("", |e| e.trim());
        let mut body = json!({ "email": email }).to_string().into_bytes();
        if self.flaw() == Flaw::SecretInErasure {
            body.extend_from_slice(self.config.token.expose().as_bytes());
        }
        let what = if self.flaw() == Flaw::IdentifierInWhat {
            format!("erase {email}")
        } else {
            "erase by email".to_owned()
        };
        Erasure::Requests(vec![ErasureRequest {
            what,
            request: HttpRequest {
                method: HttpMethod::Post,
                url: "https://api.example/erase".into(),
                headers: vec![("Authorization".into(), self.config.token.clone())],
                body,
            },
        }])
    }
    fn judge_erasure(&self, response: &HttpResponse) -> Verdict {
        match (self.flaw(), response.status) {
            (Flaw::SplitErasure, 400..=499) => Verdict::Split {
                reason: "cannot tell".into(),
            },
            _ => response.status_verdict(),
        }
    }
}

fn events() -> Vec<Value> {
    (0..20)
        .map(|n| json!({"event_name": "x", "n": n}))
        .collect()
}

/// The check's panic message for `flaw`, or `None` when the check passed.
fn check(flaw: &str) -> Option<String> {
    let config = json!({"flaw": flaw, "token": "s3cr3t-token"});
    let result = catch_unwind(AssertUnwindSafe(|| {
        hardal_conformance::check("flawed", &config, &events())
    }));
    result.err().map(|panic| {
        panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_default()
    })
}

#[test]
fn each_flaw_is_caught_and_named() {
    assert_eq!(check("none"), None, "a sound destination passes");
    for (flaw, expected) in [
        ("unstable", "mapped two different ways"),
        ("timed_body", "a retry of the same"),
        ("undercount", "body_size undercounts"),
        ("greedy_batcher", "the batcher took"),
        ("mixed_keys", "a request mixes batch keys"),
        ("verdicts", "judge gave"),
        ("secret_in_body", "a request body shows a configured secret"),
        (
            "secret_in_path",
            "a request URL (outside its query) shows a configured secret",
        ),
        ("secret_in_note", "a note shows a configured secret"),
        (
            "secret_in_erasure",
            "an erasure request body shows a configured secret",
        ),
        (
            "identifier_in_what",
            "an erasure request's `what` holds an identifier's value",
        ),
        ("split_erasure", "judge_erasure split an erasure request"),
    ] {
        let message = check(flaw).unwrap_or_else(|| panic!("the {flaw} flaw went unnoticed"));
        assert!(message.contains(expected), "{flaw}: {message}");
        assert!(
            !message.contains("s3cr3t-token"),
            "the kit itself showed the secret: {message}"
        );
    }
}
