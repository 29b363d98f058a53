//! The simulator on its own thread and runtime, so that `--sim` runs measure the client's event loop alone.

use anyhow::{Context, Result};
use servebench_sim::{SimConfig, SimServer};

/// A simulator running on a dedicated thread.
pub struct SimThread {
    base_url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl SimThread {
    /// Starts the simulator on 127.0.0.1 (ephemeral port) with `workers` runtime threads.
    pub fn start(config: SimConfig, workers: usize) -> Result<SimThread> {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<String, String>>();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("servebench-sim".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(workers.max(1))
                    .thread_name("sim-worker")
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.to_string()));
                        return;
                    }
                };
                rt.block_on(async move {
                    let addr = "127.0.0.1:0".parse().expect("literal address");
                    match SimServer::start(config, addr).await {
                        Ok(server) => {
                            let _ = ready_tx.send(Ok(server.base_url()));
                            let _ = stop_rx.await;
                            server.shutdown().await;
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(e.to_string()));
                        }
                    }
                });
            })
            .context("cannot start the simulator thread")?;
        let base_url = ready_rx
            .recv()
            .context("the simulator thread ended before it was ready")?
            .map_err(|e| anyhow::anyhow!("the simulator did not start: {e}"))?;
        Ok(SimThread {
            base_url,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Stops the simulator and waits for its thread.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for SimThread {
    fn drop(&mut self) {
        self.shutdown();
    }
}
