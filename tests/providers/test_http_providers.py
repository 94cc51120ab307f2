"""Tests for the HTTP providers: request shapes, usage, retries, errors and key hygiene."""

from __future__ import annotations

import asyncio
import dataclasses
import random
import traceback
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import pytest
from loopback import Reply, Script, scripted_server

from runner.config import Model
from runner.config import Provider as ProviderConfig
from runner.errors import ConfigError
from runner.providers.anthropic import AnthropicProvider
from runner.providers.base import ChatMessage, ModelRequest, ProviderError
from runner.providers.http import JSON_ONLY, HttpClient, parse_retry_after
from runner.providers.openai import OpenAIProvider

KEY = "sk-test-DO-NOT-LEAK-7f3a9c1e5b"
ENV = "BRANCHLEAF_TEST_KEY"

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
    """An injected sleep that records how long it was asked to wait, and does not wait."""

    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


class TopJitter(random.Random):
    """A random source whose jitter is always the top of the range, to make backoff visible."""

    def uniform(self, a: float, b: float) -> float:
        return b


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, KEY)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.setenv("no_proxy", "127.0.0.1")


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def server() -> Iterator[Script]:
    """A loopback server; a test plans its answers with ``server.plan.append(Reply(...))``."""
    with scripted_server() as script:
        yield script


@pytest.fixture
def openai(server: Script, sleeps: Sleeps) -> OpenAIProvider:
    config = _config("openai", base_url=f"{server.url}/v1/")
    return OpenAIProvider(config, sleep=sleeps, rng=TopJitter())


@pytest.fixture
def anthropic(server: Script, sleeps: Sleeps) -> AnthropicProvider:
    config = _config("anthropic", base_url=f"{server.url}/v1")
    return AnthropicProvider(config, sleep=sleeps, rng=TopJitter())


def _answer(server: Script, *replies: Reply) -> None:
    server.plan.extend(replies)


def _failure(provider: OpenAIProvider | AnthropicProvider, request: ModelRequest) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        asyncio.run(provider.complete(request))
    return caught.value


def _everything_shown(error: BaseException) -> str:
    return "".join(traceback.format_exception(error))


# --- OpenAI-compatible -------------------------------------------------------------------------


