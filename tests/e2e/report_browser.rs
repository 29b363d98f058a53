//! `servebench report` and `servebench compare` on the fixtures in tests/fixtures/report,
//! rendered in headless Chromium: the DOM must hold the tables, every image must decode, and a
//! screenshot must come out.
//!
//! Needs Chromium (`apt-get install -y chromium`); set SERVEBENCH_SKIP_BROWSER=1 to skip where
//! it cannot be installed. SERVEBENCH_CHROMIUM names another binary; SERVEBENCH_KEEP_SCREENSHOTS
//! names a folder to copy the screenshots into.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/report")
}

/// The Chromium binary, or `None` when the test is to be skipped; panics when it is missing
/// and skipping was not asked for.
pub(crate) fn chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("SERVEBENCH_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        for name in [
            "chromium",
            "chromium-browser",
            "google-chrome",
            "google-chrome-stable",
        ] {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    if std::env::var("SERVEBENCH_SKIP_BROWSER").as_deref() == Ok("1") {
        eprintln!("report_browser: Chromium not found; skipped because SERVEBENCH_SKIP_BROWSER=1");
        return None;
    }
    panic!(
        "report_browser needs headless Chromium to render report.html: install it with \
         `apt-get update && apt-get install -y chromium` (or set SERVEBENCH_CHROMIUM to its path), \
         or set SERVEBENCH_SKIP_BROWSER=1 to skip this test"
    );
}

/// Runs a command with a deadline; returns (status ok, stdout, stderr).
fn run_with_deadline(mut cmd: Command, limit: Duration) -> (bool, String, String) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start chromium");
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let out_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for chromium") {
            break Some(status);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stdout = out_reader.join().unwrap_or_default();
    let stderr = err_reader.join().unwrap_or_default();
    (status.is_some_and(|s| s.success()), stdout, stderr)
}

fn chromium_cmd(bin: &Path, profile: &Path) -> Command {
    let mut cmd = Command::new(bin);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        "--virtual-time-budget=5000",
    ]);
    cmd.arg(format!("--user-data-dir={}", profile.display()));
    cmd
}

/// A copy of `html` with a script that, once the page has loaded, writes a marker saying how
/// many images there are and how many failed to decode.
pub(crate) fn with_checker(html: &Path) -> PathBuf {
    let page = std::fs::read_to_string(html).unwrap();
    let script = r#"<script>
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var broken = imgs.filter(function (i) { return !(i.complete && i.naturalWidth > 0); }).length;
  var svgs = Array.prototype.slice.call(document.querySelectorAll('svg'));
  var emptySvg = svgs.filter(function (s) { var b = s.getBoundingClientRect(); return !(b.width > 0 && b.height > 0); }).length;
  var m = document.createElement('div');
  m.id = 'sb-check';
  m.textContent = 'SB-CHECK images=' + imgs.length + ' broken=' + broken + ' svgs=' + svgs.length + ' empty_svgs=' + emptySvg + ' tables=' + document.querySelectorAll('table').length + ' END';
  document.body.appendChild(m);
});
</script>
</body>"#;
    assert!(
        page.contains("</body>"),
        "{} has no </body>",
        html.display()
    );
    let checked = html.with_file_name(format!(
        "{}_check.html",
        html.file_stem().unwrap().to_string_lossy()
    ));
    std::fs::write(&checked, page.replacen("</body>", script, 1)).unwrap();
    checked
}

/// Loads the page in Chromium; returns the DOM after load (with the checker's marker).
pub(crate) fn dump_dom(bin: &Path, page: &Path, profile: &Path) -> String {
    let mut cmd = chromium_cmd(bin, profile);
    cmd.arg("--dump-dom")
        .arg(format!("file://{}", page.display()));
    let (ok, stdout, stderr) = run_with_deadline(cmd, Duration::from_secs(90));
    assert!(
        ok,
        "chromium --dump-dom failed on {}:\n{stderr}",
        page.display()
    );
    stdout
}

