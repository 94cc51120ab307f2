"""Loopback addresses for the suite: a port that refuses connections, and small HTTP servers
that misbehave on purpose and stop by themselves."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LIFETIME_S = 40.0
"""The longest a server lives, even when a test forgets it: then it shuts itself down."""


@contextmanager
def refusing_port() -> Iterator[int]:
    """A loopback port bound but not listening: every connection to it is refused at once."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


Handler = Callable[[BaseHTTPRequestHandler], None]
"""Answers one request (any method) by writing to the handler's socket."""


@contextmanager
def serve(answer: Handler, *, lifetime_s: float = LIFETIME_S) -> Iterator[ThreadingHTTPServer]:
    """A threaded HTTP server on 127.0.0.1 that answers every request with ``answer``; it keeps
    the requests it saw (method, path, headers) in ``server.seen``."""

    class _Handler(BaseHTTPRequestHandler):
        def _any(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            server.seen.append((self.command, self.path, dict(self.headers)))  # type: ignore[attr-defined]
            with suppress(BrokenPipeError, ConnectionResetError):
                answer(self)

        do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _any

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    server.seen = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    stopper = threading.Timer(lifetime_s, server.shutdown)
    stopper.daemon = True
    stopper.start()
    try:
        yield server
    finally:
        stopper.cancel()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def url(server: ThreadingHTTPServer, path: str = "") -> str:
    """The server's base address."""
    host, port = server.server_address[:2]
    return f"http://{host}:{port}{path}"


def reply(status: int, body: bytes, content_type: str = "application/json") -> Handler:
    """Always this status and body."""

    def answer(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    return answer


def silent(hold_s: float) -> Handler:
    """Read the request, say nothing for ``hold_s`` seconds, then hang up."""

    def answer(handler: BaseHTTPRequestHandler) -> None:
        time.sleep(hold_s)
        handler.close_connection = True

    return answer


def reset() -> Handler:
    """Drop the connection with a TCP reset instead of an answer."""

    def answer(handler: BaseHTTPRequestHandler) -> None:
        handler.connection.setsockopt(
            socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
        )
        handler.connection.close()
        handler.close_connection = True

    return answer


def short_body(declared: int, body: bytes) -> Handler:
    """Promise ``declared`` bytes, send fewer, hang up."""

    def answer(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(declared))
        handler.end_headers()
        handler.wfile.write(body)
        handler.close_connection = True

    return answer


def redirect(location: str, status: int = 307) -> Handler:
    """Send the client elsewhere."""

    def answer(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(status)
        handler.send_header("Location", location)
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    return answer


def garbage_status_line() -> Handler:
    """Not HTTP at all."""

    def answer(handler: BaseHTTPRequestHandler) -> None:
        handler.wfile.write(b"SSH-2.0-OpenSSH_9.0\r\n\r\n")
        handler.close_connection = True

    return answer
