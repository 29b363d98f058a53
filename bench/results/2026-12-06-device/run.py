#!/usr/bin/env python3
"""Client speed of this session's build against the previous one and the raw reader, side by side on the device
machine's quiet cores (bench/sbbench.py's methods, imported unchanged).

Clients: base (servebench at 434c1ed, the request path of the last measurement), new (this build), raw (the raw
reader). The simulator is always `new`. Each round runs every client once, in an order rotated by round (base,new,raw
/ new,raw,base / raw,base,new / ...), so no client always runs first.

  BIN=target/perf-bin OUTDIR=... WHAT=ceiling,paced python3 bench/results/2026-12-06-device/run.py
Environment: BIN (servebench-base, servebench-new, raw-reader), OUTDIR, CEIL_RUNS (5), CONC (64,1024,256),
SECONDS_PER_RUN (3), PACED_RUNS (3), PACED_MODES (closed,open), BUDGET_S (wall budget; rounds that would not
fit are skipped and said so).
"""
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
BIN = os.path.abspath(os.environ.get("BIN", os.path.join(ROOT, "target/perf-bin")))
os.environ.setdefault("SERVEBENCH", os.path.join(BIN, "servebench-new"))
os.environ.setdefault("SERVEBENCH_BASE", os.path.join(BIN, "servebench-base"))
os.environ.setdefault("RAW_READER", os.path.join(BIN, "raw-reader"))
import sbbench  # noqa: E402

T0 = time.time()
OUTDIR = os.path.abspath(os.environ.get("OUTDIR", "/tmp/perf-out"))
CEIL_RUNS = int(os.environ.get("CEIL_RUNS", "5"))
CONC = [int(x) for x in os.environ.get("CONC", "64,1024,256").split(",") if x]
SECONDS = float(os.environ.get("SECONDS_PER_RUN", "3"))
PACED_RUNS = int(os.environ.get("PACED_RUNS", "3"))
PACED_MODES = os.environ.get("PACED_MODES", "closed,open").split(",")
BUDGET_S = float(os.environ.get("BUDGET_S", "540"))
LABELS = ["base", "new", "raw"]
BINARY = {"base": os.environ["SERVEBENCH_BASE"], "new": os.environ["SERVEBENCH"], "raw": None}
_orig_client_cmd = sbbench.client_cmd
_current = {"bin": BINARY["new"]}


def client_cmd(tool, *args, **kw):
    cmd = _orig_client_cmd(tool, *args, **kw)
    if tool == "servebench":
        cmd[0] = _current["bin"]
    return cmd


sbbench.client_cmd = client_cmd


def order(round_idx):
    k = round_idx % len(LABELS)
    return LABELS[k:] + LABELS[:k]


def left():
    return BUDGET_S - (time.time() - T0)


def ceiling():
    res = os.path.join(OUTDIR, "ceiling.jsonl")
    for conc in CONC:
        longest = 0.0
        for r in range(CEIL_RUNS):
            if left() < longest * 1.2:
                print(f"ceiling c{conc}: round {r} skipped ({left():.0f} s left)", flush=True)
                break
            r0 = time.time()
            for label in order(r):
                tool = "raw" if label == "raw" else "servebench"
                _current["bin"] = BINARY[label] or BINARY["new"]
                d = os.path.join(OUTDIR, "logs", label)
                os.makedirs(d, exist_ok=True)
                n = sbbench.sized(tool, conc, 256, SECONDS)
                fit = ["--trace-capacity", str(n + 1000), "--trace-chunk-budget", str((n + 1000) * 256)]
                rec = sbbench.one_run("ceiling", tool, conc, n, 32, 256, d, r, "firehose", sim_extra=fit)
                rec["client"] = label
                rec["t_since_start_s"] = time.time() - T0
                sbbench.append(res, rec)
                print(label, end=" ")
                sbbench.summarize_line(rec)
            longest = max(longest, time.time() - r0)


def paced():
    res = os.path.join(OUTDIR, "paced.jsonl")
    longest = 0.0
    for r in range(PACED_RUNS):
        for mode in PACED_MODES:
            if left() < longest * 1.2 + 5:
                print(f"paced {mode}: round {r} skipped ({left():.0f} s left)", flush=True)
                continue
            r0 = time.time()
            for label in order(r):
                client = {"new": "servebench"}.get(label, label)
                _current["bin"] = BINARY["new"]
                d = os.path.join(OUTDIR, "logs", label)
                os.makedirs(d, exist_ok=True)
                if mode == "closed":
                    rec = sbbench.whole_process_run("paced", client, 256, 1000, 64, 256, d, r, "default")
                else:
                    rec = sbbench.whole_process_run("paced_open", client, 1000, 1000, 64, 256, d, r, "default",
                                                    extra=["--request-rate", "40"],
                                                    raw_extra=["--request-rate", "40"])
                    rec["request_rate"] = 40.0
                rec["client"] = label
                sbbench.append(res, rec)
            longest = max(longest, time.time() - r0)


def main():
    os.makedirs(OUTDIR, exist_ok=True)
    print("nofile", sbbench.raise_nofile(), "cores", os.cpu_count(), "load", sbbench.loadavg(), flush=True)
    what = os.environ.get("WHAT", "ceiling,paced").split(",")
    for w in what:
        {"ceiling": ceiling, "paced": paced}[w]()
        print(f"{w} done at {time.time() - T0:.0f} s", flush=True)


if __name__ == "__main__":
    main()
