#!/usr/bin/env python3
"""servebench's own speed and measurement fidelity (bench/README.md describes the method).

Standard library only. Starts `servebench sim` pinned to one core and a client under test pinned to the other,
samples both processes' CPU time and RSS from /proc, fetches the simulator's ground truth (`GET /sim/traces`) and
appends one JSON line per run to a results file. `table` turns results files into Markdown tables.

  python3 bench/sbbench.py ceiling  --out DIR [--clients servebench,sglang,raw] [--conc 1,64,...] [--runs 3]
  python3 bench/sbbench.py fidelity --out DIR [--clients servebench,sglang,raw] [--conc 1,64,256,1024] [--runs 3]
  python3 bench/sbbench.py scale    --out DIR [--streams 10000] [--itl-ms 1000] [--tokens 60]
  python3 bench/sbbench.py large    --out DIR
  python3 bench/sbbench.py paced    --out DIR [--clients servebench,raw[,base]] [--modes closed,open] [--runs 3]
  python3 bench/sbbench.py prompt-build --out DIR [--clients servebench,sglang[,base]] [--servebench-extra ...]
  python3 bench/sbbench.py table    DIR/*.jsonl
  python3 bench/sbbench.py gpu-order DIR        # DIR: bench/gpu_order.sh's unpacked order.tar.gz

Environment: SB_BENCH_EXTRA (more `servebench bench` flags, e.g. --read-timestamps), SERVEBENCH (binary, default target/release/servebench), RAW_READER (default
target/raw-reader/release/raw-reader), SGL_PYTHON (python with sglang 0.5.9, default /tmp/sgl/bin/python),
TOKENIZER (default /work/shared/tokenizers/qwen2), SHAREGPT (ShareGPT JSON for the random dataset's text),
SIM_CORE / CLIENT_CORE (default 0 / 1), SERVEBENCH_BASE (the `base` client of paced/prompt-build: a
baseline servebench binary for before/after).
"""

import argparse
import json
import math
import os
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SERVEBENCH = os.environ.get("SERVEBENCH", os.path.join(ROOT, "target/release/servebench"))
RAW_READER = os.environ.get("RAW_READER", os.path.join(ROOT, "target/raw-reader/release/raw-reader"))
SGL_PYTHON = os.environ.get("SGL_PYTHON", "/tmp/sgl/bin/python")
TOKENIZER = os.environ.get("TOKENIZER", "/work/shared/tokenizers/qwen2")
SHAREGPT = os.environ.get("SHAREGPT", "/work/shared/datasets/sharegpt/sharegpt_v3_first1500.json")
SIM_CORE = os.environ.get("SIM_CORE", "0")
# Before each run, wait (up to QUIET_WAIT_S) until other processes use less than QUIET_CORES cores.
QUIET_CORES = float(os.environ.get("QUIET_CORES", "0.15"))
QUIET_WAIT_S = float(os.environ.get("QUIET_WAIT_S", "600"))
CLIENT_CORE = os.environ.get("CLIENT_CORE", "1")
MODEL = "servebench-sim"
TICKS = os.sysconf("SC_CLK_TCK")

# A fixed 32-token-ish prompt for the raw reader (the simulator's cost does not depend on the words).
RAW_PROMPT = ("The quick brown fox jumps over the lazy dog while the committee reviews the quarterly report "
              "and the engineers measure how fast a client can read streamed tokens.")


# ---------------------------------------------------------------------------------------------------- processes

def cpu_of(pid):
    """user+sys seconds of a process (all threads), or None when gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
    except OSError:
        return None
    fields = s[s.rfind(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_of(pid):
    """(VmRSS, VmHWM) in KiB, or None."""
    try:
        with open(f"/proc/{pid}/status") as f:
            rss = hwm = None
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
                elif line.startswith("VmHWM:"):
                    hwm = int(line.split()[1])
            return rss, hwm
    except OSError:
        return None


def thread_cpu(pid):
    """{label: cpu seconds} per thread of a process; label = thread name, "main" for the first thread."""
    out = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                s = f.read()
        except OSError:
            continue
        name = s[s.find("(") + 1:s.rfind(")")]
        fields = s[s.rfind(")") + 2:].split()
        label = "main" if tid == str(pid) else f"{name}#{tid}"
        out[label] = (int(fields[11]) + int(fields[12])) / TICKS
    return out


def machine_busy_s():
    """CPU seconds all processes on the machine have used (all cores), from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + (v[4] if len(v) > 4 else 0)
    return (sum(v[:8]) - idle) / TICKS


def wait_for_quiet(max_other=0.15, max_wait=600):
    """Waits until other processes use less than `max_other` cores (1 s samples); returns what was seen."""
    t_end = time.time() + max_wait
    while True:
        b0 = machine_busy_s()
        time.sleep(1.0)
        busy = machine_busy_s() - b0
        if busy < max_other or time.time() > t_end:
            return busy
        time.sleep(4.0)


def leaf_pid(pid):
    """Follows /proc children (for wrappers such as /usr/bin/time) down to the process doing the work."""
    for _ in range(5):
        try:
            with open(f"/proc/{pid}/task/{pid}/children") as f:
                kids = f.read().split()
        except OSError:
            return pid
        if not kids:
            return pid
        pid = int(kids[0])
    return pid


class Sampler(threading.Thread):
    """Samples CPU seconds and RSS of named processes every `period` s: rows (unix_ns, {name: (cpu, rss, hwm)})."""

    def __init__(self, pids, period=0.05, threads_of=None):
        super().__init__(daemon=True)
        self.pids = dict(pids)
        self.period = period
        self.rows = []
        self.threads_of = threads_of
        self.thread_rows = []
        self.stop_ev = threading.Event()

    def run(self):
        while not self.stop_ev.is_set():
            row = {"_machine": (machine_busy_s(), None, None)}
            for name, pid in list(self.pids.items()):
                if callable(pid):
                    pid = pid()
                    if pid is None:
                        continue
                c = cpu_of(pid)
                r = rss_of(pid)
                if c is not None:
                    row[name] = (c, r[0] if r else None, r[1] if r else None)
                if name == self.threads_of:
                    self.thread_rows.append((time.time_ns(), thread_cpu(pid)))
            self.rows.append((time.time_ns(), row))
            self.stop_ev.wait(self.period)

    def stop(self):
        self.stop_ev.set()
        self.join()

    def cpu_between(self, name, t0, t1):
        """CPU seconds of `name` between unix-ns t0 and t1 (linear interpolation between samples)."""
        pts = [(t, r[name][0]) for t, r in self.rows if name in r]
        if len(pts) < 2:
            return None

        def at(t):
            if t <= pts[0][0]:
                return pts[0][1]
            for (ta, ca), (tb, cb) in zip(pts, pts[1:]):
                if ta <= t <= tb:
                    return ca + (cb - ca) * (t - ta) / max(tb - ta, 1)
            return pts[-1][1]

        return at(t1) - at(t0)

    def threads_between(self, t0, t1):
        """CPU seconds per thread between t0 and t1 (nearest samples), largest first."""
        if not self.thread_rows:
            return {}
        a = min(self.thread_rows, key=lambda r: abs(r[0] - t0))[1]
        b = min(self.thread_rows, key=lambda r: abs(r[0] - t1))[1]
        d = {k: round(v - a.get(k, 0.0), 3) for k, v in b.items()}
        return dict(sorted(((k, v) for k, v in d.items() if v > 0), key=lambda kv: -kv[1]))

    def peak(self, name, idx):
        vals = [r[name][idx] for _, r in self.rows if name in r and r[name][idx] is not None]
        return max(vals) if vals else None

    def series(self, name, idx):
        return [(t, r[name][idx]) for t, r in self.rows if name in r and r[name][idx] is not None]


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def loadavg():
    with open("/proc/loadavg") as f:
        return f.read().split()[0:3]


def raise_nofile():
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


class Sim:
    """`servebench sim` pinned to SIM_CORE on a free port."""

    def __init__(self, preset, extra=(), log=None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = ["taskset", "-c", SIM_CORE, SERVEBENCH, "sim", "--preset", preset, "--port", str(self.port),
               "--host", "127.0.0.1", "--tokenizer", "heuristic", *extra]
        self.cmd = cmd
        self.log = open(log, "w") if log else subprocess.DEVNULL
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the simulator exited at start: {shlex.join(cmd)} (see {log})")
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"the simulator did not answer /health in 30 s: {shlex.join(cmd)}")

    def traces(self):
        out = []
        with urllib.request.urlopen(self.url + "/sim/traces", timeout=300) as r:
            for line in r:
                line = line.strip()
                if line:
                    out.append(json.loads(line))
        return out

    def stop(self):
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.log is not subprocess.DEVNULL:
            self.log.close()


