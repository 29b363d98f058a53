"""The scripted server's ground truth, and the checks a deviation row can ask for (stdlib only).

The server records, for every generation request, when its connection was accepted, when the request had been
read (`read_ms`) and when its first event was written (`first_event_ms`), in ms of CLOCK_MONOTONIC. sglang runs
through `sglang_launch.py`, which logs each request's own start (`st`, from `time.perf_counter()`, the same
clock), its TTFT and its prompt's digest, so each sglang request is matched to the server's record of it.

A deviation row in docs/metrics.md may name a check in any cell (`check: setup`): the difference is then
documented only when the check passes on that run. Checks:

- `setup` (for `*_ttft_ms`, `*_e2e_latency_ms`): servebench agrees with the server's truth (the statistic of
  first (last) event written - request read over the timed requests, within 2 ms or 2 %), and sglang agrees with
  it too once each request's own set-up (its `st` -> the server had read the request: connect, writing the
  request) is taken out (within 2 ms or 2 %). sglang's excess is then its per-request set-up, not the server
  and not servebench.
- `duration` (`duration`, throughputs, `concurrency`): see check_duration; `concurrency` (Σ E2E / duration) is
  compared with sglang's E2E less each request's measured set-up.
- `itl` (for `*_itl_ms`): servebench agrees with the server's truth (the statistic of the gaps between the
  written events that carry tokens, over the timed requests, within 2 ms or 2 %); sglang's line is the statistic
  of the ITLs it logged (sglang_launch.py), which are one per written event after the first; and its excess over
  the truth of its own run is no more than the spread of its read lags (each event's read time, `st` + TTFT + the
  ITLs so far, less the time the server wrote it), the last of which falls within its own E2E latency. sglang's
  ITL difference is then when its event loop got to the bytes, not the server and not servebench.
- `nan`: sglang wrote NaN where servebench wrote null.
"""

import math
import re

TOL_MS = 2.0


def mean(xs):
    return sum(xs) / len(xs)


def median(xs):
    return percentile(xs, 50)


