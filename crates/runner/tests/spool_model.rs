//! The SQLite spool against a model: random sequences of appends, takes, resolutions, clean
//! restarts, crashes (the writer stopped where it was, nothing queued or kept written, no
//! checkpoint), destinations added and removed, and dead-letter replays and purges (from a
//! command beside the owner), checked after every step and at the end:
//! - nothing acknowledged is lost: every event appended while a destination was configured is
//!   taken by it, unless it was removed meanwhile (then its events still in the spool may come);
//! - nothing resolved comes back: a take returns only events the destination has not resolved
//!   and does not hold, in acceptance order (after a restart or a crash, what was in flight comes
//!   again, since it was not resolved);
//! - dead letters are exactly those the model made, replayed and purged;
//! - once every destination is done, the spool holds no event.
//!
//! 64 cases by default; `PROPTEST_CASES` sets another number.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use hardal_runner::backlog::sqlite::{SpoolOptions, SqliteSpool};
use hardal_runner::backlog::{Backlog, DeadLetterFilter, Incoming, Resolution, check_event};
use hardal_runner::config::Durability;
use hardal_runner::delivery::Ending;
use proptest::prelude::*;

const POOL: [&str; 3] = ["a", "b", "c"];

#[derive(Debug, Clone)]
enum Op {
    Append(usize),
    Take(usize, usize),
    Resolve(usize, usize, bool),
    /// Takes up to that many and resolves everything held, delivered.
    Flow(usize, usize),
    Reopen,
    Crash,
    Add(usize),
    Remove(usize),
    Replay(Option<usize>),
    Purge(Option<usize>),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (1..5usize).prop_map(Op::Append),
        4 => (0..3usize, 1..6usize).prop_map(|(d, n)| Op::Take(d, n)),
        4 => (0..3usize, 1..6usize, proptest::bool::weighted(0.3))
            .prop_map(|(d, n, r)| Op::Resolve(d, n, r)),
        4 => (0..3usize, 1..20usize).prop_map(|(d, n)| Op::Flow(d, n)),
        1 => Just(Op::Reopen),
        1 => Just(Op::Crash),
        1 => (0..3usize).prop_map(Op::Add),
        1 => (0..3usize).prop_map(Op::Remove),
        1 => proptest::option::of(0..3usize).prop_map(Op::Replay),
        1 => proptest::option::of(0..3usize).prop_map(Op::Purge),
    ]
}

/// One stored copy of an event: appended, or put back in line by a replay (for one destination).
#[derive(Debug)]
struct Instance {
    id: String,
    body: String,
    target: Option<String>,
}

#[derive(Default)]
struct Model {
    instances: Vec<Instance>,
    configured: Vec<String>,
    /// Destinations the spool has seen (a progress row).
    seen: HashSet<String>,
    /// Per destination: instances it must take.
    must: HashMap<String, BTreeSet<usize>>,
    /// Per destination: instances it may take (appended before it was removed and added back).
    may: HashMap<String, BTreeSet<usize>>,
    resolved: HashMap<String, HashSet<usize>>,
    /// Per destination: instances taken and not resolved, with their sequence numbers.
    in_flight: HashMap<String, Vec<(usize, u64)>>,
    /// Per destination: the last sequence number taken since the spool opened.
    last_taken: HashMap<String, u64>,
    /// (destination, body) of every dead letter.
    dead: Vec<(String, String)>,
    /// Replayed letters of a destination removed before it took them: the spool puts them back
    /// among the dead letters once every configured destination is past them (nothing else would
    /// ever send them), unless the destination is configured again first and takes them.
    returning: Vec<usize>,
    next_id: usize,
}

impl Model {
    /// The instance a taken event is, for `destination`; fails the case if there is none.
    fn instance_of(&self, destination: &str, body: &str) -> Result<usize, TestCaseError> {
        let value: serde_json::Value = serde_json::from_str(body).unwrap();
        let id = value["id"].as_str().unwrap();
        let empty = BTreeSet::new();
        let must = self.must.get(destination).unwrap_or(&empty);
        let may = self.may.get(destination).unwrap_or(&empty);
        let resolved = &self.resolved[destination];
        let flying = &self.in_flight[destination];
        let found: Vec<usize> = must
            .iter()
            .chain(may)
            .copied()
            .filter(|&i| self.instances[i].id == id)
            .filter(|i| !resolved.contains(i) && !flying.iter().any(|(f, _)| f == i))
            .collect();
        prop_assert!(
            !found.is_empty(),
            "{destination} took {id}, which it resolved, holds, or never had"
        );
        Ok(found[0])
    }
}