# ---------------------------------------------------------------------------------------------------- clients

def client_cmd(tool, url, conc, n, inp, out, outfile, details=False, extra=()):
    if tool == "servebench":
        cmd = [SERVEBENCH, "bench", "--backend", "vllm", "--base-url", url, "--model", MODEL,
               "--tokenizer", TOKENIZER, "--dataset-name", "random", "--dataset-path", SHAREGPT,
               "--random-input-len", str(inp), "--random-output-len", str(out), "--random-range-ratio", "1",
               "--num-prompts", str(n), "--max-concurrency", str(conc), "--output-file", outfile,
               "--disable-tqdm", "--json", *extra, *shlex.split(os.environ.get("SB_BENCH_EXTRA", ""))]
        if details:
            cmd.append("--output-details")
    elif tool == "sglang":
        cmd = [SGL_PYTHON, "-m", "sglang.bench_serving", "--backend", "vllm", "--base-url", url,
               "--model", MODEL, "--tokenizer", TOKENIZER, "--dataset-name", "random", "--dataset-path", SHAREGPT,
               "--random-input-len", str(inp), "--random-output-len", str(out), "--random-range-ratio", "1",
               "--num-prompts", str(n), "--max-concurrency", str(conc), "--output-file", outfile,
               "--disable-tqdm", *extra]
        if details:
            cmd.append("--output-details")
    elif tool == "raw":
        # About `inp` tokens of prompt (the heuristic counter sees ~1.2 tokens per word here).
        words = RAW_PROMPT.split()
        reps = max(1, round(inp / (len(words) * 1.2)))
        prompt = " ".join([RAW_PROMPT] * reps)
        body = json.dumps({"model": MODEL, "prompt": prompt, "max_tokens": out, "stream": True,
                           "ignore_eos": True, "temperature": 0.0})
        # In a file: a 100k-token body is longer than one command-line argument may be (E2BIG).
        body_file = outfile + ".body.json"
        with open(body_file, "w") as bf:
            bf.write(body)
        cmd = [RAW_READER, "--url", url + "/v1/completions", "--body-file", body_file, "--concurrency", str(conc),
               "--requests", str(n)]
        if details:
            cmd += ["--trace", outfile + ".trace.jsonl"]
        cmd += list(extra)
    else:
        raise ValueError(tool)
    return cmd


def run_client(tool, cmd, log, time_v=False):
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONUNBUFFERED="1",
               TOKENIZERS_PARALLELISM="false")
    full = ["taskset", "-c", CLIENT_CORE, *cmd]
    if time_v:
        full = ["/usr/bin/time", "-v", *full]
    f = open(log, "w")
    p = subprocess.Popen(full, stdout=f, stderr=subprocess.STDOUT, env=env)
    return p, f


def parse_time_v(log):
    out = {}
    try:
        with open(log) as f:
            for line in f:
                line = line.strip()
                if line.startswith("Maximum resident set size"):
                    out["max_rss_kib"] = int(line.split(":")[1])
                elif line.startswith("User time"):
                    out["user_s"] = float(line.split(":")[1])
                elif line.startswith("System time"):
                    out["sys_s"] = float(line.split(":")[1])
    except OSError:
        pass
    return out


def last_json_line(path):
    """Last JSON object line of a file (servebench/sglang result files, raw-reader stdout)."""
    try:
        with open(path) as f:
            lines = [l for l in f if l.strip().startswith("{")]
    except OSError:
        return None
    for l in reversed(lines):
        try:
            return json.loads(l.replace("Infinity", "null").replace("NaN", "null"))
        except json.JSONDecodeError:
            continue
    return None


# ---------------------------------------------------------------------------------------------------- one run

def main_traces(traces, out_len):
    """Traces of the timed requests: completed streams with the full output (warm-up requests are shorter)."""
    return [t for t in traces if t.get("status") == "ok" and len(t.get("chunk_ns") or []) >= 1
            and t.get("completion_tokens") == out_len]


def one_run(kind, tool, conc, n, inp, out, outdir, run_idx, preset, sim_extra=(), details=False,
            client_extra=(), time_v=False, keep_traces=False):
    tag = f"{kind}_{tool}_c{conc}_r{run_idx}"
    sim = Sim(preset, sim_extra, log=os.path.join(outdir, tag + ".sim.log"))
    outfile = os.path.join(outdir, tag + ".result.jsonl")
    log = os.path.join(outdir, tag + ".client.log")
    for p in (outfile,):
        if os.path.exists(p):
            os.remove(p)
    cmd = client_cmd(tool, sim.url, conc, n, inp, out, outfile, details=details, extra=client_extra)
    quiet = wait_for_quiet(QUIET_CORES, QUIET_WAIT_S) if QUIET_CORES > 0 else None
    load0 = loadavg()
    p, f = run_client(tool, cmd, log, time_v=time_v)
    client_pid = (lambda: leaf_pid(p.pid)) if time_v else p.pid
    sampler = Sampler({"client": client_pid, "sim": sim.proc.pid}, threads_of="client")
    sampler.start()
    t_start = time.time()
    rc = p.wait()
    wall = time.time() - t_start
    sampler.stop()
    f.close()
    load1 = loadavg()
    try:
        traces = sim.traces()
    finally:
        sim.stop()
    mt = main_traces(traces, out)
    rec = {"kind": kind, "tool": tool, "concurrency": conc, "num_prompts": n, "input_len": inp, "output_len": out,
           "run": run_idx, "preset": preset, "sim_extra": list(sim_extra), "rc": rc, "wall_s": wall,
           "loadavg_before": load0, "loadavg_after": load1, "command": shlex.join(cmd),
           "busy_cores_before": quiet, "details": details, "client_extra": list(client_extra), "time_v_used": time_v,
           "traces_total": len(traces), "traces_main": len(mt),
           "traces_not_ok": sum(1 for t in traces if t.get("status") != "ok")}
    res = last_json_line(log if tool == "raw" else outfile)
    if mt:
        # The window starts when the first timed request reached the simulator (the client sent it) and lasts the
        # client's own duration (first send to last completion): the simulator can finish writing long before a
        # slow client has read everything out of the socket buffers, so its last chunk time is not the end.
        w0 = min(t["arrival_ns"] for t in mt)
        server_end = max(t.get("end_ns") or t["chunk_ns"][-1] for t in mt)
        client_dur = None
        if res is not None:
            client_dur = res.get("duration_s", res.get("duration"))
        dur = client_dur if client_dur else (server_end - w0) / 1e9
        w1 = w0 + int(dur * 1e9)
        chunks = sum(len(t["chunk_ns"]) for t in mt)
        ccpu = sampler.cpu_between("client", w0, w1)
        scpu = sampler.cpu_between("sim", w0, w1)
        mcpu = sampler.cpu_between("_machine", w0, w1)
        if mcpu is not None and ccpu is not None and scpu is not None and dur > 0:
            # CPU used by everything else on the machine during the window (other users, the driver itself).
            rec["others_cpu_pct"] = 100 * (mcpu - ccpu - scpu) / dur
        rec.update({"window_s": dur, "server_window_s": (server_end - w0) / 1e9, "chunks": chunks,
                    "chunks_per_s": chunks / dur if dur > 0 else None,
                    "client_cpu_s": ccpu, "sim_cpu_s": scpu,
                    "client_cpu_pct": 100 * ccpu / dur if ccpu is not None and dur > 0 else None,
                    "sim_cpu_pct": 100 * scpu / dur if scpu is not None and dur > 0 else None,
                    "chunks_per_client_cpu_s": chunks / ccpu if ccpu else None,
                    "sim_chunks_per_cpu_s": chunks / scpu if scpu else None,
                    "client_thread_cpu_s": sampler.threads_between(w0, w1)})
    rec["client_peak_rss_kib"] = sampler.peak("client", 1)
    rec["client_hwm_kib"] = sampler.peak("client", 2)
    rec["sim_peak_rss_kib"] = sampler.peak("sim", 1)
    if time_v:
        rec["time_v"] = parse_time_v(log)
    if res is not None:
        keep = ["completed", "failed", "ok", "duration", "duration_s", "output_throughput", "median_ttft_ms",
                "p99_ttft_ms", "median_itl_ms", "p99_itl_ms", "median_tpot_ms", "p99_client_lag_ms",
                "client_saturated", "client_cpu_s", "warnings", "bytes", "events", "cpu_s", "errors",
                "total_output_tokens", "mean_ttft_ms", "mean_itl_ms"]
        rec["client_result"] = {k: res.get(k) for k in keep if k in res}
    if details:
        rec["fidelity"] = fidelity(tool, traces, mt, outfile, res)
    if keep_traces:
        with open(os.path.join(outdir, tag + ".traces.jsonl"), "w") as tf:
            for t in traces:
                tf.write(json.dumps(t) + "\n")
    return rec


