"""A model server on loopback that answers as the OpenAI chat-completions and the Anthropic
messages APIs do, for trying Branchleaf against real HTTP and for the provider benchmarks.

    .venv/bin/python bench/model_server.py --port 8765 --latency-ms 200 --log requests.jsonl

serves ``POST /v1/chat/completions`` (OpenAI-compatible) and ``POST /v1/messages`` (Anthropic)
on 127.0.0.1. A reply fits the output schema the request carries (``response_format`` with a
``json_schema``, or a forced tool's ``input_schema``); without one it is a short JSON object.
Every request body is appended to ``--log`` as one JSON line, and the most requests seen in
flight at once are printed on exit (Ctrl-C), so a run's concurrency can be read from outside.

``--fail`` makes the server misbehave the way real endpoints do: ``401`` (a bad key), ``503``
(an overloaded endpoint, every time), ``silent`` (accepts the request and never answers),
``bad-json`` (a reply that does not fit its schema, every ``--every``-th request).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from runner.providers.instances import instance

FAILURES = ("401", "503", "silent", "bad-json")


class Counters:
    """Requests in flight, the most seen at once, and how many were answered."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now = 0
        self.most = 0
        self.total = 0

    def enter(self) -> int:
        with self.lock:
            self.now += 1
            self.total += 1
            self.most = max(self.most, self.now)
            return self.total

    def leave(self) -> None:
        with self.lock:
            self.now -= 1


def schema_of(body: dict[str, Any]) -> Any | None:
    """The output schema a request asks for, in either API's form."""
    format_ = body.get("response_format")
    if isinstance(format_, dict) and format_.get("type") == "json_schema":
        return format_.get("json_schema", {}).get("schema")
    for tool in body.get("tools") or ():
        if isinstance(tool, dict) and "input_schema" in tool:
            return tool["input_schema"]
    return None


def answer(body: dict[str, Any], *, broken: bool) -> Any:
    """A value that fits the request's schema (or deliberately does not)."""
    if broken:
        return {"unexpected": True}
    schema = schema_of(body)
    seed = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).digest()
    if schema is None:
        return {"ok": True, "answer": "fine"}
    return instance(schema, seed)


def openai_reply(body: dict[str, Any], value: Any) -> dict[str, Any]:
    return {
        "id": "chatcmpl-loopback",
        "object": "chat.completion",
        "model": body.get("model", "loopback"),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": json.dumps(value)},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 40, "completion_tokens": 12, "total_tokens": 52},
    }


def anthropic_reply(body: dict[str, Any], value: Any) -> dict[str, Any]:
    choice = body.get("tool_choice")
    if isinstance(choice, dict) and choice.get("type") == "tool":
        content: list[dict[str, Any]] = [
            {"type": "tool_use", "id": "toolu_loopback", "name": choice["name"], "input": value}
        ]
        stop = "tool_use"
    else:
        content, stop = [{"type": "text", "text": json.dumps(value)}], "end_turn"
    return {
        "id": "msg_loopback",
        "type": "message",
        "role": "assistant",
        "model": body.get("model", "loopback"),
        "content": content,
        "stop_reason": stop,
        "usage": {"input_tokens": 40, "output_tokens": 12},
    }


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # The listen backlog: the default of 5 would drop the connections of a wide fan-out that
    # arrive together, and the kernel's retransmission would add a second to each.
    request_queue_size = 1024


def serve(
    port: int,
    *,
    latency_s: float,
    fail: str | None,
    every: int,
    log: str | None,
    counters: Counters,
) -> ThreadingHTTPServer:
    """Start the server in a thread; the caller stops it with ``shutdown()``."""
    log_lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body leave in separate writes; with Nagle's algorithm the body would wait
        # for the client's delayed acknowledgement, some 40 ms on every kept-alive request.
        disable_nagle_algorithm = True

        def do_POST(self) -> None:
            number = counters.enter()
            try:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                body = json.loads(raw or b"{}")
                if log:
                    with log_lock, open(log, "a", encoding="utf-8") as file:
                        file.write(json.dumps({"path": self.path, "body": body}) + "\n")
                if fail == "silent":
                    time.sleep(3600)
                time.sleep(latency_s)
                if fail == "401":
                    self._send(401, {"error": {"message": "invalid api key", "type": "auth"}})
                    return
                if fail == "503":
                    self._send(503, {"error": {"message": "overloaded", "type": "overloaded"}})
                    return
                broken = fail == "bad-json" and number % every == 0
                value = answer(body, broken=broken)
                if self.path.rstrip("/").endswith("/messages"):
                    self._send(200, anthropic_reply(body, value))
                else:
                    self._send(200, openai_reply(body, value))
            finally:
                counters.leave()

        def _send(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = _Server(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--fail", choices=FAILURES)
    parser.add_argument("--every", type=int, default=5, help="with --fail bad-json")
    parser.add_argument("--log", help="append each request body to this file as JSON lines")
    args = parser.parse_args(argv)
    counters = Counters()
    server = serve(
        args.port,
        latency_s=args.latency_ms / 1000,
        fail=args.fail,
        every=max(1, args.every),
        log=args.log,
        counters=counters,
    )
    print(f"serving on http://127.0.0.1:{server.server_address[1]}/v1", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
        print(f"{counters.total} requests, at most {counters.most} in flight", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