fn options() -> SpoolOptions {
    SpoolOptions::new(Durability::Normal, 1 << 32, Duration::from_secs(3600))
}

fn open(path: &Path, model: &Model) -> SqliteSpool {
    SqliteSpool::open(path, &model.configured, options()).unwrap()
}

fn events_in(path: &Path) -> i64 {
    rusqlite::Connection::open(path)
        .unwrap()
        .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
        .unwrap()
}

fn filter(destination: Option<usize>) -> DeadLetterFilter {
    DeadLetterFilter {
        destination: destination.map(|d| POOL[d].to_owned()),
        ..DeadLetterFilter::default()
    }
}

/// Resolves what `destination` holds, then takes and delivers everything it has waiting.
async fn drain(
    spool: &SqliteSpool,
    model: &mut Model,
    destination: &str,
) -> Result<(), TestCaseError> {
    resolve(spool, model, destination, usize::MAX, false).await;
    loop {
        let taken = spool.take(destination, 100).await.unwrap();
        if taken.is_empty() {
            return Ok(());
        }
        for stored in &taken {
            let instance = model.instance_of(destination, &stored.body)?;
            model
                .in_flight
                .get_mut(destination)
                .unwrap()
                .push((instance, stored.seq));
        }
        resolve(spool, model, destination, usize::MAX, false).await;
    }
}

/// Takes up to `limit` events for `destination`, checking each against the model.
async fn take(
    spool: &SqliteSpool,
    model: &mut Model,
    destination: &str,
    limit: usize,
) -> Result<(), TestCaseError> {
    for stored in spool.take(destination, limit).await.unwrap() {
        let last = model.last_taken.entry(destination.to_owned()).or_default();
        prop_assert!(
            stored.seq > *last,
            "{destination} took {} after {}",
            stored.seq,
            last
        );
        *last = stored.seq;
        let instance = model.instance_of(destination, &stored.body)?;
        let target = &model.instances[instance].target;
        prop_assert!(target.as_deref().is_none_or(|t| t == destination));
        model
            .in_flight
            .get_mut(destination)
            .unwrap()
            .push((instance, stored.seq));
    }
    Ok(())
}

/// Resolves the first `count` events `destination` holds: rejected (dead letters) or delivered.
async fn resolve(
    spool: &SqliteSpool,
    model: &mut Model,
    destination: &str,
    count: usize,
    rejected: bool,
) {
    let flying = model.in_flight.get_mut(destination).unwrap();
    let done: Vec<(usize, u64)> = flying.drain(..count.min(flying.len())).collect();
    if done.is_empty() {
        return;
    }
    let resolutions = done
        .iter()
        .map(|&(_, seq)| Resolution {
            seq,
            ending: if rejected {
                Ending::Rejected
            } else {
                Ending::Delivered
            },
            reasons: if rejected {
                vec!["refused".into()]
            } else {
                Vec::new()
            },
        })
        .collect();
    spool.resolve(destination, resolutions).await.unwrap();
    for (instance, _) in done {
        model
            .resolved
            .get_mut(destination)
            .unwrap()
            .insert(instance);
        if rejected {
            model.dead.push((
                destination.to_owned(),
                model.instances[instance].body.clone(),
            ));
        }
    }
}

/// Restarts the spool: in flight is forgotten (it comes again), as is the order of this run.
fn restarted(model: &mut Model) {
    model.in_flight.values_mut().for_each(Vec::clear);
    model.last_taken.clear();
}

