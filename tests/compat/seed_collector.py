#!/usr/bin/env python3
"""The seed's collector, as issue 10 describes it: reads every sweep point file of a folder and writes
summary.csv with the seed's columns.

    python3 seed_collector.py RESULTS_DIR [OUT_CSV]        (default OUT_CSV: RESULTS_DIR/summary.csv)

A point file is `tp{P}_in{IN}_out{OUT}_ratio{R}.json`, where P is the prompt count, equal to the concurrency in
the seed's bash loop; it holds one JSON object (`json.load`). Group 1 of the name gives `prompt_num` and
`concurrency`, groups 2 and 3 the lengths; the other columns are keys of the object. Written from the
description for servebench's compatibility test; standard library only.
"""
import csv
import json
import os
import re
import sys

PATTERN = re.compile(r"tp(\d+)_in(\d+)_out(\d+)_ratio([\d.]+)\.json")

COLUMNS = [
    "prompt_num",
    "concurrency",
    "random_input_len",
    "random_output_len",
    "total_input_tokens",
    "total_output_tokens",
    "duration",
    "request_throughput",
    "mean_e2e_latency_ms",
    "median_e2e_latency_ms",
    "std_e2e_latency_ms",
    "p99_e2e_latency_ms",
    "mean_ttft_ms",
    "median_ttft_ms",
    "p99_ttft_ms",
    "mean_tpot_ms",
    "median_tpot_ms",
    "p99_tpot_ms",
    "mean_itl_ms",
    "median_itl_ms",
    "p99_itl_ms",
    "input_output_throughput(tok/s)",
    "input_throughput(tok/s)",
    "output_throughput(tok/s)",
]

# Columns read from the result object under another name.
RENAMED = {
    "input_throughput(tok/s)": "input_throughput",
    "output_throughput(tok/s)": "output_throughput",
}


def main():
    folder = sys.argv[1]
    out = sys.argv[2] if len(sys.argv) > 2 else os.path.join(folder, "summary.csv")
    rows = []
    for name in sorted(os.listdir(folder)):
        m = PATTERN.fullmatch(name)
        if not m:
            continue
        with open(os.path.join(folder, name)) as f:
            data = json.load(f)
        prompts = int(m.group(1))
        row = {
            "prompt_num": prompts,
            "concurrency": prompts,
            "random_input_len": int(m.group(2)),
            "random_output_len": int(m.group(3)),
        }
        for col in COLUMNS[4:]:
            row[col] = data.get(RENAMED.get(col, col))
        tin, tout = data.get("input_throughput"), data.get("output_throughput")
        row["input_output_throughput(tok/s)"] = (
            tin + tout if tin is not None and tout is not None else None
        )
        rows.append((prompts, int(m.group(2)), int(m.group(3)), float(m.group(4)), row))
    rows.sort(key=lambda r: r[:4])
    with open(out, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        for r in rows:
            w.writerow(r[4])
    print(f"{len(rows)} points -> {out}")


if __name__ == "__main__":
    main()