# ---------------------------------------------------------------------------------------------------- fidelity

def pct(vals, q):
    """NumPy's default (linear) percentile."""
    if not vals:
        return None
    v = sorted(vals)
    k = (len(v) - 1) * q / 100
    lo = math.floor(k)
    hi = math.ceil(k)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def dist(vals):
    if not vals:
        return None
    return {"n": len(vals), "median": pct(vals, 50), "p99": pct(vals, 99), "max": max(vals), "min": min(vals),
            "mean": statistics.fmean(vals)}


def errors_against_truth(pairs):
    """pairs: [(client_unix_ns_list, truth_unix_ns_list)] per request → TTFT and ITL errors in ms."""
    ttft_err, itl_err, mismatched = [], [], 0
    for c, s in pairs:
        if len(c) != len(s) or not c:
            mismatched += 1
            continue
        ttft_err.append((c[0] - s[0]) / 1e6)
        for i in range(1, len(c)):
            itl_err.append(((c[i] - c[i - 1]) - (s[i] - s[i - 1])) / 1e6)
    return {"ttft_error_ms": dist(ttft_err), "itl_error_ms": dist(itl_err),
            "itl_abs_error_ms": dist([abs(x) for x in itl_err]), "requests_compared": len(ttft_err),
            "requests_chunk_count_mismatch": mismatched}


def truth_distributions(mt):
    ttft = [(t["chunk_ns"][0] - t["arrival_ns"]) / 1e6 for t in mt]
    itl = [(b - a) / 1e6 for t in mt for a, b in zip(t["chunk_ns"], t["chunk_ns"][1:])]
    return {"ttft_ms": dist(ttft), "itl_ms": dist(itl)}


def fidelity(tool, traces, mt, outfile, res):
    by_id = {t["id"]: t for t in traces}
    out = {"truth": truth_distributions(mt)}
    if tool == "servebench":
        details = outfile[: -len(".jsonl")] + ".details.jsonl" if outfile.endswith(".jsonl") else outfile + ".details.jsonl"
        pairs = []
        missing = 0
        with open(details) as f:
            for line in f:
                r = json.loads(line)
                if r.get("error") or r.get("index") == 2**64 - 1:
                    continue
                t = by_id.get(r.get("request_id"))
                if t is None:
                    missing += 1
                    continue
                send = r["send_unix_ns"]
                pairs.append(([send + round(ms * 1e6) for ms in r["chunk_ms"]], t["chunk_ns"]))
        out.update(errors_against_truth(pairs))
        out["requests_without_trace"] = missing
        # The client's own numbers, for the distribution comparison as with peers.
        cl_ttft, cl_itl = [], []
        with open(details) as f:
            for line in f:
                r = json.loads(line)
                if r.get("error") or not r.get("chunk_ms"):
                    continue
                c = r["chunk_ms"]
                cl_ttft.append(c[0])
                cl_itl.extend(b - a for a, b in zip(c, c[1:]))
        out["client"] = {"ttft_ms": dist(cl_ttft), "itl_ms": dist(cl_itl)}
    elif tool == "raw":
        pairs = []
        with open(outfile + ".trace.jsonl") as f:
            for line in f:
                r = json.loads(line)
                t = by_id.get(r["id"])
                if t is not None and r.get("status") == 200:
                    pairs.append((r["chunk_ns"], t["chunk_ns"]))
        out.update(errors_against_truth(pairs))
    elif tool == "sglang" and res is not None:
        ttfts = [x * 1000 for x in (res.get("ttfts") or []) if x]
        itls = [x * 1000 for l in (res.get("itls") or []) for x in l]
        out["client"] = {"ttft_ms": dist(ttfts), "itl_ms": dist(itls)}
    return out


# ---------------------------------------------------------------------------------------------------- commands

# Expected chunks/s per client on the reference machine, to size runs to about `--seconds` (min 2×concurrency
# requests). Rough values: a wrong guess only makes a run shorter or longer.
EXPECTED_RATE = {"servebench": 2_000_000, "sglang": 90_000, "raw": 4_000_000}


def sized(tool, conc, out, seconds, min_waves=2.0):
    n = max(int(conc * min_waves), int(EXPECTED_RATE[tool] * seconds / out), 4)
    return n


def append(path, rec):
    with open(path, "a") as f:
        f.write(json.dumps(rec) + "\n")


def summarize_line(rec):
    keys = ["kind", "tool", "concurrency", "run", "rc", "chunks_per_s", "chunks_per_client_cpu_s",
            "client_cpu_pct", "sim_cpu_pct", "others_cpu_pct", "window_s"]
    parts = []
    for k in keys:
        v = rec.get(k)
        parts.append(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}")
    print(" ".join(parts), "load", rec["loadavg_before"][0], flush=True)


def cmd_ceiling(a):
    os.makedirs(a.out, exist_ok=True)
    res = os.path.join(a.out, "ceiling.jsonl")
    raise_nofile()
    for run_idx in range(a.runs):
        for conc in a.conc:
            # Tools interleaved within a concurrency level: ratios come from runs close in time.
            for tool in a.clients:
                n = a.num_prompts or sized(tool, conc, a.output_len, a.seconds)
                # The simulator keeps 8M chunk times by default: size its trace store to the run, or the oldest
                # traces are dropped and the chunk count comes out low.
                fit = ["--trace-capacity", str(n + 1000), "--trace-chunk-budget", str((n + 1000) * a.output_len)]
                rec = one_run("ceiling", tool, conc, n, a.input_len, a.output_len, a.out, run_idx, "firehose",
                              sim_extra=fit)
                append(res, rec)
                summarize_line(rec)


def cmd_fidelity(a):
    os.makedirs(a.out, exist_ok=True)
    res = os.path.join(a.out, "fidelity_open.jsonl" if a.open_loop else "fidelity.jsonl")
    raise_nofile()
    for run_idx in range(a.runs):
        for conc in a.conc:
            itl = max(a.itl_ms, conc / a.max_chunk_rate * 1000)
            extra = ["--ttft-ms", str(a.ttft_ms), "--itl-ms", f"{itl:g}"]
            for tool in a.clients:
                n = max(2 * conc, a.min_requests)
                client_extra = []
                if a.open_loop:
                    if tool == "raw":
                        continue
                    # Poisson arrivals at the rate that keeps about `conc` requests in flight: start times spread.
                    req_s = (a.ttft_ms + itl * (a.output_len - 1)) / 1000
                    client_extra = ["--request-rate", f"{conc / req_s:.3f}"]
                rec = one_run("fidelity_open" if a.open_loop else "fidelity", tool, conc, n, a.input_len,
                              a.output_len, a.out, run_idx, "mock", sim_extra=extra, details=True,
                              client_extra=client_extra)
                rec["itl_ms_set"] = itl
                append(res, rec)
                summarize_line(rec)
                fd = rec.get("fidelity", {})
                for k in ("ttft_error_ms", "itl_abs_error_ms"):
                    d = fd.get(k)
                    if d:
                        print(f"   {k}: median {d['median']:.3f} p99 {d['p99']:.3f} max {d['max']:.3f}", flush=True)


def cmd_scale(a):
    os.makedirs(a.out, exist_ok=True)
    res = os.path.join(a.out, "scale.jsonl")
    hard = raise_nofile()
    if hard < a.streams + 100:
        print(f"warning: the open-files limit is {hard}: fewer than {a.streams} streams will fit", file=sys.stderr)
    for run_idx in range(a.runs):
        for streams in a.stream_levels or [a.streams]:
            extra = ["--ttft-ms", str(a.ttft_ms), "--itl-ms", str(a.itl_ms)]
            for tool in a.clients:
                rec = one_run("scale", tool, streams, streams, a.input_len, a.tokens, a.out, run_idx, "mock",
                              sim_extra=extra, time_v=True, client_extra=a.client_extra)
                append(res, rec)
                summarize_line(rec)
                print("   time -v:", rec.get("time_v"), "peak rss (sampled):", rec.get("client_peak_rss_kib"),
                      "result:", rec.get("client_result"), flush=True)


