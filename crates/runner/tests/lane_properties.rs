//! A lane driven through random sequences of accepts, dispatches, verdicts (deliveries, retries,
//! timeouts, rejections, pauses, splits of whole requests and splits wrongly given to some records) and passing time, checking what the engine promises: a user's
//! records never travel ahead of an earlier unresolved one, every record resolves at most once
//! (exactly once when nothing paused), and the lane holds nothing it no longer needs.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use hardal_core::{
    BatchLimits, Destination, Event, HttpMethod, HttpRequest, HttpResponse, MapContext, Mapped,
    MappingError, Record, RetryAfter, SendContext, Verdict,
};
use hardal_runner::delivery::lane::{Lane, RecordId};
use hardal_runner::delivery::retry::Decision;
use proptest::prelude::*;

/// A destination that batches up to four records; only its limits matter here.
struct Four;

impl Destination for Four {
    fn id(&self) -> &str {
        "four"
    }
    fn kind(&self) -> &'static str {
        "test"
    }
    fn map(&self, _: &Event, _: &MapContext) -> Result<Mapped, MappingError> {
        unreachable!("lanes never map")
    }
    fn batch_limits(&self) -> BatchLimits {
        BatchLimits {
            max_records: 4,
            max_bytes: 1000,
        }
    }
    fn body_size(&self, records: usize, payload_bytes: usize) -> usize {
        payload_bytes + records
    }
    fn encode(&self, _: &[&Record], _: &SendContext) -> HttpRequest {
        HttpRequest {
            method: HttpMethod::Post,
            url: String::new(),
            headers: vec![],
            body: vec![],
        }
    }
    fn judge(&self, records: &[&Record], _: &HttpResponse) -> Vec<Verdict> {
        vec![Verdict::Delivered; records.len()]
    }
}

#[derive(Debug, Clone, Copy)]
enum Answer {
    Delivered,
    Retry,
    /// No answer at all: the transport's timeout, retried like any other failure.
    Timeout,
    Rejected,
    Pause,
    /// First in a request's answers: the whole request is split; elsewhere: a split given to
    /// some records only (a destination's bug the engine must survive).
    Split,
}

#[derive(Debug, Clone)]
enum Op {
    Accept { user: Option<u8> },
    Dispatch { flush: bool },
    Complete { pick: usize, answers: Vec<Answer> },
    Wait { ms: u16 },
}

fn answer() -> impl Strategy<Value = Answer> {
    prop_oneof![
        6 => Just(Answer::Delivered),
        2 => Just(Answer::Retry),
        1 => Just(Answer::Timeout),
        1 => Just(Answer::Rejected),
        1 => Just(Answer::Pause),
        2 => Just(Answer::Split),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => proptest::option::weighted(0.9, 0u8..5).prop_map(|user| Op::Accept { user }),
        3 => any::<bool>().prop_map(|flush| Op::Dispatch { flush }),
        3 => (any::<usize>(), proptest::collection::vec(answer(), 1..5))
            .prop_map(|(pick, answers)| Op::Complete { pick, answers }),
        1 => (0u16..300).prop_map(|ms| Op::Wait { ms }),
    ]
}

/// The model's view of one record.
struct Known {
    user: Option<u8>,
    /// Its place among its user's records.
    order: usize,
    resolved: u32,
}

struct Harness {
    lane: Lane,
    now: Instant,
    known: BTreeMap<u64, Known>,
    per_user: HashMap<u8, usize>,
    in_flight: Vec<Vec<RecordId>>,
    next_line: u64,
}

impl Harness {
    fn new() -> Harness {
        Harness {
            lane: Lane::new(None),
            now: Instant::now(),
            known: BTreeMap::new(),
            per_user: HashMap::new(),
            in_flight: Vec::new(),
            next_line: 1,
        }
    }

    fn accept(&mut self, user: Option<u8>) {
        let line = self.next_line;
        self.next_line += 1;
        let order = match user {
            Some(u) => {
                let n = self.per_user.entry(u).or_default();
                *n += 1;
                *n
            }
            None => 0,
        };
        self.known.insert(
            line,
            Known {
                user,
                order,
                resolved: 0,
            },
        );
        self.lane.accept(
            line,
            Record {
                payload: vec![b'x'; 10],
                order_key: user.map(|u| format!("user-{u}")),
                batch_key: None,
            },
            self.now,
        );
    }

