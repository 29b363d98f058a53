#!/usr/bin/env python3
"""Per-chunk costs from two cachegrind runs of one client that differ only in output length.

    python3 bench/cg_per_chunk.py LONG.out SHORT.out CHUNKS [TOP]

LONG.out and SHORT.out are `valgrind --tool=cachegrind --cache-sim=yes` outputs of the same run with long and
1-token outputs; CHUNKS is how many more chunks the long run read. Fixed costs (start, tokenizer, prompts,
connections) cancel in the difference. Prints instructions (Ir) and simulated L1-data misses (D1mr + D1mw) per
chunk, in all and for the TOP functions (by Ir, then by misses). Standard library only.
"""
import collections
import sys


def load(path):
    """Event counts per function; the totals line."""
    per_fn = collections.defaultdict(lambda: [0] * 9)
    fn = None
    for line in open(path):
        if line.startswith("fn="):
            fn = line[3:].strip()
            continue
        parts = line.split()
        if fn and parts and parts[0].isdigit():
            acc = per_fn[fn]
            for i, v in enumerate(parts[1:]):
                acc[i] += int(v)
    return per_fn


def main():
    long_out, short_out, chunks = sys.argv[1], sys.argv[2], float(sys.argv[3])
    top = int(sys.argv[4]) if len(sys.argv) > 4 else 15
    a, b = load(long_out), load(short_out)
    rows = []
    for name in set(a) | set(b):
        x, y = a.get(name, [0] * 9), b.get(name, [0] * 9)
        # Events: Ir I1mr ILmr Dr D1mr DLmr Dw D1mw DLmw
        ir = (x[0] - y[0]) / chunks
        d1 = (x[4] + x[7] - y[4] - y[7]) / chunks
        rows.append((ir, d1, name))
    print(f"per chunk: Ir {sum(r[0] for r in rows):.0f}, D1 misses {sum(r[1] for r in rows):.1f}")
    for title, key in (("by Ir", 0), ("by D1 misses", 1)):
        print(f"  top {top} {title}: Ir  D1-misses  function")
        for r in sorted(rows, key=lambda r: r[key], reverse=True)[:top]:
            print(f"    {r[0]:7.1f} {r[1]:6.2f}  {r[2][:110]}")


if __name__ == "__main__":
    main()