async fn run(path: PathBuf, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let mut model = Model {
        configured: vec!["a".to_owned()],
        ..Model::default()
    };
    for destination in POOL {
        model
            .resolved
            .insert(destination.to_owned(), HashSet::new());
        model.in_flight.insert(destination.to_owned(), Vec::new());
    }
    model.seen.insert("a".to_owned());
    let mut spool = open(&path, &model);
    for op in ops {
        match op {
            Op::Append(n) => {
                let mut events = Vec::new();
                for _ in 0..n {
                    let id = format!("e{}", model.next_id);
                    model.next_id += 1;
                    let body = format!(r#"{{"id":"{id}","user_id":"u","event_name":"x"}}"#);
                    let checked = check_event(&body).unwrap();
                    events.push(Incoming {
                        body: body.clone(),
                        identity: checked.identity,
                        user: checked.user,
                    });
                    model.instances.push(Instance {
                        id,
                        body,
                        target: None,
                    });
                    let index = model.instances.len() - 1;
                    for destination in &model.seen {
                        if model.configured.contains(destination) {
                            model
                                .must
                                .entry(destination.clone())
                                .or_default()
                                .insert(index);
                        } else {
                            // Away: it takes this event if it is still there when it returns.
                            model
                                .may
                                .entry(destination.clone())
                                .or_default()
                                .insert(index);
                        }
                    }
                }
                let appended = spool.append(events).await.unwrap();
                prop_assert_eq!(appended.accepted, n);
            }
            Op::Take(d, limit) => {
                let destination = POOL[d];
                if !model.configured.iter().any(|c| c == destination) {
                    continue;
                }
                take(&spool, &mut model, destination, limit).await?;
            }
            Op::Resolve(d, count, rejected) => {
                let destination = POOL[d];
                if model.configured.iter().any(|c| c == destination) {
                    resolve(&spool, &mut model, destination, count, rejected).await;
                }
            }
            Op::Flow(d, limit) => {
                let destination = POOL[d];
                if !model.configured.iter().any(|c| c == destination) {
                    continue;
                }
                take(&spool, &mut model, destination, limit).await?;
                resolve(&spool, &mut model, destination, usize::MAX, false).await;
            }
            Op::Reopen => {
                spool.close().await;
                drop(spool);
                restarted(&mut model);
                spool = open(&path, &model);
            }
            Op::Crash => {
                spool.crash();
                restarted(&mut model);
                spool = open(&path, &model);
            }
            Op::Add(d) => {
                let destination = POOL[d].to_owned();
                if model.configured.contains(&destination) {
                    continue;
                }
                // A destination the spool has not seen starts with the events from now on.
                model.seen.insert(destination.clone());
                model.configured.push(destination);
                spool.close().await;
                drop(spool);
                restarted(&mut model);
                spool = open(&path, &model);
            }
            Op::Remove(d) => {
                let destination = POOL[d].to_owned();
                if model.configured.len() < 2 || !model.configured.contains(&destination) {
                    continue;
                }
                model.configured.retain(|c| *c != destination);
                // Its events may be deleted while it is away.
                let resolved = &model.resolved[&destination];
                let pending: Vec<usize> = model
                    .must
                    .remove(&destination)
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|i| !resolved.contains(i))
                    .collect();
                model.returning.extend(
                    pending
                        .iter()
                        .filter(|&&i| model.instances[i].target.as_ref() == Some(&destination)),
                );
                model
                    .may
                    .entry(destination.clone())
                    .or_default()
                    .extend(pending);
                spool.close().await;
                drop(spool);
                restarted(&mut model);
                spool = open(&path, &model);
            }
            Op::Replay(d) => {
                let beside =
                    SqliteSpool::open_for_commands(&path, &model.configured, Durability::Normal)
                        .unwrap();
                let count = beside.replay(&filter(d)).await.unwrap();
                drop(beside);
                let mut expected = 0;
                let mut kept = Vec::new();
                for (destination, body) in std::mem::take(&mut model.dead) {
                    let named = d.is_none_or(|d| POOL[d] == destination);
                    if !named || !model.configured.contains(&destination) {
                        kept.push((destination, body));
                        continue;
                    }
                    expected += 1;
                    let id = serde_json::from_str::<serde_json::Value>(&body).unwrap()["id"]
                        .as_str()
                        .unwrap()
                        .to_owned();
                    model.instances.push(Instance {
                        id,
                        body,
                        target: Some(destination.clone()),
                    });
                    let index = model.instances.len() - 1;
                    model.must.entry(destination).or_default().insert(index);
                }
                model.dead = kept;
                prop_assert_eq!(count, expected);
            }
            Op::Purge(d) => {
                let beside =
                    SqliteSpool::open_for_commands(&path, &model.configured, Durability::Normal)
                        .unwrap();
                let count = beside.purge(&filter(d)).await.unwrap();
                drop(beside);
                let before = model.dead.len();
                model
                    .dead
                    .retain(|(destination, _)| d.is_some_and(|d| POOL[d] != destination));
                prop_assert_eq!(count as usize, before - model.dead.len());
            }
        }
        check_dead_letters(&spool, &mut model).await?;
    }
    for destination in model.configured.clone() {
        drain(&spool, &mut model, &destination).await?;
    }
    for destination in &model.configured {
        let resolved = &model.resolved[destination];
        let lost: Vec<&str> = model
            .must
            .get(destination)
            .into_iter()
            .flatten()
            .filter(|i| !resolved.contains(i))
            .map(|&i| model.instances[i].id.as_str())
            .collect();
        prop_assert!(lost.is_empty(), "{destination} never took {lost:?}");
    }
    check_dead_letters(&spool, &mut model).await?;
    for &i in &model.returning {
        let instance = &model.instances[i];
        let destination = instance
            .target
            .as_ref()
            .expect("replayed letters have a target");
        prop_assert!(
            model.resolved[destination].contains(&i),
            "the replayed letter {} of the removed {destination} was neither delivered nor put back among the dead letters",
            instance.id
        );
    }
    let stats = spool.stats().await.unwrap();
    prop_assert!(stats.depths.iter().all(|d| d.events == 0), "{:?}", stats);
    spool.close().await;
    drop(spool);
    prop_assert_eq!(
        events_in(&path),
        0,
        "the spool holds events every destination is done with"
    );
    Ok(())
}

