"""A provider's answer is read as strict JSON with bounded nesting: a reply nested thousands of
levels deep, or holding NaN, is a provider failure in one sentence, never a RecursionError."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from conftest import GOOD_YAML

from runner.config import Model
from runner.config import Provider as ProviderConfig
from runner.main import main
from runner.providers.anthropic import AnthropicProvider
from runner.providers.base import ChatMessage, ModelRequest, ProviderError
from runner.providers.openai import OpenAIProvider
from runner.render import OutputError, parse_reply

ENV = "BRANCHLEAF_REPLY_JSON_KEY"
REQUEST = ModelRequest(
    node_id="a", role="r", model="m", messages=(ChatMessage(role="user", content="hi"),)
)
OPENAI_REPLY = {
    "choices": [{"message": {"content": "ok"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1},
}
ANTHROPIC_REPLY = {
    "type": "message",
    "model": "m",
    "content": [{"type": "text", "text": "ok"}],
    "usage": {"input_tokens": 1, "output_tokens": 1},
}
TOO_DEEP = "more than 100 levels deep"


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, "sk-test")


@pytest.fixture(params=["openai", "anthropic"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _serving(status: int, body: bytes) -> Iterator[str]:
    class _Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


def _complete(kind: str, status: int, body: bytes) -> str:
    """The reply's text, or the message of the ProviderError it ended in."""
    for base_url in _serving(status, body):
        config = ProviderConfig(
            name="remote",
            type=kind,
            base_url=base_url,
            api_key_env=ENV,
            script=None,
            timeout_s=10.0,
            max_retries=0,
            models={
                "m": Model(name="m", capabilities=frozenset(), input_per_mtok=0, output_per_mtok=0)
            },
        )
        provider = OpenAIProvider(config) if kind == "openai" else AnthropicProvider(config)
        try:
            return asyncio.run(provider.complete(REQUEST)).text
        except ProviderError as error:
            return f"ProviderError: {error}"
    raise AssertionError("no server")


def _reply(kind: str) -> dict[str, Any]:
    return OPENAI_REPLY if kind == "openai" else ANTHROPIC_REPLY


@pytest.mark.parametrize("depth", [150, 100_000])
def test_a_success_nested_too_deep_is_a_provider_failure(kind: str, depth: int) -> None:
    # 150 levels the standard reader takes; 100,000 exhaust its recursion.
    said = _complete(kind, 200, b"[" * depth + b"]" * depth)
    assert said.startswith("ProviderError: ")
    assert "returned HTTP 200 with JSON that cannot be used (the value nests" in said
    assert TOO_DEEP in said


def test_an_error_body_nested_too_deep_still_reports_the_status(kind: str) -> None:
    said = _complete(kind, 400, b'{"error":' * 5000 + b"1" + b"}" * 5000)
    assert said.startswith("ProviderError: ")
    assert "failed with HTTP 400 Bad Request" in said
    assert "Recursion" not in said


def test_nan_in_a_success_is_a_provider_failure(kind: str) -> None:
    body = json.dumps(_reply(kind)).replace("1}", "NaN}").encode()
    assert b"NaN" in body
    said = _complete(kind, 200, body)
    assert "returned HTTP 200 with JSON that cannot be used (NaN is not a JSON number)" in said


def test_a_success_that_is_not_utf8_says_so(kind: str) -> None:
    body = json.dumps(_reply(kind)).replace('"ok"', '"\\u00ff"').encode()
    said = _complete(kind, 200, body.replace(b"\\u00ff", b"\xff"))
    assert "returned HTTP 200 with a body that is not UTF-8 text" in said


def test_a_success_with_a_byte_order_mark_is_read(kind: str) -> None:
    assert _complete(kind, 200, b"\xef\xbb\xbf" + json.dumps(_reply(kind)).encode()) == "ok"


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("[" * 100_000 + "]" * 100_000, "the reply cannot be used: the value nests lists"),
        ("[" * 150 + "]" * 150, "the reply cannot be used: the value nests lists"),
        ('{"score": NaN}', "the reply cannot be used: NaN is not a JSON number"),
        ('{"score": ', "the reply is not JSON (Expecting value at line 1 column 11)"),
    ],
    ids=["deep", "deeper-than-the-bound", "nan", "garbled"],
)
@pytest.mark.parametrize("schema", [{}, {"type": "array"}], ids=["any", "array"])
def test_a_reply_text_is_read_as_bounded_strict_json(
    text: str, said: str, schema: dict[str, Any]
) -> None:
    with pytest.raises(OutputError) as caught:
        parse_reply(text, schema)
    assert str(caught.value).startswith(said)


def test_a_run_whose_model_replies_too_deep_fails_the_node(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    reply = {**OPENAI_REPLY, "choices": [{"message": {"content": deep}, "finish_reason": "stop"}]}
    for base_url in _serving(200, json.dumps(reply).encode()):
        (tmp_path / "branchleaf.yaml").write_text(
            "providers:\n"
            f"  peer: {{type: openai, base_url: '{base_url}', api_key_env: {ENV},"
            " max_retries: 0, models: {m: {capabilities: [json_mode]}}}\n"
            "roles:\n  reviewer: {provider: peer, model: m}\n",
            encoding="utf-8",
        )
        (tmp_path / "good.yaml").write_text(GOOD_YAML, encoding="utf-8")
        monkeypatch.chdir(tmp_path)
        code = main(["run", "good.yaml", "--plain", "--state", "s"])
    captured = capsys.readouterr()
    said = captured.out + captured.err
    assert code == 1, said
    assert "the reply cannot be used: the value nests lists and mappings more than 100" in said
    assert "internal error" not in said
