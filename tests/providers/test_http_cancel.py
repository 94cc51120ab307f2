"""Tests for cancelling HTTP calls: a cancelled caller cuts off the request in flight.

A real loopback server holds some requests far longer than any test runs, and notes when the
client closes the connection of one it holds: a cancelled call must return at once, close that
connection rather than leave it to a later call, and leave nothing running.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, cast

import pytest

from runner.providers.http import HttpClient

HOLD_S = 30.0
"""How long the server holds a request it was told to hang on, unless released."""
PROMPT_S = 5.0
"""A cancelled call must return well within this; the server would hold it for HOLD_S."""


class _Server(ThreadingHTTPServer):
    """A loopback server answering its n-th request by the n-th step of ``plan``.

    Steps: ``hang`` holds the request until released, then answers 200; ``busy`` answers 503
    with Retry-After: 30; ``ok`` (also after the plan runs out) answers 200 at once.
    """

    daemon_threads = False  # server_close joins the handler threads

    def __init__(self, plan: list[str]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.plan = plan
        self.release = threading.Event()
        self.hanging = threading.Event()
        self.abandoned = threading.Event()
        """Set when the client closed the connection of a request held by ``hang``."""
        self.peers: list[int] = []
        """The client port of each request, in order."""
        self._lock = threading.Lock()
        self._connections: list[socket.socket] = []

    def finish_request(self, request: Any, client_address: Any) -> None:
        with self._lock:
            self._connections.append(request)
        super().finish_request(request, client_address)

    def stop(self) -> None:
        """Release held requests, stop serving, and end every connection and handler thread."""
        self.release.set()
        self.shutdown()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            # A client may still keep the connection alive; the handler must not wait for it.
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        self.server_close()

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def take(self, peer: int) -> str:
        with self._lock:
            self.peers.append(peer)
            return self.plan.pop(0) if self.plan else "ok"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so the client pools its connections
    timeout = 10  # an idle kept-alive connection ends eventually

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        server = cast(_Server, self.server)
        step = server.take(self.client_address[1])
        if step == "hang":
            server.hanging.set()
            if _closed_by_client(self.connection, server.release):
                server.abandoned.set()
                return
        payload = json.dumps({"step": step, "path": self.path}).encode()
        self.send_response(503 if step == "busy" else 200)
        if step == "busy":
            self.send_header("Retry-After", "30")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def handle(self) -> None:
        # Answering a client that has gone away fails; that is expected here.
        with contextlib.suppress(OSError):
            super().handle()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _closed_by_client(connection: socket.socket, release: threading.Event) -> bool:
    """Wait until ``release`` is set (False) or the client closes ``connection`` (True)."""
    deadline = time.monotonic() + HOLD_S
    while not release.is_set() and time.monotonic() < deadline:
        ready, _, _ = select.select([connection], [], [], 0.02)
        if ready:
            # The client has sent its whole request: what can come now is its closing.
            try:
                if connection.recv(1) == b"":
                    return True
            except ssl.SSLWantReadError:
                continue
            except OSError:
                return True
    return False


Serve = Callable[..., _Server]
MakeClient = Callable[..., HttpClient]


@pytest.fixture
def serve(monkeypatch: pytest.MonkeyPatch) -> Iterator[Serve]:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    running: list[tuple[_Server, threading.Thread]] = []

    def start(*plan: str, tls: ssl.SSLContext | None = None) -> _Server:
        server = _Server(list(plan))
        if tls is not None:
            server.socket = tls.wrap_socket(server.socket, server_side=True)
        thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        thread.start()
        running.append((server, thread))
        return server

    yield start
    for server, thread in running:
        server.stop()
        thread.join()


@pytest.fixture
def make_client(serve: Serve) -> MakeClient:
    def make(base_url: str, **fields: Any) -> HttpClient:
        return HttpClient(provider="p", base_url=base_url, headers={}, secret=None, **fields)

    return make


async def _until(condition: Callable[[], bool], *, within: float = PROMPT_S) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "waited in vain"
        await asyncio.sleep(0.005)


async def _cancel(task: asyncio.Task[Any]) -> float:
    """Cancel ``task`` and return the seconds until its CancelledError arrived."""
    started = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    return time.monotonic() - started


def _nothing_left_running() -> None:
    assert asyncio.all_tasks() == {asyncio.current_task()}, "a task outlived its cancelled call"


def test_cancelling_cuts_off_the_request_in_flight(serve: Serve, make_client: MakeClient) -> None:
    server = serve("hang")
    client = make_client(f"http://127.0.0.1:{server.port}/v1")

    async def scenario() -> None:
        task = asyncio.create_task(client.post_json("/chat", {"q": 1}))
        await _until(server.hanging.is_set)
        assert await _cancel(task) < PROMPT_S
        _nothing_left_running()
        await _until(server.abandoned.is_set)

    asyncio.run(scenario())
    assert len(server.peers) == 1


def test_cancelling_at_once(serve: Serve, make_client: MakeClient) -> None:
    server = serve("hang")
    client = make_client(f"http://127.0.0.1:{server.port}/v1")

    async def scenario() -> None:
        task = asyncio.create_task(client.post_json("/chat", {}))
        await asyncio.sleep(0)  # the call has started, and may or may not have connected
        assert await _cancel(task) < PROMPT_S
        _nothing_left_running()

    asyncio.run(scenario())
    assert len(server.peers) <= 1


def test_cancelling_a_call_on_a_pooled_connection_leaves_the_pool_usable(
    serve: Serve, make_client: MakeClient
) -> None:
    server = serve("ok", "hang", "ok")
    client = make_client(f"http://127.0.0.1:{server.port}/v1")

    async def scenario() -> None:
        assert (await client.post_json("/first", {}))["step"] == "ok"
        task = asyncio.create_task(client.post_json("/second", {}))
        await _until(server.hanging.is_set)
        assert await _cancel(task) < PROMPT_S
        assert (await client.post_json("/third", {}))["path"] == "/v1/third"
        await _until(server.abandoned.is_set)

    asyncio.run(scenario())
    first, second, third = server.peers
    assert second == first, "the cancelled call should have reused the pooled connection"
    assert third != second, "the cut-off connection must not be reused"


def test_cancelling_while_waiting_to_retry_returns_at_once(
    serve: Serve, make_client: MakeClient
) -> None:
    server = serve("busy", "ok")
    client = make_client(f"http://127.0.0.1:{server.port}/v1")

    async def scenario() -> None:
        task = asyncio.create_task(client.post_json("/chat", {}))
        await _until(lambda: len(server.peers) == 1)
        await asyncio.sleep(0.05)  # the call is now waiting out Retry-After: 30
        assert await _cancel(task) < PROMPT_S
        _nothing_left_running()

    asyncio.run(scenario())
    assert len(server.peers) == 1


def test_an_uncancelled_call_succeeds_after_a_retry(serve: Serve, make_client: MakeClient) -> None:
    server = serve("busy", "ok")
    waits: list[float] = []

    async def wait(seconds: float) -> None:
        waits.append(seconds)

    client = make_client(f"http://127.0.0.1:{server.port}/v1", sleep=wait)

    reply = asyncio.run(client.post_json("/chat", {"q": 1}))
    assert reply == {"step": "ok", "path": "/v1/chat"}
    assert waits == [30.0]
    assert len(server.peers) == 2


def test_cancelling_a_call_through_an_http_proxy(
    serve: Serve, make_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy = serve("hang")
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name)
    for name in ("HTTP_PROXY", "http_proxy"):
        monkeypatch.setenv(name, f"http://127.0.0.1:{proxy.port}")
    client = make_client("http://llm.example.test/v1")

    async def scenario() -> None:
        task = asyncio.create_task(client.post_json("/chat", {}))
        await _until(proxy.hanging.is_set)
        assert await _cancel(task) < PROMPT_S
        _nothing_left_running()
        await _until(proxy.abandoned.is_set)

    asyncio.run(scenario())


def _tls_contexts(directory: Path) -> tuple[ssl.SSLContext, Path]:
    """A server context with a fresh self-signed certificate for 127.0.0.1, and that cert."""
    pytest.importorskip("cryptography")
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path = directory / "cert.pem"
    key_path = directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    return context, cert_path


def test_cancelling_a_call_over_https(
    serve: Serve, make_client: MakeClient, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    context, cert_path = _tls_contexts(tmp_path)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert_path))
    server = serve("hang", "ok", tls=context)
    client = make_client(f"https://127.0.0.1:{server.port}/v1")

    async def scenario() -> None:
        task = asyncio.create_task(client.post_json("/chat", {}))
        await _until(server.hanging.is_set)
        assert await _cancel(task) < PROMPT_S
        _nothing_left_running()
        assert (await client.post_json("/again", {}))["step"] == "ok"
        await _until(server.abandoned.is_set)

    asyncio.run(scenario())
    assert len(server.peers) == 2