def percentile(xs, q):
    """np.percentile's default (linear) rule."""
    s = sorted(xs)
    pos = (len(s) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def std(xs):
    m = mean(xs)
    return math.sqrt(sum((x - m) ** 2 for x in xs) / len(xs))


STATS = {"mean": mean, "median": median, "std": std, "p99": lambda xs: percentile(xs, 99),
         "p95": lambda xs: percentile(xs, 95), "p90": lambda xs: percentile(xs, 90)}


def timed_records(sc, stats, warmup=1):
    """The server's records of the timed requests that it served normally (after the warm-up; faulty ones out)."""
    recs = stats.get("requests", [])[warmup:]
    if sc.get("expect_faults"):
        recs = [r for r in recs if r["n"] % 2 == 1]
    return [r for r in recs if r.get("first_event_ms") is not None]


def server_ttfts(sc, stats):
    return [r["first_event_ms"] - r["read_ms"] for r in timed_records(sc, stats)]


def match_sglang(sc, stats, log):
    """[(log entry, server record)] for sglang's successful timed requests, matched by prompt digest in order."""
    recs = stats.get("requests", [])
    used = set()
    pairs = []
    for entry in log:
        for i, r in enumerate(recs):
            if i not in used and r["prompt_key"] is not None and r["prompt_key"] == entry["prompt_key"]:
                used.add(i)
                pairs.append((entry, r))
                break
    timed = {id(r) for r in timed_records(sc, stats)}
    return [(e, r) for e, r in pairs if id(r) in timed and e["success"]]


# What a latency key measures: (sglang's per-request value in its log, the server's event ending it).
LATENCIES = {"ttft_ms": ("ttft_ms", "first_event_ms"), "e2e_latency_ms": ("latency_ms", "last_event_ms")}


def check_setup(key, sc, res):
    """(ok, explanation) for a `*_ttft_ms` or `*_e2e_latency_ms` difference; see the module's doc."""
    m = re.fullmatch(r"([a-z0-9]+)_(ttft_ms|e2e_latency_ms)", key)
    if not m or m.group(1) not in STATS:
        return False, f"check setup: {key} is not a latency statistic it knows"
    stat = STATS[m.group(1)]
    own, event = LATENCIES[m.group(2)]
    sg_val, sb_val = res["lines"]["sglang"][key], res["lines"]["servebench"][key]
    sb_truth = [r[event] - r["read_ms"] for r in timed_records(sc, res["stats"]["servebench"])
                if r.get(event) is not None]
    pairs = [(e, r) for e, r in match_sglang(sc, res["stats"]["sglang"], res.get("sglang_log") or [])
             if r.get(event) is not None]
    if not sb_truth or not pairs:
        return False, "check setup: no timed request to compare with the server's record"
    sg_truth = stat([r[event] - r["read_ms"] for _, r in pairs])
    setups = [r["read_ms"] - e["start_ms"] for e, r in pairs]
    sg_own = stat([e[own] for e, _ in pairs])
    sg_wo_setup = stat([e[own] - (r["read_ms"] - e["start_ms"]) for e, r in pairs])
    sb_truth_v = stat(sb_truth)
    facts = (f"server {sb_truth_v:.2f} / {sg_truth:.2f} ms (servebench's / sglang's run); servebench "
             f"{sb_val:.2f}; sglang {sg_val:.2f}, its set-up {min(setups):.2f}-{max(setups):.2f} ms, "
             f"without it {sg_wo_setup:.2f}")
    if abs(sg_own - sg_val) > 0.01:
        return False, f"check setup: the launcher's log ({sg_own:.3f} ms) is not sglang's line; {facts}"
    if not _close(sb_truth_v, sb_val, TOL_MS):
        return False, f"check setup: servebench is off the server's truth; {facts}"
    if not _close(sg_truth, sg_wo_setup, TOL_MS):
        return False, f"check setup: sglang's excess is not its set-up; {facts}"
    return True, facts


def _gaps(events_ms):
    return [b - a for a, b in zip(events_ms, events_ms[1:])]


def sglang_read_lags(entry, record):
    """sglang's read time of each written event of one request less the server's write time (ms), or None when
    its ITLs are not one per written event after the first."""
    itls, written = entry.get("itl_ms") or [], record.get("events_ms") or []
    if len(written) != len(itls) + 1:
        return None
    reads = [entry["start_ms"] + entry["ttft_ms"]]
    for x in itls:
        reads.append(reads[-1] + x)
    return [r - w for r, w in zip(reads, written)]


def check_itl(key, sc, res):
    """(ok, explanation) for a `*_itl_ms` difference; see the module's doc."""
    m = re.fullmatch(r"([a-z0-9]+)_itl_ms", key)
    if not m or m.group(1) not in STATS:
        return False, f"check itl: {key} is not an ITL statistic it knows"
    stat = STATS[m.group(1)]
    sg_val, sb_val = res["lines"]["sglang"][key], res["lines"]["servebench"][key]
    sb_truth = [g for r in timed_records(sc, res["stats"]["servebench"]) for g in _gaps(r.get("events_ms") or [])]
    pairs = match_sglang(sc, res["stats"]["sglang"], res.get("sglang_log") or [])
    if not sb_truth or not pairs:
        return False, "check itl: no timed request with two events to compare with the server's record"
    lags = [sglang_read_lags(e, r) for e, r in pairs]
    if any(x is None for x in lags):
        return False, "check itl: sglang's ITLs are not one per written event after the first"
    flat = [x for ls in lags for x in ls]
    sg_truth = stat([g for _, r in pairs for g in _gaps(r["events_ms"])])
    sg_own = stat([x for e, _ in pairs for x in e["itl_ms"]])
    spread = max(flat) - min(flat)
    facts = (f"server {stat(sb_truth):.2f} / {sg_truth:.2f} ms (servebench's / sglang's run); servebench "
             f"{sb_val:.2f}; sglang {sg_val:.2f}, its reads {min(flat):.2f}-{max(flat):.2f} ms after the writes")
    if abs(sg_own - sg_val) > 0.01:
        return False, f"check itl: the launcher's log ({sg_own:.3f} ms) is not sglang's line; {facts}"
    if min(flat) < -0.1:
        return False, f"check itl: sglang read an event before the server wrote it (the match is wrong); {facts}"
    # The reads its ITLs imply end no later than its own end of the request (st + E2E latency).
    over = max(r["events_ms"][-1] + ls[-1] - (e["start_ms"] + e["latency_ms"]) for (e, r), ls in zip(pairs, lags))
    if over > 0.1:
        return False, f"check itl: sglang's ITLs put its last read {over:.2f} ms after its own E2E end; {facts}"
    if not _close(stat(sb_truth), sb_val, TOL_MS):
        return False, f"check itl: servebench is off the server's truth; {facts}"
    if abs(sg_val - sg_truth) > spread + 0.01:
        return False, f"check itl: sglang's excess is more than its read lags; {facts}"
    return True, facts


def check_nan(key, sc, res):
    """(ok, explanation): sglang wrote NaN where servebench wrote null (no successful request)."""
    a, b = res["lines"]["sglang"].get(key), res["lines"]["servebench"].get(key, 0)
    ok = isinstance(a, float) and math.isnan(a) and b is None
    return ok, f"check nan: sglang {a!r}, servebench {b!r}"


def _close(a, b, abs_tol, rel=0.02):
    return abs(a - b) <= max(abs_tol, rel * abs(a))


def check_duration(key, sc, res):
    """(ok, explanation) for `duration`, a throughput or `concurrency`: sglang's duration runs from before its
    first request to after its post-run `/get_server_info` call (the server saw when it answered that call),
    servebench's from its first request to its last completion (the server's first read -> last event); the
    other keys are the same totals over those durations."""
    sg, sb = res["lines"]["sglang"], res["lines"]["servebench"]
    timed = [e for e in (res.get("sglang_log") or [])[1:]]  # [0]: the warm-up, finished before the run
    if not timed:
        return False, "check duration: no sglang request log"
    first = min(e["start_ms"] for e in timed)
    # The first call after the run started is the one inside sglang's duration (it calls again for the result).
    calls = [c for c in res["stats"]["sglang"].get("info_calls", []) if c["read_ms"] > first][:1]
    sb_recs = res["stats"]["servebench"].get("requests", [])[1:]
    if not calls or not sb_recs or any(r.get("last_event_ms") is None for r in sb_recs):
        return False, "check duration: the server saw no post-run server-info call or no complete servebench run"
    last_end = max(e["start_ms"] + e["latency_ms"] for e in timed)
    sg_pred = (calls[-1]["answered_ms"] - first) / 1000.0
    sb_truth = (max(r["last_event_ms"] for r in sb_recs) - min(r["read_ms"] for r in sb_recs)) / 1000.0
    facts = (f"sglang {sg['duration']:.4f} s, to its server-info call {sg_pred:.4f} s ({calls[-1]['read_ms'] - last_end:.1f}"
             f" ms after its last completion); servebench {sb['duration']:.4f} s, server {sb_truth:.4f} s")
    if not _close(sg["duration"], sg_pred, 0.002):
        return False, f"check duration: sglang's duration does not end at its server-info call; {facts}"
    if not _close(sb["duration"], sb_truth, 0.002):
        return False, f"check duration: servebench's duration is not first send -> last completion; {facts}"
    if key != "duration":
        rescaled = sb[key] * sb["duration"] / sg["duration"]
        want = sg[key]
        if key == "concurrency":
            # Σ E2E / duration: sglang's E2E also holds each request's set-up (check setup), so compare with
            # its E2E less the measured set-up.
            pairs = match_sglang(sc, res["stats"]["sglang"], res.get("sglang_log") or [])
            if pairs and len(pairs) == sg.get("completed"):
                want = sum(e["latency_ms"] - (r["read_ms"] - e["start_ms"]) for e, r in pairs) / \
                    (sg["duration"] * 1000.0)
                facts += f"; sglang's concurrency without its set-up {want:.4f}"
        facts += f"; servebench's {key} over sglang's duration {rescaled:.4f}"
        if not _close(want, rescaled, 0.0):
            return False, f"check duration: {key} differs by more than the duration; {facts}"
    return True, facts


CHECKS = {"setup": check_setup, "duration": check_duration, "itl": check_itl, "nan": check_nan}


def run_check(name, key, sc, res):
    if name not in CHECKS:
        return False, f"the deviation row names an unknown check '{name}' (known: {', '.join(CHECKS)})"
    try:
        return CHECKS[name](key, sc, res)
    except (KeyError, TypeError, ValueError, ZeroDivisionError) as e:
        return False, f"check {name} could not run: {e!r}"


# ---- arrival times (--request-rate) -------------------------------------------------------------------------
ARRIVAL_KEY = "(arrival offsets)"  # pseudo-key of the check's difference
ARRIVAL_TOL_MS = 3.0  # servebench's sends against the schedule the seed gives (tokio timers have 1 ms granularity)


def _arg(args, flag, conv):
    return conv(args[args.index(flag) + 1])


def ideal_offsets(args):
    """The send offsets (ms) sglang 0.5.9 draws for a `random` scenario's flags: np.random.seed(seed), the
    input then output lengths (randint), then one np.random.exponential(1/rate) gap after each request."""
    import numpy as np  # the venv's NumPy (sglang's own dependency)

    n = _arg(args, "--num-prompts", int)
    seed = _arg(args, "--seed", int)
    rate = _arg(args, "--request-rate", float)
    ratio = _arg(args, "--random-range-ratio", float)
    np.random.seed(seed)
    for flag in ("--random-input-len", "--random-output-len"):
        full = _arg(args, flag, int)
        np.random.randint(max(int(full * ratio), 1), full + 1, size=n)
    t, out = 0.0, []
    for _ in range(n):
        out.append(t * 1000.0)
        t += np.random.exponential(1.0 / rate)
    return out


def arrival_offsets(stats, warmup=1):
    """When the server had read each timed request, in ms after the first one."""
    reads = [r["read_ms"] for r in stats.get("requests", [])[warmup:]]
    return [x - reads[0] for x in reads] if reads else []


def check_arrivals(sc, res):
    """(ok, explanation): servebench's requests reached the server at the offsets sglang's seed gives, within
    ARRIVAL_TOL_MS each; sglang's own lateness against the same schedule is reported (its relative asyncio
    sleeps drift)."""
    ideal = ideal_offsets(sc["args"])
    got = {t: arrival_offsets(res["stats"][t]) for t in ("sglang", "servebench")}
    if any(len(v) != len(ideal) for v in got.values()):
        return False, f"arrivals: expected {len(ideal)} timed requests, the server saw " + \
            ", ".join(f"{t} {len(v)}" for t, v in got.items())
    late = {t: [g - i for g, i in zip(v, ideal)] for t, v in got.items()}
    facts = (f"schedule {ideal[-1]:.1f} ms over {len(ideal)} requests; servebench off by "
             f"{min(late['servebench']):+.2f}..{max(late['servebench']):+.2f} ms, sglang by "
             f"{min(late['sglang']):+.2f}..{max(late['sglang']):+.2f} ms")
    ok = all(abs(x) <= ARRIVAL_TOL_MS for x in late["servebench"])
    return ok, facts
