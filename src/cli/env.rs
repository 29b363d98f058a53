//! `servebench env`: the machine facts a result needs to be read correctly (CPU, memory, OS, GPUs, driver,
//! CUDA, GPU topology).

use serde_json::{json, Value};
use std::process::Command;

/// Machine facts: CPU, memory, OS, GPUs (nvidia-smi), driver, CUDA, topology.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

fn cpu_model(cpuinfo: &str) -> Option<String> {
    cpuinfo
        .lines()
        .find(|l| l.starts_with("model name") || l.starts_with("Model"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
}

fn mem_total_gib(meminfo: &str) -> Option<f64> {
    let kib: f64 = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some((kib / 1024.0 / 1024.0 * 10.0).round() / 10.0)
}

fn os_name(os_release: &str) -> Option<String> {
    os_release
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_string())
}

/// Parses `nvidia-smi --query-gpu=index,name,memory.total,driver_version,pci.bus_id --format=csv,noheader`.
pub fn parse_gpus(csv: &str) -> Vec<Value> {
    csv.lines()
        .filter(|l| !l.trim().is_empty())
        .filter_map(|l| {
            let f: Vec<&str> = l.split(',').map(str::trim).collect();
            (f.len() >= 4).then(|| {
                json!({"index": f[0].parse::<u32>().ok(), "name": f[1], "memory_total": f[2],
                       "driver_version": f[3], "pci_bus_id": f.get(4)})
            })
        })
        .collect()
}

/// The CUDA version from the `nvidia-smi` banner ("CUDA Version: 12.8").
pub fn parse_cuda_version(banner: &str) -> Option<String> {
    let i = banner.find("CUDA Version:")?;
    banner[i + 13..]
        .split_whitespace()
        .next()
        .map(str::to_string)
}

fn run_tool(cmd: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(cmd).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Collects the facts.
pub fn collect() -> Value {
    let gpus_csv = run_tool(
        "nvidia-smi",
        &[
            "--query-gpu=index,name,memory.total,driver_version,pci.bus_id",
            "--format=csv,noheader",
        ],
    );
    let gpus = gpus_csv.as_deref().map(parse_gpus).unwrap_or_default();
    let banner = run_tool("nvidia-smi", &[]);
    let topo = if gpus.len() > 1 {
        run_tool("nvidia-smi", &["topo", "-m"])
    } else {
        None
    };
    json!({
        "hostname": read("/proc/sys/kernel/hostname").map(|s| s.trim().to_string()),
        "os": read("/etc/os-release").as_deref().and_then(os_name),
        "kernel": read("/proc/sys/kernel/osrelease").map(|s| s.trim().to_string()),
        "arch": std::env::consts::ARCH,
        "cpu_model": read("/proc/cpuinfo").as_deref().and_then(cpu_model),
        "cpus": std::thread::available_parallelism().map(|n| n.get()).ok(),
        "memory_gib": read("/proc/meminfo").as_deref().and_then(mem_total_gib),
        "gpus": gpus,
        "gpu_count": gpus.len(),
        "cuda_version": banner.as_deref().and_then(parse_cuda_version),
        "gpu_topology": topo,
        "nvidia_smi": gpus_csv.is_some(),
        "servebench_version": env!("CARGO_PKG_VERSION"),
    })
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let facts = collect();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&facts)?);
        return Ok(());
    }
    let s = |k: &str| match &facts[k] {
        Value::Null => "unknown".to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    println!(
        "OS:        {} (kernel {}, {})",
        s("os"),
        s("kernel"),
        s("arch")
    );
    println!("CPU:       {} × {}", s("cpus"), s("cpu_model"));
    println!("Memory:    {} GiB", s("memory_gib"));
    if facts["gpu_count"] == 0 {
        println!(
            "GPUs:      none found (nvidia-smi {})",
            if facts["nvidia_smi"] == true {
                "lists none"
            } else {
                "not available"
            }
        );
    } else {
        println!("GPUs:      {} (CUDA {})", s("gpu_count"), s("cuda_version"));
        for g in facts["gpus"].as_array().into_iter().flatten() {
            println!(
                "  [{}] {} {} driver {}",
                g["index"],
                g["name"].as_str().unwrap_or(""),
                g["memory_total"].as_str().unwrap_or(""),
                g["driver_version"].as_str().unwrap_or("")
            );
        }
        if let Some(t) = facts["gpu_topology"].as_str() {
            println!("Topology:\n{t}");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_nvidia_smi() {
        let csv = "0, NVIDIA H200, 143771 MiB, 570.124.06, 00000000:18:00.0\n1, NVIDIA H200, 143771 MiB, 570.124.06, 00000000:2A:00.0\n";
        let g = parse_gpus(csv);
        assert_eq!(g.len(), 2);
        assert_eq!(g[1]["name"], "NVIDIA H200");
        assert_eq!(g[0]["index"], 0);
        let banner =
            "| NVIDIA-SMI 570.124.06   Driver Version: 570.124.06   CUDA Version: 12.8     |";
        assert_eq!(parse_cuda_version(banner).as_deref(), Some("12.8"));
    }

    #[test]
    fn this_machine_has_cpus_and_memory() {
        let f = collect();
        assert!(f["cpus"].as_u64().unwrap() >= 1);
        if cfg!(target_os = "linux") {
            assert!(f["memory_gib"].as_f64().unwrap() > 0.0);
            assert!(f["cpu_model"].is_string() || f["arch"] != "x86_64");
        }
        assert_eq!(
            f["gpu_count"].as_u64().unwrap() as usize,
            f["gpus"].as_array().unwrap().len()
        );
    }

    #[test]
    fn meminfo_and_os_release() {
        assert_eq!(mem_total_gib("MemTotal:       24576000 kB\n"), Some(23.4));
        assert_eq!(
            os_name("NAME=x\nPRETTY_NAME=\"Debian GNU/Linux 12\"\n").as_deref(),
            Some("Debian GNU/Linux 12")
        );
    }
}
