"""Comparison rules of the differential suite, and the deviation table they defer to (stdlib only).

- Every key of sglang's result line is compared with servebench's key of the same name.
- Timing keys (`*_ms`, `duration`, the throughputs, `concurrency`, `max_output_tokens_per_s`) agree when
  within 2 ms or 2 % (`*_ms`), or 2 % (the others; 2 ms of `duration`, in seconds, is also accepted).
- Everything else (counts, lengths, flags echoed back, `server_info`, `accept_length`) must be equal: numbers
  by value (5 == 5.0), but a number and a string never (sglang writes `Infinity`, a string "inf" differs).
- A difference on a key that the deviation table in docs/metrics.md lists (for this scenario, when the row
  names scenarios) is a documented deviation; any other difference fails the suite.
"""

import fnmatch
import json
import math
import re

DEVIATIONS_HEADING = "## Deviations from sglang.bench_serving 0.5.9"
MISSING = object()  # a key absent from servebench's line

# Timing keys that do not end in _ms.
RATE_KEYS = {
    "duration", "request_throughput", "input_throughput", "output_throughput", "total_throughput",
    "concurrency", "max_output_tokens_per_s",
}
MS_ABS_TOL = 2.0
REL_TOL = 0.02
DURATION_ABS_TOL_S = 0.002

# Pseudo-key for "one tool wrote no result line".
RESULT_LINE = "result_line"


def is_timing_key(key):
    return key.endswith("_ms") or key in RATE_KEYS


def _num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def values_equal(a, b):
    """Exact equality, numbers by value (NaN equals NaN), containers deeply."""
    if _num(a) and _num(b):
        if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
            return True
        return a == b
    if _num(a) or _num(b):
        return False
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(values_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(values_equal(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def timing_close(key, a, b):
    """a (sglang) and b (servebench) agree within the timing tolerance of `key`."""
    if not (_num(a) and _num(b)):
        return values_equal(a, b)
    if math.isnan(a) or math.isnan(b) or math.isinf(a) or math.isinf(b):
        return values_equal(a, b)
    diff = abs(a - b)
    if key.endswith("_ms"):
        return diff <= max(MS_ABS_TOL, REL_TOL * abs(a))
    if key == "duration":
        return diff <= max(DURATION_ABS_TOL_S, REL_TOL * abs(a))
    return diff <= REL_TOL * abs(a)


def key_agrees(key, a, b):
    if b is MISSING:
        return False
    return timing_close(key, a, b) if is_timing_key(key) else values_equal(a, b)


def compare_lines(sglang, servebench):
    """[(key, sglang value, servebench value or MISSING)] for every key of sglang's line that disagrees.

    Either line may be None (the tool wrote none): that is one difference on RESULT_LINE."""
    if sglang is None or servebench is None:
        if sglang is None and servebench is None:
            return []
        return [(RESULT_LINE, "written" if sglang is not None else "none",
                 "written" if servebench is not None else "none")]
    diffs = []
    for key, a in sglang.items():
        b = servebench.get(key, MISSING)
        if not key_agrees(key, a, b):
            diffs.append((key, a, b))
    return diffs


class Deviation:
    """One row of the deviation table: key patterns (globs), optional scenario patterns, the row's text."""

    def __init__(self, keys, scenarios, text, check=None):
        self.keys = keys
        self.scenarios = scenarios  # None: every scenario
        self.text = text
        self.check = check  # None, or the name of a check (truth.py) that must pass on the run

    def covers(self, key, scenario):
        if not any(fnmatch.fnmatchcase(key, k) for k in self.keys):
            return False
        return self.scenarios is None or any(fnmatch.fnmatchcase(scenario, s) for s in self.scenarios)


_KEY_RE = re.compile(r"^[A-Za-z0-9_*?\[\]]+$")
_SCEN_RE = re.compile(r"scenarios?\s*:\s*([A-Za-z0-9_.*?\-, ]+)", re.IGNORECASE)
_CHECK_RE = re.compile(r"\bcheck\s*:\s*([a-z][a-z0-9_-]*)")


def _cells(line):
    line = line.strip()
    if line.startswith("|"):
        line = line[1:]
    if line.endswith("|"):
        line = line[:-1]
    # A pipe inside backticks or escaped as \| is part of a cell.
    cells, cur, tick = [], "", False
    i = 0
    while i < len(line):
        c = line[i]
        if c == "\\" and i + 1 < len(line) and line[i + 1] == "|":
            cur += "|"
            i += 2
            continue
        if c == "`":
            tick = not tick
        if c == "|" and not tick:
            cells.append(cur.strip())
            cur = ""
        else:
            cur += c
        i += 1
    cells.append(cur.strip())
    return cells


def _scenario_list(text):
    return [s.strip() for s in text.split(",") if s.strip()]


def parse_deviations(markdown):
    """The rows of the table under DEVIATIONS_HEADING.

    Keys: every backticked word of the first column that looks like a result key (globs allowed, e.g.
    `*_itl_ms`). Scenarios: a column named `scenarios`, or a note `scenarios: a, b` in any cell (globs
    allowed); without either the row covers every scenario. Check: a note `check: NAME` in any cell (truth.py's
    checks); the row then documents a difference only on a run where that check passes. Raises ValueError when the heading is absent."""
    lines = markdown.splitlines()
    try:
        start = next(i for i, l in enumerate(lines) if l.strip() == DEVIATIONS_HEADING)
    except StopIteration:
        raise ValueError(f"docs/metrics.md has no '{DEVIATIONS_HEADING}' section") from None
    header, rows = None, []
    for line in lines[start + 1:]:
        if line.startswith("## "):
            break
        if not line.strip().startswith("|"):
            if header is not None and rows:
                break  # the first table only
            continue
        cells = _cells(line)
        if header is None:
            header = [c.lower() for c in cells]
            continue
        if all(re.fullmatch(r":?-+:?", c) for c in cells if c):
            continue
        rows.append(cells)
    out = []
    scen_col = header.index("scenarios") if header and "scenarios" in header else None
    for cells in rows:
        if not cells:
            continue
        keys = [k for k in re.findall(r"`([^`]+)`", cells[0]) if _KEY_RE.match(k)]
        if not keys:
            continue
        scenarios = None
        if scen_col is not None and scen_col < len(cells) and cells[scen_col].strip():
            scenarios = _scenario_list(cells[scen_col].replace("`", ""))
        else:
            for c in cells:
                m = _SCEN_RE.search(c.replace("`", ""))
                if m:
                    scenarios = _scenario_list(m.group(1))
                    break
        check = None
        for c in cells:
            m = _CHECK_RE.search(c.replace("`", ""))
            if m:
                check = m.group(1)
                break
        out.append(Deviation(keys, scenarios, " | ".join(cells), check))
    return out


def documented_by(deviations, key, scenario):
    """The first row covering this key in this scenario, or None."""
    return next((d for d in deviations if d.covers(key, scenario)), None)


def covering(deviations, key, scenario):
    """Every row covering this key in this scenario, in the table's order."""
    return [d for d in deviations if d.covers(key, scenario)]


def show(v, width=24):
    if v is MISSING:
        return "(missing)"
    if _num(v) and isinstance(v, float):
        s = f"{v:.4f}" if math.isfinite(v) else repr(v)
    elif isinstance(v, (dict, list, bool)) or v is None:
        s = json.dumps(v)
    else:
        s = repr(v) if isinstance(v, str) else str(v)
    return s if len(s) <= width else s[: width - 1] + "…"
