#!/usr/bin/env python3
"""Side-by-side client speed: servebench before / after the request-path changes, and the raw reader.

Uses bench/sbbench.py unchanged (imported): its `one_run` (the `ceiling` method: fire-hose simulator on SIM_CORE,
client on CLIENT_CORE, chunks from the simulator's traces, client CPU inside the window). The simulator is always
the AFTER binary; only the client binary differs between "before" and "after". Clients take turns within each
concurrency (before, after, raw), repeated RUNS times.

Then, if time is left, the paced case of issue 15: `--preset default` simulator, 1,000 requests x 64-token prompts
x 256 output tokens at concurrency 256, whole-process client CPU (user+sys, from wait4) for each client.

  BIN=target/perf-bin OUTDIR=... python3 bench/results/2026-12-06/run_perf.py
Environment: BIN (folder with servebench-before, servebench-after, raw-reader), OUTDIR, RUNS (3), CONC (64,256,1024),
SECONDS_PER_RUN (3), PACED_RUNS (2), BUDGET_S (total wall budget; the paced case is skipped or cut when short).
"""
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
import sbbench  # noqa: E402

T0 = time.time()
BIN = os.path.abspath(os.environ.get("BIN", os.path.join(ROOT, "target/perf-bin")))
OUTDIR = os.path.abspath(os.environ.get("OUTDIR", "/tmp/perf-out"))
RUNS = int(os.environ.get("RUNS", "3"))
CONC = [int(x) for x in os.environ.get("CONC", "64,256,1024").split(",") if x]
SECONDS = float(os.environ.get("SECONDS_PER_RUN", "3"))
PACED_RUNS = int(os.environ.get("PACED_RUNS", "2"))
PACED_N = int(os.environ.get("PACED_N", "1000"))
BUDGET_S = float(os.environ.get("BUDGET_S", "450"))
OUTPUT_LEN = 256
INPUT_LEN = 32

AFTER = os.path.join(BIN, "servebench-after")
BEFORE = os.path.join(BIN, "servebench-before")
# The simulator (and the "after" client) run the after binary.
sbbench.SERVEBENCH = AFTER
sbbench.RAW_READER = os.path.join(BIN, "raw-reader")

CLIENTS = [("before", "servebench", BEFORE), ("after", "servebench", AFTER), ("raw", "raw", None)]
_orig_client_cmd = sbbench.client_cmd
_client_bin = {"bin": AFTER}


def client_cmd(tool, *args, **kw):
    cmd = _orig_client_cmd(tool, *args, **kw)
    if tool == "servebench":
        cmd[0] = _client_bin["bin"]
    return cmd


sbbench.client_cmd = client_cmd


def ceiling():
    res = os.path.join(OUTDIR, "ceiling.jsonl")
    round_s = 0.0
    for run_idx in range(RUNS):
        r0 = time.time()
        if BUDGET_S - (r0 - T0) < round_s * 1.15:
            print(f"ceiling: round {run_idx} skipped ({BUDGET_S - (r0 - T0):.0f} s left, a round took {round_s:.0f} s)")
            return
        for conc in CONC:
            for label, tool, binary in CLIENTS:
                _client_bin["bin"] = binary or AFTER
                d = os.path.join(OUTDIR, "logs", label)
                os.makedirs(d, exist_ok=True)
                n = sbbench.sized(tool, conc, OUTPUT_LEN, SECONDS)
                fit = ["--trace-capacity", str(n + 1000), "--trace-chunk-budget", str((n + 1000) * OUTPUT_LEN)]
                rec = sbbench.one_run("ceiling", tool, conc, n, INPUT_LEN, OUTPUT_LEN, d, run_idx, "firehose",
                                      sim_extra=fit)
                rec["client"] = label
                rec["client_binary"] = os.path.basename(binary) if binary else "raw-reader"
                rec["t_since_start_s"] = time.time() - T0
                sbbench.append(res, rec)
                print(label, end=" ")
                sbbench.summarize_line(rec)
        round_s = max(round_s, time.time() - r0)


