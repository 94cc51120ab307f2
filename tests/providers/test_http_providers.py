"""Tests for the HTTP providers: request shapes, usage, retries, errors and key hygiene."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import random
import threading
import traceback
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests
import responses

from runner.config import Model
from runner.config import Provider as ProviderConfig
from runner.errors import ConfigError
from runner.providers.anthropic import AnthropicProvider
from runner.providers.base import ChatMessage, ModelRequest, ProviderError
from runner.providers.http import JSON_ONLY, HttpClient, parse_retry_after
from runner.providers.openai import OpenAIProvider

KEY = "sk-test-DO-NOT-LEAK-7f3a9c1e5b"
ENV = "BRANCHLEAF_TEST_KEY"
OPENAI_URL = "https://llm.example.test/v1/chat/completions"
ANTHROPIC_URL = "https://api.anthropic.com/v1/messages"

OPENAI_REPLY: dict[str, Any] = {
    "id": "chatcmpl-1",
    "model": "small-2025",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}
    ],
    "usage": {
        "prompt_tokens": 1000,
        "completion_tokens": 500,
        "total_tokens": 1500,
        "prompt_tokens_details": {"cached_tokens": 256},
    },
}
ANTHROPIC_REPLY: dict[str, Any] = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": "claude-x",
    "content": [{"type": "text", "text": "hello "}, {"type": "text", "text": "there"}],
    "stop_reason": "end_turn",
    "usage": {"input_tokens": 100, "output_tokens": 50, "cache_read_input_tokens": 900},
}


def _config(
    kind: str, *, base_url: str | None = None, max_retries: int | None = None
) -> ProviderConfig:
    prices = {"input_per_mtok": 2.0, "output_per_mtok": 8.0}
    return ProviderConfig(
        name="remote",
        type=kind,
        base_url=base_url,
        api_key_env=ENV,
        script=None,
        timeout_s=None,
        max_retries=max_retries,
        models={
            name: Model(name=name, capabilities=frozenset({"json_mode"}), **prices)
            for name in ("small", "claude-x")
        },
    )


def _request(**fields: Any) -> ModelRequest:
    base: dict[str, Any] = {
        "node_id": "review_one[0]",
        "role": "reviewer",
        "model": "small",
        "messages": (
            ChatMessage(role="system", content="You review code."),
            ChatMessage(role="user", content="Review a.py"),
        ),
    }
    return ModelRequest(**{**base, **fields})


class Sleeps(list[float]):
    """An injected sleep that records how long it was asked to wait."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


class TopJitter(random.Random):
    """A random source whose jitter is always the top of the range, to make backoff visible."""

    def uniform(self, a: float, b: float) -> float:
        return b


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, KEY)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def openai(sleeps: Sleeps) -> Iterator[OpenAIProvider]:
    provider = OpenAIProvider(
        _config("openai", base_url="https://llm.example.test/v1/"), sleep=sleeps, rng=TopJitter()
    )
    yield provider
    provider.close()


@pytest.fixture
def anthropic(sleeps: Sleeps) -> Iterator[AnthropicProvider]:
    provider = AnthropicProvider(_config("anthropic"), sleep=sleeps, rng=TopJitter())
    yield provider
    provider.close()


def _sent(call: Any) -> Any:
    return json.loads(call.request.body)


def _failure(provider: OpenAIProvider | AnthropicProvider, request: ModelRequest) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        asyncio.run(provider.complete(request))
    return caught.value


def _everything_shown(error: BaseException) -> str:
    return "".join(traceback.format_exception(error))


# --- OpenAI-compatible -------------------------------------------------------------------------


@responses.activate
def test_openai_request_shape_auth_usage_and_cost(openai: OpenAIProvider) -> None:
    responses.post(OPENAI_URL, json=OPENAI_REPLY)
    reply = asyncio.run(openai.complete(_request(temperature=0.2, max_tokens=64)))

    call = responses.calls[0]
    assert call.request.headers["Authorization"] == f"Bearer {KEY}"
    assert _sent(call) == {
        "model": "small",
        "messages": [
            {"role": "system", "content": "You review code."},
            {"role": "user", "content": "Review a.py"},
        ],
        "temperature": 0.2,
        "max_tokens": 64,
    }
    assert reply.text == "hi"
    assert reply.model == "small-2025"
    assert reply.finish_reason == "stop"
    assert reply.usage.prompt_tokens == 1000
    assert reply.usage.completion_tokens == 500
    assert reply.usage.cached_prompt_tokens == 256
    assert reply.usage.cost_usd == pytest.approx((1000 * 2.0 + 500 * 8.0) / 1e6)
    assert not reply.usage.estimated


