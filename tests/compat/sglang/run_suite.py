"""Runs the differential suite: for each scenario, the real `python -m sglang.bench_serving` (0.5.9) and
`servebench bench`, with the same flags, each against a fresh scripted server; compares the result lines.

Usage (normally through tests/compat/sglang/run.sh, which prepares the venv and builds servebench):
  python run_suite.py --python VENV/bin/python --servebench target/debug/servebench --tokenizer DIR
                      [--only GLOB]... [--out DIR] [--list]
Exit status: 0 when every difference is documented in docs/metrics.md's deviation table, 1 otherwise.
"""

import argparse
import fnmatch
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
sys.path.insert(0, str(HERE))

import compare  # noqa: E402
import server  # noqa: E402
import truth  # noqa: E402
from scenarios import SCENARIOS  # noqa: E402

TOOL_TIMEOUT_S = 120
# The scripted server promises event times; when it sent an event later than this, the run's timings are
# not the scenario's, and a run whose undocumented differences are all timing keys is repeated (a difference
# in a count or a length never is).
SERVER_LATE_MS = 1.0
ATTEMPTS = 3
TOOL_NICE = -15  # sglang while it imports
TOOL_RT = 10  # real-time priority of both tools' timed parts (the server: 20)
DROP_ENV = {"OPENAI_API_KEY", "API_KEY", "SGLANG_IS_IN_CI", "SGLANG_USE_MODELSCOPE", "HF_TOKEN",
            "http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"}


def tool_env():
    env = {k: v for k, v in os.environ.items() if k not in DROP_ENV}
    env.update({
        "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost",
        "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1",
        "TOKENIZERS_PARALLELISM": "false", "TRANSFORMERS_VERBOSITY": "error", "PYTHONUNBUFFERED": "1",
    })
    return env


