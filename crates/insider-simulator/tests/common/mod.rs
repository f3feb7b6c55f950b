//! A tiny blocking HTTP/1.1 client and helpers shared by the integration tests.
//!
//! The simulator must not pull an HTTP client into its dependency tree, so tests speak HTTP over a
//! plain `TcpStream`: one request per connection (`Connection: close`), read to the end.

#![allow(dead_code)]

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use hardal_insider_simulator::{Simulator, SimulatorConfig};
use serde_json::Value;

pub const PARTNER: &str = "mybrand";
pub const TOKEN: &str = "secret-token";
pub const UPSERT: &str = "/api/user/v1/upsert";

/// A response as the client read it.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.body))
    }
}

/// Starts a recording simulator with the test credentials.
pub fn simulator() -> Simulator {
    Simulator::start(SimulatorConfig::new(PARTNER, TOKEN)).expect("simulator starts")
}

/// Sends one request; an error when the connection closes without a response.
pub fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> io::Result<Reply> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    parse(&raw)
}

fn parse(raw: &[u8]) -> io::Result<Reply> {
    let invalid = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_string());
    if raw.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed without a response",
        ));
    }
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| invalid("no end of headers"))?;
    let head = std::str::from_utf8(&raw[..split]).map_err(|_| invalid("head not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| invalid("bad status line"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    if chunked {
        body = dechunk(&body).ok_or_else(|| invalid("bad chunked body"))?;
    }
    let body = String::from_utf8(body).map_err(|_| invalid("body not UTF-8"))?;
    Ok(Reply {
        status,
        headers,
        body,
    })
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&data[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}

/// Posts an upsert body with the right credentials.
pub fn upsert(sim: &Simulator, body: &str) -> Reply {
    try_upsert(sim, body).expect("simulator answers")
}

/// Like [`upsert`], but a dropped connection is a value rather than a panic.
pub fn try_upsert(sim: &Simulator, body: &str) -> io::Result<Reply> {
    upsert_to(sim.addr(), body)
}

/// Posts an upsert body with the right credentials to a simulator at `addr`.
pub fn upsert_to(addr: std::net::SocketAddr, body: &str) -> io::Result<Reply> {
    send(
        addr,
        "POST",
        UPSERT,
        &[
            ("X-PARTNER-NAME", PARTNER),
            ("X-REQUEST-TOKEN", TOKEN),
            ("Content-Type", "application/json"),
        ],
        body.as_bytes(),
    )
}

/// A valid user with one attribute.
pub fn user(n: usize) -> Value {
    serde_json::json!({"identifiers": {"uuid": format!("u{n}")}, "attributes": {"name": "A"}})
}

/// A request body around these users.
pub fn batch(users: &[Value]) -> String {
    serde_json::json!({ "users": users }).to_string()
}
