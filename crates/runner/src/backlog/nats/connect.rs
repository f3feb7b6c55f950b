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
    // Credentials written into a URL are taken out of it and given to the client as options:
    // the client would print the URL, password and all, in its debug log (and uses only the
    // options to authenticate).
    let mut servers = Vec::new();
    let mut from_urls = None;
    for server in &config.servers {
        let (addr, credentials) = split_credentials(server)?;
        if let Some(credentials) = credentials {
            if from_urls
                .as_ref()
                .is_some_and(|found| *found != credentials)
            {
                return Err("NATS: the URLs of `backlog.servers` carry different credentials; give one set in `backlog.user` and `backlog.password` (or `backlog.token`) instead".into());
            }
            from_urls = Some(credentials);
        }
        servers.push(addr);
    }
    if let Some(credentials) = from_urls {
        if config.token.is_some() || config.user.is_some() || config.credentials_file.is_some() {
            return Err("NATS: `backlog.servers` carry credentials in their URLs, and `backlog.token`, `backlog.user` or `backlog.credentials_file` gives others; keep one".into());
        }
        options = match credentials {
            Credentials::User(user, password) => options.user_and_password(user, password),
            Credentials::Token(token) => options.token(token),
        };
    }
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

/// Credentials a server URL carries: `nats://user:password@host` or `nats://token@host`.
#[derive(PartialEq)]
enum Credentials {
    User(String, String),
    Token(String),
}

/// A server's address without credentials, and the credentials its URL carried (decoded).
fn split_credentials(
    server: &str,
) -> Result<(async_nats::ServerAddr, Option<Credentials>), String> {
    let unreadable = |e: &dyn std::fmt::Display| {
        format!(
            "NATS: server address `{}`: {e}",
            without_credentials(server)
        )
    };
    let addr: async_nats::ServerAddr = server.parse().map_err(|e| unreadable(&e))?;
    if !addr.has_user_pass() {
        return Ok((addr, None));
    }
    let decode = |text: &str| {
        percent_encoding::percent_decode_str(text)
            .decode_utf8()
            .map(|t| t.into_owned())
            .map_err(|_| unreadable(&"its credentials are not UTF-8 once decoded"))
    };
    let credentials = match (addr.username(), addr.password()) {
        (Some(user), Some(password)) => Credentials::User(decode(user)?, decode(password)?),
        (Some(token), None) => Credentials::Token(decode(token)?),
        _ => return Ok((addr, None)),
    };
    let mut url = addr.into_inner();
    // Both only fail on URLs that cannot have credentials, which this one had.
    let _ = url.set_username("");
    let _ = url.set_password(None);
    let addr = async_nats::ServerAddr::from_url(url).map_err(|e| unreadable(&e))?;
    Ok((addr, Some(credentials)))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_leave_the_url_decoded() {
        let (addr, credentials) = split_credentials("nats://hardal:p%40ss@10.0.0.1:4222").unwrap();
        assert_eq!(addr.into_inner().as_str(), "nats://10.0.0.1:4222");
        assert!(credentials == Some(Credentials::User("hardal".into(), "p@ss".into())));
        let (addr, credentials) = split_credentials("tls://s3cret@nats.example").unwrap();
        assert_eq!(addr.into_inner().as_str(), "tls://nats.example");
        assert!(credentials == Some(Credentials::Token("s3cret".into())));
        let (addr, credentials) = split_credentials("10.0.0.2").unwrap();
        assert_eq!(addr.into_inner().as_str(), "nats://10.0.0.2");
        assert!(credentials.is_none());
    }
}
