//! Renders the fixture report and comparison into a folder, for looking at the output:
//! `cargo run -p servebench-report --example render_fixture_report -- OUT_DIR`.

use std::path::{Path, PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = PathBuf::from(
        std::env::args()
            .nth(1)
            .ok_or("usage: render_fixture_report OUT_DIR")?,
    );
    let fx = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/report");
    let c = servebench_report::collect(&[fx.join("fp8"), fx.join("sglang"), fx.join("vllm")])?;
    let opts = servebench_report::ReportOptions {
        out_dir: out.join("report"),
        ..Default::default()
    };
    servebench_report::write_report(&c, &opts)?;
    let a = servebench_report::collect(&[fx.join("fp8")])?;
    let b = servebench_report::collect(&[fx.join("int8")])?;
    let res = servebench_report::compare(
        &a,
        &b,
        &servebench_report::CompareOptions {
            out_dir: out.join("compare"),
            label_a: "FP8".into(),
            label_b: "INT8".into(),
        },
    )?;
    print!("{}", res.text);
    Ok(())
}