def cmd_large(a):
    os.makedirs(a.out, exist_ok=True)
    res = os.path.join(a.out, a.file)
    raise_nofile()
    for run_idx in range(a.runs):
        # 100k-token prompts, short outputs.
        for tool in (a.clients if a.only in ("both", "prompt") else []):
            rec = one_run("large_prompt", tool, a.prompt_conc, a.prompt_requests, a.prompt_tokens, 16, a.out,
                          run_idx, "firehose", time_v=True)
            append(res, rec)
            summarize_line(rec)
            print("   time -v:", rec.get("time_v"), "result:", rec.get("client_result"), flush=True)
        # Big SSE events: many tokens per chunk.
        for tool in (a.clients if a.only in ("both", "event") else []):
            extra = ["--tokens-per-chunk", str(a.tokens_per_chunk)]
            rec = one_run("large_event", tool, a.event_conc, a.event_requests, 32, a.tokens_per_chunk * a.events,
                          a.out, run_idx, "firehose", sim_extra=extra, time_v=True)
            append(res, rec)
            summarize_line(rec)
            print("   time -v:", rec.get("time_v"), "result:", rec.get("client_result"), flush=True)


# ---------------------------------------------------------------------------------------------------- tables

def med_range(vals, fmt="{:.0f}"):
    vals = [v for v in vals if v is not None]
    if not vals:
        return "–"
    m = statistics.median(vals)
    if len(vals) == 1:
        return fmt.format(m)
    return f"{fmt.format(m)} ({fmt.format(min(vals))}–{fmt.format(max(vals))})"


def group(recs, keys):
    g = {}
    for r in recs:
        g.setdefault(tuple(r.get(k) for k in keys), []).append(r)
    return g


def table_ceiling(recs):
    tools = sorted({r["tool"] for r in recs}, key=lambda t: ["servebench", "sglang", "raw"].index(t))
    concs = sorted({r["concurrency"] for r in recs})
    print("\n#### Ceiling: chunks/s and chunks per client CPU-second (median of runs, min–max)\n")
    hdr = ["conc"] + [f"{t} chunks/s" for t in tools] + [f"{t} chunks/CPU-s" for t in tools] + \
          [f"{t} client CPU %" for t in tools] + [f"sim CPU % ({t})" for t in tools] + ["others CPU % (max)"]
    print("| " + " | ".join(hdr) + " |")
    print("|" + "---|" * len(hdr))
    g = group(recs, ["concurrency", "tool"])
    for c in concs:
        row = [str(c)]
        for key, fmt in (("chunks_per_s", "{:,.0f}"), ("chunks_per_client_cpu_s", "{:,.0f}"),
                         ("client_cpu_pct", "{:.0f}"), ("sim_cpu_pct", "{:.0f}")):
            for t in tools:
                row.append(med_range([r.get(key) for r in g.get((c, t), []) if r.get("rc") == 0], fmt))
        oth = [r.get("others_cpu_pct") for t in tools for r in g.get((c, t), []) if r.get("others_cpu_pct") is not None]
        row.append(f"{max(oth):.0f}" if oth else "–")
        print("| " + " | ".join(row) + " |")
    # Ratios from the same run index.
    print("\n#### Ratios within the same run (median, min–max over runs)\n")
    pairs = [("servebench", "sglang"), ("servebench", "raw")]
    hdr = ["conc"] + [f"{a}/{b} chunks/CPU-s" for a, b in pairs] + [f"{a}/{b} chunks/s" for a, b in pairs]
    print("| " + " | ".join(hdr) + " |")
    print("|" + "---|" * len(hdr))
    byrun = group(recs, ["concurrency", "run", "tool"])
    runs = sorted({r["run"] for r in recs})
    for c in concs:
        row = [str(c)]
        for key in ("chunks_per_client_cpu_s", "chunks_per_s"):
            for a_, b_ in pairs:
                vals = []
                for ri in runs:
                    ra = byrun.get((c, ri, a_))
                    rb = byrun.get((c, ri, b_))
                    if ra and rb and ra[0].get(key) and rb[0].get(key):
                        vals.append(ra[0][key] / rb[0][key])
                row.append(med_range(vals, "{:.2f}"))
        print("| " + " | ".join(row) + " |")
    loads = [float(r["loadavg_before"][0]) for r in recs]
    print(f"\nLoad average (1 min) before runs: median {statistics.median(loads):.2f}, max {max(loads):.2f}.")


def table_fidelity(recs):
    print("\n#### Fidelity: client timestamp error against the simulator's ground truth, ms (median of runs, min–max)\n")
    hdr = ["tool", "conc", "ITL set (ms)", "TTFT err median", "TTFT err p99", "TTFT err max", "ITL |err| median",
           "ITL |err| p99", "ITL |err| max", "client CPU %", "lag p99 (ms)", "saturated", "others CPU % (max)"]
    print("| " + " | ".join(hdr) + " |")
    print("|" + "---|" * len(hdr))
    g = group(recs, ["tool", "concurrency"])
    for (tool, c), rs in sorted(g.items(), key=lambda kv: (kv[0][0] != "servebench", kv[0][0], kv[0][1])):
        if tool == "sglang":
            continue
        f = [r.get("fidelity", {}) for r in rs]

        def col(k, s):
            return med_range([(x.get(k) or {}).get(s) for x in f], "{:.3f}")

        lag = [(r.get("client_result") or {}).get("p99_client_lag_ms") for r in rs]
        sat = [(r.get("client_result") or {}).get("client_saturated") for r in rs]
        print("| " + " | ".join([tool, str(c), f"{rs[0].get('itl_ms_set', 0):g}", col("ttft_error_ms", "median"),
                                 col("ttft_error_ms", "p99"), col("ttft_error_ms", "max"),
                                 col("itl_abs_error_ms", "median"), col("itl_abs_error_ms", "p99"),
                                 col("itl_abs_error_ms", "max"),
                                 med_range([r.get("client_cpu_pct") for r in rs], "{:.0f}"),
                                 med_range(lag, "{:.2f}") if tool == "servebench" else "–",
                                 ",".join(str(s) for s in sat) if tool == "servebench" else "–",
                                 f"{max(o):.0f}" if (o := [r.get("others_cpu_pct") for r in rs
                                                           if r.get("others_cpu_pct") is not None]) else "–"]) + " |")
    print("\n#### Distributions: what each client reports vs the truth (median / p99, ms; median of runs)\n")
    hdr = ["conc", "truth TTFT", "servebench TTFT", "sglang TTFT", "truth ITL", "servebench ITL", "sglang ITL"]
    print("| " + " | ".join(hdr) + " |")
    print("|" + "---|" * len(hdr))
    concs = sorted({r["concurrency"] for r in recs})
    for c in concs:
        row = [str(c)]
        cells = {}
        for tool in ("servebench", "sglang"):
            rs = g.get((tool, c), [])
            for metric in ("ttft_ms", "itl_ms"):
                for src in ("truth", "client"):
                    vals = [((r.get("fidelity") or {}).get(src) or {}).get(metric) for r in rs]
                    vals = [v for v in vals if v]
                    key = (src if src == "truth" else tool, metric, tool)
                    if vals:
                        cells[key] = (f"{statistics.median(v['median'] for v in vals):.2f} / "
                                      f"{statistics.median(v['p99'] for v in vals):.2f}")
        for metric in ("ttft_ms", "itl_ms"):
            row.append(cells.get(("truth", metric, "servebench"), "–"))
            row.append(cells.get(("servebench", metric, "servebench"), "–"))
            row.append(cells.get(("sglang", metric, "sglang"), "–"))
        print("| " + " | ".join(row) + " |")


