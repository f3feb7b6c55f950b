//! The SQLite spool under what operators do: another process holding its write lock, writes
//! SQLite refuses, destinations removed and added back, dead-letter commands beside the
//! service, a second service, odd paths, a deleted file, and a backlog that drains. Each test
//! causes its fault itself (a lock held by a second connection, a trigger that refuses a write)
//! and waits on the state it caused, never on timing.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::service::{Service, delivered_in_user_order, serve_config, wait_until};
use hardal_insider_simulator::{Fault, Scope};
use hardal_runner::backlog::sqlite::{SpoolOptions, SqliteSpool};
use hardal_runner::backlog::{
    Backlog, BacklogError, DeadLetterFilter, Incoming, Resolution, Stored, check_event,
};
use hardal_runner::config::Durability;
use hardal_runner::delivery::Ending;
use serde_json::json;

/// A fresh directory for one test, deleted when the test ends.
struct Directory(PathBuf);

impl std::ops::Deref for Directory {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Directory {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn directory(name: &str) -> Directory {
    let dir = std::env::temp_dir().join(format!("hardal-spool-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    Directory(dir)
}

/// Options with a short busy timeout, so that a held lock shows within the test.
fn options() -> SpoolOptions {
    let mut options = SpoolOptions::new(Durability::Normal, 1 << 32, Duration::from_secs(3600));
    options.busy_timeout = Duration::from_millis(50);
    options
}

fn open(path: &Path, destinations: &[&str]) -> SqliteSpool {
    let destinations: Vec<String> = destinations.iter().map(|d| d.to_string()).collect();
    SqliteSpool::open(path, &destinations, options()).unwrap()
}

/// `n` distinct events, their ids starting with `tag`.
fn incoming(n: usize, tag: &str) -> Vec<Incoming> {
    (0..n)
        .map(|i| {
            let body = format!(r#"{{"id":"{tag}-{i}","user_id":"u{i}","event_name":"x"}}"#);
            let checked = check_event(&body).unwrap();
            Incoming {
                body,
                identity: checked.identity,
                user: checked.user,
            }
        })
        .collect()
}

fn ended(taken: &[Stored], ending: Ending) -> Vec<Resolution> {
    taken
        .iter()
        .map(|stored| Resolution {
            seq: stored.seq,
            ending,
            reasons: match ending {
                Ending::Rejected | Ending::DeadLettered => vec!["refused".into()],
                _ => Vec::new(),
            },
        })
        .collect()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Waits (polling) until `done` holds for the spool's state.
async fn until(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Rows in the spool's `events` table, read by a connection of the test's own.
fn rows(path: &Path, table: &str) -> i64 {
    rusqlite::Connection::open(path)
        .unwrap()
        .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
        .unwrap()
}

async fn writable(spool: &SqliteSpool) -> bool {
    spool.stats().await.unwrap().writable
}

#[test]
fn a_resolution_written_while_another_process_holds_the_lock_is_kept_and_written_once_it_lets_go() {
    let dir = directory("locked");
    let path = dir.join("spool.db");
    runtime().block_on(async {
        let spool = Arc::new(open(&path, &["a"]));
        spool.append(incoming(10, "e")).await.unwrap();
        let taken = spool.take("a", 100).await.unwrap();
        assert_eq!(taken.len(), 10);
        // Another process (`hardal dlq`, a backup) holds the write lock.
        let holder = rusqlite::Connection::open(&path).unwrap();
        holder.execute_batch("BEGIN EXCLUSIVE").unwrap();
        let resolving = tokio::spawn({
            let spool = Arc::clone(&spool);
            let resolutions = ended(&taken, Ending::Delivered);
            async move { spool.resolve("a", resolutions).await }
        });
        until("the spool reports the failed write", async || {
            !writable(&spool).await
        })
        .await;
        // An append meanwhile is refused as busy (the producer sends it again).
        let refused = spool.append(incoming(1, "late")).await.unwrap_err();
        assert!(matches!(refused, BacklogError::Busy(_)), "{refused:?}");
        assert!(refused.is_transient());
        holder.execute_batch("COMMIT").unwrap();
        resolving
            .await
            .unwrap()
            .expect("the kept resolutions are written");
        until("the spool is writable again", async || {
            writable(&spool).await
        })
        .await;
        assert_eq!(spool.stats().await.unwrap().depths[0].events, 0);
        assert_eq!(rows(&path, "events"), 0, "every event was resolved");
        spool.close().await;
    });
    // Reopened, nothing comes back.
    runtime().block_on(async {
        let spool = open(&path, &["a"]);
        assert!(spool.take("a", 100).await.unwrap().is_empty());
        spool.close().await;
    });
}

#[test]
fn a_resolution_sqlite_refuses_for_good_makes_the_spool_unwritable_and_is_reported_fatal() {
    let dir = directory("refused");
    let path = dir.join("spool.db");
    runtime().block_on(async {
        let spool = open(&path, &["a"]);
        spool.append(incoming(5, "e")).await.unwrap();
        let taken = spool.take("a", 100).await.unwrap();
        // A write SQLite refuses every time, as a full disk or a failing device would.
        rusqlite::Connection::open(&path)
            .unwrap()
            .execute_batch(
                "CREATE TRIGGER refuse BEFORE INSERT ON resolved
                 BEGIN SELECT RAISE(ABORT, 'the device refuses writes'); END;",
            )
            .unwrap();
        let error = spool
            .resolve("a", ended(&taken, Ending::Delivered))
            .await
            .unwrap_err();
        assert!(matches!(error, BacklogError::Fatal(_)), "{error:?}");
        assert!(!error.is_transient());
        assert!(
            error.to_string().contains("the device refuses writes"),
            "{error}"
        );
        assert!(!writable(&spool).await);
        let refused = spool.append(incoming(1, "late")).await.unwrap_err();
        assert!(matches!(refused, BacklogError::Fatal(_)), "{refused:?}");
        spool.close().await;
    });
    // Nothing was recorded: after a restart the events are delivered again.
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("DROP TRIGGER refuse")
        .unwrap();
    runtime().block_on(async {
        let spool = open(&path, &["a"]);
        assert_eq!(spool.take("a", 100).await.unwrap().len(), 5);
        spool.close().await;
    });
}

#[test]
fn a_service_whose_spool_refuses_resolutions_stops_with_the_reason_and_delivers_after_a_restart() {
    let sim = common::simulator();
    // Nothing resolves until the spool's fault is in place.
    sim.inject(Fault::ServerError { status: 503 }, Scope::Always)
        .unwrap();
    let config = serve_config(&[("insider", sim.upsert_url())], json!({}));
    let mut service = Service::start("fatal", &config);
    let (status, _) = service.post_ndjson(&common::events(20, 5));
    assert_eq!(status, 202);
    let spool = service.dir.join("spool.db");
    rusqlite::Connection::open(&spool)
        .unwrap()
        .execute_batch(
            "CREATE TRIGGER refuse BEFORE INSERT ON resolved
             BEGIN SELECT RAISE(ABORT, 'the device refuses writes'); END;",
        )
        .unwrap();
    sim.clear_faults();
    let mut code = None;
    wait_until("the service stops", Duration::from_secs(60), || {
        code = service.child.try_wait().unwrap().map(|s| s.code());
        code.is_some()
    });
    assert_ne!(code.unwrap(), Some(0), "it exits with an error");
    service.wait_for_log(&["cannot be written", "the device refuses writes"]);
    // The cause is gone: after a restart every event is delivered (those whose resolution was
    // lost, again).
    rusqlite::Connection::open(&spool)
        .unwrap()
        .execute_batch("DROP TRIGGER refuse")
        .unwrap();
    let dir = service.dir.clone();
    drop(service);
    let _service = Service::start_in(dir, &config);
    delivered_in_user_order(&sim, 20, Duration::from_secs(60));
}

/// Takes everything `destination` has waiting and resolves it with `ending`; returns how many.
async fn drain(spool: &SqliteSpool, destination: &str, ending: Ending) -> usize {
    let mut count = 0;
    loop {
        let taken = spool.take(destination, 1000).await.unwrap();
        if taken.is_empty() {
            return count;
        }
        count += taken.len();
        spool
            .resolve(destination, ended(&taken, ending))
            .await
            .unwrap();
    }
}

#[test]
fn a_destination_removed_and_added_back_holds_nothing_back() {
    let dir = directory("readded");
    let path = dir.join("spool.db");
    let rt = runtime();
    rt.block_on(async {
        let spool = open(&path, &["a", "b"]);
        spool.append(incoming(10, "one")).await.unwrap();
        assert_eq!(drain(&spool, "a", Ending::Delivered).await, 10);
        spool.close().await;
    });
    rt.block_on(async {
        // Without b, what a is done with goes, b's events included.
        let spool = open(&path, &["a"]);
        spool.append(incoming(10, "two")).await.unwrap();
        assert_eq!(drain(&spool, "a", Ending::Delivered).await, 10);
        spool.close().await;
    });
    assert_eq!(rows(&path, "events"), 0);
    rt.block_on(async {
        let spool = open(&path, &["a", "b"]);
        spool.append(incoming(10, "three")).await.unwrap();
        assert_eq!(drain(&spool, "a", Ending::Delivered).await, 10);
        assert_eq!(
            drain(&spool, "b", Ending::Delivered).await,
            10,
            "b takes what is in the spool"
        );
        let stats = spool.stats().await.unwrap();
        assert!(stats.depths.iter().all(|d| d.events == 0), "{stats:?}");
        spool.close().await;
    });
    assert_eq!(rows(&path, "events"), 0, "every row was deleted");
    // And so it stays after a restart.
    rt.block_on(async {
        let spool = open(&path, &["a", "b"]);
        spool.append(incoming(5, "four")).await.unwrap();
        assert_eq!(drain(&spool, "b", Ending::Delivered).await, 5);
        assert_eq!(drain(&spool, "a", Ending::Delivered).await, 5);
        spool.close().await;
    });
    assert_eq!(rows(&path, "events"), 0);
}

/// Writes `config` (its spool at `spool`) into `dir` and runs `hardal dlq ACTION` on it.
fn hardal_dlq(dir: &Path, spool: &Path, ids: &[&str], args: &[&str]) -> std::process::Output {
    let destinations: Vec<(&str, String)> = ids
        .iter()
        .map(|id| (*id, "http://127.0.0.1:9/api".to_owned()))
        .collect();
    let mut config = serve_config(&destinations, json!({"auth_tokens": ["x".repeat(16)]}));
    config["backlog"]["path"] = json!(spool.to_str().unwrap());
    let file = dir.join(format!("config-{}.json", ids.join("-")));
    std::fs::write(&file, config.to_string()).unwrap();
    std::process::Command::new(env!("CARGO_BIN_EXE_hardal"))
        .arg("dlq")
        .arg(args[0])
        .args(["--config", file.to_str().unwrap()])
        .args(&args[1..])
        .output()
        .unwrap()
}

#[test]
fn a_replay_under_a_configuration_without_the_letters_destination_leaves_them() {
    let dir = directory("replay-gone");
    let path = dir.join("spool.db");
    let rt = runtime();
    rt.block_on(async {
        let spool = open(&path, &["a", "gone"]);
        spool.append(incoming(5, "e")).await.unwrap();
        assert_eq!(drain(&spool, "a", Ending::Delivered).await, 5);
        assert_eq!(drain(&spool, "gone", Ending::Rejected).await, 5);
        spool.close().await;
    });
    assert_eq!(rows(&path, "dead_letters"), 5);
    rt.block_on(async {
        let spool = open(&path, &["a"]);
        let replayed = spool.replay(&DeadLetterFilter::default()).await.unwrap();
        assert_eq!(replayed, 0);
        spool.close().await;
    });
    assert_eq!(
        rows(&path, "dead_letters"),
        5,
        "the letters are still there"
    );
    let output = hardal_dlq(&dir, &path, &["a"], &["replay"]);
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{said}");
    assert!(
        said.contains("0 dead letters put back")
            && said.contains("5 dead letters for `gone` were left as they are"),
        "{said}"
    );
    assert_eq!(rows(&path, "dead_letters"), 5);
    // With `gone` back, they are replayed and taken.
    rt.block_on(async {
        let spool = open(&path, &["a", "gone"]);
        let replayed = spool.replay(&DeadLetterFilter::default()).await.unwrap();
        assert_eq!(replayed, 5);
        assert_eq!(drain(&spool, "gone", Ending::Delivered).await, 5);
        assert_eq!(drain(&spool, "a", Ending::Delivered).await, 0);
        spool.close().await;
    });
    assert_eq!(rows(&path, "dead_letters"), 0);
    assert_eq!(rows(&path, "events"), 0);
}

#[test]
fn a_replay_beside_the_service_for_a_destination_it_does_not_have_stays_a_dead_letter() {
    let dir = directory("replay-other-config");
    let path = dir.join("spool.db");
    let rt = runtime();
    rt.block_on(async {
        let spool = open(&path, &["a", "x"]);
        spool.append(incoming(5, "e")).await.unwrap();
        assert_eq!(drain(&spool, "a", Ending::Delivered).await, 5);
        assert_eq!(drain(&spool, "x", Ending::Rejected).await, 5);
        spool.close().await;
    });
    rt.block_on(async {
        // The service runs with `[a]`; the operator replays with a configuration of `[a, x]`.
        let service = open(&path, &["a"]);
        let output = hardal_dlq(&dir, &path, &["a", "x"], &["replay"]);
        assert!(output.status.success(), "{output:?}");
        assert_eq!(rows(&path, "dead_letters"), 0, "put back in line for `x`");
        // The service has no `x`: `a` passes the replays over, and they go back to the dead
        // letters rather than being deleted with what every destination is done with (they
        // were lost).
        until("the replays are passed over", async || {
            service.take("a", 100).await.unwrap().is_empty() && rows(&path, "events") == 0
        })
        .await;
        service.close().await;
    });
    assert_eq!(rows(&path, "dead_letters"), 5, "the letters are kept");
    // With `x` configured, they are replayed and taken.
    rt.block_on(async {
        let spool = open(&path, &["a", "x"]);
        assert_eq!(spool.replay(&DeadLetterFilter::default()).await.unwrap(), 5);
        assert_eq!(drain(&spool, "x", Ending::Delivered).await, 5);
        spool.close().await;
    });
}

#[test]
fn a_second_owner_through_a_symbolic_link_is_refused_too() {
    let dir = directory("owner-link");
    let path = dir.join("spool.db");
    let link = dir.join("link.db");
    std::os::unix::fs::symlink(&path, &link).unwrap();
    runtime().block_on(async {
        let spool = open(&path, &["a"]);
        let destinations = vec!["a".to_owned()];
        let Err(refused) = SqliteSpool::open(&link, &destinations, options()) else {
            panic!("a second owner was let in through a symbolic link");
        };
        assert!(matches!(refused, BacklogError::Refused(_)), "{refused:?}");
        spool.close().await;
    });
}

#[test]
fn a_second_owner_of_a_spool_is_refused_with_the_path_and_the_owners_pid() {
    let dir = directory("owner");
    let path = dir.join("spool.db");
    runtime().block_on(async {
        let spool = open(&path, &["a"]);
        let destinations = vec!["a".to_owned()];
        let Err(refused) = SqliteSpool::open(&path, &destinations, options()) else {
            panic!("a second owner was let in");
        };
        assert!(matches!(refused, BacklogError::Refused(_)), "{refused:?}");
        let said = refused.to_string();
        assert!(
            said.contains(path.to_str().unwrap())
                && said.contains(&format!("pid {}", std::process::id())),
            "{said}"
        );
        // The dead-letter commands work beside the owner.
        let beside =
            SqliteSpool::open_for_commands(&path, &destinations, Durability::Normal).unwrap();
        assert!(
            beside
                .dead_letters(&DeadLetterFilter::default())
                .await
                .unwrap()
                .is_empty()
        );
        spool.close().await;
    });
}

#[test]
fn a_second_service_on_the_same_spool_is_refused_at_start() {
    let sim = common::simulator();
    let config = serve_config(&[("insider", sim.upsert_url())], json!({}));
    let service = Service::start("second", &config);
    let mut second = std::process::Command::new(env!("CARGO_BIN_EXE_hardal"))
        .args(["serve", "--config", service.config.to_str().unwrap()])
        .env("INSIDER_REQUEST_TOKEN", common::TOKEN)
        .env("HARDAL_INGEST_TOKEN", common::service::INGEST)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = second.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = second.kill();
            panic!("a second service runs on the same spool");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut said = String::new();
    std::io::Read::read_to_string(&mut second.stderr.take().unwrap(), &mut said).unwrap();
    assert!(!status.success(), "{said}");
    assert!(
        said.contains("in use by another hardal serve")
            && said.contains(&format!("pid {}", service.child.id())),
        "{said}"
    );
    // The first one goes on, and the dead-letter commands work beside it.
    let (status, _) = service.post_ndjson(&common::events(5, 5));
    assert_eq!(status, 202);
    delivered_in_user_order(&sim, 5, Duration::from_secs(60));
    let (listed, _) = service.dlq(&["list"]);
    assert_eq!(listed, "");
}

#[test]
fn a_spool_path_that_is_no_file_is_refused_by_validation_and_at_open() {
    let dir = directory("paths");
    let directory_path = dir.to_str().unwrap().to_owned();
    for (path, said) in [
        ("", "is empty"),
        ("   ", "is empty"),
        (":memory:", "is not a file"),
        ("file:spool.db?mode=memory", "is a URI"),
        (directory_path.as_str(), "is a directory"),
    ] {
        let config = json!({
            "destinations": [{"id": "a", "type": "insider", "consent": {"mode": "off"}, "partner_name": "mybrand",
                              "request_token": "tok", "endpoint": "http://127.0.0.1:9/api"}],
            "backlog": {"type": "sqlite", "path": path},
        });
        let Err(diagnostics) = hardal_runner::config::load_str(&config.to_string(), &|_| None)
        else {
            panic!("`{path}` passed validation");
        };
        assert!(
            diagnostics
                .iter()
                .any(|d| d.pointer == "/backlog/path" && d.message.contains(said)),
            "{path}: {diagnostics:?}"
        );
        let refused = SqliteSpool::open(Path::new(path), &["a".to_owned()], options());
        assert!(
            matches!(&refused, Err(BacklogError::Refused(m)) if m.contains(said)),
            "{path}: opened"
        );
    }
}

#[test]
fn dlq_commands_refuse_a_spool_that_does_not_exist_and_stop_quietly_on_a_closed_pipe() {
    let dir = directory("dlq-cli");
    let missing = dir.join("mistyped.db");
    let output = hardal_dlq(&dir, &missing, &["a"], &["list"]);
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{said}");
    assert!(said.contains("does not exist"), "{said}");
    assert!(!missing.exists(), "no spool was made");
    // Enough dead letters that the output does not fit a pipe's buffer.
    let path = dir.join("spool.db");
    runtime().block_on(async {
        let spool = open(&path, &["a"]);
        spool.append(incoming(2000, "e")).await.unwrap();
        assert_eq!(drain(&spool, "a", Ending::Rejected).await, 2000);
        spool.close().await;
    });
    for json in [true, false] {
        let destinations = vec![("a", "http://127.0.0.1:9/api".to_owned())];
        let mut config = serve_config(&destinations, json!({"auth_tokens": ["x".repeat(16)]}));
        config["backlog"]["path"] = json!(path.to_str().unwrap());
        let file = dir.join("config.json");
        std::fs::write(&file, config.to_string()).unwrap();
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_hardal"))
            .args(["dlq", "list", "--config", file.to_str().unwrap()])
            .args(json.then_some("--json"))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // The reader goes away after the first bytes, as `| head -c 10` does.
        let mut first = [0u8; 10];
        std::io::Read::read_exact(child.stdout.as_mut().unwrap(), &mut first).unwrap();
        drop(child.stdout.take());
        let output = child.wait_with_output().unwrap();
        let said = String::from_utf8_lossy(&output.stderr);
        assert!(!said.contains("panicked"), "{said}");
        assert!(output.status.success(), "{said}");
    }
}

/// Whether `future` is ready at its first poll.
fn ready_at_once(future: impl std::future::Future<Output = ()>) -> bool {
    let mut future = std::pin::pin!(future);
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    future.as_mut().poll(&mut context).is_ready()
}

#[test]
fn events_appended_while_no_feeder_waits_wake_the_next_wait_at_once() {
    let dir = directory("wake");
    let path = dir.join("spool.db");
    runtime().block_on(async {
        let spool = open(&path, &["a", "b"]);
        // Both feeders are busy elsewhere when the append commits.
        spool.append(incoming(3, "e")).await.unwrap();
        assert!(ready_at_once(spool.wait_for("a")), "a's wake-up was lost");
        assert!(ready_at_once(spool.wait_for("b")), "b's wake-up was lost");
        // Once taken, with nothing new, a wait waits.
        assert!(!ready_at_once(spool.wait_for("a")));
        spool.close().await;
    });
}

#[test]
fn a_closed_spool_is_one_file_that_holds_every_event() {
    let dir = directory("one-file");
    let path = dir.join("spool.db");
    runtime().block_on(async {
        let spool = open(&path, &["a"]);
        spool.append(incoming(100, "e")).await.unwrap();
        spool.close().await;
        // Copied without its write-ahead log (as a careless backup would), while this process
        // still has it open.
        let copy = dir.join("copy");
        std::fs::create_dir_all(&copy).unwrap();
        std::fs::copy(&path, copy.join("spool.db")).unwrap();
        let copied = open(&copy.join("spool.db"), &["a"]);
        assert_eq!(copied.take("a", 1000).await.unwrap().len(), 100);
        copied.close().await;
    });
}

#[test]
fn a_spool_file_deleted_under_the_service_makes_it_unwritable() {
    let dir = directory("deleted");
    let path = dir.join("spool.db");
    runtime().block_on(async {
        let spool = open(&path, &["a"]);
        spool.append(incoming(3, "e")).await.unwrap();
        assert!(writable(&spool).await);
        std::fs::remove_file(&path).unwrap();
        until("the spool notices", async || !writable(&spool).await).await;
        let refused = spool.append(incoming(1, "late")).await.unwrap_err();
        assert!(matches!(refused, BacklogError::Fatal(_)), "{refused:?}");
        assert!(
            refused.to_string().contains("deleted or replaced"),
            "{refused}"
        );
        spool.close().await;
    });
}

/// 1,000 events of about 2 KB each, their ids starting with `tag`.
fn padded(tag: &str) -> Vec<Incoming> {
    let padding = "x".repeat(2000);
    incoming(1000, tag)
        .into_iter()
        .map(|mut event| {
            event.body = event.body.replace("\"x\"", &format!("\"{padding}\""));
            event
        })
        .collect()
}

/// The pages of the spool's database as its connections see it (the write-ahead log
/// included), from a connection of its own.
fn pages(path: &Path) -> i64 {
    rusqlite::Connection::open(path)
        .unwrap()
        .query_row("PRAGMA page_count", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn the_spool_file_shrinks_once_a_large_backlog_drained() {
    let dir = directory("shrinks");
    let path = dir.join("spool.db");
    let size = || std::fs::metadata(&path).unwrap().len();
    runtime().block_on(async {
        let spool = open(&path, &["a"]);
        for batch in 0..10 {
            spool.append(padded(&format!("b{batch}"))).await.unwrap();
        }
        spool.close().await;
    });
    let full = size();
    assert!(full > 20_000_000, "{full}");
    runtime().block_on(async {
        let spool = open(&path, &["a"]);
        assert_eq!(drain(&spool, "a", Ending::Delivered).await, 10_000);
        spool.close().await;
    });
    let drained = size();
    assert!(
        drained < full / 10,
        "the file kept {drained} of {full} bytes after the backlog drained"
    );
}

#[test]
fn a_drained_backlog_gives_its_pages_back_while_the_service_runs() {
    let dir = directory("shrinks-running");
    let path = dir.join("spool.db");
    runtime().block_on(async {
        let spool = open(&path, &["a"]);
        for batch in 0..10 {
            spool.append(padded(&format!("b{batch}"))).await.unwrap();
        }
        let full = pages(&path);
        assert!(full > 5_000, "{full}");
        // Half delivered: the pages in use are not few enough to be worth moving.
        for _ in 0..5 {
            let taken = spool.take("a", 1000).await.unwrap();
            assert_eq!(taken.len(), 1000);
            spool
                .resolve("a", ended(&taken, Ending::Delivered))
                .await
                .unwrap();
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert!(pages(&path) >= full, "{} of {full}", pages(&path));
        assert_eq!(drain(&spool, "a", Ending::Delivered).await, 5_000);
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        while pages(&path) > full / 10 {
            assert!(
                std::time::Instant::now() < deadline,
                "the spool kept {} of {full} pages for two minutes after its backlog drained",
                pages(&path)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        spool.close().await;
    });
}

#[test]
fn a_service_stops_in_bounded_time_while_another_process_holds_its_spool_and_loses_nothing() {
    let sim = common::simulator();
    sim.inject(Fault::ServerError { status: 503 }, Scope::Always)
        .unwrap();
    let config = serve_config(&[("insider", sim.upsert_url())], json!({}));
    let service = Service::start("held", &config);
    let (status, _) = service.post_ndjson(&common::events(20, 5));
    assert_eq!(status, 202);
    let spool = service.dir.join("spool.db");
    let holder = rusqlite::Connection::open(&spool).unwrap();
    holder.execute_batch("BEGIN EXCLUSIVE").unwrap();
    sim.clear_faults();
    wait_until("the events are delivered", Duration::from_secs(60), || {
        common::service::delivered(&sim).0.len() == 20
    });
    wait_until(
        "the service reports its spool unwritable",
        Duration::from_secs(60),
        || service.ready()["backlog_writable"] == false,
    );
    let dir = service.dir.clone();
    let mut child = {
        let mut service = service;
        // SAFETY: kill(2) only signals the child this test started.
        unsafe { libc::kill(service.child.id() as libc::pid_t, libc::SIGTERM) };
        std::mem::replace(
            &mut service.child,
            std::process::Command::new("true").spawn().unwrap(),
        )
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the service did not stop while its spool was held");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    holder.execute_batch("COMMIT").unwrap();
    // What could not be recorded is delivered again: a duplicate, never a loss.
    let _service = Service::start_in(dir, &config);
    delivered_in_user_order(&sim, 20, Duration::from_secs(60));
}

#[test]
fn a_spool_that_was_busy_reports_itself_writable_again_without_another_write() {
    let dir = directory("writable-again");
    let path = dir.join("spool.db");
    runtime().block_on(async {
        let spool = open(&path, &["a"]);
        let holder = rusqlite::Connection::open(&path).unwrap();
        holder.execute_batch("BEGIN EXCLUSIVE").unwrap();
        let refused = spool.append(incoming(1, "e")).await.unwrap_err();
        assert!(matches!(refused, BacklogError::Busy(_)), "{refused:?}");
        assert!(!writable(&spool).await);
        holder.execute_batch("COMMIT").unwrap();
        // No request comes (a load balancer gating on readiness sends none).
        until("the spool is writable again", async || {
            writable(&spool).await
        })
        .await;
        spool.close().await;
    });
}

/// Runs the service with its spool on a small file system of its own (a tmpfs in a user and
/// mount namespace, so no privileges are needed) that a filler file nearly fills; once the
/// test creates `clear`, the filler is deleted.
fn service_on_a_small_disk(dir: &Directory, config: &serde_json::Value) -> Service {
    let disk = dir.join("disk");
    std::fs::create_dir_all(&disk).unwrap();
    let mut config = config.clone();
    config["backlog"]["path"] = json!(disk.join("spool.db").to_str().unwrap());
    let script = format!(
        r#"mount -t tmpfs -o size=4m tmpfs '{disk}' && head -c 3200000 /dev/zero > '{disk}/filler' || exit 97
           ( i=0; while [ ! -e '{clear}' ] && [ $i -lt 3000 ]; do sleep 0.1; i=$((i+1)); done
             rm -f '{disk}/filler' ) &
           exec "$@""#,
        disk = disk.display(),
        clear = dir.join("clear").display(),
    );
    Service::start_wrapped(
        dir.to_path_buf(),
        &config,
        &[],
        &[
            "unshare",
            "--user",
            "--map-root-user",
            "--mount",
            "--fork",
            "--kill-child=SIGTERM",
            "sh",
            "-c",
            &script,
            "sh",
        ],
    )
}

#[test]
fn a_full_disk_makes_the_service_unready_until_it_has_room_again_and_loses_nothing() {
    let sim = common::simulator();
    // Events stay in the spool: the destination answers 503 throughout.
    sim.inject(Fault::ServerError { status: 503 }, Scope::Always)
        .unwrap();
    let dir = directory("full-disk");
    let service = service_on_a_small_disk(
        &dir,
        &serve_config(&[("insider", sim.upsert_url())], json!({})),
    );
    wait_until("the service is ready", Duration::from_secs(30), || {
        service.ready()["ready"] == true
    });
    let padding = "p".repeat(600);
    let batch = |n: usize| -> String {
        (0..50)
            .map(|i| {
                json!({"id": format!("b{n}-{i}"), "event_name": "test_event",
                       "created_at": common::recent(), "user_id": format!("u{i}"),
                       "properties": {"pad": padding}})
                .to_string()
                    + "\n"
            })
            .collect()
    };
    let mut accepted = 0;
    let mut refused = None;
    for n in 0..1000 {
        let (status, answer) = service.post_ndjson(&batch(n));
        match status {
            202 => accepted += answer["accepted"].as_u64().unwrap(),
            _ => {
                refused = Some((status, answer));
                break;
            }
        }
    }
    let (status, answer) = refused.expect("the disk filled up");
    assert_eq!(status, 503, "{answer}");
    assert!(accepted > 0, "some events fitted before the disk was full");
    wait_until("/readyz says not ready", Duration::from_secs(30), || {
        service.ready()["ready"] == false
    });
    // It stays so while the disk is full: a write that adds nothing (or a resolution of a few
    // bytes) does not count as room (readiness turned 200 again within a second while every
    // post got 503).
    std::thread::sleep(Duration::from_secs(3));
    let ready = service.ready();
    assert_eq!(ready["ready"], false, "{ready}");
    assert_eq!(service.post_ndjson(&batch(5000)).0, 503);
    // Room again: ready by itself (no post needed), and posts are taken.
    std::fs::write(dir.join("clear"), "").unwrap();
    wait_until("/readyz says ready again", Duration::from_secs(60), || {
        service.ready()["ready"] == true
    });
    let (status, answer) = service.post_ndjson(&batch(6000));
    assert_eq!(status, 202, "{answer}");
    accepted += answer["accepted"].as_u64().unwrap();
    // Nothing accepted was lost: every event waits for its destination.
    wait_until(
        "the backlog holds every accepted event",
        Duration::from_secs(30),
        || service.metric("hardal_backlog_events") == accepted as f64,
    );
}