@responses.activate
def test_openai_json_mode_asks_for_a_json_object(openai: OpenAIProvider) -> None:
    responses.post(OPENAI_URL, json=OPENAI_REPLY)
    responses.post(OPENAI_URL, json=OPENAI_REPLY)
    asyncio.run(openai.complete(_request(json_mode=True)))
    mentioned = (ChatMessage(role="user", content="Answer in JSON: is a.py ok?"),)
    asyncio.run(openai.complete(_request(json_mode=True, messages=mentioned)))

    first, second = (_sent(call) for call in responses.calls)
    assert first["response_format"] == {"type": "json_object"}
    assert "temperature" not in first
    assert "max_tokens" not in first
    # OpenAI refuses json_object unless some message says JSON; the system prompt gains a line.
    assert first["messages"][0] == {"role": "system", "content": f"You review code.\n\n{JSON_ONLY}"}
    assert second["messages"] == [{"role": "user", "content": "Answer in JSON: is a.py ok?"}]


@responses.activate
def test_deepseek_cache_hits_and_missing_usage(openai: OpenAIProvider) -> None:
    deepseek = {
        **OPENAI_REPLY,
        "usage": {"prompt_tokens": 10, "completion_tokens": 2, "prompt_cache_hit_tokens": 8},
    }
    responses.post(OPENAI_URL, json=deepseek)
    responses.post(OPENAI_URL, json={**OPENAI_REPLY, "usage": None})
    assert asyncio.run(openai.complete(_request())).usage.cached_prompt_tokens == 8

    estimated = asyncio.run(openai.complete(_request())).usage
    assert estimated.estimated
    assert estimated.completion_tokens == 1
    assert estimated.prompt_tokens > 0


@pytest.mark.parametrize(
    "body",
    [
        {"choices": []},
        {"choices": [{"message": "hi"}]},
        {"choices": [{"message": {"content": "hi"}}], "usage": {"prompt_tokens": "many"}},
        {"error": {"message": "upstream overloaded"}},
    ],
)
@responses.activate
def test_openai_malformed_reply_is_a_provider_error(openai: OpenAIProvider, body: Any) -> None:
    responses.post(OPENAI_URL, json=body)
    error = _failure(openai, _request())
    assert "malformed reply" in str(error)
    assert not error.retryable


@responses.activate
def test_a_body_that_is_not_json_is_a_provider_error(openai: OpenAIProvider) -> None:
    responses.post(OPENAI_URL, body="<html>gateway</html>", status=200)
    error = _failure(openai, _request())
    assert "not JSON" in str(error)
    assert error.status == 200


def test_openai_without_api_key_env_sends_no_authorization(sleeps: Sleeps) -> None:
    config = ProviderConfig(
        name="ollama",
        type="openai",
        base_url="https://llm.example.test/v1",
        api_key_env=None,
        script=None,
        timeout_s=None,
        max_retries=None,
        models={},
    )
    provider = OpenAIProvider(config, sleep=sleeps)
    try:
        with responses.RequestsMock() as mock:
            mock.post(OPENAI_URL, json=OPENAI_REPLY)
            reply = asyncio.run(provider.complete(_request(model="llama3")))
            assert "Authorization" not in mock.calls[0].request.headers
    finally:
        provider.close()
    assert reply.usage.cost_usd == 0.0  # an unpriced model costs nothing


# --- Anthropic ---------------------------------------------------------------------------------


@responses.activate
def test_anthropic_request_shape_headers_and_usage(anthropic: AnthropicProvider) -> None:
    responses.post(ANTHROPIC_URL, json=ANTHROPIC_REPLY)
    reply = asyncio.run(anthropic.complete(_request(model="claude-x", temperature=0.0)))

    call = responses.calls[0]
    assert call.request.headers["x-api-key"] == KEY
    assert call.request.headers["anthropic-version"] == "2023-06-01"
    assert "Authorization" not in call.request.headers
    assert _sent(call) == {
        "model": "claude-x",
        "max_tokens": 1024,
        "system": "You review code.",
        "messages": [{"role": "user", "content": "Review a.py"}],
        "temperature": 0.0,
    }
    assert reply.text == "hello there"
    assert reply.finish_reason == "end_turn"
    # input_tokens excludes cache reads; the prompt is both.
    assert reply.usage.prompt_tokens == 1000
    assert reply.usage.cached_prompt_tokens == 900
    assert reply.usage.completion_tokens == 50
    assert reply.usage.cost_usd == pytest.approx((1000 * 2.0 + 50 * 8.0) / 1e6)