def table_generic(recs, title):
    print(f"\n#### {title}\n")
    hdr = ["kind", "tool", "conc", "requests", "ok/failed", "window s", "chunks/s", "client CPU s (window / whole process)",
           "client max RSS MiB", "median TTFT ms", "sim CPU %", "load"]
    print("| " + " | ".join(hdr) + " |")
    print("|" + "---|" * len(hdr))
    for r in recs:
        cr = r.get("client_result") or {}
        tv = r.get("time_v") or {}
        ok = cr.get("completed", cr.get("ok"))
        failed = cr.get("failed")
        if failed is None and ok is not None:
            failed = r["num_prompts"] - ok
        rss = tv.get("max_rss_kib") or r.get("client_hwm_kib")
        tot = (tv.get("user_s", 0) + tv.get("sys_s", 0)) if tv else None
        win = r.get("client_cpu_s")
        cpu = f"{win:.2f}" if win is not None else "–"
        cpu += f" / {tot:.1f}" if tot is not None else ""
        ttft = cr.get("median_ttft_ms")
        print("| " + " | ".join([r["kind"], r["tool"], str(r["concurrency"]), str(r["num_prompts"]),
                                 f"{ok}/{failed}", f"{r.get('window_s') or 0:.2f}",
                                 f"{r.get('chunks_per_s') or 0:,.0f}", cpu,
                                 f"{rss / 1024:.0f}" if rss else "–", f"{ttft:.1f}" if ttft is not None else "–",
                                 f"{r.get('sim_cpu_pct') or 0:.0f}", r["loadavg_before"][0]]) + " |")
    scale = [r for r in recs if r["kind"] == "scale" and r["tool"] == "servebench"]
    levels = sorted({r["concurrency"] for r in scale})
    if len(levels) >= 2:
        def rss_of_level(c):
            v = [(r.get("time_v") or {}).get("max_rss_kib") for r in scale if r["concurrency"] == c]
            v = [x for x in v if x]
            return statistics.median(v) if v else None
        lo, hi = levels[0], levels[-1]
        a, b = rss_of_level(lo), rss_of_level(hi)
        if a and b:
            print(f"\nservebench RSS per extra stream ({lo} → {hi} streams, medians of max RSS): "
                  f"{(b - a) / (hi - lo):.1f} KiB; whole RSS / streams at {hi}: {b / hi:.1f} KiB")


def cmd_table(a):
    recs = []
    for p in a.files:
        with open(p) as f:
            recs.extend(json.loads(l) for l in f if l.strip())
    kinds = {r["kind"] for r in recs}
    if "ceiling" in kinds:
        table_ceiling([r for r in recs if r["kind"] == "ceiling"])
    if "fidelity" in kinds:
        print("\n### Closed loop: all requests of a wave start together")
        table_fidelity([r for r in recs if r["kind"] == "fidelity"])
    if "fidelity_open" in kinds:
        print("\n### Open loop: Poisson arrivals at the rate that keeps about `conc` requests in flight")
        table_fidelity([r for r in recs if r["kind"] == "fidelity_open"])
    whole = [r for r in recs if r["kind"].startswith(("paced", "prompt_build"))]
    if whole:
        table_whole_process(whole)
    other = [r for r in recs if r["kind"] not in ("ceiling", "fidelity", "fidelity_open")
             and not r["kind"].startswith(("paced", "prompt_build"))]
    if other:
        table_generic(other, "Scale and large contexts")


# ---------------------------------------------------------------------------------------------------- paced

PACED_LABELS = {"servebench": "servebench", "base": "servebench", "raw": "raw", "sglang": "sglang"}


def whole_process_run(kind, label, conc, n, inp, out, outdir, run_idx, preset, extra=(), raw_extra=(),
                      sim_extra=(), range_ratio=None):
    """One client run, pinned to CLIENT_CORE, against a fresh simulator; whole-process user+sys from wait4."""
    tool = PACED_LABELS[label]
    tag = f"{kind}_{label}_c{conc}_r{run_idx}"
    sim = Sim(preset, sim_extra, log=os.path.join(outdir, tag + ".sim.log"))
    outfile = os.path.join(outdir, tag + ".result.jsonl")
    cmd = client_cmd(tool, sim.url, conc, n, inp, out, outfile, extra=raw_extra if tool == "raw" else extra)
    if label == "base":
        cmd[0] = os.environ.get("SERVEBENCH_BASE", "")
        if not cmd[0]:
            raise SystemExit("client 'base' needs SERVEBENCH_BASE=path/to/the/baseline/servebench")
    if range_ratio is not None and tool != "raw":
        cmd[cmd.index("--random-range-ratio") + 1] = str(range_ratio)
    log = os.path.join(outdir, tag + ".client.log")
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONUNBUFFERED="1",
               TOKENIZERS_PARALLELISM="false")
    wait_for_quiet(QUIET_CORES, QUIET_WAIT_S)
    m0 = machine_busy_s()
    t0 = time.time()
    with open(log, "w") as f:
        p = subprocess.Popen(["taskset", "-c", CLIENT_CORE, *cmd], stdout=f, stderr=subprocess.STDOUT, env=env)
        _, status, ru = os.wait4(p.pid, 0)
    wall = time.time() - t0
    m1 = machine_busy_s()
    sim_cpu = cpu_of(sim.proc.pid)
    try:
        traces = sim.traces()
    finally:
        sim.stop()
    mt = main_traces(traces, out)
    chunks = sum(len(t["chunk_ns"]) for t in mt)
    cpu = ru.ru_utime + ru.ru_stime
    client = cpu + sim_cpu
    rec = {"kind": kind, "client": label, "tool": tool, "concurrency": conc, "num_prompts": n, "input_len": inp,
           "output_len": out, "run": run_idx, "preset": preset, "rc": os.waitstatus_to_exitcode(status),
           "wall_s": wall, "client_user_s": ru.ru_utime, "client_sys_s": ru.ru_stime, "client_cpu_s": cpu,
           "client_max_rss_kib": ru.ru_maxrss, "sim_cpu_s_total": sim_cpu,
           "others_cpu_s": max(0.0, (m1 - m0) - client), "traces_main": len(mt), "chunks": chunks,
           "chunks_per_client_cpu_s": chunks / cpu if cpu else None, "command": shlex.join(cmd),
           "loadavg_before": loadavg()}
    res = last_json_line(log if tool == "raw" else outfile)
    if res:
        rec["client_result"] = {k: res.get(k) for k in ("completed", "failed", "ok", "duration", "output_throughput",
                                                         "median_itl_ms", "total_input_tokens")
                                if k in res}
    print(kind, label, f"run {run_idx}", {k: (round(rec[k], 3) if isinstance(rec[k], float) else rec[k])
                                          for k in ("rc", "wall_s", "client_user_s", "client_sys_s", "client_cpu_s",
                                                    "chunks")}, flush=True)
    return rec


def cmd_paced(a):
    """Issue 15: whole-run client CPU on paced streams (default-preset simulator), closed and open loop."""
    os.makedirs(a.out, exist_ok=True)
    res = os.path.join(a.out, "paced.jsonl")
    raise_nofile()
    for run_idx in range(a.runs):
        for mode in a.modes:
            # Clients take turns within a round: ratios come from runs close in time.
            for label in a.clients:
                if mode == "closed":
                    rec = whole_process_run("paced", label, a.conc, a.num_prompts, a.input_len, a.output_len,
                                            a.out, run_idx, a.preset)
                else:
                    # Open loop: Poisson arrivals at --rate, no concurrency cap that binds.
                    cap = a.num_prompts
                    rec = whole_process_run("paced_open", label, cap, a.num_prompts, a.input_len, a.output_len,
                                            a.out, run_idx, a.preset, extra=["--request-rate", str(a.rate)],
                                            raw_extra=["--request-rate", str(a.rate)])
                    rec["request_rate"] = a.rate
                append(res, rec)


def cmd_prompt_build(a):
    """Prompt preparation: whole-process CPU of a run whose cost is its prompts (short outputs, firehose)."""
    os.makedirs(a.out, exist_ok=True)
    res = os.path.join(a.out, "prompt_build.jsonl")
    raise_nofile()
    cases = []
    for c in a.cases:
        n, inp, ratio = c.split(":")
        cases.append((int(n), int(inp), float(ratio)))
    for run_idx in range(a.runs):
        for n, inp, ratio in cases:
            for label in a.clients:
                extra = list(a.servebench_extra) if PACED_LABELS[label] == "servebench" else []
                rec = whole_process_run(f"prompt_build_{inp}", label, min(n, 32), n, inp, a.output_len, a.out,
                                        run_idx, "firehose", extra=extra, range_ratio=ratio)
                rec["range_ratio"] = ratio
                rec["servebench_extra"] = extra
                append(res, rec)


