"""A scripted LLM server for the differential suite (stdlib only, fully deterministic).

It speaks just enough HTTP/1.1 (keep-alive, Content-Length request bodies, chunked responses) to serve
SGLang's native `POST /generate`, the OpenAI `POST /v1/completions` and `POST /v1/chat/completions`,
`GET /v1/models` and `GET /get_server_info`, and writes every byte of a stream itself, so that a scenario
can choose line ends, a BOM, a missing `[DONE]`, an error event or a dropped connection.

A request asking for n tokens gets n tokens (" hello" each: one token apiece with the SmolLM2 tokenizer, so a
re-tokenized count equals the server's count), split over `events` text events: the first `ttft_ms` after
the request was read, then one every `gap_ms` (plus `stall_ms` after event `stall_after`). Event times are
absolute (from when the request was read), so they do not drift.

Faults apply to the even-numbered generation requests in arrival order (2nd, 4th, ...): the first one, the
warm-up of both tools, is always served normally.

Usage: python server.py '<scenario server options as JSON>'   (prints "PORT <n>" once listening)
"""

import asyncio
import hashlib
import json
import os
import socket
import sys

TOKEN = " hello"
MODEL = "compat-model"

DEFAULTS = {
    "events": 5,  # text events per request (fewer when fewer tokens are asked for)
    "ttft_ms": 100.0,  # request read -> first event
    "gap_ms": 100.0,  # between events
    "stall_after": None,  # after this many events (1-based) ...
    "stall_ms": 0.0,  # ... wait this much longer
    "line_end": "\n\n",  # "\n\n", "\r\n\r\n", or "\n" (each data line ended by one newline, no blank line)
    "bom": "none",  # "none" | "even": a UTF-8 BOM before the first event of even-numbered requests
    "fault": "none",  # "none" | "error_midstream" | "drop" (even-numbered requests)
    "done": True,  # end the stream with data: [DONE]
    "stop_after": None,  # generate at most this many tokens (an early stop, as at EOS)
    "usage": "requested",  # "requested": usage-only chunk (choices []) when stream_options.include_usage;
    # "last_text_chunk": always a final chunk with an empty text choice and usage
    "reasoning_events": 0,  # chat: the first events carry reasoning_content
    "zero_token_event": False,  # native: repeat the 2nd event (same text, no new tokens)
    "accept": "none",  # "none" | "plain" | "pd": /get_server_info reports avg_spec_accept_length
    "json_answer": False,  # answer a streamed request with one application/json body (not SSE) after ttft_ms
}