def paced_one(label, tool, binary, run_idx, conc=256, n=1000, inp=64, out=256):
    d = os.path.join(OUTDIR, "logs", label)
    os.makedirs(d, exist_ok=True)
    tag = f"paced_{tool}_c{conc}_r{run_idx}"
    sim = sbbench.Sim("default", [], log=os.path.join(d, tag + ".sim.log"))
    _client_bin["bin"] = binary or AFTER
    outfile = os.path.join(d, tag + ".result.jsonl")
    cmd = sbbench.client_cmd(tool, sim.url, conc, n, inp, out, outfile)
    log = os.path.join(d, tag + ".client.log")
    env = dict(os.environ, TOKENIZERS_PARALLELISM="false")
    m0 = sbbench.machine_busy_s()
    t0 = time.time()
    with open(log, "w") as f:
        p = subprocess.Popen(["taskset", "-c", sbbench.CLIENT_CORE, *cmd], stdout=f, stderr=subprocess.STDOUT, env=env)
        _, status, ru = os.wait4(p.pid, 0)
    wall = time.time() - t0
    m1 = sbbench.machine_busy_s()
    sim_cpu = sbbench.cpu_of(sim.proc.pid)
    try:
        traces = sim.traces()
    finally:
        sim.stop()
    mt = sbbench.main_traces(traces, out)
    chunks = sum(len(t["chunk_ns"]) for t in mt)
    cpu = ru.ru_utime + ru.ru_stime
    rec = {"kind": "paced", "client": label, "tool": tool, "concurrency": conc, "num_prompts": n, "input_len": inp,
           "output_len": out, "run": run_idx, "preset": "default", "rc": os.waitstatus_to_exitcode(status),
           "wall_s": wall, "client_user_s": ru.ru_utime, "client_sys_s": ru.ru_stime, "client_cpu_s": cpu,
           "client_max_rss_kib": ru.ru_maxrss, "sim_cpu_s_total": sim_cpu, "machine_busy_s": m1 - m0,
           "traces_total": len(traces), "traces_main": len(mt), "chunks": chunks,
           "chunks_per_client_cpu_s": chunks / cpu if cpu else None, "command": " ".join(cmd),
           "t_since_start_s": time.time() - T0}
    res = sbbench.last_json_line(log if tool == "raw" else outfile)
    if res:
        rec["client_result"] = {k: res.get(k) for k in ("completed", "failed", "duration", "duration_s",
                                                         "output_throughput", "median_itl_ms", "client_cpu_s")
                                if k in res}
    sbbench.append(os.path.join(OUTDIR, "paced.jsonl"), rec)
    print("paced", label, {k: rec[k] for k in ("rc", "wall_s", "client_user_s", "client_sys_s", "client_cpu_s",
                                                "chunks", "traces_main")}, flush=True)
    return wall


def paced():
    last = 40.0
    for run_idx in range(PACED_RUNS):
        for label, tool, binary in CLIENTS:
            left = BUDGET_S - (time.time() - T0)
            if left < last * 1.3:
                print(f"paced: skipped {label} run {run_idx} ({left:.0f} s left)", flush=True)
                return
            last = paced_one(label, tool, binary, run_idx, n=PACED_N) + 3


def main():
    os.makedirs(OUTDIR, exist_ok=True)
    print("nofile", sbbench.raise_nofile(), "cores", os.cpu_count(), "load", sbbench.loadavg(), flush=True)
    what = os.environ.get("WHAT", "ceiling,paced").split(",")
    if "ceiling" in what:
        ceiling()
    print(f"ceiling done at {time.time() - T0:.0f} s", flush=True)
    if "paced" in what:
        paced()
    print(f"all done at {time.time() - T0:.0f} s", flush=True)


if __name__ == "__main__":
    main()
