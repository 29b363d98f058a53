//! The scrape loop against the simulator under load: queueing behind `max_running` shows in the series.

use servebench_load::prometheus::{scrape, Dialect};
use servebench_sim::{SimConfig, SimServer};
use std::time::Duration;
use tokio::sync::watch;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scraping_the_simulator_shows_running_and_queued_requests() {
    let mut cfg = SimConfig::preset("default").expect("preset");
    cfg.max_running = 2;
    cfg.decode_base_ms = 20.0;
    let sim = SimServer::start(cfg, "127.0.0.1:0".parse().unwrap())
        .await
        .expect("sim");
    let base = sim.base_url();
    servebench_load::ensure_tls_provider();
    let client = reqwest::Client::new();
    let (stop_tx, stop_rx) = watch::channel(false);
    let scraper = tokio::spawn(scrape(
        client.clone(),
        format!("{base}/metrics"),
        Duration::from_millis(100),
        stop_rx,
    ));
    // Six requests of 40 tokens against 2 slots: 4 wait in the queue for ~0.8 s.
    let mut reqs = Vec::new();
    for _ in 0..6 {
        let c = client.clone();
        let url = format!("{base}/v1/completions");
        reqs.push(tokio::spawn(async move {
            c.post(url)
                .json(&serde_json::json!({"model": "m", "prompt": "hello", "max_tokens": 40, "ignore_eos": true}))
                .send()
                .await
                .and_then(|r| r.error_for_status())
                .map(|_| ())
        }));
    }
    for r in reqs {
        r.await.expect("join").expect("request");
    }
    tokio::time::sleep(Duration::from_millis(250)).await;
    stop_tx.send(true).expect("stop");
    let series = scraper.await.expect("scraper");
    sim.shutdown().await;
    assert_eq!(series.dialect, Some(Dialect::Sglang));
    assert_eq!(series.failed_scrapes, 0, "{:?}", series.last_error);
    assert!(
        series.samples.len() >= 5,
        "{} samples",
        series.samples.len()
    );
    let max_running = series
        .samples
        .iter()
        .filter_map(|s| s.running)
        .fold(0.0, f64::max);
    assert_eq!(max_running, 2.0, "never more than max_running run at once");
    assert!(
        series.max_queued().unwrap_or(0.0) >= 1.0,
        "the queue was seen: {:?}",
        series.samples
    );
    let last = series.samples.last().unwrap();
    assert_eq!(
        (last.running, last.queued),
        (Some(0.0), Some(0.0)),
        "all done at the end"
    );
    assert!(series
        .samples
        .iter()
        .any(|s| s.gen_throughput.unwrap_or(0.0) > 0.0));
    let t: Vec<f64> = series.samples.iter().map(|s| s.t_s).collect();
    assert!(t.windows(2).all(|w| w[1] > w[0]), "samples in time order");
}
