//! Asking a server who it is: is anything listening at an address, does it answer HTTP, and what it says about
//! itself (`/v1/models`, `/get_server_info`).

use serde_json::Value;
use std::time::Duration;

use super::LaunchError;
use crate::secrets::{redact_secrets, redact_url};

/// Host and port of a base URL (`http://127.0.0.1:30000` → ("127.0.0.1", 30000)).
pub fn host_port(base_url: &str) -> Result<(String, u16), LaunchError> {
    let url = reqwest::Url::parse(base_url).map_err(|e| {
        LaunchError::BadUrl(format!(
            "{}: {e} (write it as http://HOST:PORT)",
            redact_url(base_url)
        ))
    })?;
    let host = url
        .host_str()
        .ok_or_else(|| LaunchError::BadUrl(format!("{}: no host", redact_url(base_url))))?
        .trim_matches(['[', ']'])
        .to_string();
    let port = url
        .port_or_known_default()
        .ok_or_else(|| LaunchError::BadUrl(format!("{}: no port", redact_url(base_url))))?;
    Ok((host, port))
}

/// True when something accepts TCP connections at the address of `base_url`.
pub async fn listening(base_url: &str) -> Result<bool, LaunchError> {
    let (host, port) = host_port(base_url)?;
    let connect = tokio::net::TcpStream::connect((host.as_str(), port));
    Ok(matches!(
        tokio::time::timeout(Duration::from_secs(2), connect).await,
        Ok(Ok(_))
    ))
}

pub(crate) fn http_client() -> reqwest::Client {
    servebench_load::ensure_tls_provider();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(3))
        .build()
        .unwrap_or_default()
}

/// `Err` when nothing answered HTTP; `Ok(None)` for an answer that is not a 2xx JSON body.
async fn get_json(
    http: &reqwest::Client,
    url: String,
    api_key: Option<&str>,
) -> Result<Option<Value>, reqwest::Error> {
    let mut req = http.get(url);
    if let Some(k) = api_key {
        req = req.bearer_auth(k);
    }
    let r = req.send().await?;
    if !r.status().is_success() {
        return Ok(None);
    }
    Ok(r.json().await.ok())
}

/// True when the server answers 2xx on `/health` or `/v1/models`.
pub async fn answers(http: &reqwest::Client, base_url: &str, api_key: Option<&str>) -> bool {
    for path in ["/health", "/v1/models"] {
        let mut req = http.get(format!("{base_url}{path}"));
        if let Some(k) = api_key {
            req = req.bearer_auth(k);
        }
        if req.send().await.is_ok_and(|r| r.status().is_success()) {
            return true;
        }
    }
    false
}

/// What the server says about itself: model ids from `/v1/models` and `/get_server_info` (secrets redacted,
/// null where absent).
pub async fn self_description(
    http: &reqwest::Client,
    base_url: &str,
    api_key: Option<&str>,
) -> (Vec<String>, Value) {
    let models = match get_json(http, format!("{base_url}/v1/models"), api_key).await {
        Ok(v) => v.map(|v| model_ids(&v)).unwrap_or_default(),
        // No HTTP answer at all: asking again elsewhere would only wait again.
        Err(_) => return (Vec::new(), Value::Null),
    };
    let mut info = Value::Null;
    for path in ["/get_server_info", "/server_info"] {
        if let Ok(Some(v)) = get_json(http, format!("{base_url}{path}"), api_key).await {
            info = redact_secrets(v);
            break;
        }
    }
    (models, info)
}

/// The ids of a `/v1/models` answer.
pub fn model_ids(v: &Value) -> Vec<String> {
    v["data"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|m| m["id"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// One line naming whatever answers at `base_url`, for the "address taken" error.
pub async fn describe_occupant(base_url: &str, api_key: Option<&str>) -> String {
    let http = http_client();
    let (models, info) = self_description(&http, base_url, api_key).await;
    let mut parts = Vec::new();
    if !models.is_empty() {
        parts.push(format!("/v1/models lists {models:?}"));
    }
    if let Some(o) = info.as_object() {
        let pick = |k: &str| {
            o.get(k)
                .filter(|v| !v.is_null())
                .map(|v| format!("{k}={v}"))
        };
        let fields: Vec<String> = [
            "engine",
            "version",
            "preset",
            "model_path",
            "served_model_name",
        ]
        .iter()
        .filter_map(|k| pick(k))
        .collect();
        if !fields.is_empty() {
            parts.push(format!("/get_server_info says {}", fields.join(", ")));
        }
    }
    if parts.is_empty() {
        let status = http
            .get(format!("{base_url}/"))
            .send()
            .await
            .map(|r| format!("HTTP {}", r.status()))
            .unwrap_or_else(|_| "no HTTP answer".into());
        parts.push(format!(
            "something accepts connections there ({status}; no /v1/models or /get_server_info)"
        ));
    }
    parts.join("; ")
}
