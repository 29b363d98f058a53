#!/usr/bin/env python3
"""Runs `python -m sglang.bench_serving` unchanged, except that a request body field `"ignore_eos": false` is left
out. sglang.bench_serving 0.5.9 always sends `ignore_eos` (false with --disable-ignore-eos), and servers that
check the OpenAI schema strictly (`transformers serve`) answer HTTP 422 to any field outside it. Omitting a false
`ignore_eos` asks for the same thing; nothing about timing or parsing changes.

  python3 bench/sglang_bench_strict.py <bench_serving flags...>
"""
import runpy
import sys

import aiohttp

_orig_request = aiohttp.ClientSession._request


async def _request(self, method, url, **kwargs):
    body = kwargs.get("json")
    if isinstance(body, dict) and body.get("ignore_eos") is False:
        body = dict(body)
        del body["ignore_eos"]
        kwargs["json"] = body
    return await _orig_request(self, method, url, **kwargs)


aiohttp.ClientSession._request = _request
sys.argv = ["sglang.bench_serving", *sys.argv[1:]]
runpy.run_module("sglang.bench_serving", run_name="__main__", alter_sys=True)
