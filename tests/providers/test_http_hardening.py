"""Hostile and broken HTTP peers: credentials stay with the configured host, keys stay out of
every message in every form, and each failure is one readable sentence."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import socket
import threading
import traceback
import urllib.parse
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from runner.config import Model
from runner.config import Provider as ProviderConfig
from runner.errors import ConfigError
from runner.providers.anthropic import AnthropicProvider
from runner.providers.base import ChatMessage, ModelRequest, ProviderError, public_url
from runner.providers.openai import OpenAIProvider

ENV = "BRANCHLEAF_HARDENING_KEY"
# Quotes and a backslash are legal in a header, and repr and JSON both escape them.
KEY = "sk-live-\"quo'ted\\back-9f1c2e7a"
ANTHROPIC_REPLY = {
    "type": "message",
    "model": "m",
    "content": [{"type": "text", "text": "ok"}],
    "usage": {"input_tokens": 1, "output_tokens": 1},
}
Handler = Callable[[BaseHTTPRequestHandler], None]


class _Server:
    """A loopback HTTP server answering every POST with ``handle``, recording what it got."""

    def __init__(self, handle: Handler) -> None:
        self.requests: list[tuple[str, dict[str, str]]] = []
        owner = self

        class _Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                owner.requests.append((self.path, dict(self.headers)))
                handle(self)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def serve() -> Iterator[Callable[[Handler], _Server]]:
    started: list[_Server] = []

    def start(handle: Handler) -> _Server:
        started.append(_Server(handle))
        return started[-1]

    yield start
    for server in started:
        server.close()


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, KEY)


def _config(kind: str, base_url: str, **fields: Any) -> ProviderConfig:
    settings: dict[str, Any] = {"timeout_s": 10.0, "max_retries": 0, **fields}
    return ProviderConfig(
        name="remote",
        type=kind,
        base_url=base_url,
        api_key_env=ENV,
        script=None,
        models={
            "m": Model(name="m", capabilities=frozenset(), input_per_mtok=0, output_per_mtok=0)
        },
        **settings,
    )


def _provider(kind: str, base_url: str, **fields: Any) -> OpenAIProvider | AnthropicProvider:
    config = _config(kind, base_url, **fields)
    return OpenAIProvider(config) if kind == "openai" else AnthropicProvider(config)


REQUEST = ModelRequest(
    node_id="a", role="r", model="m", messages=(ChatMessage(role="user", content="hi"),)
)


def _failure(provider: OpenAIProvider | AnthropicProvider) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        asyncio.run(provider.complete(REQUEST))
    return caught.value


def _answer(status: int, body: bytes, headers: dict[str, str] | None = None) -> Handler:
    def handle(request: BaseHTTPRequestHandler) -> None:
        request.send_response(status)
        for name, value in (headers or {}).items():
            request.send_header(name, value)
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)

    return handle


def _key_forms(key: str) -> list[str]:
    """How a key shows up when a server or a library echoes it."""
    return [
        key,
        repr(key),
        repr(key)[1:-1],
        json.dumps(key)[1:-1],
        urllib.parse.quote(key, safe=""),
        urllib.parse.quote_plus(key),
        base64.b64encode(key.encode()).decode(),
        # Basic auth: the key after a user name, so its base64 is shifted.
        base64.b64encode(f"user:{key}".encode()).decode(),
    ]


# --- credentials never follow a redirect ------------------------------------------------------


@pytest.mark.parametrize("status", [301, 302, 307, 308])
@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_a_redirect_to_another_host_receives_no_credential(
    serve: Callable[[Handler], _Server], kind: str, status: int
) -> None:
    elsewhere = serve(_answer(200, json.dumps(ANTHROPIC_REPLY).encode()))
    # Another port of the same address is another origin.
    target = f"{elsewhere.url}/collect?from=redirect"
    origin = serve(_answer(status, b"", {"Location": target}))
    error = _failure(_provider(kind, f"{origin.url}/v1"))
    assert len(origin.requests) == 1
    assert elsewhere.requests == []
    text = str(error)
    assert f"answered HTTP {status}, a redirect to {elsewhere.url}/collect, another host" in text
    assert "set the provider's base_url to the address that answers" in text
    assert "from=redirect" not in text
    assert error.status == status
    assert not error.retryable


def test_a_redirect_on_the_same_host_is_not_followed_either(
    serve: Callable[[Handler], _Server],
) -> None:
    origin = serve(_answer(307, b"", {"Location": "/v2/messages"}))
    error = _failure(_provider("anthropic", f"{origin.url}/v1"))
    assert len(origin.requests) == 1
    assert f"a redirect to {origin.url}/v2/messages;" in str(error)


# --- the key is redacted in every form --------------------------------------------------------


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_a_server_echoing_the_key_in_any_encoding_never_gets_it_shown(
    serve: Callable[[Handler], _Server], kind: str
) -> None:
    echoed = " | ".join(_key_forms(KEY))
    body = json.dumps({"error": {"message": f"invalid key: {echoed}"}}).encode()
    server = serve(_answer(401, body, {"Content-Type": "application/json"}))
    error = _failure(_provider(kind, f"{server.url}/v1"))
    shown = "".join(traceback.format_exception(error))
    assert "invalid key: [redacted]" in shown
    for form in _key_forms(KEY):
        assert form not in shown, form
    # The fragments a cut could leave are gone too: the key's distinctive middle.
    assert "quo" not in shown
    assert "9f1c2e7a" not in shown
    assert "xdW8ndGVkXGJhY2st" not in shown


@pytest.mark.parametrize(
    ("value", "what"),
    [
        ("sk-caf\u00e9\u20ac", "a character outside Latin-1"),
        ("sk-first\nsk-second", "a line break or another control character"),
        ("sk-tab\there", "a line break or another control character"),
    ],
)
def test_a_key_an_http_header_cannot_carry_is_named_by_its_variable(
    monkeypatch: pytest.MonkeyPatch, value: str, what: str
) -> None:
    monkeypatch.setenv(ENV, value)
    for kind in ("openai", "anthropic"):
        with pytest.raises(ConfigError) as caught:
            _provider(kind, "http://127.0.0.1:9/v1")
        message = str(caught.value)
        assert f"the API key in the environment variable {ENV} holds {what}" in message
        assert "sk-" not in message


# --- each failure is one readable sentence ----------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _hang_up(request: BaseHTTPRequestHandler) -> None:
    request.close_connection = True


def _readable(text: str) -> None:
    for noise in ("HTTPConnectionPool", "object at 0x", "Max retries", "Caused by", "urllib3"):
        assert noise not in text


def test_a_refused_connection_says_so_plainly() -> None:
    error = _failure(_provider("openai", f"http://127.0.0.1:{_closed_port()}/v1"))
    text = str(error)
    assert "failed: the connection was refused: no server listens at that address" in text
    assert "\n" not in text
    _readable(text)
    assert error.retryable


def test_a_server_that_hangs_up_says_so_plainly(serve: Callable[[Handler], _Server]) -> None:
    server = serve(_hang_up)
    text = str(_failure(_provider("openai", f"{server.url}/v1")))
    assert "failed: the server closed the connection without answering" in text
    _readable(text)


def test_a_read_timeout_says_it_timed_out(serve: Callable[[Handler], _Server]) -> None:
    stop = threading.Event()
    server = serve(lambda request: stop.wait(30))
    try:
        text = str(_failure(_provider("openai", f"{server.url}/v1", timeout_s=0.5)))
    finally:
        stop.set()
    assert "timed out: no answer within timeout_s 0.5 s" in text


@pytest.mark.parametrize(
    ("body", "headers", "said"),
    [
        (b"<!doctype html><h1>Bad gateway</h1>", {"Content-Type": "text/html"}, "an HTML page"),
        (b"", {}, "an empty body"),
        (b"{not json", {"Content-Type": "application/json"}, "a body that is not JSON"),
        (b"[1, 2]", {"Content-Type": "application/json"}, "JSON list instead of an object"),
    ],
    ids=["html", "empty", "garbled", "list"],
)
def test_a_success_that_is_not_a_json_object_says_what_it_was(
    serve: Callable[[Handler], _Server], body: bytes, headers: dict[str, str], said: str
) -> None:
    server = serve(_answer(200, body, headers))
    text = str(_failure(_provider("anthropic", f"{server.url}/v1")))
    assert f"returned HTTP 200 with {said}" in text
    assert "<h1>" not in text


# --- Anthropic's base_url with or without /v1 ---------------------------------------------------


@pytest.mark.parametrize(
    ("suffix", "path"),
    [
        ("", "/v1/messages"),
        ("/", "/v1/messages"),
        ("/v1", "/v1/messages"),
        ("/v1/", "/v1/messages"),
        ("/gateway/anthropic", "/gateway/anthropic/v1/messages"),
    ],
)
def test_an_anthropic_base_url_may_leave_out_v1(
    serve: Callable[[Handler], _Server], suffix: str, path: str
) -> None:
    server = serve(_answer(200, json.dumps(ANTHROPIC_REPLY).encode()))
    provider = _provider("anthropic", server.url + suffix)
    reply = asyncio.run(provider.complete(REQUEST))
    assert reply.text == "ok"
    assert [seen for seen, _ in server.requests] == [path]


def test_a_malformed_reply_is_described_in_a_few_hundred_characters(
    serve: Callable[[Handler], _Server],
) -> None:
    reply = {**ANTHROPIC_REPLY, "usage": {"input_tokens": "x" * 100_000, "output_tokens": 1}}
    server = serve(_answer(200, json.dumps(reply).encode()))
    text = str(_failure(_provider("anthropic", f"{server.url}/v1")))
    assert "returned a malformed reply: input_tokens is 'xxx" in text
    assert len(text) < 500


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://[::1]:8080/v1/", "http://[::1]:8080/v1"),
        ("https://user:pw@llm.example.test/v1?key=sk-x#frag", "https://llm.example.test/v1"),
        ("http://LLM.example.test:80/v1", "http://llm.example.test:80/v1"),
    ],
)
def test_a_shown_url_has_no_credentials_and_stays_an_address(url: str, shown: str) -> None:
    assert public_url(url) == shown


@pytest.mark.parametrize(
    ("location", "said"),
    [
        ("http://127.0.0.1:99999/v1", "a redirect to an address that is not valid;"),
        ("http://[::1/v1", "a redirect to an address that is not valid;"),
        ("", "a redirect without saying where;"),
    ],
    ids=["bad-port", "bad-ipv6", "no-location"],
)
def test_a_redirect_to_nowhere_is_still_one_sentence(
    serve: Callable[[Handler], _Server], location: str, said: str
) -> None:
    headers = {"Location": location} if location else {}
    server = serve(_answer(302, b"", headers))
    assert said in str(_failure(_provider("openai", f"{server.url}/v1")))


def test_an_answer_that_is_not_http_says_so(serve: Callable[[Handler], _Server]) -> None:
    def garbage(request: BaseHTTPRequestHandler) -> None:
        request.close_connection = True
        request.wfile.write(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")

    server = serve(garbage)
    text = str(_failure(_provider("openai", f"{server.url}/v1")))
    assert "failed: the server's answer is not valid HTTP" in text
    _readable(text)


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_an_endless_answer_fails_the_call_instead_of_filling_memory(
    kind: str, serve: Callable[[Handler], _Server]
) -> None:
    from runner.providers.http import MAX_REPLY_BYTES

    def endless(request: BaseHTTPRequestHandler) -> None:
        request.send_response(200)
        request.send_header("Content-Type", "application/json")
        request.end_headers()  # no length: the body runs until the connection closes
        request.wfile.write(b'{"choices": [{"message": {"content": "')
        chunk = b"x" * 2**20
        with contextlib.suppress(OSError):  # the client hangs up once it has had enough
            for _ in range(MAX_REPLY_BYTES // len(chunk) + 8):
                request.wfile.write(chunk)

    server = serve(endless)
    error = _failure(_provider(kind, server.url + "/v1"))
    assert "answered with a body longer than 16 MiB" in str(error)
    assert error.outage is not None


def test_a_socks_proxy_in_the_environment_is_named_as_unusable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", "socks5://user:secret@proxy.example.test:1080")
    with pytest.raises(ConfigError) as caught:
        _provider("openai", "https://llm.example.test/v1")
    message = str(caught.value)
    assert "not an HTTP proxy" in message
    assert "NO_PROXY" in message
    assert "secret" not in message


def test_a_ca_bundle_that_cannot_be_read_is_named_with_its_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "missing.pem"))
    with pytest.raises(ConfigError, match="REQUESTS_CA_BUNDLE") as caught:
        _provider("anthropic", "https://api.anthropic.com")
    assert "missing.pem" in str(caught.value)
