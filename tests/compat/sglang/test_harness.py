"""The harness's own tests: comparison rules, the deviation table parser, and the scripted server's bytes.

Run: python tests/compat/sglang/test_harness.py   (stdlib only; run.sh runs it before the scenarios)
"""

import json
import math
import socket
import subprocess
import sys
import time
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import compare  # noqa: E402
import server  # noqa: E402
import truth  # noqa: E402
from scenarios import SCENARIOS  # noqa: E402

TABLE = """# Metrics

## Deviations from sglang.bench_serving 0.5.9

Intro text.

| key or behaviour | servebench | sglang 0.5.9 | why | flag |
|---|---|---|---|---|
| `request_rate` (infinite rate) | `"inf"` | `Infinity` | strict JSON | — |
| `*_ttft_ms`, `*_e2e_latency_ms` | warm connections | a connection per request | reuse | `--connection-per-request` |
| `completed` | 4 | 2 | BOM stripped as the SSE spec says (scenarios: bom, crlf) | — |
| SSE BOM handling | stripped | request fails | spec | — |
| `a\\|b` pipe | x | y | z | — |
| `mean_ttft_ms` (check: setup) | warm | per request | set-up | — |

## Next section

| `completed` | not part of the table |
"""


class Rules(unittest.TestCase):
    def test_timing_tolerance(self):
        self.assertTrue(compare.key_agrees("mean_ttft_ms", 100.0, 101.9))
        self.assertFalse(compare.key_agrees("mean_ttft_ms", 100.0, 102.1))
        self.assertTrue(compare.key_agrees("mean_e2e_latency_ms", 500.0, 509.9))  # 2 % of 500
        self.assertFalse(compare.key_agrees("mean_e2e_latency_ms", 500.0, 510.1))
        self.assertTrue(compare.key_agrees("duration", 1.0, 1.019))
        self.assertFalse(compare.key_agrees("duration", 1.0, 1.021))
        self.assertTrue(compare.key_agrees("duration", 0.05, 0.0519))  # 2 ms
        self.assertTrue(compare.key_agrees("request_throughput", 8.0, 8.15))
        self.assertFalse(compare.key_agrees("request_throughput", 8.0, 8.17))
        self.assertTrue(compare.key_agrees("std_itl_ms", 0.3, 1.9))

    def test_exact_keys(self):
        self.assertTrue(compare.key_agrees("completed", 4, 4.0))
        self.assertFalse(compare.key_agrees("completed", 4, 3))
        self.assertFalse(compare.key_agrees("total_output_tokens", 20, 21))
        self.assertFalse(compare.key_agrees("request_rate", math.inf, "inf"))
        self.assertTrue(compare.key_agrees("request_rate", math.inf, math.inf))
        self.assertFalse(compare.key_agrees("tag", None, compare.MISSING))
        self.assertTrue(compare.key_agrees("tag", None, None))
        self.assertFalse(compare.key_agrees("accept_length", 4.0, 1.0))
        self.assertFalse(compare.key_agrees("accept_length", None, 1.0))
        self.assertFalse(compare.key_agrees("random_range_ratio", 1.0, True))
        self.assertTrue(compare.key_agrees("server_info", {"a": [1, 2.0]}, {"a": [1.0, 2]}))
        self.assertFalse(compare.key_agrees("server_info", {"a": [1]}, {"a": [1], "b": 0}))

    def test_nan(self):
        nan = float("nan")
        self.assertTrue(compare.key_agrees("mean_ttft_ms", nan, nan))
        self.assertFalse(compare.key_agrees("mean_ttft_ms", nan, None))
        self.assertFalse(compare.key_agrees("mean_ttft_ms", nan, 0.0))

    def test_compare_lines(self):
        a = {"completed": 4, "mean_ttft_ms": 100.0, "tag": None}
        b = {"completed": 4, "mean_ttft_ms": 103.0, "extra": 1}
        diffs = compare.compare_lines(a, b)
        self.assertEqual([d[0] for d in diffs], ["mean_ttft_ms", "tag"])
        self.assertIs(diffs[1][2], compare.MISSING)
        self.assertEqual(compare.compare_lines(None, b), [("result_line", "none", "written")])
        self.assertEqual(compare.compare_lines(None, None), [])


