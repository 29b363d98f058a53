//! Checks made before any work, shared by `bench`, `sweep`, `run` and embedders of [`crate::bench`]:
//!
//! - [`local`]: the configuration (every number and name), the URL's shape, every output file can be written,
//!   the open-file limit allows the connections the run may hold (raised toward the hard limit when needed).
//!   Nothing is sent. Every error is bad input.
//! - [`probe`]: the server answers at all (one `GET /v1/models`), told apart as connection refused, TLS spoken
//!   to a plain-HTTP port, or another network error, each with what to do; and the model it lists.
//! - [`check_base_url`]: `localhost:30000` (no scheme) and other URLs the client cannot use.
//!
//! Errors say what was wrong and what to pass instead; [`ServerError::is_bad_input`] tells the caller which
//! ones are the user's input (exit code 2) and which the server's or the network's (exit code 1).

use crate::bench::{url_without_credentials, BenchConfig};
use crate::nofile::{self, OpenFilesError};
use crate::outpath::{self, OutputPathError};
use crate::LoadError;
use serde_json::Value;
use std::time::Duration;

/// The server cannot be used as given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServerError {
    #[error("--base-url {given}: the URL has no scheme; use {suggestion}")]
    NoScheme { given: String, suggestion: String },
    #[error("--base-url {given}: the scheme {scheme}:// is not supported; use http:// (or https:// for a server with TLS)")]
    BadScheme { given: String, scheme: String },
    #[error("--base-url {given}: not a URL ({reason}); use e.g. http://127.0.0.1:30000")]
    BadUrl { given: String, reason: String },
    #[error("the server at {url} is not reachable (connection refused): nothing listens on {host_port}; start the server, or check --base-url/--host/--port")]
    Refused { url: String, host_port: String },
    #[error("the server at {url} is not reachable ({reason}): check --base-url/--host/--port and that the server is up")]
    Unreachable { url: String, reason: String },
    #[error("TLS with {url} failed: that port answers plain HTTP, not TLS; use {plain}")]
    TlsToPlainHttp { url: String, plain: String },
    #[error("TLS with {url} failed: {reason}")]
    Tls { url: String, reason: String },
    #[error("no --model given and {url}/v1/models lists no model ({what}): pass --model")]
    NoModel { url: String, what: String },
}

impl ServerError {
    /// Whether the user's input is wrong (a URL that cannot work, no model to name), as opposed to a server
    /// or network that does not answer.
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            ServerError::NoScheme { .. }
                | ServerError::BadScheme { .. }
                | ServerError::BadUrl { .. }
                | ServerError::NoModel { .. }
        )
    }
}

/// `url` as the client can use it: `http://` or `https://` with a host. `localhost:30000` (no scheme, which
/// the URL standard reads as the scheme `localhost:`) gets the suggestion `http://localhost:30000`.
pub fn check_base_url(url: &str) -> Result<url::Url, ServerError> {
    if !url.contains("://") {
        // Read as the http:// URL it was meant to be, so credentials in it are found and left out.
        let suggestion = url_without_credentials(&format!("http://{url}"));
        return Err(ServerError::NoScheme {
            given: suggestion.trim_start_matches("http://").to_string(),
            suggestion,
        });
    }
    let parsed = url::Url::parse(url).map_err(|e| ServerError::BadUrl {
        given: without_userinfo(url),
        reason: e.to_string(),
    })?;
    let given = url_without_credentials(url);
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(ServerError::BadScheme {
            scheme: parsed.scheme().to_string(),
            given,
        });
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(ServerError::BadUrl {
            given,
            reason: "no host".into(),
        });
    }
    Ok(parsed)
}

/// `scheme://user:key@rest` → `scheme://rest`, for text that is not a valid URL (so the `url` crate cannot
/// remove the credentials).
fn without_userinfo(u: &str) -> String {
    match (u.find("://"), u.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}{}", &u[..s + 3], &u[at + 1..]),
        _ => u.to_string(),
    }
}