@responses.activate
def test_anthropic_json_mode_instructs_through_the_system_prompt(
    anthropic: AnthropicProvider,
) -> None:
    responses.post(ANTHROPIC_URL, json=ANTHROPIC_REPLY)
    user_only = (ChatMessage(role="user", content="Is a.py ok?"),)
    asyncio.run(
        anthropic.complete(
            _request(model="claude-x", json_mode=True, max_tokens=77, messages=user_only)
        )
    )
    sent = _sent(responses.calls[0])
    assert sent["system"] == JSON_ONLY
    assert sent["max_tokens"] == 77
    assert "response_format" not in sent


@responses.activate
def test_anthropic_malformed_reply_is_a_provider_error(anthropic: AnthropicProvider) -> None:
    responses.post(ANTHROPIC_URL, json={"content": [{"type": "text", "text": "x"}]})
    error = _failure(anthropic, _request(model="claude-x"))
    assert "malformed reply" in str(error)
    assert "usage" in str(error)


def test_anthropic_requires_a_key_variable() -> None:
    with pytest.raises(ConfigError, match="api_key_env"):
        AnthropicProvider(dataclasses.replace(_config("anthropic"), api_key_env=None))


# --- Retries -----------------------------------------------------------------------------------


@responses.activate
def test_429_waits_for_retry_after_then_succeeds(openai: OpenAIProvider, sleeps: Sleeps) -> None:
    responses.post(
        OPENAI_URL,
        status=429,
        headers={"Retry-After": "7"},
        json={"error": {"message": "slow down"}},
    )
    responses.post(OPENAI_URL, json=OPENAI_REPLY)
    assert asyncio.run(openai.complete(_request())).text == "hi"
    assert sleeps == [7.0]
    assert len(responses.calls) == 2


@responses.activate
def test_500_then_success_backs_off_with_jitter(
    anthropic: AnthropicProvider, sleeps: Sleeps
) -> None:
    responses.post(ANTHROPIC_URL, status=500, json={"type": "error", "error": {"message": "oops"}})
    responses.post(
        ANTHROPIC_URL, status=529, json={"type": "error", "error": {"message": "overloaded"}}
    )
    responses.post(ANTHROPIC_URL, json=ANTHROPIC_REPLY)
    assert asyncio.run(anthropic.complete(_request(model="claude-x"))).text == "hello there"
    assert sleeps == [0.5, 1.0]


@responses.activate
def test_timeout_is_retried(openai: OpenAIProvider, sleeps: Sleeps) -> None:
    responses.post(OPENAI_URL, body=requests.exceptions.ConnectTimeout("connect timed out"))
    responses.post(OPENAI_URL, json=OPENAI_REPLY)
    assert asyncio.run(openai.complete(_request())).text == "hi"
    assert sleeps == [0.5]


@responses.activate
def test_retries_exhausted_raise_a_retryable_error_with_status(
    openai: OpenAIProvider, sleeps: Sleeps
) -> None:
    responses.post(OPENAI_URL, status=503, json={"error": {"message": "try later"}})
    error = _failure(openai, _request())
    assert error.retryable
    assert error.status == 503
    assert len(responses.calls) == 4
    assert sleeps == [0.5, 1.0, 2.0]
    text = str(error)
    assert "'remote'" in text
    assert "/chat/completions" in text
    assert "503" in text
    assert "try later" in text
    assert "gave up after 4 attempts" in text


@responses.activate
def test_timeouts_exhausted_have_no_status(sleeps: Sleeps) -> None:
    provider = OpenAIProvider(
        _config("openai", base_url="https://llm.example.test/v1", max_retries=1), sleep=sleeps
    )
    try:
        responses.post(OPENAI_URL, body=requests.exceptions.ReadTimeout("read timed out"))
        error = _failure(provider, _request())
    finally:
        provider.close()
    assert error.retryable
    assert error.status is None
    assert "timed out" in str(error)
    assert len(responses.calls) == 2


@responses.activate
def test_400_is_not_retried(openai: OpenAIProvider, sleeps: Sleeps) -> None:
    responses.post(OPENAI_URL, status=400, json={"error": {"message": "max_tokens is too large"}})
    error = _failure(openai, _request())
    assert not error.retryable
    assert error.status == 400
    assert "max_tokens is too large" in str(error)
    assert sleeps == []
    assert len(responses.calls) == 1


def test_retry_after_is_capped_and_reads_http_dates() -> None:
    now = datetime(2025, 1, 1, tzinfo=UTC).timestamp()
    later = format_datetime(datetime(2025, 1, 1, 0, 0, 12, tzinfo=UTC), usegmt=True)
    assert parse_retry_after(later, now) == 12.0
    assert parse_retry_after("1.5", now) == 1.5
    assert parse_retry_after("-3", now) == 0.0
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None

    sleeps = Sleeps()
    client = HttpClient(
        provider="p",
        base_url="https://llm.example.test/v1",
        headers={},
        secret=None,
        # A call's waits end within its time-out: a long one lets the cap show.
        timeout_s=600,
        sleep=sleeps,
        clock=lambda: now,
    )
    try:
        with responses.RequestsMock() as mock:
            mock.post(OPENAI_URL, status=429, headers={"Retry-After": "3600"})
            mock.post(OPENAI_URL, status=503, headers={"Retry-After": later})
            mock.post(OPENAI_URL, json={"ok": True})
            assert client.post_json("/chat/completions", {}) == {"ok": True}
    finally:
        client.close()
    assert sleeps == [60.0, 12.0]