class Server:
    def __init__(self, opts):
        unknown = set(opts) - set(DEFAULTS)
        if unknown:
            raise SystemExit(f"server.py: unknown options {sorted(unknown)}")
        self.o = {**DEFAULTS, **opts}
        self.gen_requests = 0  # generation POSTs seen, in arrival order
        self.tokens_served = 0
        self.events_served = 0
        self.faults = 0  # faults applied (drop, error event, BOM)
        self.max_late_ms = 0.0  # the latest an event went out after its due time (the server's own jitter)
        self.conns = 0  # connections accepted
        # Ground truth per generation request, in arrival order (times in ms of the server's loop clock,
        # CLOCK_MONOTONIC: the clock of sglang's time.perf_counter too): see `record` in generate().
        self.requests = []
        self.info_calls = []  # GET /get_server_info: when read and answered
        self.t_start = 0.0

    # ---- HTTP ----------------------------------------------------------------------------------------------
    def now_ms(self):
        return (asyncio.get_running_loop().time() - self.t_start) * 1000.0

    async def handle(self, reader, writer):
        accepted = self.now_ms()  # the connection's accept (the client's connect has completed)
        self.conns += 1
        conn = {"id": self.conns, "accepted_ms": accepted, "requests": 0}
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            while True:
                req = await read_request(reader)
                if req is None:
                    break
                method, path, headers, body = req
                conn["requests"] += 1
                keep = await self.route(method, path, headers, body, writer, conn)
                if not keep or headers.get("connection", "").lower() == "close":
                    break
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            try:
                writer.close()
            except Exception:
                pass

    async def route(self, method, path, headers, body, writer, conn=None):
        path = path.split("?", 1)[0]
        if method == "GET" and path == "/v1/models":
            await send_json(writer, {"object": "list", "data": [{"id": MODEL, "object": "model"}]})
            return True
        if method == "GET" and path == "/compat_stats":
            await send_json(writer, {"gen_requests": self.gen_requests, "faults": self.faults,
                                     "max_late_ms": self.max_late_ms, "connections": self.conns,
                                     "requests": self.requests, "info_calls": self.info_calls})
            return True
        if method == "GET" and path == "/get_server_info":
            read = self.now_ms()
            await send_json(writer, self.server_info())
            self.info_calls.append({"read_ms": read, "answered_ms": self.now_ms()})
            return True
        if method == "POST" and path in ("/generate", "/v1/completions", "/v1/chat/completions"):
            try:
                req = json.loads(body or b"{}")
            except ValueError:
                await send_json(writer, {"error": "request body is not JSON"}, status="400 Bad Request")
                return True
            return await self.generate(path, req, writer, conn)
        if method == "POST" and path in ("/flush_cache", "/reset_prefix_cache"):
            await send_json(writer, {})
            return True
        await send_json(writer, {"error": f"no route {method} {path}"}, status="404 Not Found")
        return True

    def server_info(self):
        states = {}
        if self.o["accept"] != "none":
            # The running mean of tokens per decode step; 1.0 before any step, as a fresh server.
            states["avg_spec_accept_length"] = (
                self.tokens_served / self.events_served if self.events_served else 1.0
            )
        info = {"version": "0.5.9-compat-scripted", "model_path": MODEL, "internal_states": [states]}
        if self.o["accept"] == "pd":
            return {"prefill": [{"version": info["version"]}], "decode": [info]}
        return info

    # ---- generation ----------------------------------------------------------------------------------------
    async def generate(self, path, req, writer, conn=None):
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        self.gen_requests += 1
        # The ground truth of this request: when its connection was accepted, whether it is that connection's
        # first request, when the request had been read (t0: the scripted times count from here) and when the
        # first event was written (`first_event_ms`, set below). A client's TTFT is first_event - read plus the
        # wire and its own overheads; a client that opens a connection per request also spends accept -> read
        # (and its connect before the accept) inside its TTFT.
        record = {"n": self.gen_requests, "read_ms": (t0 - self.t_start) * 1000.0,
                  "conn": conn["id"] if conn else 0, "conn_first": bool(conn and conn["requests"] == 1),
                  "accepted_ms": conn["accepted_ms"] if conn else None, "first_event_ms": None,
                  "prompt_key": prompt_key(req), "last_event_ms": None, "events_ms": []}
        self.requests.append(record)
        faulty = self.gen_requests % 2 == 0
        o = self.o
        if faulty and o["fault"] == "drop":
            self.faults += 1
            await asyncio.sleep(0.3)
            return False  # close without a response byte
        kind = {"/generate": "native", "/v1/completions": "completions"}.get(path, "chat")
        n = requested_tokens(kind, req)
        if not req.get("stream", False):
            await send_json(writer, {"error": "the scripted server streams only"}, status="400 Bad Request")
            return True
        if o["stop_after"] is not None:
            n = min(n, int(o["stop_after"]))
        if o["json_answer"]:
            await asyncio.sleep(max(0.0, t0 + o["ttft_ms"] / 1000.0 - loop.time()))
            await send_json(writer, self.whole_answer(kind, n))
            return True
        plan = split(n, int(o["events"]))
        nl = o["line_end"]
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
            b"Transfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n"
        )
        await writer.drain()
        prefix = "\ufeff" if (o["bom"] == "even" and faulty) else ""
        if prefix:
            self.faults += 1
        done_tokens = 0
        events = []  # (tokens in this event, payload)
        for i, k in enumerate(plan):
            done_tokens += k
            last = i == len(plan) - 1
            events.append((k, self.event(kind, i, k, done_tokens, last, req)))
            if kind == "native" and o["zero_token_event"] and i == 1:
                events.append((0, self.event(kind, i, 0, done_tokens, last, req)))
        for j, (k, payload) in enumerate(events):
            due = t0 + (o["ttft_ms"] + j * o["gap_ms"]) / 1000.0
            if o["stall_after"] is not None and j >= int(o["stall_after"]):
                due += o["stall_ms"] / 1000.0
            await asyncio.sleep(max(0.0, due - loop.time()))
            self.max_late_ms = max(self.max_late_ms, (loop.time() - due) * 1000.0)
            if faulty and o["fault"] == "error_midstream" and j == 2:
                self.faults += 1
                err = {"error": {"object": "error", "message": "scripted failure", "type": "InternalServerError",
                                 "param": None, "code": 500}}
                await write_chunk(writer, prefix + "data: " + json.dumps(err) + nl)
                prefix = ""
                break
            await write_chunk(writer, prefix + "data: " + json.dumps(payload) + nl)
            prefix = ""
            if record["first_event_ms"] is None and j == 0:
                record["first_event_ms"] = self.now_ms()
            if k:
                record["events_ms"].append(self.now_ms())  # when each event with tokens had been written
                self.tokens_served += k
                self.events_served += 1
        else:
            tail = self.tail(kind, n, req)
            if tail is not None:
                await write_chunk(writer, "data: " + json.dumps(tail) + nl)
        if o["done"]:
            await write_chunk(writer, prefix + "data: [DONE]" + nl)
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        record["last_event_ms"] = self.now_ms()
        return True

    def event(self, kind, i, k, done_tokens, last, req):
        text = TOKEN * k
        if kind == "native":
            return {
                "text": TOKEN * done_tokens,  # cumulative, as SGLang's /generate streams it
                "meta_info": {
                    "id": "req",
                    "completion_tokens": done_tokens,
                    "finish_reason": {"type": "length", "length": done_tokens} if last else None,
                },
                "index": 0,
            }
        finish = "length" if last else None
        if kind == "completions":
            return {"id": "cmpl-compat", "object": "text_completion", "created": 0, "model": MODEL,
                    "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": finish}]}
        if i < int(self.o["reasoning_events"]):
            delta = {"role": "assistant", "content": None, "reasoning_content": text}
        else:
            delta = {"role": "assistant", "content": text}
        return {"id": "chatcmpl-compat", "object": "chat.completion.chunk", "created": 0, "model": MODEL,
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}

    def whole_answer(self, kind, n):
        """A non-streamed answer (as a server that ignores "stream": true would send)."""
        usage = {"completion_tokens": n}
        if kind == "native":
            return {"text": TOKEN * n, "meta_info": {"id": "req", "completion_tokens": n,
                                                     "finish_reason": {"type": "length", "length": n}}}
        if kind == "completions":
            return {"id": "cmpl-compat", "object": "text_completion", "created": 0, "model": MODEL, "usage": usage,
                    "choices": [{"index": 0, "text": TOKEN * n, "logprobs": None, "finish_reason": "length"}]}
        return {"id": "chatcmpl-compat", "object": "chat.completion", "created": 0, "model": MODEL, "usage": usage,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": TOKEN * n},
                             "finish_reason": "length"}]}

    def tail(self, kind, n, req):
        """The chunk after the text events: usage, when the scenario or the request asks for it."""
        if kind == "native":
            return None
        usage = {"completion_tokens": n}
        if self.o["usage"] == "last_text_chunk":
            if kind == "completions":
                choice = {"index": 0, "text": "", "logprobs": None, "finish_reason": "stop"}
                return {"id": "cmpl-compat", "object": "text_completion", "created": 0, "model": MODEL,
                        "choices": [choice], "usage": usage}
            choice = {"index": 0, "delta": {"content": ""}, "logprobs": None, "finish_reason": "stop"}
            return {"id": "chatcmpl-compat", "object": "chat.completion.chunk", "created": 0, "model": MODEL,
                    "choices": [choice], "usage": usage}
        if (req.get("stream_options") or {}).get("include_usage"):
            obj = "text_completion" if kind == "completions" else "chat.completion.chunk"
            return {"id": "compat", "object": obj, "created": 0, "model": MODEL, "choices": [], "usage": usage}
        return None