def table_whole_process(recs):
    """Tables for paced / prompt-build records: medians of whole-process CPU, ratios within a round."""
    for kind in sorted({r["kind"] for r in recs}):
        rk = [r for r in recs if r["kind"] == kind]
        print(f"\n#### {kind}: whole-process client CPU (user+sys from wait4), median (min–max)\n")
        hdr = ["client", "runs", "CPU-s", "user s", "sys s", "wall s", "chunks", "chunks/CPU-s", "max RSS MiB",
               "others CPU-s (max)"]
        print("| " + " | ".join(hdr) + " |")
        print("|" + "---|" * len(hdr))
        labels = [l for l in ["base", "servebench", "sglang", "raw"] if any(r["client"] == l for r in rk)]
        for l in labels:
            g = [r for r in rk if r["client"] == l]
            print("| " + " | ".join([
                l, str(len(g)), med_range([r["client_cpu_s"] for r in g], "{:.2f}"),
                med_range([r["client_user_s"] for r in g], "{:.2f}"),
                med_range([r["client_sys_s"] for r in g], "{:.2f}"), med_range([r["wall_s"] for r in g], "{:.1f}"),
                med_range([r["chunks"] for r in g], "{:,.0f}"),
                med_range([r["chunks_per_client_cpu_s"] for r in g], "{:,.0f}"),
                med_range([r["client_max_rss_kib"] / 1024 for r in g], "{:.0f}"),
                f"{max(r.get('others_cpu_s', 0) for r in g):.2f}"]) + " |")
        by_run = group(rk, ["run"])
        pairs = [(x, y) for x in labels for y in labels if x != y and (x, y) in
                 {("servebench", "raw"), ("base", "raw"), ("servebench", "base"), ("servebench", "sglang"),
                  ("base", "sglang")}]
        if pairs:
            print("\n| ratio of CPU-s, same round (other/this: > 1 means this one costs less) | median (min–max) |")
            print("|---|---|")
            for x, y in pairs:
                vals = []
                for runs in by_run.values():
                    rx = [r for r in runs if r["client"] == x]
                    ry = [r for r in runs if r["client"] == y]
                    if rx and ry and rx[0]["client_cpu_s"]:
                        vals.append(ry[0]["client_cpu_s"] / rx[0]["client_cpu_s"])
                print(f"| {y}/{x} | {med_range(vals, '{:.3f}')} |")


GPU_METRICS = [("completed", "{:.0f}"), ("duration", "{:.1f}"), ("request_throughput", "{:.3f}"),
               ("output_throughput", "{:.1f}"), ("total_output_tokens", "{:.0f}"),
               ("total_output_tokens_retokenized", "{:.0f}"), ("mean_ttft_ms", "{:.1f}"),
               ("median_ttft_ms", "{:.1f}"), ("p99_ttft_ms", "{:.1f}"), ("mean_tpot_ms", "{:.2f}"),
               ("median_tpot_ms", "{:.2f}"), ("p99_tpot_ms", "{:.2f}"), ("mean_itl_ms", "{:.2f}"),
               ("median_itl_ms", "{:.2f}"), ("p95_itl_ms", "{:.2f}"), ("p99_itl_ms", "{:.2f}"),
               ("mean_e2e_latency_ms", "{:.0f}"), ("median_e2e_latency_ms", "{:.0f}"), ("concurrency", "{:.1f}")]


def cmd_gpu_table(a):
    """servebench vs sglang result files (one line per concurrency each) → one table per concurrency."""
    runs = {}
    for path, tool in ((a.servebench, "servebench"), (a.sglang, "sglang")):
        try:
            with open(path) as f:
                for line in f:
                    if not line.strip():
                        continue
                    r = json.loads(line.replace("Infinity", "null").replace("NaN", "null"))
                    runs.setdefault(r.get("max_concurrency"), {})[tool] = r
        except OSError as e:
            print(f"(no {tool} results: {e})")
    for c in sorted(k for k in runs if k is not None):
        sb = runs[c].get("servebench", {})
        sg = runs[c].get("sglang", {})
        print(f"\n#### Concurrency {c}\n")
        print("| metric | servebench | sglang.bench_serving | servebench/sglang − 1 |")
        print("|---|---|---|---|")
        for k, fmt in GPU_METRICS:
            x, y = sb.get(k), sg.get(k)
            fx = fmt.format(x) if isinstance(x, (int, float)) else "–"
            fy = fmt.format(y) if isinstance(y, (int, float)) else "–"
            d = f"{(x / y - 1) * 100:+.1f}%" if isinstance(x, (int, float)) and isinstance(y, (int, float)) and y else "–"
            print(f"| {k} | {fx} | {fy} | {d} |")
        w = sb.get("warnings")
        if w:
            print(f"\nservebench warnings: {w}")


def _lines(path):
    try:
        with open(path) as f:
            return [json.loads(l.replace("Infinity", "null").replace("NaN", "null")) for l in f if l.strip()]
    except OSError:
        return []


def order_requests(d, ph):
    """Per-request records of one run of bench/gpu_order.sh in one shape for both tools:
    send (unix s), ttft_ms, e2e_ms, gaps_ms (between received text chunks), out (the tool's output count)."""
    tag, reqs = ph["tag"], []
    if ph["tool"] == "servebench":
        for r in sorted(_lines(f"{d}/sb-{tag}.details.jsonl"), key=lambda r: r["index"]):
            ch = r.get("chunk_ms") or []
            reqs.append({"send": r["send_unix_ns"] / 1e9, "ttft_ms": r.get("ttft_ms"), "e2e_ms": r.get("e2e_ms"),
                         "gaps_ms": [b - a for a, b in zip(ch, ch[1:])], "out": r.get("output_tokens"),
                         "ok": r.get("error") is None})
    else:
        res = (_lines(f"{d}/sgl-{tag}.jsonl") or [{}])[0]
        tr = sorted(_lines(f"{d}/sgl-{tag}.trace.jsonl"), key=lambda r: r["seq"])[1:]  # seq 0: warm-up
        for i, ttft in enumerate(res.get("ttfts") or []):
            if ttft is None or i >= len(tr):
                continue
            gaps = [x * 1000 for x in res["itls"][i]]
            # sglang's latency ends at its last data line; the last text chunk is within a step of it.
            reqs.append({"send": tr[i]["send_unix_ns"] / 1e9, "ttft_ms": ttft * 1000,
                         "e2e_ms": ttft * 1000 + sum(gaps), "gaps_ms": gaps, "out": res["output_lens"][i],
                         "ok": not res["errors"][i]})
    return reqs


def proc_window(mon, t0, t1):
    """(busiest engine thread %, engine process %, other processes in cores) over [t0, t1] from procmon samples."""
    if len(mon) < 3:
        return None
    hz, ncpu = mon[0]["hz"], mon[0]["ncpu"]
    cum, samples = {}, []
    for m in mon[1:]:
        for tid, (comm, ticks) in m["thr"].items():
            cum[tid] = (comm, ticks)
        samples.append((m["t"], dict(cum), m["busy"], m["total"]))
    a = min(samples, key=lambda x: abs(x[0] - t0))
    b = min(samples, key=lambda x: abs(x[0] - t1))
    dt = b[0] - a[0]
    if dt <= 0.5:
        return None
    per = {tid: (b[1][tid][1] - a[1].get(tid, (None, 0))[1]) / hz / dt * 100 for tid in b[1]}
    top = max(per.items(), key=lambda kv: kv[1])
    proc = sum(per.values())
    machine_cores = (b[2] - a[2]) / max(b[3] - a[3], 1) * ncpu
    return {"top_thread_pct": top[1], "top_thread": b[1][top[0]][0], "proc_pct": proc,
            "others_cores": machine_cores - proc / 100}


def gpu_window(rows, t0, t1):
    sel = [r for r in rows if t0 <= r[0] <= t1]
    if not sel:
        return None
    return {k: statistics.mean(r[i] for r in sel) for i, k in ((1, "util"), (2, "sm_mhz"), (3, "power_w"))}


