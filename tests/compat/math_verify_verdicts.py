#!/usr/bin/env python3
"""Reference verdicts from Hugging Face `math-verify` for servebench's grading fixtures.

Reads the real MATH-500 answer pairs (tests/fixtures/grading/math500_*_answers.json) and the gold/prediction pairs of
servebench's own grader tests (tests/fixtures/grading/unit_pairs.jsonl), grades each pair with math-verify
(`verify(parse(gold), parse(prediction))`, the gold wrapped in `$…$` as math-verify's README shows, the prediction
parsed as the model wrote it, `\\boxed{…}` included) and writes:

  tests/fixtures/grading/math_verify_verdicts.jsonl   one line per pair: file, index, gold, pred, math_verify
  tests/fixtures/grading/math_verify_timing.json      seconds to grade the 1,000 real pairs (median of --runs runs)

Run it through tests/compat/math_verify.sh, which creates the virtual environment.
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from importlib.metadata import version

from math_verify import parse, verify

REAL_FILES = ["math500_gpt_answers.json", "math500_qwen3_answers.json"]
UNIT_FILE = "unit_pairs.jsonl"


def parse_gold(gold: str):
    parsed = parse("$" + gold + "$")
    if not parsed:
        parsed = parse("\\boxed{" + gold + "}")
    return parsed


def parse_pred(pred: str):
    # A bare expression (unit pairs) is given the same `$…$` wrapping as the gold; a response with \boxed stays as is.
    if "\\boxed" in pred or "\\fbox" in pred:
        return parse(pred)
    return parse("$" + pred + "$")


def grade(gold: str, pred: str) -> bool:
    try:
        return bool(verify(parse_gold(gold), parse_pred(pred)))
    except Exception:  # math-verify raises on some inputs; that is a "not equal" for our purposes
        return False


def load_pairs(fixtures: Path):
    pairs = []
    for name in REAL_FILES:
        with open(fixtures / name, encoding="utf-8") as f:
            for i, rec in enumerate(json.load(f)):
                pairs.append((name, i, rec["answer"], rec["prediction"]))
    unit = []
    with open(fixtures / UNIT_FILE, encoding="utf-8") as f:
        for i, line in enumerate(f):
            if line.strip():
                rec = json.loads(line)
                unit.append((UNIT_FILE, i, rec["gold"], rec["pred"]))
    return pairs, unit


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fixtures", type=Path, default=Path(__file__).resolve().parents[1] / "fixtures" / "grading")
    ap.add_argument("--runs", type=int, default=3, help="timed runs over the 1,000 real pairs (median reported)")
    args = ap.parse_args()

    real, unit = load_pairs(args.fixtures)
    out = args.fixtures / "math_verify_verdicts.jsonl"
    with open(out, "w", encoding="utf-8") as f:
        for name, i, gold, pred in real + unit:
            rec = {"file": name, "index": i, "gold": gold, "pred": pred, "math_verify": grade(gold, pred)}
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")

    times = []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        for _, _, gold, pred in real:
            grade(gold, pred)
        times.append(time.perf_counter() - t0)
    timing = {
        "tool": "math-verify",
        "version": version("math-verify"),
        "python": sys.version.split()[0],
        "pairs": len(real),
        "runs": args.runs,
        "seconds_median": round(statistics.median(times), 3),
        "seconds_all": [round(t, 3) for t in times],
    }
    with open(args.fixtures / "math_verify_timing.json", "w", encoding="utf-8") as f:
        json.dump(timing, f, indent=2)
        f.write("\n")
    print(f"wrote {out} ({len(real)} real + {len(unit)} unit pairs); median {timing['seconds_median']} s per 1,000 pairs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