pub(crate) fn screenshot(bin: &Path, page: &Path, profile: &Path, png: &Path) {
    let mut cmd = chromium_cmd(bin, profile);
    cmd.arg("--window-size=1440,2400")
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", page.display()));
    let (ok, _, stderr) = run_with_deadline(cmd, Duration::from_secs(90));
    assert!(
        ok,
        "chromium --screenshot failed on {}:\n{stderr}",
        page.display()
    );
    let bytes =
        std::fs::read(png).unwrap_or_else(|e| panic!("no screenshot {}: {e}", png.display()));
    assert!(
        bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
        "screenshot is not a PNG"
    );
    assert!(
        bytes.len() > 20_000,
        "screenshot suspiciously small: {} bytes",
        bytes.len()
    );
    if let Some(keep) = std::env::var_os("SERVEBENCH_KEEP_SCREENSHOTS") {
        let keep = PathBuf::from(keep);
        std::fs::create_dir_all(&keep).unwrap();
        std::fs::copy(png, keep.join(png.file_name().unwrap())).unwrap();
    }
}

/// The text the checker script wrote into `<div id="sb-check">` (not its source code).
pub(crate) fn marker(dom: &str) -> &str {
    let tag = "<div id=\"sb-check\">";
    let start = dom.find(tag).unwrap_or_else(|| {
        panic!(
            "the page's load check did not run; DOM starts:\n{}",
            &dom[..dom.len().min(2000)]
        )
    }) + tag.len();
    let end = dom[start..].find(" END").expect("marker end") + start;
    &dom[start..end]
}

fn servebench() -> Command {
    Command::new(env!("CARGO_BIN_EXE_servebench"))
}

#[test]
fn report_html_renders_in_chromium() {
    let Some(bin) = chromium() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("report");
    let fx = fixtures();
    let status = servebench()
        .arg("report")
        .arg(fx.join("fp8"))
        .arg(fx.join("sglang"))
        .arg(fx.join("vllm"))
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "servebench report failed:\n{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let stdout = String::from_utf8_lossy(&status.stdout);
    assert!(stdout.contains("11 runs, 2 eval sets"), "{stdout}");

    let page = with_checker(&out.join("report.html"));
    let dom = dump_dom(&bin, &page, &tmp.path().join("profile"));
    assert_eq!(
        marker(&dom),
        "SB-CHECK images=5 broken=0 svgs=0 empty_svgs=0 tables=3"
    );
    // Summary table: a header row and 11 runs, with rows from each source tool.
    let summary = dom
        .split("id=\"summary-table\"")
        .nth(1)
        .expect("summary table in DOM");
    let summary = summary.split("</table>").next().unwrap();
    assert_eq!(summary.matches("<tr>").count(), 12);
    for text in [
        "sglang_random_1024_256@c8",
        "tp1_in2048_out128_ratio1.0",
        "tp1_in3500_out1500_ratio0.7@c16",
        "vllm bench serve",
        "sglang.bench_serving",
        "simulated engine: 8 of 11 runs",
        "MATH-500",
        "Per-request latency: tp1_in3500_out1500_ratio0.7@c16",
    ] {
        assert!(dom.contains(text), "DOM lacks {text:?}");
    }
    screenshot(
        &bin,
        &out.join("report.html"),
        &tmp.path().join("profile"),
        &tmp.path().join("report.png"),
    );
}

#[test]
fn compare_html_renders_in_chromium() {
    let Some(bin) = chromium() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("cmp");
    let fx = fixtures();
    let res = servebench()
        .arg("compare")
        .arg(fx.join("fp8"))
        .arg(fx.join("int8"))
        .args(["--label-a", "FP8", "--label-b", "INT8", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        res.status.success(),
        "servebench compare failed:\n{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let stdout = String::from_utf8_lossy(&res.stdout);
    assert!(
        stdout.contains("INT8 − FP8 on MATH-500: −10.0 points, 95% CI ["),
        "{stdout}"
    );
    assert!(stdout.contains("p=0.29, not significant"), "{stdout}");

    let page = with_checker(&out.join("compare.html"));
    let dom = dump_dom(&bin, &page, &tmp.path().join("profile"));
    assert_eq!(
        marker(&dom),
        "SB-CHECK images=5 broken=0 svgs=0 empty_svgs=0 tables=3"
    );
    let ratios = dom
        .split("id=\"ratio-table\"")
        .nth(1)
        .expect("ratio table in DOM");
    let ratios = ratios.split("</table>").next().unwrap();
    assert_eq!(
        ratios.matches("<tr>").count(),
        9,
        "header + 8 matching points"
    );
    assert!(ratios.contains("× better"));
    assert!(dom.contains("INT8 − FP8 on GSM8K"));
    screenshot(
        &bin,
        &out.join("compare.html"),
        &tmp.path().join("profile"),
        &tmp.path().join("compare.png"),
    );
}