class ScriptedServer:
    def __init__(self, python, opts, log_path):
        self.log = open(log_path, "w")
        self.proc = subprocess.Popen([python, str(HERE / "server.py"), json.dumps(opts)], stdout=subprocess.PIPE,
                                     stderr=self.log, cwd=REPO, env=tool_env(), start_new_session=True, text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("PORT "):
            self.stop()
            raise RuntimeError(f"scripted server did not start (see {log_path})")
        self.url = f"http://127.0.0.1:{int(line.split()[1])}"

    def stats(self):
        with urllib.request.urlopen(self.url + "/compat_stats", timeout=10) as r:
            return json.loads(r.read())

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def tool_priority():
    """Both tools' timed parts run at the same real-time priority where allowed (root; server.realtime), so that
    other work on a busy machine (compilers) does not delay their timers and reads; the scripted server runs
    higher still. servebench from its start (it starts in milliseconds); sglang from after its imports
    (sglang_launch.py raises itself, so its seconds of imports do not hold a core)."""
    try:
        os.nice(TOOL_NICE)
    except OSError:
        pass


def run_tool(cmd, out_file, log_path):
    """Runs one tool; returns (its last result line or None, exit status or 'timeout', seconds)."""
    if out_file.exists():
        out_file.unlink()
    t = time.monotonic()
    with open(log_path, "w") as log:
        log.write("$ " + " ".join(cmd) + "\n")
        log.flush()
        launched = any(str(c).endswith("sglang_launch.py") for c in cmd)
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=REPO, env=tool_env(),
                                start_new_session=True,
                                preexec_fn=tool_priority if launched else lambda: server.realtime(TOOL_RT))
        try:
            status = proc.wait(TOOL_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            status = "timeout"
    secs = time.monotonic() - t
    line = None
    if out_file.exists():
        lines = [l for l in out_file.read_text().splitlines() if l.strip()]
        if lines:
            line = json.loads(lines[-1])  # Python's json reads sglang's NaN/Infinity
    return line, status, secs


def tool_cmds(sc, url, opts, out_dir):
    common = ["--backend", sc["backend"], *sc["args"], "--base-url", url, "--model", opts.tokenizer,
              "--tokenizer", opts.tokenizer, "--disable-tqdm"]
    # sglang runs unmodified through a launcher that logs each request's own start time (sglang_launch.py).
    def sglang(log):
        return [opts.python, str(HERE / "sglang_launch.py"), str(out_dir / log), *common]
    other = sglang("servebench-starts.json") if opts.self_check else [opts.servebench, "bench", *common]
    return {
        "sglang": [*sglang("sglang-starts.json"), "--output-file", str(out_dir / "sglang.jsonl")],
        "servebench": [*other, *(opts.servebench_arg if not opts.self_check else []),
                       "--output-file", str(out_dir / "servebench.jsonl")],
    }


def run_scenario(sc, opts, out_root):
    """One attempt: both tools, each against a fresh server. Returns a dict describing what happened."""
    out_dir = out_root / sc["name"]
    out_dir.mkdir(parents=True, exist_ok=True)
    res = {"lines": {}, "status": {}, "secs": {}, "stats": {}, "errors": []}
    for tool in ("sglang", "servebench"):
        server = ScriptedServer(opts.python, sc["server"], out_dir / f"server-{tool}.log")
        try:
            cmd = tool_cmds(sc, server.url, opts, out_dir)[tool]
            line, status, secs = run_tool(cmd, out_dir / f"{tool}.jsonl", out_dir / f"{tool}.log")
            res["lines"][tool], res["status"][tool], res["secs"][tool] = line, status, secs
            try:
                res["stats"][tool] = server.stats()
            except OSError as e:
                res["stats"][tool] = {"gen_requests": -1, "faults": 0, "max_late_ms": 0.0}
                res["errors"].append(f"the scripted server did not answer after {tool} ran: {e}")
        finally:
            server.stop()
    starts = out_dir / "sglang-starts.json"
    res["sglang_log"] = json.loads(starts.read_text()) if starts.exists() else None
    for tool, st in res["stats"].items():
        if sc.get("expect_faults") and st["faults"] == 0:
            res["errors"].append(f"the server applied no fault while {tool} ran: the scenario tests nothing")
    return res


def late(res):
    return max(st["max_late_ms"] for st in res["stats"].values())


def judge(sc, res, deviations):
    """[(key, sglang, servebench, row or None, note)] for every difference. A row that names a check documents
    the difference only when the check passes on this run; the note says what the check found."""
    diffs = compare.compare_lines(res["lines"].get("sglang"), res["lines"].get("servebench"))
    out = []
    for k, a, b in diffs:
        # The first covering row without a check, or whose check holds on this run.
        # The note: the passing check's finding, or (undocumented) why each check failed.
        row, notes = None, []
        for cand in compare.covering(deviations, k, sc["name"]):
            if not cand.check:
                row, notes = cand, []
                break
            ok, note = truth.run_check(cand.check, k, sc, res)
            if ok:
                row, notes = cand, [note]
                break
            notes.append(note)
        out.append((k, a, b, row, "; ".join(notes)))
    if sc.get("check_arrivals") and all(res["lines"].get(t) is not None for t in ("sglang", "servebench")):
        ok, note = truth.check_arrivals(sc, res)
        print(f"   ({sc['name']}: {note})")
        if not ok:
            out.append((truth.ARRIVAL_KEY, "schedule", "off", None, note))
    return out


def run_with_retries(sc, opts, out_root, deviations):
    """Runs a scenario; again (up to ATTEMPTS) while its undocumented differences are all timing keys and the
    scripted server itself was late. Returns (result, differences, attempts)."""
    for attempt in range(1, ATTEMPTS + 1):
        res = run_scenario(sc, opts, out_root)
        diffs = judge(sc, res, deviations)
        undoc = [k for k, _, _, row, _ in diffs if row is None]
        timing_only = undoc and all(compare.is_timing_key(k) or k == truth.ARRIVAL_KEY for k in undoc)
        if not (timing_only and late(res) > SERVER_LATE_MS and attempt < ATTEMPTS):
            return res, diffs, attempt
        print(f"   ({sc['name']}: the server sent an event {late(res):.1f} ms late; timing differences "
              f"are not the tools'; attempt {attempt + 1})")
    raise AssertionError("unreachable")


def print_scenario(sc, res, diffs, attempt, out_root):
    st, status, secs = res["stats"], res["status"], res["secs"]
    print(f"\n== {sc['name']} ({sc['backend']}): {sc['what']}")
    print(f"   exit: sglang {status['sglang']} ({secs['sglang']:.1f} s), servebench {status['servebench']} "
          f"({secs['servebench']:.1f} s); server saw {st['sglang']['gen_requests']} / "
          f"{st['servebench']['gen_requests']} generation requests, faults {st['sglang']['faults']} / "
          f"{st['servebench']['faults']}, latest event {late(res):.1f} ms late; attempt {attempt}")
    for e in res["errors"]:
        print(f"   ERROR: {e}")
    for tool in ("sglang", "servebench"):
        if res["lines"].get(tool) is None:
            log = (out_root / sc["name"] / f"{tool}.log").read_text(errors="replace").strip().splitlines()
            print(f"   {tool} wrote no result line; its log ends:")
            for line in log[-3:]:
                print(f"     | {line[:200]}")
    if diffs:
        rows = [(k, compare.show(a), compare.show(b), "documented" if row else "DIFFERS (undocumented)")
                for k, a, b, row, _ in diffs]
        print_table(rows, ("key", "sglang 0.5.9", "servebench", "verdict"))
        for k, _, _, row, note in diffs:
            if note:
                print(f"   {k}: {note}")
    else:
        print(f"   all {len(res['lines']['sglang'])} keys agree")


def write_comparison(path, sc, res, diffs, attempt):
    with open(path, "w") as f:
        json.dump({"scenario": sc["name"], "attempts": attempt, "stats": res["stats"], "status": res["status"],
                   "errors": res["errors"],
                   "differences": [{"key": k, "sglang": repr(a), "servebench": repr(b),
                                    "documented": row.text if row else None, "check": note}
                                   for k, a, b, row, note in diffs]},
                  f, indent=1)


def print_table(rows, head):
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    print("  " + fmt.format(*head))
    for r in rows:
        print("  " + fmt.format(*r))


def write_markdown(path, diffs):
    """Every difference of the run as one Markdown table (for reports and reviews)."""
    with open(path, "w") as f:
        f.write("| scenario | key | sglang 0.5.9 | servebench | verdict |\n|---|---|---|---|---|\n")
        for name, key, a, b, row, _ in diffs:
            cells = [name, key, compare.show(a, 60), compare.show(b, 60), "documented" if row else "DIFFERS"]
            f.write("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--python", default=sys.executable, help="the venv's python (with sglang 0.5.9)")
    ap.add_argument("--servebench", default=str(REPO / "target/debug/servebench"))
    ap.add_argument("--tokenizer", help="tokenizer folder given to both tools as --model and --tokenizer")
    ap.add_argument("--only", action="append", default=[], help="scenario name glob (repeatable)")
    ap.add_argument("--out", default=str(REPO / "tests/compat/.out/sglang"))
    ap.add_argument("--metrics-doc", default=str(REPO / "docs/metrics.md"))
    ap.add_argument("--list", action="store_true", help="list the scenarios and exit")
    ap.add_argument("--servebench-arg", action="append", default=[],
                    help="one more flag for servebench in every scenario (repeatable; e.g. "
                         "--servebench-arg=--connection-per-request)")
    ap.add_argument("--self-check", action="store_true",
                    help="run sglang in servebench's place: what differs then is the machine's noise (a control)")
    opts = ap.parse_args()

    chosen = [s for s in SCENARIOS if not opts.only or any(fnmatch.fnmatchcase(s["name"], g) for g in opts.only)]
    if opts.list:
        for s in SCENARIOS:
            print(f"{s['name']:<28} {s['backend']:<16} {s['what']}")
        return 0
    if not chosen:
        print(f"no scenario matches {opts.only}; --list shows them", file=sys.stderr)
        return 2
    if not opts.tokenizer:
        ap.error("--tokenizer is required")
    deviations = compare.parse_deviations(Path(opts.metrics_doc).read_text())
    out_root = Path(opts.out)
    out_root.mkdir(parents=True, exist_ok=True)

    t0 = time.monotonic()
    summary, all_diffs, failed = [], [], False
    for sc in chosen:
        ts = time.monotonic()
        res, diffs, attempt = run_with_retries(sc, opts, out_root, deviations)
        print_scenario(sc, res, diffs, attempt, out_root)
        undocumented = sum(1 for d in diffs if d[3] is None)
        bad = bool(undocumented or res["errors"])
        failed |= bad
        both = all(res["lines"].get(t) is not None for t in ("sglang", "servebench"))
        equal = len(res["lines"]["sglang"]) - len(diffs) if both else 0
        all_diffs += [(sc["name"], k, a, b, row, note) for k, a, b, row, note in diffs]
        all_diffs += [(sc["name"], "(harness)", e, "", None, "") for e in res["errors"]]
        summary.append((sc["name"], equal, len(diffs) - undocumented, undocumented,
                        "ERROR" if res["errors"] else ("FAIL" if bad else "ok"),
                        f"{time.monotonic() - ts:.0f}"))
        write_comparison(out_root / sc["name"] / "comparison.json", sc, res, diffs, attempt)
    write_markdown(out_root / "differences.md", all_diffs)
    print(f"\n== summary ({len(chosen)} scenarios, {time.monotonic() - t0:.0f} s; outputs in {out_root})")
    print_table(summary, ("scenario", "equal", "documented", "undocumented", "verdict", "s"))
    if failed:
        print("\nFAILED: differences above are not in the deviation table of docs/metrics.md "
              f"('{compare.DEVIATIONS_HEADING}'); fix servebench or document them there.")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