def prompt_key(req):
    """A short digest of the request's prompt text (matches a client's log of what it sent; None if not text)."""
    p = req.get("text", req.get("prompt"))
    if p is None and isinstance(req.get("messages"), list) and req["messages"]:
        p = req["messages"][-1].get("content") if isinstance(req["messages"][-1], dict) else None
    return text_key(p) if isinstance(p, str) else None


def text_key(text):
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def requested_tokens(kind, req):
    if kind == "native":
        n = (req.get("sampling_params") or {}).get("max_new_tokens")
    elif kind == "chat":
        n = req.get("max_completion_tokens", req.get("max_tokens"))
    else:
        n = req.get("max_tokens")
    return max(1, int(n)) if isinstance(n, (int, float)) else 16


def split(n, events):
    """n tokens over min(n, events) events, the earlier events taking the remainder."""
    e = max(1, min(n, events))
    return [n // e + (1 if i < n % e else 0) for i in range(e)]


async def read_request(reader):
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = b""
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            chunk = await reader.readexactly(size + 2)
            if size == 0:
                break
            body += chunk[:-2]
    else:
        body = await reader.readexactly(int(headers.get("content-length", "0")))
    return method, path, headers, body


async def write_chunk(writer, text):
    data = text.encode("utf-8")
    writer.write(b"%x\r\n%s\r\n" % (len(data), data))
    await writer.drain()


async def send_json(writer, obj, status="200 OK"):
    data = json.dumps(obj).encode()
    writer.write(
        b"HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: keep-alive\r\n\r\n%s"
        % (status.encode(), len(data), data)
    )
    await writer.drain()


def realtime(prio):
    """Round-robin real-time priority `prio` where allowed (root), else the highest nice level allowed: on a
    machine busy compiling, a normal-priority timer can wake tens of ms late. (The kernel keeps 5 % of each
    second for normal tasks, so a real-time process cannot lock the machine up.)"""
    try:
        os.sched_setscheduler(0, os.SCHED_RR, os.sched_param(prio))
        return
    except (OSError, AttributeError):
        pass
    try:
        os.nice(-19)
    except OSError:
        pass


async def main():
    opts = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
    realtime(20)  # punctual events on a busy machine, where allowed (root); the tools' timed parts run at 10
    srv = Server(opts)
    srv.t_start = 0.0  # times in ms of CLOCK_MONOTONIC, which Python's perf_counter (sglang's clock) also reads
    server = await asyncio.start_server(srv.handle, "127.0.0.1", 0, backlog=1024)
    port = server.sockets[0].getsockname()[1]
    print(f"PORT {port}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