def cmd_gpu_order(a):
    """Tables for one bench/gpu_order.sh run (DIR = the unpacked order.tar.gz)."""
    d = a.dir
    phases = _lines(f"{d}/phases.jsonl")
    mon = _lines(f"{d}/proc.jsonl")
    tok = {}
    if os.path.exists(f"{d}/tokcount.json"):
        with open(f"{d}/tokcount.json") as f:
            tok = json.load(f)
    gpu = []
    if os.path.exists(f"{d}/gpu.csv"):
        with open(f"{d}/gpu.csv") as f:
            for line in f:
                try:
                    gpu.append([float(x) for x in line.strip().split(",")[:4]])
                except ValueError:
                    pass
    probe = []
    if os.path.exists(f"{d}/cpuprobe.csv"):
        with open(f"{d}/cpuprobe.csv") as f:
            probe = [[float(x) for x in line.split(",")] for line in f if line.count(",") == 1]
    t_first = None
    rows = []
    for ph in phases:
        reqs = [r for r in order_requests(d, ph) if r["ok"] and r["ttft_ms"] is not None]
        res = (_lines(f"{d}/{'sb' if ph['tool'] == 'servebench' else 'sgl'}-{ph['tag']}.jsonl") or [{}])[0]
        if not reqs:
            rows.append({"ph": ph, "res": res, "reqs": []})
            continue
        t0 = min(r["send"] for r in reqs)
        t1 = max(r["send"] + r["e2e_ms"] / 1000 for r in reqs)
        if t_first is None:
            t_first = t0
        tp = [(r["e2e_ms"] - r["ttft_ms"]) / (r["out"] - 1) for r in reqs if r["out"] and r["out"] > 1]
        req_med_gap = [statistics.median(r["gaps_ms"]) for r in reqs if r["gaps_ms"]]
        tk = tok.get(f"{ph['tool']}:{ph['tag']}", tok.get(ph["tag"], {}))  # tool:tag where both tools share a tag
        ptoks = tk.get("prompt_tokens_server", [])
        if ph["tool"] == "sglang":
            ptoks = ptoks[1:]  # seq 0 is sglang's warm-up request
        rows.append({"ph": ph, "res": res, "reqs": reqs, "t0": t0, "t1": t1, "tpot": tp, "req_med_gap": req_med_gap,
                     "spread_ms": (max(r["send"] for r in reqs) - t0) * 1000, "ptoks": ptoks,
                     "retok": tk.get("output_tokens_retok", []), "proc": proc_window(mon, t0, t1),
                     "gpu": gpu_window(gpu, t0, t1),
                     "probe": [p[1] for p in probe if t0 <= p[0] <= t1]})

    def f(x, fmt="{:.1f}"):
        return fmt.format(x) if isinstance(x, (int, float)) else "–"

    def mm(v, fmt="{:.0f}"):
        return f"{fmt.format(min(v))}–{fmt.format(max(v))}" if v else "–"

    print("#### Runs in the order they ran (the tools' own reported numbers)\n")
    print("| # | run | tool | prompts | conc | n | start (s) | duration (s) | output tok/s | median TTFT | mean TTFT "
          "| median TPOT | mean TPOT | TPOT min–max | mean ITL | median ITL |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for i, r in enumerate(rows, 1):
        ph, res = r["ph"], r["res"]
        st = f(r["t0"] - t_first, "{:.0f}") if r.get("t0") else "–"
        print(f"| {i} | {ph['tag']} | {ph['tool']} | {ph['prompts']} | {ph['conc']} | {ph['n']} | {st} "
              f"| {f(res.get('duration'))} | {f(res.get('output_throughput'))} | {f(res.get('median_ttft_ms'))} "
              f"| {f(res.get('mean_ttft_ms'))} | {f(res.get('median_tpot_ms'), '{:.2f}')} "
              f"| {f(res.get('mean_tpot_ms'), '{:.2f}')} | {mm(r.get('tpot', []), '{:.1f}')} "
              f"| {f(res.get('mean_itl_ms'), '{:.2f}')} | {f(res.get('median_itl_ms'), '{:.2f}')} |")

    print("\n#### What was sent and received, and the engine during each run\n")
    print("Window: first send to last response end. Send spread: first to last send of the timed requests. "
          "Prompt tokens: the engine's tokenizer on the exact prompt text sent (`tokenizer(prompt)`, as the "
          "engine calls it). Out: the tool's output count (from the stream's usage or max_tokens) and the "
          "re-tokenized text. Chunks: text chunks received per request. Engine thread: its busiest thread's "
          "CPU % of one core; process: all its threads; others: CPU of all other processes (the client among "
          "them), in cores. CPU probe: a fixed Python loop's time (ms, median) on another thread of the machine.\n")
    print("| # | run | tool | window (s) | send spread (ms) | prompt tokens | out (tool) | out retok (mean) "
          "| chunks/request | per-request median gap (ms) | engine thread % | engine process % | others (cores) "
          "| GPU util % | SM MHz | power W | CPU probe (ms) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for i, r in enumerate(rows, 1):
        if not r["reqs"]:
            print(f"| {i} | {r['ph']['tag']} | {r['ph']['tool']} | (no requests) |" + " |" * 13)
            continue
        p, g = r["proc"] or {}, r["gpu"] or {}
        outs = [q["out"] for q in r["reqs"]]
        chunks = [len(q["gaps_ms"]) + 1 for q in r["reqs"]]
        print(f"| {i} | {r['ph']['tag']} | {r['ph']['tool']} | {r['t1'] - r['t0']:.1f} | {r['spread_ms']:.1f} "
              f"| {mm(r['ptoks'])} | {mm(outs)} | {f(statistics.mean(r['retok']) if r['retok'] else None)} "
              f"| {mm(chunks)} | {mm(r['req_med_gap'], '{:.1f}')} | {f(p.get('top_thread_pct'), '{:.0f}')} "
              f"| {f(p.get('proc_pct'), '{:.0f}')} | {f(p.get('others_cores'), '{:.2f}')} | {f(g.get('util'), '{:.0f}')} "
              f"| {f(g.get('sm_mhz'), '{:.0f}')} | {f(g.get('power_w'), '{:.0f}')} "
              f"| {f(statistics.median(r['probe']) if r['probe'] else None, '{:.1f}')} |")

    print("\n#### Same tool, same concurrency, back to back or later (noise) and across tools\n")
    print("| conc | tool / run | median TPOT (ms) per run | spread of the runs | output tok/s per run |")
    print("|---|---|---|---|---|")
    groups = {}
    for r in rows:
        if r["reqs"] and not r["ph"]["tag"].startswith("warm"):
            groups.setdefault((r["ph"]["conc"], r["ph"]["tool"], r["ph"]["prompts"]), []).append(r)
    for (c, tool, pr), rs in sorted(groups.items()):
        tp = [r["res"].get("median_tpot_ms") for r in rs]
        th = [r["res"].get("output_throughput") for r in rs]
        sp = (max(tp) / min(tp) - 1) * 100 if len(tp) > 1 and all(tp) else None
        print(f"| {c} | {tool} ({pr} prompts): {', '.join(r['ph']['tag'] for r in rs)} "
              f"| {', '.join(f(x, '{:.2f}') for x in tp)} | {f(sp, '{:.1f}%')} | {', '.join(f(x) for x in th)} |")
    pairs = {}
    for r in rows:
        if r["reqs"]:
            pairs.setdefault(r["ph"]["tag"], {})[r["ph"]["tool"]] = r
    pairs = {k: v for k, v in pairs.items() if len(v) == 2}
    if pairs:
        print("\n#### Both tools at the same time (same engine batches)\n")
        print("Each tool's own numbers, then the mean gap between text chunks (ms) that each tool saw in the same "
              "2-s slices of the common window (first send of the later tool to the first end of either).\n")
        print("| run | tool | first send (s, vs other tool) | median TTFT | median TPOT | mean TPOT | per-request TPOT | "
              "output tok/s (own window) |")
        print("|---|---|---|---|---|---|---|---|")
        for tag, v in pairs.items():
            t_a = min(x["t0"] for x in v.values())
            for tool in ("servebench", "sglang"):
                r = v[tool]
                print(f"| {tag} | {tool} | {r['t0'] - t_a:+.2f} | {f(r['res'].get('median_ttft_ms'))} "
                      f"| {f(r['res'].get('median_tpot_ms'), '{:.2f}')} | {f(r['res'].get('mean_tpot_ms'), '{:.2f}')} "
                      f"| {mm(r['tpot'], '{:.1f}')} | {f(r['res'].get('output_throughput'))} |")
        print("\n| run | slice (s from common start) | servebench mean gap | sglang mean gap | servebench/sglang − 1 |")
        print("|---|---|---|---|---|")
        for tag, v in pairs.items():
            c0 = max(x["t0"] for x in v.values())
            c1 = min(x["t1"] for x in v.values())

            def chunk_gaps(r):
                out = []
                for q in r["reqs"]:
                    t = q["send"] + q["ttft_ms"] / 1000
                    for g in q["gaps_ms"]:
                        t += g / 1000
                        out.append((t, g))
                return out
            ga, gb = chunk_gaps(v["servebench"]), chunk_gaps(v["sglang"])
            s0 = c0
            while s0 + 2 <= c1:
                xa = [g for t, g in ga if s0 <= t < s0 + 2]
                xb = [g for t, g in gb if s0 <= t < s0 + 2]
                if xa and xb:
                    ma, mb = statistics.mean(xa), statistics.mean(xb)
                    print(f"| {tag} | {s0 - c0:.0f}–{s0 - c0 + 2:.0f} | {ma:.1f} | {mb:.1f} | {(ma / mb - 1) * 100:+.1f}% |")
                s0 += 2
    if a.timeline:
        print("\n#### The engine's pace through each run (2-s slices)\n")
        print("Mean gap between text chunks (ms) over all requests of the run, ending in each 2-s slice of its "
              "window; GPU utilisation (%) in the same slice after the slash.\n")
        print("| run | tool | start (s) | mean gap / GPU % per 2-s slice |")
        print("|---|---|---|---|")
        for r in rows:
            if not r["reqs"]:
                continue
            ev = []
            for q in r["reqs"]:
                t = q["send"] + q["ttft_ms"] / 1000
                for g in q["gaps_ms"]:
                    t += g / 1000
                    ev.append((t, g))
            cells, s0 = [], r["t0"]
            while s0 < r["t1"]:
                xs = [g for t, g in ev if s0 <= t < s0 + 2]
                gu = [x[1] for x in gpu if s0 <= x[0] < s0 + 2]
                if xs:
                    cells.append(f"{statistics.mean(xs):.0f}/{statistics.mean(gu):.0f}" if gu
                                 else f"{statistics.mean(xs):.0f}")
                s0 += 2
            print(f"| {r['ph']['tag']} | {r['ph']['tool']} | {r['t0'] - t_first:.0f} | {' '.join(cells)} |")
    if a.per_request:
        print("\n#### Per request (send offset from the run's first send, TTFT, TPOT, median gap)\n")
        for r in rows:
            if not r["reqs"]:
                continue
            print(f"\n{r['ph']['tag']} ({r['ph']['tool']}):")
            for j, q in enumerate(r["reqs"]):
                tp = (q["e2e_ms"] - q["ttft_ms"]) / (q["out"] - 1) if q["out"] and q["out"] > 1 else None
                mg = statistics.median(q["gaps_ms"]) if q["gaps_ms"] else None
                pt = r["ptoks"][j] if j < len(r["ptoks"]) else None
                print(f"  {j:3d} send +{(q['send'] - r['t0']) * 1000:8.1f} ms  prompt {pt}  ttft {q['ttft_ms']:8.1f}"
                      f"  tpot {f(tp, '{:.2f}')}  median gap {f(mg, '{:.2f}')}  chunks {len(q['gaps_ms']) + 1}")


def cmd_rerun(a):
    """Reruns the records of a results file where other processes used more than --max-others % CPU (or that
    failed), replacing them in place; the rest is kept."""
    with open(a.file) as f:
        recs = [json.loads(l) for l in f if l.strip()]
    raise_nofile()
    out = []
    for r in recs:
        bad = r.get("rc") != 0 or (r.get("others_cpu_pct") or 0) > a.max_others
        if not bad:
            out.append(r)
            continue
        extra = r.get("client_extra")
        if extra is None:
            extra = ["--request-rate", r["command"].split("--request-rate ")[1].split()[0]] \
                if "--request-rate" in r["command"] and r["tool"] != "raw" else []
        details = r.get("details", r["kind"].startswith("fidelity"))
        time_v = r.get("time_v_used", r["kind"] in ("scale", "large_prompt", "large_event"))
        print(f"rerun {r['kind']} {r['tool']} c={r['concurrency']} run={r['run']} (others {r.get('others_cpu_pct')})",
              flush=True)
        n = r2 = None
        for _ in range(a.tries):
            r2 = one_run(r["kind"], r["tool"], r["concurrency"], r["num_prompts"], r["input_len"], r["output_len"],
                         os.path.dirname(a.file) or ".", r["run"], r["preset"], sim_extra=r["sim_extra"],
                         details=details, client_extra=extra, time_v=time_v)
            for k in ("itl_ms_set",):
                if k in r:
                    r2[k] = r[k]
            summarize_line(r2)
            if r2.get("rc") == 0 and (r2.get("others_cpu_pct") or 0) <= a.max_others:
                break
        out.append(r2)
    with open(a.file + ".tmp", "w") as f:
        for r in out:
            f.write(json.dumps(r) + "\n")
    os.replace(a.file + ".tmp", a.file)


def ints(s):
    return [int(x) for x in s.split(",") if x]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)

    def common(p, clients="servebench,sglang,raw"):
        p.add_argument("--out", required=True)
        p.add_argument("--clients", type=lambda s: s.split(","), default=clients.split(","))
        p.add_argument("--runs", type=int, default=3)
        p.add_argument("--input-len", type=int, default=32)

    p = sub.add_parser("ceiling")
    common(p)
    p.add_argument("--conc", type=ints, default=[1, 64, 256, 1024, 4096])
    p.add_argument("--output-len", type=int, default=256)
    p.add_argument("--seconds", type=float, default=6.0, help="target length of a run (sets --num-prompts)")
    p.add_argument("--num-prompts", type=int, default=0)
    p.set_defaults(fn=cmd_ceiling)

    p = sub.add_parser("fidelity")
    common(p)
    p.add_argument("--conc", type=ints, default=[1, 64, 256, 1024])
    p.add_argument("--output-len", type=int, default=64)
    p.add_argument("--ttft-ms", type=float, default=20)
    p.add_argument("--itl-ms", type=float, default=10)
    p.add_argument("--max-chunk-rate", type=float, default=20000,
                   help="raise the ITL so that concurrency/ITL stays under this many chunks/s")
    p.add_argument("--min-requests", type=int, default=20)
    p.add_argument("--open-loop", action="store_true",
                   help="Poisson arrivals (--request-rate) instead of all requests at once; raw reader skipped")
    p.set_defaults(fn=cmd_fidelity)

    p = sub.add_parser("scale")
    common(p, "servebench")
    p.add_argument("--streams", type=int, default=10000)
    p.add_argument("--stream-levels", type=ints, default=None)
    p.add_argument("--ttft-ms", type=float, default=1000)
    p.add_argument("--itl-ms", type=float, default=1000)
    p.add_argument("--tokens", type=int, default=60)
    p.add_argument("--client-extra", type=shlex.split, default=[])
    p.set_defaults(fn=cmd_scale)

    p = sub.add_parser("large")
    common(p)
    p.add_argument("--prompt-tokens", type=int, default=100_000)
    p.add_argument("--prompt-requests", type=int, default=32)
    p.add_argument("--prompt-conc", type=int, default=8)
    p.add_argument("--tokens-per-chunk", type=int, default=10500, help="~50 kB events at ~4.8 bytes per token")
    p.add_argument("--events", type=int, default=16, help="events per response")
    p.add_argument("--event-requests", type=int, default=512)
    p.add_argument("--event-conc", type=int, default=16)
    p.add_argument("--only", choices=["both", "prompt", "event"], default="both")
    p.add_argument("--file", default="large.jsonl", help="results file name under --out")
    p.set_defaults(fn=cmd_large)

    p = sub.add_parser("paced", help="issue 15: whole-run client CPU on the default-preset simulator")
    common(p, "servebench,raw")
    p.set_defaults(input_len=64)
    p.add_argument("--modes", type=lambda s: s.split(","), default=["closed", "open"])
    p.add_argument("--conc", type=int, default=256)
    p.add_argument("--num-prompts", type=int, default=1000)
    p.add_argument("--output-len", type=int, default=256)
    p.add_argument("--rate", type=float, default=40.0, help="open loop: requests/s (~256 in flight on `default`)")
    p.add_argument("--preset", default="default")
    p.set_defaults(fn=cmd_paced)

    p = sub.add_parser("prompt-build", help="prompt preparation: 32 x 100k tokens and the seed workloads")
    common(p, "servebench,sglang")
    p.add_argument("--cases", type=lambda s: s.split(","), default=["32:100000:1", "500:3500:0.7", "500:5600:0.8"],
                   help="NUM_PROMPTS:INPUT_LEN:RANGE_RATIO,...")
    p.add_argument("--output-len", type=int, default=4)
    p.add_argument("--servebench-extra", type=shlex.split, default=[], help="e.g. '--prompt-rule sglang'")
    p.set_defaults(fn=cmd_prompt_build)

    p = sub.add_parser("rerun")
    p.add_argument("file")
    p.add_argument("--max-others", type=float, default=15.0)
    p.add_argument("--tries", type=int, default=3)
    p.set_defaults(fn=cmd_rerun)

    p = sub.add_parser("gpu-table")
    p.add_argument("servebench")
    p.add_argument("sglang")
    p.set_defaults(fn=cmd_gpu_table)

    p = sub.add_parser("gpu-order", help="tables for one bench/gpu_order.sh run (the unpacked order.tar.gz)")
    p.add_argument("dir")
    p.add_argument("--per-request", action="store_true", help="also list every request")
    p.add_argument("--timeline", action="store_true", help="also the engine's pace per 2-s slice of each run")
    p.set_defaults(fn=cmd_gpu_order)

    p = sub.add_parser("table")
    p.add_argument("files", nargs="+")
    p.set_defaults(fn=cmd_table)

    a = ap.parse_args()
    a.fn(a)


if __name__ == "__main__":
    main()
