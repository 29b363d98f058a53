#!/usr/bin/env python3
"""Markdown tables for run_perf.py's ceiling.jsonl and paced.jsonl: medians (min–max) and per-run ratios."""
import json
import statistics
import sys


def load(path):
    try:
        with open(path) as f:
            return [json.loads(l) for l in f if l.strip()]
    except OSError:
        return []


def mm(vals, fmt="{:,.0f}"):
    vals = [v for v in vals if v is not None]
    if not vals:
        return "–"
    return f"{fmt.format(statistics.median(vals))} ({fmt.format(min(vals))}–{fmt.format(max(vals))})"


def ratios(recs, key, num, den, group):
    """num/den of `key` for records of the same group (concurrency) and run index."""
    by = {}
    for r in recs:
        by[(r[group], r["run"], r["client"])] = r.get(key)
    out = {}
    for (g, run, c), v in by.items():
        if c != num:
            continue
        d = by.get((g, run, den))
        if v and d:
            out.setdefault(g, []).append(v / d)
    return out


def main(d):
    ce = load(f"{d}/ceiling.jsonl")
    clients = ["before", "after", "raw"]
    if ce:
        print("### Ceiling (fire-hose simulator, 256-token outputs, 32-token prompts)\n")
        print("| conc | client | runs | chunks/CPU-s | chunks/s | client CPU % | sim CPU % | others CPU % (max) |")
        print("|---|---|---|---|---|---|---|---|")
        for conc in sorted({r["concurrency"] for r in ce}):
            for c in clients:
                rs = [r for r in ce if r["concurrency"] == conc and r["client"] == c]
                if not rs:
                    continue
                oth = [r.get("others_cpu_pct") for r in rs if r.get("others_cpu_pct") is not None]
                bad = sum(1 for r in rs if r.get("rc") != 0 or r.get("traces_main") != r.get("num_prompts"))
                print(f"| {conc} | {c} | {len(rs)}{' (' + str(bad) + ' incomplete)' if bad else ''} | "
                      f"{mm([r.get('chunks_per_client_cpu_s') for r in rs])} | {mm([r.get('chunks_per_s') for r in rs])} | "
                      f"{mm([r.get('client_cpu_pct') for r in rs])} | {mm([r.get('sim_cpu_pct') for r in rs])} | "
                      f"{(f'{max(oth):.0f}' if oth else '–')} |")
        print("\n### Ceiling ratios, chunks per client CPU-second, pairs from the same round (median, min–max)\n")
        print("| conc | after/before | after/raw | before/raw | after/before chunks/s |")
        print("|---|---|---|---|---|")
        k = "chunks_per_client_cpu_s"
        ab, ar, br = (ratios(ce, k, "after", "before", "concurrency"), ratios(ce, k, "after", "raw", "concurrency"),
                      ratios(ce, k, "before", "raw", "concurrency"))
        abs_ = ratios(ce, "chunks_per_s", "after", "before", "concurrency")
        for conc in sorted(ab):
            f = "{:.3f}"
            print(f"| {conc} | {mm(ab.get(conc, []), f)} | {mm(ar.get(conc, []), f)} | {mm(br.get(conc, []), f)} | "
                  f"{mm(abs_.get(conc, []), f)} |")
    pa = load(f"{d}/paced.jsonl")
    if pa:
        n = pa[0].get("num_prompts")
        print(f"\n### Paced (`--preset default` simulator, {n:,} requests x 64-token prompts x 256 tokens, conc 256)\n")
        print("Whole-process client CPU (user+sys, from wait4).\n")
        print("| client | runs | CPU-s | user s | sys s | chunks/CPU-s | wall s | chunks counted |")
        print("|---|---|---|---|---|---|---|---|")
        f2 = "{:.2f}"
        for c in clients:
            rs = [r for r in pa if r["client"] == c]
            if not rs:
                continue
            print(f"| {c} | {len(rs)} | {mm([r['client_cpu_s'] for r in rs], f2)} | {mm([r['client_user_s'] for r in rs], f2)} | "
                  f"{mm([r['client_sys_s'] for r in rs], f2)} | {mm([r['chunks_per_client_cpu_s'] for r in rs])} | "
                  f"{mm([r['wall_s'] for r in rs], '{:.1f}')} | {mm([r['chunks'] for r in rs])} |")
        for r in pa:
            r["concurrency"] = r.get("concurrency", 256)
        k = "chunks_per_client_cpu_s"
        print("\n| ratio (chunks per client CPU-second, same round) | median (min–max) |\n|---|---|")
        for num, den in (("after", "before"), ("after", "raw"), ("before", "raw")):
            v = ratios(pa, k, num, den, "concurrency").get(256, [])
            print(f"| {num}/{den} | {mm(v, '{:.3f}')} |")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else ".")
