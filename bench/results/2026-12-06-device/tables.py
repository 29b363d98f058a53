#!/usr/bin/env python3
"""Tables of run.py's results: per client medians (min-max) and ratios of clients within the same round.
  python3 bench/results/2026-12-06-device/tables.py DIR   (DIR holds ceiling.jsonl and/or paced.jsonl)"""
import json
import os
import statistics
import sys


def load(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def med(xs):
    xs = [x for x in xs if x is not None]
    if not xs:
        return "–"
    m = statistics.median(xs)
    fmt = (lambda v: f"{v:,.0f}") if m > 100 else (lambda v: f"{v:.3f}")
    return f"{fmt(m)} ({fmt(min(xs))}–{fmt(max(xs))}), n={len(xs)}" if len(xs) > 1 else f"{fmt(m)}, n=1"


def ceiling(recs):
    print("### Ceiling (fire-hose), chunks per client CPU-second\n")
    print("| conc | base | new | raw | new/base (same round) | new/raw (same round) |")
    print("|---|---|---|---|---|---|")
    for conc in sorted({r["concurrency"] for r in recs}):
        rs = [r for r in recs if r["concurrency"] == conc]
        by = {c: [r["chunks_per_client_cpu_s"] for r in rs if r["client"] == c] for c in ("base", "new", "raw")}
        rounds = {}
        for r in rs:
            rounds.setdefault(r["run"], {})[r["client"]] = r["chunks_per_client_cpu_s"]
        nb = [v["new"] / v["base"] for v in rounds.values() if "new" in v and "base" in v]
        nr = [v["new"] / v["raw"] for v in rounds.values() if "new" in v and "raw" in v]
        print(f"| {conc} | {med(by['base'])} | {med(by['new'])} | {med(by['raw'])} | {med(nb)} | {med(nr)} |")
    print()


def paced(recs):
    print("### Paced (default preset, 1,000 x 64 in x 256 out, conc 256), whole-process client CPU-s (user+sys)\n")
    print("| client | CPU-s | user s | sys s |")
    print("|---|---|---|---|")
    for c in ("base", "new", "raw"):
        rs = [r for r in recs if r["client"] == c]
        print(f"| {c} | {med([r['client_cpu_s'] for r in rs])} | {med([r['client_user_s'] for r in rs])} | "
              f"{med([r['client_sys_s'] for r in rs])} |")
    rounds = {}
    for r in recs:
        rounds.setdefault(r["run"], {})[r["client"]] = r["client_cpu_s"]
    print("\n| ratio of CPU-s, same round | median (min–max) |\n|---|---|")
    for a, b in (("new", "base"), ("raw", "new"), ("raw", "base")):
        xs = [v[a] / v[b] for v in rounds.values() if a in v and b in v]
        print(f"| {a}/{b} | {med(xs)} |")
    print()


def main():
    d = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    c = load(os.path.join(d, "ceiling.jsonl"))
    if c:
        ceiling(c)
    p = load(os.path.join(d, "paced.jsonl"))
    for r in p:
        r["client"] = {"servebench": "new"}.get(r["client"], r["client"])
    if p:
        paced(p)


if __name__ == "__main__":
    main()