/// A local check failed: always bad input (nothing was sent).
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error(transparent)]
    Config(#[from] LoadError),
    #[error(transparent)]
    Output(#[from] OutputPathError),
    #[error(transparent)]
    OpenFiles(#[from] OpenFilesError),
}

/// The checks of one bench that need no server: [`BenchConfig::validate`] (the URL's shape included), the
/// result and details files can be written, and the open-file limit allows the connections it may hold. With
/// no `max_concurrency` a too-low limit is not an error: the run goes on with what the system allows, and the
/// returned warning says so.
pub fn local(c: &BenchConfig) -> Result<Vec<String>, LocalError> {
    c.validate()?;
    for p in c.output_file.iter().chain(c.details_file.as_ref()) {
        outpath::ensure_writable_file(p)?;
    }
    let n = c.workload.num_prompts as u64;
    let connections = c.max_concurrency.map_or(n, |m| (m as u64).min(n));
    let need = nofile::needed(connections, c.simulated);
    match nofile::ensure(need, "--max-concurrency", connections) {
        Ok(_) => Ok(Vec::new()),
        Err(e) if c.max_concurrency.is_none() => Ok(vec![e.to_string()]),
        Err(e) => Err(e.into()),
    }
}

/// What the server answered to `GET /v1/models`.
#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    /// The HTTP status.
    pub status: u16,
    /// The body when it was JSON.
    pub models: Option<Value>,
}

impl Probe {
    /// The first model id listed, if any.
    pub fn first_model(&self) -> Option<String> {
        self.models.as_ref()?["data"][0]["id"]
            .as_str()
            .map(str::to_string)
    }
}

/// How long [`probe`] waits for the server's answer.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// One `GET {base_url}/v1/models` with `http` (so proxies and TLS settings are the run's): any HTTP answer
/// means the server is reachable; a failure to connect is classified ([`ServerError::Refused`],
/// [`ServerError::TlsToPlainHttp`], …).
pub async fn probe(
    http: &reqwest::Client,
    base_url: &str,
    api_key: Option<&str>,
) -> Result<Probe, ServerError> {
    let parsed = check_base_url(base_url)?;
    let mut req = http
        .get(format!("{}/v1/models", base_url.trim_end_matches('/')))
        .timeout(PROBE_TIMEOUT);
    if let Some(k) = api_key.filter(|k| !k.is_empty()) {
        req = req.bearer_auth(k);
    }
    match req.send().await {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let models = resp.json::<Value>().await.ok();
            Ok(Probe { status, models })
        }
        Err(e) => Err(classify(&parsed, base_url, &e)),
    }
}

/// With several endpoints, probes every one but the first (whose probe also finds the model) at once; the
/// error names the first endpoint that cannot be reached, with its classified reason.
pub async fn probe_other_endpoints(
    clients: &[&reqwest::Client],
    urls: &[String],
    api_key: Option<&str>,
) -> Result<(), LoadError> {
    let probes = clients
        .iter()
        .zip(urls)
        .skip(1)
        .map(|(http, url)| probe(http, url, api_key));
    let answers = futures_util::future::join_all(probes).await;
    for (i, a) in answers.into_iter().enumerate() {
        if let Err(e) = a {
            let url = url_without_credentials(&urls[i + 1]);
            return Err(LoadError::Config(format!(
                "endpoint {} ({url}): {e}",
                i + 1
            )));
        }
    }
    Ok(())
}

/// The model to name in requests: `model` when given, else the first one `probe` found.
pub fn model_of(model: Option<&str>, probe: &Probe, base_url: &str) -> Result<String, ServerError> {
    if let Some(m) = model {
        return Ok(m.to_string());
    }
    probe.first_model().ok_or_else(|| ServerError::NoModel {
        url: url_without_credentials(base_url),
        what: match (probe.status, &probe.models) {
            (200..=299, Some(_)) => "its list is empty".into(),
            (200..=299, None) => "the answer is not JSON".into(),
            (s, _) => format!("HTTP {s}"),
        },
    })
}

