//! The server's own metrics during each sweep point: `<base_url>/metrics` scraped every second while the point
//! runs (when the endpoint answered at the start of the sweep), stored next to the point's result as
//! `{details stem}.server_metrics.jsonl` (one [`PointMetrics`] object on one line; not `.json`, so tools that
//! read every `*.json` of a sweep folder as a point result pass it by). Credentials in the URL are never
//! printed or written (`crate::secrets::redact_url`). The scrape loop and the metric names are
//! [`servebench_load::prometheus`]; this module owns the file.

use serde::{Deserialize, Serialize};
use servebench_load::prometheus::{scrape, ServerSeries};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::watch;

/// Seconds between scrapes.
pub const INTERVAL: Duration = Duration::from_secs(1);

/// Suffix of the series file of one point.
pub const SUFFIX: &str = ".server_metrics.jsonl";

/// The series of one point, as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PointMetrics {
    /// The point's label (`in 64 out 8 ratio 1 conc 2`).
    pub point: String,
    /// The point's result file.
    pub result_file: String,
    /// Wall clock when scraping started (the series' `t_s` = 0), milliseconds since the Unix epoch; compare with
    /// the per-request records' `send_unix_ns`.
    pub started_unix_ms: f64,
    pub series: ServerSeries,
}

/// Where the series of a point whose per-request records go to `details_file` is written.
pub fn file_for(details_file: &Path) -> PathBuf {
    let name = details_file
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("point");
    let stem = name.strip_suffix(".details.jsonl").unwrap_or(name);
    details_file.with_file_name(format!("{stem}{SUFFIX}"))
}

/// A client for `/metrics` (with the run's bearer key, when there is one).
pub fn client(api_key: Option<&str>) -> Result<reqwest::Client, String> {
    servebench_load::ensure_tls_provider();
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(k) = api_key {
        let mut v = reqwest::header::HeaderValue::from_str(&format!("Bearer {k}"))
            .map_err(|_| "the API key is not a valid HTTP header value".to_string())?;
        v.set_sensitive(true);
        headers.insert(reqwest::header::AUTHORIZATION, v);
    }
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .map_err(|e| format!("cannot build an HTTP client: {e}"))
}

/// Ok when `<base_url>/metrics` answers 2xx with Prometheus text; else why not.
pub async fn probe(client: &reqwest::Client, base_url: &str) -> Result<(), String> {
    let url = format!("{base_url}/metrics");
    let resp = client
        .get(&url)
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
    if !resp.status().is_success() {
        return Err(format!("GET {url}: HTTP {}", resp.status().as_u16()));
    }
    let text = resp.text().await.map_err(|e| format!("GET {url}: {e}"))?;
    if servebench_load::prometheus::parse(&text).is_empty() {
        return Err(format!("GET {url}: no Prometheus metrics in the answer"));
    }
    Ok(())
}

/// A scrape loop running while one point runs.
pub struct PointScrape {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<ServerSeries>,
    started_unix_ms: f64,
}

impl PointScrape {
    /// Starts scraping `<base_url>/metrics` every [`INTERVAL`].
    pub fn start(client: &reqwest::Client, base_url: &str) -> PointScrape {
        let (stop, rx) = watch::channel(false);
        let started_unix_ms = chrono::Utc::now().timestamp_micros() as f64 / 1000.0;
        let task = tokio::spawn(scrape(
            client.clone(),
            format!("{base_url}/metrics"),
            INTERVAL,
            rx,
        ));
        PointScrape {
            stop,
            task,
            started_unix_ms,
        }
    }

    /// Stops scraping and returns the series (empty when the loop failed).
    pub async fn finish(self, point: String, result_file: &Path) -> PointMetrics {
        let _ = self.stop.send(true);
        let mut series = self.task.await.unwrap_or_default();
        series.url = crate::secrets::redact_url(&series.url);
        series.last_error = series.last_error.map(|e| crate::secrets::redact_url(&e));
        PointMetrics {
            point,
            result_file: result_file.display().to_string(),
            started_unix_ms: self.started_unix_ms,
            series,
        }
    }
}

/// Writes a point's series (replaced whole through a temporary file).
pub fn write(path: &Path, m: &PointMetrics) -> std::io::Result<()> {
    let tmp = path.with_extension("jsonl.tmp");
    let mut text = serde_json::to_vec(m).map_err(std::io::Error::other)?;
    text.push(b'\n');
    std::fs::write(&tmp, &text)?;
    std::fs::rename(&tmp, path)
}

/// Reads a point's series.
pub fn read(path: &Path) -> Result<PointMetrics, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A loopback server answering every request with `status` and `body`; its base URL.
    async fn stub(status: &'static str, body: &'static str) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", l.local_addr().unwrap());
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let reply = format!(
                    "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(reply.as_bytes()).await;
            }
        });
        url
    }

    #[tokio::test]
    async fn only_a_server_answering_prometheus_text_is_scraped() {
        let c = client(Some("k")).unwrap();
        let ok = stub("200 OK", "sglang:num_running_reqs{model_name=\"m\"} 3\n").await;
        assert_eq!(probe(&c, &ok).await, Ok(()));
        let missing = stub("404 Not Found", "no").await;
        let e = probe(&c, &missing).await.unwrap_err();
        assert!(e.ends_with("/metrics: HTTP 404"), "{e}");
        let html = stub("200 OK", "<html>hello</html>").await;
        let e = probe(&c, &html).await.unwrap_err();
        assert!(e.contains("no Prometheus metrics"), "{e}");
        let closed = format!("http://127.0.0.1:{}", {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        });
        assert!(probe(&c, &closed).await.is_err());
        // A scrape with credentials in the URL keeps none of them.
        let with_key = ok.replace("http://", "http://user:PLANTKEY42@");
        let m = PointScrape::start(&c, &with_key)
            .finish("p".into(), Path::new("r.json"))
            .await;
        let text = serde_json::to_string(&m).unwrap();
        assert!(
            !text.contains("PLANTKEY42") && text.contains("<redacted>"),
            "{text}"
        );
    }

    #[test]
    fn the_series_sits_next_to_the_points_records_and_reads_back() {
        assert_eq!(
            file_for(Path::new("out/perf/tp4_in64_out8_ratio1_c4.details.jsonl")),
            PathBuf::from("out/perf/tp4_in64_out8_ratio1_c4.server_metrics.jsonl")
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.server_metrics.jsonl");
        let m = PointMetrics {
            point: "in 64 out 8 ratio 1 conc 4".into(),
            result_file: "r.json".into(),
            started_unix_ms: 1.7e12,
            series: ServerSeries {
                url: "http://127.0.0.1:1/metrics".into(),
                interval_s: 1.0,
                ..Default::default()
            },
        };
        write(&path, &m).unwrap();
        assert_eq!(read(&path).unwrap(), m);
        assert!(read(&dir.path().join("missing.json")).is_err());
    }
}
