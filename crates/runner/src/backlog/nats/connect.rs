//! Connecting to NATS with the configured credentials and TLS, and naming servers without the
//! credentials a URL may carry.

use crate::config::NatsConfig;

pub(super) async fn connect(config: &NatsConfig) -> Result<async_nats::Client, String> {
    let mut options = async_nats::ConnectOptions::new().name("hardal");
    if let Some(token) = &config.token {
        options = options.token(token.expose().to_owned());
    }
    if let Some(user) = &config.user {
        let password = config
            .password
            .as_ref()
            .map(|p| p.expose().to_owned())
            .unwrap_or_default();
        options = options.user_and_password(user.clone(), password);
    }
    if let Some(file) = &config.credentials_file {
        options = options
            .credentials_file(file)
            .await
            .map_err(|e| format!("NATS: reading credentials file {file}: {e}"))?;
    }
    if let Some(tls) = &config.tls {
        options = options.require_tls(tls.required);
        if let Some(ca) = &tls.ca_file {
            options = options.add_root_certificates(ca.into());
        }
        if let (Some(cert), Some(key)) = (&tls.cert_file, &tls.key_file) {
            options = options.add_client_certificate(cert.into(), key.into());
        }
    }
    let servers: Vec<async_nats::ServerAddr> = config
        .servers
        .iter()
        .map(|s| {
            s.parse()
                .map_err(|e| format!("NATS: server address `{}`: {e}", without_credentials(s)))
        })
        .collect::<Result<_, _>>()?;
    let named: Vec<String> = config
        .servers
        .iter()
        .map(|s| without_credentials(s))
        .collect();
    options
        .connect(servers)
        .await
        .map_err(|e| format!("NATS: cannot connect to {}: {e}", named.join(", ")))
}

/// A server URL as it may be shown: credentials written into it (`nats://user:pass@host`) are
/// replaced.
fn without_credentials(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.split_once('@') {
            Some((_, host)) => format!("{scheme}://[redacted]@{host}"),
            None => url.to_owned(),
        },
        None => match url.split_once('@') {
            Some((_, host)) => format!("[redacted]@{host}"),
            None => url.to_owned(),
        },
    }
}
