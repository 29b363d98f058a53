#!/usr/bin/env python3
"""Timestamp fidelity of two servebench builds side by side: bench/sbbench.py's `fidelity` (mock simulator,
closed loop, the client's per-chunk times against the simulator's own record), each round running `base` then
`new` (order rotated by round), the simulator always `new`.

  BIN=DIR OUTDIR=DIR RUNS=3 CONC=256,1024 python3 bench/results/2026-12-06-session3/fidelity.py
BIN holds servebench-base and servebench-new. Prints one line per run; sbbench.py `table OUTDIR/*/fidelity.jsonl`
gives the tables.
"""
import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
BIN = os.path.abspath(os.environ.get("BIN", os.path.join(ROOT, "target/perf-bin")))
os.environ.setdefault("SERVEBENCH", os.path.join(BIN, "servebench-new"))
import sbbench  # noqa: E402

BINARY = {"base": os.path.join(BIN, "servebench-base"), "new": os.path.join(BIN, "servebench-new")}
_orig = sbbench.client_cmd
_current = {"bin": BINARY["new"]}


def client_cmd(tool, *args, **kw):
    cmd = _orig(tool, *args, **kw)
    cmd[0] = _current["bin"]
    return cmd


sbbench.client_cmd = client_cmd
OUTDIR = os.path.abspath(os.environ.get("OUTDIR", "/tmp/fidelity-out"))
RUNS = int(os.environ.get("RUNS", "3"))
CONC = [int(x) for x in os.environ.get("CONC", "256,1024").split(",")]
for r in range(RUNS):
    for label in (["base", "new"] if r % 2 == 0 else ["new", "base"]):
        _current["bin"] = BINARY[label]
        a = argparse.Namespace(out=os.path.join(OUTDIR, label), runs=1, conc=CONC, clients=["servebench"],
                               output_len=64, ttft_ms=20.0, itl_ms=10.0, max_chunk_rate=20000.0,
                               min_requests=20, open_loop=False, input_len=32)
        print(f"round {r}: {label}", flush=True)
        sbbench.cmd_fidelity(a)