def test_openai_request_shape_auth_usage_and_cost(openai: OpenAIProvider, server: Script) -> None:
    _answer(server, Reply(json=OPENAI_REPLY))
    reply = asyncio.run(openai.complete(_request(temperature=0.2, max_tokens=64)))

    (call,) = server.calls
    assert call.path == "/v1/chat/completions"
    assert call.headers["authorization"] == f"Bearer {KEY}"
    assert call.headers["content-type"] == "application/json"
    assert call.headers["user-agent"].startswith("branchleaf/")
    assert call.body == {
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


def test_openai_json_mode_asks_for_a_json_object(openai: OpenAIProvider, server: Script) -> None:
    _answer(server, Reply(json=OPENAI_REPLY), Reply(json=OPENAI_REPLY))
    asyncio.run(openai.complete(_request(json_mode=True)))
    mentioned = (ChatMessage(role="user", content="Answer in JSON: is a.py ok?"),)
    asyncio.run(openai.complete(_request(json_mode=True, messages=mentioned)))

    first, second = (call.body for call in server.calls)
    assert first["response_format"] == {"type": "json_object"}
    assert "temperature" not in first
    assert "max_tokens" not in first
    # OpenAI refuses json_object unless some message says JSON; the system prompt gains a line.
    assert first["messages"][0] == {"role": "system", "content": f"You review code.\n\n{JSON_ONLY}"}
    assert second["messages"] == [{"role": "user", "content": "Answer in JSON: is a.py ok?"}]


def test_deepseek_cache_hits_and_missing_usage(openai: OpenAIProvider, server: Script) -> None:
    deepseek = {
        **OPENAI_REPLY,
        "usage": {"prompt_tokens": 10, "completion_tokens": 2, "prompt_cache_hit_tokens": 8},
    }
    _answer(server, Reply(json=deepseek), Reply(json={**OPENAI_REPLY, "usage": None}))
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
def test_openai_malformed_reply_is_a_provider_error(
    openai: OpenAIProvider, server: Script, body: Any
) -> None:
    _answer(server, Reply(json=body))
    error = _failure(openai, _request())
    assert "malformed reply" in str(error)
    assert not error.retryable


def test_a_body_that_is_not_json_is_a_provider_error(
    openai: OpenAIProvider, server: Script
) -> None:
    _answer(server, Reply(body=b"<html>gateway</html>", headers={"Content-Type": "text/html"}))
    error = _failure(openai, _request())
    assert "not JSON" in str(error)
    assert error.status == 200


def test_openai_without_api_key_env_sends_no_authorization(server: Script, sleeps: Sleeps) -> None:
    config = ProviderConfig(
        name="ollama",
        type="openai",
        base_url=f"{server.url}/v1",
        api_key_env=None,
        script=None,
        timeout_s=None,
        max_retries=None,
        models={},
    )
    provider = OpenAIProvider(config, sleep=sleeps)
    _answer(server, Reply(json=OPENAI_REPLY))
    reply = asyncio.run(provider.complete(_request(model="llama3")))
    assert "authorization" not in server.calls[0].headers
    assert reply.usage.cost_usd == 0.0  # an unpriced model costs nothing


# --- Anthropic ---------------------------------------------------------------------------------


def test_anthropic_request_shape_headers_and_usage(
    anthropic: AnthropicProvider, server: Script
) -> None:
    _answer(server, Reply(json=ANTHROPIC_REPLY))
    reply = asyncio.run(anthropic.complete(_request(model="claude-x", temperature=0.0)))

    (call,) = server.calls
    assert call.path == "/v1/messages"
    assert call.headers["x-api-key"] == KEY
    assert call.headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in call.headers
    assert call.body == {
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


def test_anthropic_json_mode_instructs_through_the_system_prompt(
    anthropic: AnthropicProvider, server: Script
) -> None:
    _answer(server, Reply(json=ANTHROPIC_REPLY))
    user_only = (ChatMessage(role="user", content="Is a.py ok?"),)
    asyncio.run(
        anthropic.complete(
            _request(model="claude-x", json_mode=True, max_tokens=77, messages=user_only)
        )
    )
    sent = server.calls[0].body
    assert sent["system"] == JSON_ONLY
    assert sent["max_tokens"] == 77
    assert "response_format" not in sent


def test_anthropic_malformed_reply_is_a_provider_error(
    anthropic: AnthropicProvider, server: Script
) -> None:
    _answer(server, Reply(json={"content": [{"type": "text", "text": "x"}]}))
    error = _failure(anthropic, _request(model="claude-x"))
    assert "malformed reply" in str(error)
    assert "usage" in str(error)


def test_anthropic_requires_a_key_variable() -> None:
    with pytest.raises(ConfigError, match="api_key_env"):
        AnthropicProvider(dataclasses.replace(_config("anthropic"), api_key_env=None))


# --- Retries -----------------------------------------------------------------------------------


def test_429_waits_for_retry_after_then_succeeds(
    openai: OpenAIProvider, server: Script, sleeps: Sleeps
) -> None:
    slow_down = Reply(429, {"error": {"message": "slow down"}}, headers={"Retry-After": "7"})
    _answer(server, slow_down, Reply(json=OPENAI_REPLY))
    assert asyncio.run(openai.complete(_request())).text == "hi"
    assert sleeps == [7.0]
    assert len(server.calls) == 2


def test_500_then_success_backs_off_with_jitter(
    anthropic: AnthropicProvider, server: Script, sleeps: Sleeps
) -> None:
    _answer(
        server,
        Reply(500, {"type": "error", "error": {"message": "oops"}}),
        Reply(529, {"type": "error", "error": {"message": "overloaded"}}),
        Reply(json=ANTHROPIC_REPLY),
    )
    assert asyncio.run(anthropic.complete(_request(model="claude-x"))).text == "hello there"
    assert sleeps == [0.5, 1.0]


def test_a_dropped_connection_is_retried(
    openai: OpenAIProvider, server: Script, sleeps: Sleeps
) -> None:
    _answer(server, Reply(hang_up=True), Reply(json=OPENAI_REPLY))
    assert asyncio.run(openai.complete(_request())).text == "hi"
    assert sleeps == [0.5]
    assert len(server.calls) == 2


def test_retries_exhausted_raise_a_retryable_error_with_status(
    openai: OpenAIProvider, server: Script, sleeps: Sleeps
) -> None:
    _answer(server, *[Reply(503, {"error": {"message": "try later"}})] * 4)
    error = _failure(openai, _request())
    assert error.retryable
    assert error.status == 503
    assert len(server.calls) == 4
    assert sleeps == [0.5, 1.0, 2.0]
    text = str(error)
    assert "'remote'" in text
    assert "/chat/completions" in text
    assert "503" in text
    assert "try later" in text
    assert "gave up after 4 attempts" in text


def test_a_silent_server_times_the_call_out_without_a_status(
    server: Script, sleeps: Sleeps
) -> None:
    config = _config("openai", base_url=f"{server.url}/v1", max_retries=1)
    provider = OpenAIProvider(dataclasses.replace(config, timeout_s=0.3), sleep=sleeps)
    _answer(server, Reply(json=OPENAI_REPLY, hold_s=5))
    error = _failure(provider, _request())
    assert error.retryable
    assert error.status is None
    assert "timed out: no answer within timeout_s 0.3 s" in str(error)
    # The call's time is spent: no retry starts past it.
    assert len(server.calls) == 1
    assert sleeps == []


def test_400_is_not_retried(openai: OpenAIProvider, server: Script, sleeps: Sleeps) -> None:
    _answer(server, Reply(400, {"error": {"message": "max_tokens is too large"}}))
    error = _failure(openai, _request())
    assert not error.retryable
    assert error.status == 400
    assert "max_tokens is too large" in str(error)
    assert sleeps == []
    assert len(server.calls) == 1


def test_retry_after_is_capped_and_reads_http_dates(server: Script) -> None:
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
        base_url=f"{server.url}/v1",
        headers={},
        secret=None,
        # A call's waits end within its time-out: a long one lets the cap show.
        timeout_s=600,
        sleep=sleeps,
        clock=lambda: now,
    )
    _answer(
        server,
        Reply(429, {}, headers={"Retry-After": "3600"}),
        Reply(503, {}, headers={"Retry-After": later}),
        Reply(json={"ok": True}),
    )
    assert asyncio.run(client.post_json("/chat/completions", {})) == {"ok": True}
    assert sleeps == [60.0, 12.0]


def test_a_cancelled_call_starts_no_further_attempt(server: Script) -> None:
    async def cancelled_while_waiting(seconds: float) -> None:
        task = asyncio.current_task()
        assert task is not None
        task.cancel()
        await asyncio.sleep(seconds)

    client = HttpClient(
        provider="p",
        base_url=f"{server.url}/v1",
        headers={},
        secret=None,
        sleep=cancelled_while_waiting,
    )
    _answer(server, Reply(503, {}), Reply(json={"ok": True}))
    with pytest.raises(asyncio.CancelledError):
        asyncio.run(client.post_json("/chat/completions", {}))
    assert len(server.calls) == 1


# --- Keys --------------------------------------------------------------------------------------


def test_the_key_never_appears_in_errors(openai: OpenAIProvider, server: Script) -> None:
    echoed = {"error": {"message": f"Incorrect API key provided: {KEY}. Get one at example.test"}}
    _answer(
        server,
        Reply(401, echoed),
        # Not HTTP: the HTTP client's own message quotes the line it could not read.
        Reply(raw=f"HTTP/1.1 200 OK\r\nBearer {KEY}\r\n\r\n".encode()),
        Reply(json={"choices": [], "note": KEY}),
    )
    errors = [_failure(openai, _request()) for _ in range(3)]
    for error in errors:
        assert KEY not in _everything_shown(error)
        assert KEY[:-1] not in _everything_shown(error)
    assert "[redacted]" in str(errors[0])
    assert "401" in str(errors[0])
    assert "api_key_env" in str(errors[0])


def test_an_exception_carrying_the_key_is_scrubbed_and_unchained(
    server: Script, sleeps: Sleeps
) -> None:
    config = _config("openai", base_url=f"{server.url}/v1", max_retries=0)
    provider = OpenAIProvider(config, sleep=sleeps)
    _answer(server, Reply(raw=f"HTTP/1.1 200 OK {KEY}\r\nX: {KEY}\r\n".encode()))
    error = _failure(provider, _request())
    assert error.retryable
    assert KEY not in _everything_shown(error)
    assert error.__cause__ is None


def test_a_long_message_is_scrubbed_before_it_is_cut(server: Script) -> None:
    client = HttpClient(provider="p", base_url=f"{server.url}/v1", headers={}, secret=KEY)
    _answer(server, Reply(400, {"error": {"message": "x" * 290 + KEY}}))
    with pytest.raises(ProviderError) as caught:
        asyncio.run(client.post_json("/chat/completions", {}))
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


# --- Connections -------------------------------------------------------------------------------


def test_calls_of_a_run_share_one_kept_alive_connection(
    openai: OpenAIProvider, server: Script
) -> None:
    _answer(server, *[Reply(json=OPENAI_REPLY)] * 3)

    async def three() -> None:
        for _ in range(3):
            await openai.complete(_request())

    asyncio.run(three())
    assert len(server.calls) == 3
    assert len(server.peers) == 1
