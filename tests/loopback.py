"""A model server on loopback for tests: answers as the OpenAI chat-completions and Anthropic
messages APIs do (a JSON object ``{"ok": true}``, or the forced tool's input), after a set
latency, and counts the requests it has in flight."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Seen:
    """What the server saw."""

    url: str = ""
    """Its base URL (``http://127.0.0.1:PORT``)."""
    requests: int = 0
    bodies: list[dict[str, Any]] = field(default_factory=list)
    """The JSON body of every request, in the order they came."""
    in_flight: int = 0
    most_in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def _reply(path: str, body: dict[str, Any]) -> dict[str, Any]:
    answer = {"ok": True}
    if path.rstrip("/").endswith("/messages"):
        choice = body.get("tool_choice") or {}
        if choice.get("type") == "tool":
            content: list[dict[str, Any]] = [
                {"type": "tool_use", "id": "toolu_1", "name": choice["name"], "input": answer}
            ]
        else:
            content = [{"type": "text", "text": json.dumps(answer)}]
        return {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": body.get("model", "m"),
            "content": content,
            "stop_reason": "tool_use" if choice else "end_turn",
            "usage": {"input_tokens": 10, "output_tokens": 3},
        }
    return {
        "model": body.get("model", "m"),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": json.dumps(answer)},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": 3},
    }


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # the default 5 drops connections that arrive together


@contextlib.contextmanager
def model_server(latency_s: float = 0.0) -> Iterator[Seen]:
    """A running server; ``Seen.url`` is where it listens."""
    seen = Seen()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body leave in separate writes; with Nagle's algorithm the body would wait
        # for the client's delayed acknowledgement, some 40 ms on every kept-alive request.
        disable_nagle_algorithm = True

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
            with seen.lock:
                seen.requests += 1
                seen.bodies.append(body)
                seen.in_flight += 1
                seen.most_in_flight = max(seen.most_in_flight, seen.in_flight)
            try:
                time.sleep(latency_s)
                data = json.dumps(_reply(self.path, body)).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            finally:
                with seen.lock:
                    seen.in_flight -= 1

        def log_message(self, *args: Any) -> None:
            pass

    server = _Server(("127.0.0.1", 0), Handler)
    seen.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield seen
    finally:
        server.shutdown()
        server.server_close()


@dataclass(frozen=True)
class Reply:
    """One planned answer of a :func:`scripted_server`: a status with a JSON value or raw bytes
    as its body; ``raw`` instead sends those bytes as the whole answer (not HTTP, perhaps),
    ``hang_up`` closes the connection without a word, ``hold_s`` waits that long first."""

    status: int = 200
    json: Any = None
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None
    hang_up: bool = False
    hold_s: float = 0.0


@dataclass(frozen=True)
class Request:
    """A request a :func:`scripted_server` received."""

    path: str
    headers: dict[str, str]
    """Names in lower case."""
    body: Any


@dataclass
class Script:
    """A running :func:`scripted_server`."""

    url: str
    plan: list[Reply]
    calls: list[Request] = field(default_factory=list)
    peers: set[int] = field(default_factory=set)
    """The client ports requests came from: one per connection."""
    lock: threading.Lock = field(default_factory=threading.Lock)


@contextlib.contextmanager
def scripted_server(*plan: Reply) -> Iterator[Script]:
    """A server answering its POSTs with ``plan``, one answer each, in order (then 500), and
    recording every request."""
    script = Script(url="", plan=list(plan))
    stopping = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def do_POST(self) -> None:
            data = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            request = Request(
                path=self.path,
                headers={name.lower(): value for name, value in self.headers.items()},
                body=json.loads(data) if data else None,
            )
            with script.lock:
                script.calls.append(request)
                script.peers.add(self.client_address[1])
                reply = script.plan.pop(0) if script.plan else Reply(500, {"error": "unplanned"})
            if reply.hold_s:
                stopping.wait(reply.hold_s)
            if reply.hang_up or reply.raw is not None:
                if reply.raw is not None:
                    self.wfile.write(reply.raw)
                self.close_connection = True
                return
            payload = reply.body if reply.body is not None else json.dumps(reply.json).encode()
            self.send_response(reply.status)
            headers = {"Content-Type": "application/json", **reply.headers}
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def handle(self) -> None:
            # Answering a client that has gone away fails; that is expected here.
            with contextlib.suppress(OSError):
                super().handle()

        def log_message(self, *args: Any) -> None:
            pass

    server = _Server(("127.0.0.1", 0), Handler)
    script.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield script
    finally:
        stopping.set()
        server.shutdown()
        server.server_close()