/// The spool's dead letters are the model's, plus any replayed letters of removed destinations
/// the spool has put back by now (which the model takes in from then on).
async fn check_dead_letters(spool: &SqliteSpool, model: &mut Model) -> Result<(), TestCaseError> {
    let normal = |body: &str| {
        serde_json::from_str::<serde_json::Value>(body)
            .unwrap()
            .to_string()
    };
    let mut letters: Vec<(String, String)> = spool
        .dead_letters(&DeadLetterFilter::default())
        .await
        .unwrap()
        .into_iter()
        .map(|l| (l.destination, l.event.to_string()))
        .collect();
    let mut expected: Vec<(String, String)> = model
        .dead
        .iter()
        .map(|(d, body)| (d.clone(), normal(body)))
        .collect();
    for (destination, body) in letters.clone() {
        if expected.contains(&(destination.clone(), body.clone())) {
            continue;
        }
        let back = model.returning.iter().position(|&i| {
            let instance = &model.instances[i];
            instance.target.as_ref() == Some(&destination)
                && normal(&instance.body) == body
                && !model.resolved[&destination].contains(&i)
        });
        if let Some(at) = back {
            let i = model.returning.remove(at);
            let instance = &model.instances[i];
            model
                .dead
                .push((destination.clone(), instance.body.clone()));
            // Gone from the events: the destination can no longer take it.
            if let Some(may) = model.may.get_mut(&destination) {
                may.remove(&i);
            }
            expected.push((destination, body));
        }
    }
    letters.sort();
    expected.sort();
    prop_assert_eq!(letters, expected);
    Ok(())
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(64)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn the_spool_keeps_what_it_acknowledged_and_forgets_what_was_resolved(
        ops in proptest::collection::vec(op(), 1..60)
    ) {
        static CASE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let case = CASE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir()
            .join(format!("hardal-spool-model-{}-{case}", std::process::id()));
        run_in(&dir, ops)?;
    }
}

/// Runs one sequence in a fresh spool under `dir`.
fn run_in(dir: &Path, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let result = runtime.block_on(run(dir.join("spool.db"), ops));
    let _ = std::fs::remove_dir_all(dir);
    result
}

/// Sequences the property test once found, kept as cases of their own.
#[test]
fn sequences_found_before_hold() {
    use Op::*;
    let found = [
        // A replayed letter of a destination then removed goes back among the dead letters
        // once the others are past it (the model did not expect it back).
        vec![
            Add(2),
            Append(1),
            Take(0, 1),
            Resolve(0, 1, true),
            Replay(None),
            Flow(2, 1),
            Remove(0),
        ],
        // A replayed letter the destination delivered, then the destination removed: the
        // letter must not come back (the spool put it back among the dead letters).
        vec![
            Add(1),
            Append(1),
            Take(0, 1),
            Resolve(0, 1, true),
            Replay(None),
            Flow(0, 1),
            Remove(0),
        ],
    ];
    for (n, ops) in found.into_iter().enumerate() {
        let dir =
            std::env::temp_dir().join(format!("hardal-spool-found-{}-{n}", std::process::id()));
        if let Err(error) = run_in(&dir, ops.clone()) {
            panic!("{ops:?}: {error}");
        }
    }
}
