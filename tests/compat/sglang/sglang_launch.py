"""Runs `python -m sglang.bench_serving` (0.5.9, unmodified) and logs when each of its requests started.

Usage: python sglang_launch.py LOG_FILE [bench_serving flags...]

sglang's request functions record their own start (`output.start_time`, the `st` its TTFT counts from) with
`time.perf_counter()`, which is CLOCK_MONOTONIC on Linux, the clock of the scripted server's event loop. This
launcher wraps each entry of `ASYNC_REQUEST_FUNCS`: the wrapper awaits the original and, after it returned,
appends `{start_ms, ttft_ms, latency_ms, success, itl_ms, prompt_key}` to a list written to LOG_FILE as JSON when the
process exits. Nothing runs inside sglang's timed span (`st` is taken inside the original function, after the
wrapper called it), so the timings are sglang's own. The module's `if __name__ == "__main__":` block (its
argument parser and `run_benchmark(args)`) is then executed as `python -m` would, at the real-time priority
servebench gets too (run_suite.py), where allowed.
"""

import ast
import asyncio
import atexit
import functools
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from server import realtime, text_key  # noqa: E402

import sglang.bench_serving as bench  # noqa: E402

LOG = []


def wrap(func):
    @functools.wraps(func)
    async def logged(*args, **kwargs):
        out = await func(*args, **kwargs)
        inp = kwargs.get("request_func_input", args[0] if args else None)
        prompt = getattr(inp, "prompt", None)
        LOG.append({"start_ms": out.start_time * 1000.0, "ttft_ms": out.ttft * 1000.0,
                    "latency_ms": out.latency * 1000.0, "success": bool(out.success),
                    "itl_ms": [x * 1000.0 for x in (out.itl or [])],
                    "prompt_key": text_key(prompt) if isinstance(prompt, str) else None})
        return out
    assert asyncio.iscoroutinefunction(func), func
    return logged


def main():
    log_file = sys.argv[1]
    atexit.register(lambda: Path(log_file).write_text(json.dumps(LOG)))
    for name, func in list(bench.ASYNC_REQUEST_FUNCS.items()):
        bench.ASYNC_REQUEST_FUNCS[name] = wrap(func)
    tree = ast.parse(Path(bench.__file__).read_text())
    blocks = [n for n in tree.body if isinstance(n, ast.If) and "__main__" in ast.unparse(n.test)]
    if len(blocks) != 1:
        raise SystemExit("sglang_launch.py: bench_serving.py has no single `if __name__ == '__main__'` block")
    code = compile(ast.Module(body=blocks[0].body, type_ignores=[]), bench.__file__, "exec")
    sys.argv = [bench.__file__, *sys.argv[2:]]
    realtime(10)  # the same priority as servebench's (run_suite.py), once the imports are done
    exec(code, bench.__dict__)


if __name__ == "__main__":
    main()