# --- Keys --------------------------------------------------------------------------------------


@responses.activate
def test_the_key_never_appears_in_errors(openai: OpenAIProvider) -> None:
    echoed = {"error": {"message": f"Incorrect API key provided: {KEY}. Get one at example.test"}}
    responses.post(OPENAI_URL, status=401, json=echoed)
    responses.post(OPENAI_URL, body=requests.exceptions.InvalidHeader(f"bad header Bearer {KEY}"))
    responses.post(OPENAI_URL, status=200, json={"choices": [], "note": KEY})

    errors = [_failure(openai, _request()) for _ in range(3)]
    for error in errors:
        assert KEY not in _everything_shown(error)
        assert KEY[:-1] not in _everything_shown(error)
    assert "[redacted]" in str(errors[0])
    assert "401" in str(errors[0])
    assert "api_key_env" in str(errors[0])


@responses.activate
def test_a_connection_error_carrying_the_key_is_scrubbed_and_unchained(
    openai: OpenAIProvider,
) -> None:
    responses.post(OPENAI_URL, body=requests.exceptions.ConnectionError(f"proxy refused {KEY}"))
    error = _failure(openai, _request())
    assert error.retryable
    assert KEY not in _everything_shown(error)


def test_a_long_message_is_scrubbed_before_it_is_cut() -> None:
    client = HttpClient(
        provider="p", base_url="https://llm.example.test/v1", headers={}, secret=KEY
    )
    try:
        with responses.RequestsMock() as mock:
            mock.post(OPENAI_URL, status=400, json={"error": {"message": "x" * 290 + KEY}})
            with pytest.raises(ProviderError) as caught:
                client.post_json("/chat/completions", {})
    finally:
        client.close()
    assert KEY[:8] not in str(caught.value)


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_missing_key_variable_is_a_config_error_naming_it(
    monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    monkeypatch.delenv(ENV)
    provider_class = OpenAIProvider if kind == "openai" else AnthropicProvider
    with pytest.raises(ConfigError, match=ENV) as caught:
        provider_class(_config(kind))
    assert KEY not in str(caught.value)


# --- A real server -----------------------------------------------------------------------------


class _ChatHandler(BaseHTTPRequestHandler):
    """A minimal OpenAI-compatible /v1/chat/completions that echoes the last message."""

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if (
            self.path != "/v1/chat/completions"
            or self.headers.get("Authorization") != f"Bearer {KEY}"
        ):
            self.send_error(404 if self.path != "/v1/chat/completions" else 401)
            return
        reply = {
            "model": body["model"],
            "choices": [
                {
                    "message": {
                        "role": "assistant",
                        "content": "echo: " + body["messages"][-1]["content"],
                    },
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": 12,
                "completion_tokens": 4,
                "prompt_tokens_details": {"cached_tokens": 0},
            },
        }
        payload = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        # Keep the test output clean.
        pass


def test_openai_provider_against_a_real_local_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ChatHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    provider = None
    try:
        base_url = f"http://127.0.0.1:{server.server_address[1]}/v1"
        provider = OpenAIProvider(_config("openai", base_url=base_url))
        reply = asyncio.run(provider.complete(_request(max_tokens=16)))
        assert reply.text == "echo: Review a.py"
        assert reply.model == "small"
        assert reply.usage.prompt_tokens == 12
        assert reply.usage.completion_tokens == 4
        assert reply.usage.cost_usd == pytest.approx((12 * 2.0 + 4 * 8.0) / 1e6)
    finally:
        if provider is not None:
            provider.close()
        server.shutdown()
        server.server_close()
        thread.join()


def test_a_cancelled_call_starts_no_further_attempt() -> None:
    stop = threading.Event()
    client = HttpClient(
        provider="p",
        base_url="https://llm.example.test/v1",
        headers={},
        secret=None,
        sleep=lambda _seconds: stop.set(),  # the caller is cancelled while we wait
    )
    try:
        with responses.RequestsMock() as mock:
            mock.post(OPENAI_URL, status=503)
            with pytest.raises(ProviderError, match="cancelled"):
                client.post_json("/chat/completions", {}, stop=stop)
            assert len(mock.calls) == 1
    finally:
        client.close()
