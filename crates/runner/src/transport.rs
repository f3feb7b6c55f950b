//! The HTTP transport: sends a destination's `HttpRequest` with reqwest and hands back the
//! response for the destination to judge. A request that gets no response (refused or dropped
//! connection, timeout) is a transport failure, which the engine retries.
//!
//! Redirects are never followed: following one would send the credential headers (and, on 307
//! and 308, the body) to wherever the server points. The 3xx goes to the destination to judge,
//! which pauses it. Response bodies are read up to a bound and the rest is not waited for.

use std::time::Duration;

use hardal_core::{HttpMethod, HttpRequest, HttpResponse};

/// A shared HTTP client (connection pooling, TLS).
#[derive(Clone)]
pub struct Transport {
    client: reqwest::Client,
}

/// The longest response body kept for judging; Insider's answers are far smaller.
const MAX_RESPONSE_BYTES: usize = 1 << 20;

impl Transport {
    pub fn new() -> Result<Transport, String> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(64)
            .user_agent(concat!("hardal/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot set up the HTTP client: {e}"))?;
        Ok(Transport { client })
    }

    /// Sends one request. The error is a reason fit for a dead letter; it never contains header
    /// values (reqwest's errors name the URL and the failure, not the headers).
    pub async fn send(
        &self,
        request: HttpRequest,
        timeout: Duration,
    ) -> Result<HttpResponse, String> {
        let method = match request.method {
            HttpMethod::Post => reqwest::Method::POST,
            HttpMethod::Put => reqwest::Method::PUT,
            HttpMethod::Patch => reqwest::Method::PATCH,
            HttpMethod::Get => reqwest::Method::GET,
            HttpMethod::Delete => reqwest::Method::DELETE,
        };
        let mut builder = self
            .client
            .request(method, &request.url)
            .timeout(timeout)
            .body(request.body);
        for (name, value) in &request.headers {
            builder = builder.header(name.as_str(), value.expose());
        }
        let mut response = builder.send().await.map_err(describe)?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect();
        let mut body = Vec::new();
        while body.len() < MAX_RESPONSE_BYTES {
            let Some(chunk) = response.chunk().await.map_err(describe)? else {
                break;
            };
            body.extend_from_slice(&chunk[..chunk.len().min(MAX_RESPONSE_BYTES - body.len())]);
        }
        Ok(HttpResponse {
            status,
            headers,
            body,
        })
    }
}

fn describe(error: reqwest::Error) -> String {
    let error = error.without_url();
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else {
        "failed"
    };
    let mut text = format!("request {kind}: {error}");
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}