    fn dispatch(&mut self, flush: bool) -> Result<(), TestCaseError> {
        while let Some(batch) =
            self.lane
                .next_batch(&Four, self.now, 2, Duration::from_millis(50), flush)
        {
            let lines: Vec<u64> = batch.iter().map(|id| self.lane.record(*id).line).collect();
            // Per-user order: every earlier record of the same user is resolved, or travels
            // earlier in this very request.
            for (position, line) in lines.iter().enumerate() {
                let record = &self.known[line];
                let Some(user) = record.user else { continue };
                for (other_line, other) in &self.known {
                    if other.user == Some(user) && other.order < record.order && other.resolved == 0
                    {
                        prop_assert!(
                            lines[..position].contains(other_line),
                            "record {line} of user {user} went ahead of unresolved record {other_line}"
                        );
                    }
                }
            }
            self.in_flight.push(batch);
        }
        Ok(())
    }

    fn complete(&mut self, pick: usize, answers: &[Answer]) -> Result<(), TestCaseError> {
        if self.in_flight.is_empty() {
            return Ok(());
        }
        let batch = self.in_flight.remove(pick % self.in_flight.len());
        let whole_split = matches!(answers[0], Answer::Split);
        let verdicts: Vec<Verdict> = (0..batch.len())
            .map(|i| match answers[i % answers.len()] {
                _ if whole_split => Verdict::Split {
                    reason: "HTTP 400".into(),
                },
                Answer::Split => Verdict::Split {
                    reason: "HTTP 400".into(),
                },
                Answer::Delivered => Verdict::Delivered,
                Answer::Retry => Verdict::Retry {
                    reason: "HTTP 503".into(),
                    after: Some(RetryAfter::Delay(Duration::from_millis(20))),
                },
                Answer::Timeout => Verdict::Retry {
                    reason: "request timed out".into(),
                    after: None,
                },
                Answer::Rejected => Verdict::Rejected {
                    reason: "no".into(),
                },
                Answer::Pause => Verdict::Pause {
                    reason: "HTTP 401".into(),
                },
            })
            .collect();
        let now = self.now;
        let resolved = self.lane.complete(&batch, verdicts, now, |pending, after| {
            if pending.attempts >= 4 {
                Decision::GiveUp("gave up".into())
            } else {
                let delay = match after {
                    Some(RetryAfter::Delay(delay)) => delay,
                    _ => Duration::from_millis(10),
                };
                Decision::RetryAt(now + delay)
            }
        });
        for (line, resolution) in resolved {
            let known = self
                .known
                .get_mut(&line)
                .expect("resolved records were accepted");
            known.resolved += 1;
            prop_assert_eq!(
                known.resolved,
                1,
                "record {} resolved twice ({:?})",
                line,
                resolution
            );
        }
        Ok(())
    }

    fn check(&self) -> Result<(), TestCaseError> {
        self.lane.check_invariants();
        let unresolved = self.known.values().filter(|k| k.resolved == 0).count();
        prop_assert_eq!(
            self.lane.pending(),
            unresolved,
            "the lane holds other records than the unresolved"
        );
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn a_lane_keeps_order_resolves_once_and_holds_only_what_is_pending(
        ops in proptest::collection::vec(op(), 1..200)
    ) {
        let mut harness = Harness::new();
        for op in &ops {
            match op {
                Op::Accept { user } => harness.accept(*user),
                Op::Dispatch { flush } => harness.dispatch(*flush)?,
                Op::Complete { pick, answers } => harness.complete(*pick, answers)?,
                Op::Wait { ms } => harness.now += Duration::from_millis(u64::from(*ms)),
            }
            harness.check()?;
        }
        // Whatever is in flight comes back delivered; then, unless the lane paused, everything
        // drains and every record has resolved exactly once.
        while !harness.in_flight.is_empty() {
            harness.complete(0, &[Answer::Delivered])?;
        }
        let mut rounds = 0;
        while harness.lane.paused().is_none() && harness.lane.pending() > 0 {
            rounds += 1;
            prop_assert!(rounds < 10_000, "the lane never drained");
            harness.now += Duration::from_millis(100);
            harness.dispatch(true)?;
            while !harness.in_flight.is_empty() {
                harness.complete(0, &[Answer::Delivered])?;
            }
            harness.check()?;
        }
        if harness.lane.paused().is_none() {
            prop_assert!(harness.known.values().all(|k| k.resolved == 1));
        } else {
            // A pause keeps every unresolved record; none is dropped.
            let unresolved = harness.known.values().filter(|k| k.resolved == 0).count();
            prop_assert_eq!(harness.lane.pending(), unresolved);
        }
    }
}
