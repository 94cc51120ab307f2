"""A model server on loopback that answers as the OpenAI chat-completions and the Anthropic
messages APIs do, for trying Branchleaf against real HTTP and for the provider benchmarks.

    .venv/bin/python bench/model_server.py --port 8765 --latency-ms 200 --log requests.jsonl

serves ``POST /v1/chat/completions`` (OpenAI-compatible) and ``POST /v1/messages`` (Anthropic)
on 127.0.0.1. A reply fits the output schema the request carries (``response_format`` with a
``json_schema``, or a forced tool's ``input_schema``); without one it is a short JSON object.
Every request body is appended to ``--log`` as one JSON line, and the most requests seen in
flight at once are printed on exit (Ctrl-C), so a run's concurrency can be read from outside.
It serves from one event loop, so that a thousand requests in flight cost it little: what a
benchmark measures is the client.

``--fail`` makes the server misbehave the way real endpoints do: ``401`` (a bad key), ``503``
(an overloaded endpoint, every time), ``silent`` (accepts the request and never answers),
``bad-json`` (a reply that does not fit its schema, every ``--every``-th request).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import sys
import threading
import time
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


class Server:
    """The running server: ``server_address`` is where it listens; ``shutdown()`` stops it."""

    def __init__(self, loop: asyncio.AbstractEventLoop, server: asyncio.Server) -> None:
        self._loop = loop
        self._server = server
        self.server_address: tuple[str, int] = server.sockets[0].getsockname()[:2]

    def shutdown(self) -> None:
        async def stop() -> None:
            self._server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)

    def server_close(self) -> None:
        """Nothing more to release: ``shutdown`` closed the sockets."""


REASONS = {200: "OK", 401: "Unauthorized", 503: "Service Unavailable", 400: "Bad Request"}


def serve(
    port: int,
    *,
    latency_s: float,
    fail: str | None,
    every: int,
    log: str | None,
    counters: Counters,
) -> Server:
    """Start the server on an event loop of its own thread (a connection costs a coroutine, not
    a thread, so a thousand in flight cost little); stop it with ``shutdown()``."""
    answers: dict[str, Any] = {}

    def reply_to(path: str, body: dict[str, Any], number: int) -> tuple[int, dict[str, Any]]:
        if fail == "401":
            return 401, {"error": {"message": "invalid api key", "type": "auth"}}
        if fail == "503":
            return 503, {"error": {"message": "overloaded", "type": "overloaded"}}
        broken = fail == "bad-json" and number % every == 0
        shape = json.dumps(schema_of(body), sort_keys=True)
        if broken:
            value = answer(body, broken=True)
        else:  # the same schema gets the same value: the server's cost stays small
            value = answers.get(shape)
            if value is None:
                value = answers[shape] = answer(body, broken=False)
        if path.rstrip("/").endswith("/messages"):
            return 200, anthropic_reply(body, value)
        return 200, openai_reply(body, value)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                path = lines[0].split(" ")[1] if len(lines[0].split(" ")) > 1 else "/"
                length = 0
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value.strip())
                raw = await reader.readexactly(length) if length else b""
                number = counters.enter()
                try:
                    body = json.loads(raw or b"{}")
                    if log:
                        with open(log, "a", encoding="utf-8") as file:
                            file.write(json.dumps({"path": path, "body": body}) + "\n")
                    if fail == "silent":
                        await asyncio.sleep(3600)
                    await asyncio.sleep(latency_s)
                    status, payload = reply_to(path, body, number)
                finally:
                    counters.leave()
                data = json.dumps(payload).encode()
                writer.write(
                    f"HTTP/1.1 {status} {REASONS.get(status, 'OK')}\r\n"
                    "Content-Type: application/json\r\n"
                    f"Content-Length: {len(data)}\r\n\r\n".encode()
                    + data
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    loop = asyncio.new_event_loop()
    started: list[asyncio.Server] = []
    ready = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)

        async def start() -> None:
            started.append(await asyncio.start_server(handle, "127.0.0.1", port, backlog=4096))
            ready.set()

        loop.run_until_complete(start())
        loop.run_forever()

    threading.Thread(target=run, daemon=True).start()
    ready.wait(10)
    return Server(loop, started[0])


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
