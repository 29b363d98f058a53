use super::*;

fn spec(cmd: LaunchCommand, dir: &Path, base_url: &str) -> ServerSpec {
    ServerSpec {
        command: cmd,
        env: BTreeMap::new(),
        cwd: Some(dir.to_path_buf()),
        base_url: base_url.into(),
        ready_timeout: Duration::from_secs(20),
        stop_grace: Duration::from_secs(5),
        log_path: dir.join("logs/server.log"),
        api_key: None,
    }
}

/// A loopback address nothing listens on (bound, then released).
fn free_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}", l.local_addr().unwrap())
}

fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| group::stat_state_and_pgrp(&s))
        .is_some_and(|(st, _)| st != 'Z')
}

#[test]
fn command_lines_split_like_a_shell_and_refuse_shell_syntax() {
    let c = LaunchCommand::from_line(
        r#"python3 -m sglang.launch_server --model-path "/m/my model" --port 30000"#,
        false,
    )
    .unwrap();
    assert_eq!(
        c,
        LaunchCommand::Argv(
            [
                "python3",
                "-m",
                "sglang.launch_server",
                "--model-path",
                "/m/my model",
                "--port",
                "30000"
            ]
            .map(String::from)
            .to_vec()
        )
    );
    for bad in [
        "serve | tee log",
        "a && b",
        "serve > log",
        "serve --x $HOME",
        "serve &",
    ] {
        let e = LaunchCommand::from_line(bad, false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("shell = true"), "{bad}: {e}");
    }
    let e = LaunchCommand::from_line("HF_TOKEN=hf_abcdefghijklmnop serve", false)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("[server.env]") && !e.contains("abcdefghijklmnop"),
        "{e}"
    );
    assert!(LaunchCommand::from_line("a | b", true).is_ok());
    assert!(LaunchCommand::from_line("  ", true).is_err());
    let shown = LaunchCommand::from_line("serve --api-key sk-abcdefgh123 --port 1", false)
        .unwrap()
        .redacted();
    assert_eq!(shown, "serve --api-key <redacted> --port 1");
}

#[tokio::test]
async fn a_server_that_exits_early_reports_its_status_and_log_without_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let s = spec(
        LaunchCommand::Shell(
            "echo loading model; echo using key sk-PLANTED123456 >&2; exit 3".into(),
        ),
        dir.path(),
        &free_url(),
    );
    let e = LaunchedServer::launch(&s).await.err().unwrap();
    let msg = e.to_string();
    assert!(matches!(e, LaunchError::ExitedBeforeReady(_)), "{msg}");
    assert!(
        msg.contains("exit status 3") && msg.contains("loading model"),
        "{msg}"
    );
    let log = std::fs::read_to_string(dir.path().join("logs/server.log")).unwrap();
    assert!(
        log.contains("loading model") && log.contains("using key <redacted>"),
        "{log}"
    );
    assert!(
        !log.contains("PLANTED") && !msg.contains("PLANTED"),
        "{log}"
    );
}

#[tokio::test]
async fn a_taken_address_is_refused_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let marker = dir.path().join("ran");
    let s = spec(
        LaunchCommand::Argv(vec!["touch".into(), marker.display().to_string()]),
        dir.path(),
        &url,
    );
    let e = LaunchedServer::launch(&s).await.err().unwrap();
    assert!(matches!(e, LaunchError::AddressTaken { .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("is taken") && msg.contains("--use-running-server"),
        "{msg}"
    );
    assert!(!marker.exists(), "the command must not run");
    drop(listener);
}

#[tokio::test]
async fn not_ready_in_time_stops_the_whole_group() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("pids");
    let mut s = spec(
        LaunchCommand::Shell(format!(
            "sleep 60 & echo $! > {}; sleep 60",
            pidfile.display()
        )),
        dir.path(),
        &free_url(),
    );
    s.ready_timeout = Duration::from_millis(1500);
    let e = LaunchedServer::launch(&s).await.err().unwrap();
    assert!(matches!(e, LaunchError::NotReady { .. }), "{e}");
    let grandchild: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(!alive(grandchild), "the background sleep was stopped too");
    assert!(launched_groups().is_empty() || !launched_groups().contains(&grandchild));
}

#[tokio::test]
async fn stop_escalates_to_sigkill_after_the_grace_period() {
    let dir = tempfile::tempdir().unwrap();
    // A stand-in server: answers HTTP once so that it counts as ready, ignores SIGTERM.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let port = url.rsplit(':').next().unwrap().to_string();
    let script = format!(
        "trap '' TERM; python3 -c \"import http.server,signal; signal.signal(signal.SIGTERM, signal.SIG_IGN); \
         http.server.HTTPServer(('127.0.0.1', {port}), http.server.SimpleHTTPRequestHandler).serve_forever()\""
    );
    if std::process::Command::new("python3")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("python3 missing: skipped");
        return;
    }
    let mut s = spec(LaunchCommand::Shell(script), dir.path(), &url);
    s.stop_grace = Duration::from_millis(500);
    std::fs::create_dir_all(dir.path().join("health")).unwrap();
    let mut server = LaunchedServer::launch(&s).await.expect("ready");
    let pid = server.pid() as i32;
    assert!(!group_members(pid).is_empty());
    assert!(server.exit_if_exited().is_none());
    assert_eq!(server.identity().pid, Some(pid as u32));
    assert!(server.identity().launched);
    let t0 = Instant::now();
    assert_eq!(server.stop(), StopHow::Killed);
    assert!(t0.elapsed() >= Duration::from_millis(500));
    assert!(group_members(pid).is_empty());
    assert!(!launched_groups().contains(&pid));
}