class Table(unittest.TestCase):
    def setUp(self):
        self.rows = compare.parse_deviations(TABLE)

    def test_rows_and_keys(self):
        self.assertEqual([r.keys for r in self.rows],
                         [["request_rate"], ["*_ttft_ms", "*_e2e_latency_ms"], ["completed"], ["mean_ttft_ms"]])
        self.assertEqual([r.check for r in self.rows], [None, None, None, "setup"])

    def test_globs_and_scenarios(self):
        d = compare.documented_by
        self.assertIsNotNone(d(self.rows, "request_rate", "plain"))
        self.assertIsNotNone(d(self.rows, "p99_ttft_ms", "stall"))
        self.assertIsNone(d(self.rows, "mean_itl_ms", "plain"))
        self.assertIsNotNone(d(self.rows, "completed", "bom"))
        self.assertIsNone(d(self.rows, "completed", "dropped"))  # the row names its scenarios

    def test_scenarios_column(self):
        md = ("## Deviations from sglang.bench_serving 0.5.9\n| key or behaviour | servebench | sglang 0.5.9 | why | "
              "flag | scenarios |\n|-|-|-|-|-|-|\n| `completed` | a | b | c | d | `random-*` |\n| `failed` | a | b | c "
              "| d | |\n")
        rows = compare.parse_deviations(md)
        self.assertIsNotNone(compare.documented_by(rows, "completed", "random-1024-1024-r0.5-s0"))
        self.assertIsNone(compare.documented_by(rows, "completed", "plain"))
        self.assertIsNotNone(compare.documented_by(rows, "failed", "plain"))

    def test_empty_table_and_missing_heading(self):
        md = ("## Deviations from sglang.bench_serving 0.5.9\n\n| key or behaviour | servebench | sglang 0.5.9 | why "
              "| flag |\n|---|---|---|---|---|\n")
        self.assertEqual(compare.parse_deviations(md), [])
        with self.assertRaises(ValueError):
            compare.parse_deviations("# nothing here\n")

    def test_repository_doc_parses(self):
        compare.parse_deviations((HERE.parents[2] / "docs/metrics.md").read_text())


class ScenarioList(unittest.TestCase):
    def test_names_unique_and_options_known(self):
        names = [s["name"] for s in SCENARIOS]
        self.assertEqual(len(names), len(set(names)))
        for s in SCENARIOS:
            self.assertFalse(set(s["server"]) - set(server.DEFAULTS), s["name"])

    def test_split(self):
        self.assertEqual(server.split(5, 5), [1, 1, 1, 1, 1])
        self.assertEqual(server.split(20, 5), [4, 4, 4, 4, 4])
        self.assertEqual(server.split(7, 5), [2, 2, 1, 1, 1])
        self.assertEqual(server.split(3, 5), [1, 1, 1])
        self.assertEqual(sum(server.split(1499, 5)), 1499)


