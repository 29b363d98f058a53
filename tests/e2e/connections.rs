//! `--connection-per-request`: every request on a new connection (as sglang.bench_serving), its set-up inside
//! TTFT; without it, keep-alive connections from a warm pool.

use crate::common::*;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What a [`slow_setup_proxy`] saw.
#[derive(Default)]
struct Seen {
    /// Connections that carried at least one POST (generation request).
    post_connections: AtomicU64,
    /// POST requests, over all connections.
    posts: AtomicU64,
}

/// A TCP proxy in front of `upstream` that holds every new connection `setup` before forwarding anything (a
/// slow connection set-up: what a client that opens a connection per request pays in each TTFT), and counts
/// connections and POSTs.
async fn slow_setup_proxy(upstream: SocketAddr, setup: Duration) -> (SocketAddr, Arc<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let seen = Arc::new(Seen::default());
    let s = seen.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let s = s.clone();
            tokio::spawn(async move {
                tokio::time::sleep(setup).await;
                let Ok(server) = TcpStream::connect(upstream).await else {
                    return;
                };
                let (mut cr, mut cw) = client.into_split();
                let (mut sr, mut sw) = server.into_split();
                let up = async move {
                    let mut buf = vec![0u8; 64 * 1024];
                    let mut counted = false;
                    while let Ok(n) = cr.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                        let posts = buf[..n].windows(6).filter(|w| w == b"POST /").count() as u64;
                        if posts > 0 && !counted {
                            counted = true;
                            s.post_connections.fetch_add(1, Ordering::SeqCst);
                        }
                        s.posts.fetch_add(posts, Ordering::SeqCst);
                        if sw.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                    let _ = sw.shutdown().await;
                };
                let down = async move {
                    let _ = tokio::io::copy(&mut sr, &mut cw).await;
                    let _ = cw.shutdown().await;
                };
                tokio::join!(up, down);
            });
        }
    });
    (addr, seen)
}

async fn bench_through_proxy(per_request: bool) -> (serde_json::Value, u64, u64) {
    let sim = start_sim("fast", |_| {}).await;
    let (addr, seen) = slow_setup_proxy(sim.addr(), SETUP).await;
    let dir = tempdir();
    let out = dir.path().join("r.json");
    let url = format!("http://{addr}");
    let mut a = vec![
        "--backend",
        "sglang",
        "--base-url",
        &url,
        "--dataset-name",
        "random",
        "--random-input-len",
        "32",
        "--random-output-len",
        "4",
        "--random-range-ratio",
        "1.0",
        "--num-prompts",
        "8",
        "--max-concurrency",
        "2",
        "--http-client",
        "native",
        "--output-file",
        out.to_str().expect("temp paths are UTF-8"),
        "--disable-tqdm",
    ];
    if per_request {
        a.push("--connection-per-request");
    }
    let r = run_bench(bench_args(&a)).await;
    let conns = seen.post_connections.load(Ordering::SeqCst);
    let posts = seen.posts.load(Ordering::SeqCst);
    (r, conns, posts)
}

const SETUP: Duration = Duration::from_millis(150);

fn ms(v: &serde_json::Value, k: &str) -> f64 {
    v[k].as_f64()
        .unwrap_or_else(|| panic!("{k} is not a number: {}", v[k]))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_per_request_opens_one_per_request_and_times_it() {
    let (r, conns, posts) = bench_through_proxy(true).await;
    assert_eq!(r["completed"], 8);
    // 8 timed requests and 1 warm-up: each on its own connection.
    assert_eq!(posts, 9);
    assert_eq!(conns, 9, "one connection per generation request");
    // The set-up of each new connection is inside its TTFT.
    let setup = SETUP.as_secs_f64() * 1000.0;
    for k in ["min_ttft_ms", "median_ttft_ms", "mean_ttft_ms"] {
        assert!(
            ms(&r, k) >= setup,
            "{k} {} < the {setup} ms set-up",
            ms(&r, k)
        );
    }

    let (r, conns, posts) = bench_through_proxy(false).await;
    assert_eq!(r["completed"], 8);
    assert_eq!(posts, 9);
    // Warm-up's connection and the warm pool (max concurrency 2) carry everything.
    assert!(
        conns <= 3,
        "{conns} connections carried POSTs without the flag"
    );
    // The pool was opened before the timed part: no TTFT pays the set-up.
    assert!(
        ms(&r, "max_ttft_ms") < setup,
        "max TTFT {} with warm connections",
        ms(&r, "max_ttft_ms")
    );
}
