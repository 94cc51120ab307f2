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
