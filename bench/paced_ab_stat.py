#!/usr/bin/env python3
"""Medians of a bench/paced_ab.sh log: whole-process CPU-s (user + sys) per client,
raw/client and client/base per round (same round, so the machine's state is shared).
    python3 bench/paced_ab_stat.py ab_log.txt [--skip-rounds 5,6] [--base NAME]   (base: "base")"""
import re
import statistics as st
import sys

skip = set()
if "--skip-rounds" in sys.argv:
    skip = {int(x) for x in sys.argv[sys.argv.index("--skip-rounds") + 1].split(",")}
rows = {}
for line in open(sys.argv[1]):
    m = re.match(r"round (\d+) (\S+) user ([\d.]+) sys ([\d.]+)", line)
    if m and int(m[1]) not in skip:
        rows.setdefault(int(m[1]), {})[m[2]] = float(m[3]) + float(m[4])
base = sys.argv[sys.argv.index("--base") + 1] if "--base" in sys.argv else "base"
clients = sorted({c for r in rows.values() for c in r})


def ratio(num, den):
    v = [r[num] / r[den] for r in rows.values() if num in r and den in r]
    return f"{st.median(v):.3f} ({min(v):.2f}-{max(v):.2f}, n={len(v)})" if v else "-"


for c in clients:
    v = [r[c] for r in rows.values() if c in r]
    print(f"{c}: CPU-s median {st.median(v):.3f} ({min(v):.2f}-{max(v):.2f}, n={len(v)})")
for c in clients:
    if c != "raw":
        print(f"raw/{c}: {ratio('raw', c)}")
    if c not in ("raw", base) and base in clients:
        print(f"{c}/{base}: {ratio(c, base)}")