class ScriptedServer(unittest.TestCase):
    """Bytes on the wire for a few scenarios, over a raw socket."""

    def start(self, opts):
        proc = subprocess.Popen([sys.executable, str(HERE / "server.py"), json.dumps(opts)],
                                stdout=subprocess.PIPE, text=True)
        self.addCleanup(proc.stdout.close)
        self.addCleanup(proc.wait)
        self.addCleanup(proc.terminate)
        port = int(proc.stdout.readline().split()[1])
        return port

    def post(self, port, path, body):
        data = json.dumps(body).encode()
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                  b"Connection: close\r\n\r\n%s" % (path.encode(), len(data), data))
        t0 = time.monotonic()
        out = b""
        while True:
            b = s.recv(65536)
            if not b:
                break
            out += b
        s.close()
        return out, time.monotonic() - t0

    @staticmethod
    def body(raw):
        head, _, rest = raw.partition(b"\r\n\r\n")
        out = b""
        while rest:
            size_line, _, rest = rest.partition(b"\r\n")
            n = int(size_line, 16)
            if n == 0:
                break
            out += rest[:n]
            rest = rest[n + 2:]
        return head, out.decode()

    def test_plain_completions_with_usage(self):
        port = self.start({"ttft_ms": 10, "gap_ms": 10})
        raw, secs = self.post(port, "/v1/completions", {"prompt": "x", "max_tokens": 5, "stream": True,
                                                         "stream_options": {"include_usage": True}})
        head, body = self.body(raw)
        self.assertIn(b"text/event-stream", head)
        events = body.split("\n\n")
        self.assertEqual(events[-1], "")
        self.assertEqual(events[-2], "data: [DONE]")
        texts = [json.loads(e[6:])["choices"][0]["text"] for e in events[:5]]
        self.assertEqual(texts, [" hello"] * 5)
        usage = json.loads(events[5][6:])
        self.assertEqual((usage["choices"], usage["usage"]["completion_tokens"]), ([], 5))
        self.assertGreaterEqual(secs, 0.05)

    def test_line_ends_bom_and_faults(self):
        port = self.start({"ttft_ms": 1, "gap_ms": 1, "line_end": "\n", "bom": "even", "done": False})
        req = {"text": "x", "sampling_params": {"max_new_tokens": 20}, "stream": True}
        _, first = self.body(self.post(port, "/generate", req)[0])
        _, second = self.body(self.post(port, "/generate", req)[0])
        self.assertFalse(first.startswith("\ufeff"))
        self.assertTrue(second.startswith("\ufeffdata: "))
        lines = first.split("\n")
        self.assertEqual(len(lines), 6)  # 5 events, each ended by one \n, no [DONE]
        last = json.loads(lines[4][6:])
        self.assertEqual(last["meta_info"]["completion_tokens"], 20)
        self.assertEqual(last["text"], " hello" * 20)

    def test_drop_every_other_request(self):
        port = self.start({"fault": "drop"})
        ok, _ = self.post(port, "/v1/completions", {"prompt": "x", "max_tokens": 1, "stream": True})
        dropped, secs = self.post(port, "/v1/completions", {"prompt": "x", "max_tokens": 1, "stream": True})
        self.assertTrue(ok.startswith(b"HTTP/1.1 200"))
        self.assertEqual(dropped, b"")
        self.assertGreaterEqual(secs, 0.29)

    def test_json_answer(self):
        port = self.start({"ttft_ms": 1, "json_answer": True})
        raw, _ = self.post(port, "/v1/completions", {"prompt": "x", "max_tokens": 3, "stream": True})
        head, _, body = raw.partition(b"\r\n\r\n")
        self.assertIn(b"application/json", head)
        self.assertEqual(json.loads(body)["choices"][0]["text"], " hello" * 3)

    def test_reasoning_and_accept_length(self):
        port = self.start({"ttft_ms": 1, "gap_ms": 1, "events": 3, "reasoning_events": 1, "accept": "pd"})
        _, body = self.body(self.post(port, "/v1/chat/completions",
                                      {"messages": [], "max_completion_tokens": 6, "stream": True})[0])
        deltas = [json.loads(e[6:])["choices"][0]["delta"] for e in body.split("\n\n")[:3]]
        self.assertEqual(deltas[0]["reasoning_content"], " hello hello")
        self.assertIsNone(deltas[0]["content"])
        self.assertEqual(deltas[1]["content"], " hello hello")
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"GET /get_server_info HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        raw = b""
        while chunk := s.recv(65536):
            raw += chunk
        s.close()
        info = json.loads(raw.partition(b"\r\n\r\n")[2])
        self.assertEqual(info["decode"][0]["internal_states"][0]["avg_spec_accept_length"], 2.0)


