//! The `insider-simulator` binary: it prints its address, serves, obeys its flags and stops on
//! SIGTERM.

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

use common::{PARTNER, TOKEN, UPSERT, send, upsert_to};
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_insider-simulator");

/// A started binary, killed if a failing test leaves it running.
struct Running(Option<Child>);

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Starts the binary and waits for its one line on stdout.
fn start(extra: &[&str]) -> (Running, SocketAddr) {
    let mut child = Command::new(BIN)
        .args(["--listen", "127.0.0.1:0", "--partner-name", PARTNER])
        .args(extra)
        .env("INSIDER_REQUEST_TOKEN", TOKEN)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("binary starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on http://")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .parse()
        .unwrap();
    (Running(Some(child)), addr)
}

fn post_user(addr: SocketAddr) -> u16 {
    let body = json!({"users": [{"identifiers": {"uuid": "a"}, "attributes": {"name": "A"}}]});
    upsert_to(addr, &body.to_string()).unwrap().status
}

fn terminate(mut running: Running) -> std::process::ExitStatus {
    let mut child = running.0.take().unwrap();
    // SAFETY: kill(2) only sends a signal to the child this test started.
    let sent = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    assert_eq!(sent, 0, "SIGTERM could not be sent");
    child.wait().unwrap()
}

#[test]
fn prints_its_address_serves_and_stops_on_sigterm() {
    let cases: &[(&[&str], bool, &str)] = &[
        (
            &[],
            true,
            "{\"identifiers\":{\"uuid\":\"a\"},\"attributes\":{\"name\":\"A\"}}\n",
        ),
        (&["--no-record"], false, ""),
    ];
    for (flags, recording, accepted) in cases {
        let (child, addr) = start(flags);
        assert!(addr.ip().is_loopback());
        assert_eq!(post_user(addr), 200, "{flags:?}");
        let stats = send(addr, "GET", "/_simulator/stats", &[], b"")
            .unwrap()
            .json();
        assert_eq!(stats["users_accepted"], 1, "{flags:?}");
        assert_eq!(stats["recording"], *recording, "{flags:?}");
        let listed = send(addr, "GET", "/_simulator/accepted", &[], b"").unwrap();
        assert_eq!(listed.body, *accepted, "{flags:?}");
        assert!(terminate(child).success(), "{flags:?}");
    }
}

#[test]
fn the_token_can_come_from_a_flag() {
    let mut child = Command::new(BIN)
        .args(["--partner-name", PARTNER, "--request-token", "flag-token"])
        .env_remove("INSIDER_REQUEST_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let child = Running(Some(child));
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let addr: SocketAddr = line.trim()["listening on http://".len()..].parse().unwrap();
    let status = send(
        addr,
        "POST",
        UPSERT,
        &[
            ("X-PARTNER-NAME", PARTNER),
            ("X-REQUEST-TOKEN", "flag-token"),
            ("Content-Type", "application/json"),
        ],
        br#"{"users":[{"identifiers":{"uuid":"a"},"attributes":{"name":"A"}}]}"#,
    )
    .unwrap()
    .status;
    assert_eq!(status, 200);
    assert!(terminate(child).success());
}

#[test]
fn refuses_bad_invocations() {
    let cases: &[(&str, &[&str], &str)] = &[
        (
            "any address",
            &["--listen", "0.0.0.0:0", "--partner-name", "p"],
            "not a loopback address",
        ),
        (
            "a LAN address",
            &["--listen", "192.168.0.10:8080", "--partner-name", "p"],
            "not a loopback address",
        ),
        (
            "a host name",
            &["--listen", "localhost:8080", "--partner-name", "p"],
            "is not IP:PORT",
        ),
        ("no partner", &["--listen", "127.0.0.1:0"], "--partner-name"),
    ];
    for (name, args, message) in cases {
        let output = Command::new(BIN)
            .args(*args)
            .env("INSIDER_REQUEST_TOKEN", TOKEN)
            .output()
            .unwrap();
        assert!(!output.status.success(), "{name}");
        assert!(output.stdout.is_empty(), "{name}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(message), "{name}: {stderr}");
    }
    let no_token = Command::new(BIN)
        .args(["--partner-name", "p"])
        .env_remove("INSIDER_REQUEST_TOKEN")
        .output()
        .unwrap();
    assert!(!no_token.status.success());
    assert!(String::from_utf8_lossy(&no_token.stderr).contains("--request-token"));
}

#[test]
fn stands_in_for_ga4_with_kind_ga4() {
    let mut child = Command::new(BIN)
        .args(["--kind", "ga4", "--measurement-id", "G-TEST"])
        .env("GA4_API_SECRET", "ga4-secret")
        .env_remove("INSIDER_REQUEST_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let child = Running(Some(child));
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let addr: SocketAddr = line.trim()["listening on http://".len()..].parse().unwrap();
    let reply = send(
        addr,
        "POST",
        "/mp/collect?measurement_id=G-TEST&api_secret=ga4-secret",
        &[("Content-Type", "application/json")],
        br#"{"client_id":"c1","events":[{"name":"login","params":{"method":"x"}}]}"#,
    )
    .unwrap();
    assert_eq!(reply.status, 204);
    let events = send(addr, "GET", "/_simulator/events", &[], b"")
        .unwrap()
        .json();
    assert_eq!(events[0]["client_id"], "c1");
    assert_eq!(events[0]["name"], "login");
    assert!(terminate(child).success());
    // Without its measurement ID it does not start.
    let output = Command::new(BIN)
        .args(["--kind", "ga4"])
        .env("GA4_API_SECRET", "x")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--measurement-id"));
}