/// Why a request that got no HTTP answer failed, in words a user can act on.
fn classify(url: &url::Url, base_url: &str, e: &reqwest::Error) -> ServerError {
    let shown = url_without_credentials(base_url);
    let mut texts = Vec::new();
    let mut refused = false;
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            refused |= io.kind() == std::io::ErrorKind::ConnectionRefused;
        }
        texts.push(c.to_string());
        cause = c.source();
    }
    let deepest = texts.last().cloned().unwrap_or_default();
    let all = texts.join(": ").to_ascii_lowercase();
    if refused || all.contains("connection refused") {
        let port = url.port_or_known_default().unwrap_or(0);
        return ServerError::Refused {
            url: shown,
            host_port: format!("{}:{port}", url.host_str().unwrap_or_default()),
        };
    }
    if url.scheme() == "https" {
        // rustls reads a plain-HTTP answer ("HTTP/1.1 400 …") as a TLS record of an unknown type.
        if all.contains("invalidcontenttype") || all.contains("corrupt message") {
            let mut plain = url.clone();
            let _ = plain.set_scheme("http");
            return ServerError::TlsToPlainHttp {
                url: shown,
                plain: url_without_credentials(plain.as_str().trim_end_matches('/')),
            };
        }
        if all.contains("tls") || all.contains("certificate") || all.contains("handshake") {
            return ServerError::Tls {
                url: shown,
                reason: deepest,
            };
        }
    }
    let reason = if e.is_timeout() {
        format!("no answer within {} s", PROBE_TIMEOUT.as_secs())
    } else {
        deepest
    };
    ServerError::Unreachable { url: shown, reason }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_without_a_usable_scheme_say_what_to_pass() {
        assert_eq!(
            check_base_url("localhost:30000").unwrap_err().to_string(),
            "--base-url localhost:30000: the URL has no scheme; use http://localhost:30000"
        );
        assert_eq!(
            check_base_url("127.0.0.1:8000").unwrap_err(),
            ServerError::NoScheme {
                given: "127.0.0.1:8000".into(),
                suggestion: "http://127.0.0.1:8000".into()
            }
        );
        assert!(check_base_url("ftp://h:1")
            .unwrap_err()
            .to_string()
            .contains("the scheme ftp:// is not supported"));
        assert!(check_base_url("http://").is_err());
        assert!(check_base_url("http://127.0.0.1:30000").is_ok());
        assert!(check_base_url("https://example.com").is_ok());
        // Credentials never reach the message.
        let e = check_base_url("user:sk-secret@host:1")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("sk-secret"), "{e}");
        assert_eq!(
            e,
            "--base-url host:1: the URL has no scheme; use http://host:1"
        );
        let e = check_base_url("http://u:sk-secret@[::1")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("sk-secret") && e.contains("http://[::1"), "{e}");
        assert!(ServerError::NoScheme {
            given: String::new(),
            suggestion: String::new()
        }
        .is_bad_input());
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    /// A port nothing listens on: bound, then closed.
    fn closed_port() -> u16 {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    }

    /// A plain-HTTP server answering every connection with `answer`.
    fn plain_server(answer: &'static str) -> u16 {
        use std::io::{Read, Write};
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for mut s in l.incoming().flatten() {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf);
                let _ = s.write_all(answer.as_bytes());
            }
        });
        port
    }

    #[test]
    fn refused_tls_to_plain_and_no_model_are_told_apart() {
        crate::ensure_tls_provider();
        let rt = runtime();
        let http = reqwest::Client::new();
        let port = closed_port();
        let url = format!("http://127.0.0.1:{port}");
        let e = rt.block_on(probe(&http, &url, None)).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("the server at {url} is not reachable (connection refused): nothing listens on 127.0.0.1:{port}; start the server, or check --base-url/--host/--port")
        );
        assert!(!e.is_bad_input());

        let body = r#"{"object":"list","data":[]}"#;
        let answer: &'static str = Box::leak(
            format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            )
            .into_boxed_str(),
        );
        let port = plain_server(answer);
        let e = rt
            .block_on(probe(&http, &format!("https://127.0.0.1:{port}"), None))
            .unwrap_err();
        match &e {
            ServerError::TlsToPlainHttp { plain, .. } => {
                assert_eq!(plain, &format!("http://127.0.0.1:{port}"))
            }
            other => panic!("{other:?}"),
        }
        assert!(e
            .to_string()
            .contains("answers plain HTTP, not TLS; use http://"));

        let url = format!("http://127.0.0.1:{port}");
        let p = rt.block_on(probe(&http, &url, None)).unwrap();
        assert_eq!(p.status, 200);
        assert_eq!(model_of(Some("m"), &p, &url).unwrap(), "m");
        let e = model_of(None, &p, &url).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("no --model given and {url}/v1/models lists no model (its list is empty): pass --model")
        );
        assert!(e.is_bad_input());
    }

    #[test]
    fn local_checks_config_outputs_and_open_files() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = BenchConfig::new("http://127.0.0.1:1", "vllm").unwrap();
        c.workload.dataset = crate::bench::DatasetName::Random;
        c.output_file = Some(dir.path().join("r.jsonl"));
        assert!(local(&c).unwrap().is_empty());
        c.output_file = Some(dir.path().to_path_buf());
        assert!(matches!(local(&c), Err(LocalError::Output(_))));
        c.output_file = None;
        c.base_url = "localhost:1".into();
        let e = local(&c).unwrap_err().to_string();
        assert!(e.contains("use http://localhost:1"), "{e}");
    }
}