class Truth(unittest.TestCase):
    """The ground-truth checks on made-up runs (one warm-up, then timed requests)."""

    @staticmethod
    def run_of(sg_ttfts, sg_setups, sb_ttft, server_ttft=100.0):
        def recs(k):
            return [{"n": i + 1, "read_ms": 1000.0 * i + 50.0, "first_event_ms": 1000.0 * i + 50.0 + server_ttft,
                     "prompt_key": f"{k}{i}"} for i in range(len(sg_ttfts) + 1)]
        sg_recs = recs("p")
        log = [{"start_ms": r["read_ms"] - setup, "ttft_ms": t, "latency_ms": 500.0, "success": True,
                "prompt_key": r["prompt_key"]} for r, t, setup in zip(sg_recs, [50.0, *sg_ttfts], [1.0, *sg_setups])]
        return {"lines": {"sglang": {"mean_ttft_ms": truth.mean(sg_ttfts)},
                          "servebench": {"mean_ttft_ms": sb_ttft}},
                "stats": {"sglang": {"requests": sg_recs}, "servebench": {"requests": recs("q")}},
                "sglang_log": log}

    def test_statistics_follow_numpy(self):
        xs = [4.0, 1.0, 3.0, 2.0]
        self.assertEqual(truth.median(xs), 2.5)
        self.assertAlmostEqual(truth.percentile(xs, 99), 3.97)
        self.assertAlmostEqual(truth.std(xs), math.sqrt(1.25))

    def test_setup_explains_the_excess(self):
        res = self.run_of([104.0, 104.5, 103.8], [3.6, 4.1, 3.5], sb_ttft=100.4)
        ok, why = truth.check_setup("mean_ttft_ms", {"name": "plain"}, res)
        self.assertTrue(ok, why)

    def test_excess_beyond_the_setup_fails(self):
        # sglang 10 ms above the server with a 1 ms set-up: not its set-up.
        res = self.run_of([110.0, 110.0, 110.0], [1.0, 1.0, 1.0], sb_ttft=100.4)
        ok, why = truth.check_setup("mean_ttft_ms", {"name": "plain"}, res)
        self.assertFalse(ok)
        self.assertIn("not its set-up", why)

    def test_servebench_off_the_truth_fails(self):
        res = self.run_of([104.0, 104.0], [4.0, 4.0], sb_ttft=97.0)
        ok, why = truth.check_setup("mean_ttft_ms", {"name": "plain"}, res)
        self.assertFalse(ok)
        self.assertIn("servebench is off", why)

    @staticmethod
    def itl_run(sg_lags, sb_itl, gap=100.0, events=5):
        """Two timed requests (after a warm-up) whose events the server wrote `gap` ms apart; sglang read the
        i-th event of every request `sg_lags[i]` ms after it was written."""
        def recs(k):
            return [{"n": i + 1, "read_ms": 1000.0 * i, "first_event_ms": 1000.0 * i + 100.0, "prompt_key": f"{k}{i}",
                     "events_ms": [1000.0 * i + 100.0 + gap * j for j in range(events)]} for i in range(3)]
        sg_recs = recs("p")
        log = []
        for r in sg_recs:
            reads = [w + lag for w, lag in zip(r["events_ms"], sg_lags)]
            log.append({"start_ms": r["read_ms"] - 2.0, "ttft_ms": reads[0] - r["read_ms"] + 2.0,
                        "latency_ms": reads[-1] - r["read_ms"] + 2.5,
                        "success": True, "prompt_key": r["prompt_key"],
                        "itl_ms": [b - a for a, b in zip(reads, reads[1:])]})
        sg_itls = [x for e in log[1:] for x in e["itl_ms"]]
        return {"lines": {"sglang": {"p99_itl_ms": truth.percentile(sg_itls, 99), "mean_itl_ms": truth.mean(sg_itls)},
                          "servebench": {"p99_itl_ms": sb_itl, "mean_itl_ms": sb_itl}},
                "stats": {"sglang": {"requests": sg_recs}, "servebench": {"requests": recs("q")}},
                "sglang_log": log}

    def test_itl_read_lag_explains_the_excess(self):
        res = self.itl_run([0.2, 0.3, 3.6, 0.2, 0.3], sb_itl=100.4)
        ok, why = truth.check_itl("p99_itl_ms", {"name": "plain"}, res)
        self.assertTrue(ok, why)
        self.assertIn("its reads 0.20-3.60 ms after the writes", why)

    def test_itl_servebench_off_the_truth_fails(self):
        res = self.itl_run([0.2, 0.3, 3.6, 0.2, 0.3], sb_itl=103.4)
        ok, why = truth.check_itl("p99_itl_ms", {"name": "plain"}, res)
        self.assertFalse(ok)
        self.assertIn("servebench is off", why)

    def test_itl_excess_beyond_the_read_lags_fails(self):
        res = self.itl_run([0.2, 0.3, 0.4, 0.2, 0.3], sb_itl=100.0)
        res["lines"]["sglang"]["mean_itl_ms"] = 104.0  # not what its logged ITLs give
        ok, why = truth.check_itl("mean_itl_ms", {"name": "plain"}, res)
        self.assertFalse(ok)
        self.assertIn("not sglang's line", why)
        res = self.itl_run([0.2, 0.3, 0.4, 0.2, 0.3], sb_itl=100.0)
        for e in res["sglang_log"]:
            e["itl_ms"] = [x + 4.0 for x in e["itl_ms"]]  # 4 ms over on every gap: past its own E2E end
        res["lines"]["sglang"]["mean_itl_ms"] = truth.mean([x for e in res["sglang_log"][1:] for x in e["itl_ms"]])
        ok, why = truth.check_itl("mean_itl_ms", {"name": "plain"}, res)
        self.assertFalse(ok, why)
        self.assertIn("after its own E2E end", why)

    def test_itl_count_mismatch_fails(self):
        res = self.itl_run([0.2, 0.3, 0.4, 0.2, 0.3], sb_itl=100.0)
        res["sglang_log"][1]["itl_ms"].pop()
        ok, why = truth.check_itl("mean_itl_ms", {"name": "plain"}, res)
        self.assertFalse(ok)
        self.assertIn("one per written event", why)

    def test_covering_rows_in_table_order(self):
        rows = compare.parse_deviations(TABLE)
        cov = compare.covering(rows, "mean_ttft_ms", "plain")
        self.assertEqual([r.check for r in cov], [None, "setup"])
        self.assertEqual(compare.covering(rows, "mean_itl_ms", "plain"), [])

    def test_unknown_check_fails(self):
        ok, why = truth.run_check("nope", "mean_ttft_ms", {}, {})
        self.assertFalse(ok)

    def test_arrival_offsets(self):
        stats = {"requests": [{"read_ms": 5.0}, {"read_ms": 100.0}, {"read_ms": 250.5}]}
        self.assertEqual(truth.arrival_offsets(stats), [0.0, 150.5])


if __name__ == "__main__":
    unittest.main()
