"""A leaf's output schema reaches the model: natively where the model has the ``json_schema``
capability, otherwise stated in its messages. Checked at a loopback server, which answers the
way the real APIs do; the run passes on those answers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from conftest import GOOD_YAML
from loopback import model_server

from runner.config import Provider as ProviderConfig
from runner.main import main
from runner.providers import structured
from runner.providers.anthropic import AnthropicProvider
from runner.providers.base import ChatMessage, ModelRequest, ProviderError

ENV = "BRANCHLEAF_OUTPUT_SCHEMA_KEY"
SCHEMA = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}


def _run(
    kind: str,
    capabilities: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> list[dict[str, Any]]:
    """The bodies the server received for a run of the two-file review, which must pass."""
    monkeypatch.setenv(ENV, "sk-test")
    with model_server() as seen:
        base_url = seen.url + "/v1"
        (tmp_path / "branchleaf.yaml").write_text(
            "providers:\n"
            f"  peer: {{type: {kind}, base_url: '{base_url}', api_key_env: {ENV},"
            f" max_retries: 0, models: {{m: {{capabilities: [{capabilities}]}}}}}}\n"
            "roles:\n  reviewer: {provider: peer, model: m}\n",
            encoding="utf-8",
        )
        (tmp_path / "good.yaml").write_text(GOOD_YAML, encoding="utf-8")
        monkeypatch.chdir(tmp_path)
        code = main(["run", "good.yaml", "--plain", "--state", "s"])
    captured = capsys.readouterr()
    assert code == 0, captured.out + captured.err
    assert len(seen.bodies) == 2
    return seen.bodies


def _recorded_requests(tmp_path: Path) -> list[dict[str, Any]]:
    """The requests the run's trace recorded, read from the real state database."""
    with contextlib.closing(sqlite3.connect(tmp_path / "s" / "state.db")) as db:
        rows = db.execute("SELECT data FROM events WHERE type = 'model_call'").fetchall()
    return [json.loads(data)["request"] for (data,) in rows]


def test_openai_with_json_schema_gets_structured_outputs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    received = _run("openai", "json_mode, json_schema", tmp_path, monkeypatch, capsys)
    for body in received:
        assert body["response_format"] == {
            "type": "json_schema",
            # Not strict: the schema leaves additionalProperties open, which strict mode rejects.
            "json_schema": {"name": "output", "schema": SCHEMA, "strict": False},
        }
        assert all("JSON Schema" not in m["content"] for m in body["messages"])
    recorded = _recorded_requests(tmp_path)
    assert len(recorded) == 2
    assert all(request["structured"] is True for request in recorded)


def test_openai_without_json_schema_is_told_the_schema(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    received = _run("openai", "json_mode", tmp_path, monkeypatch, capsys)
    for body in received:
        assert body["response_format"] == {"type": "json_object"}
        system = body["messages"][0]
        assert system["role"] == "system"
        assert "satisfies this JSON Schema" in system["content"]
        assert json.dumps(SCHEMA, sort_keys=True, separators=(",", ":")) in system["content"]
    recorded = _recorded_requests(tmp_path)
    # What was sent is what the trace holds, and the key covers it with the messages.
    assert all("JSON Schema" in request["messages"][0][1] for request in recorded)
    assert all("structured" not in request for request in recorded)


def test_anthropic_with_json_schema_is_made_to_call_a_tool_of_that_schema(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    received = _run("anthropic", "json_mode, json_schema", tmp_path, monkeypatch, capsys)
    for body in received:
        assert body["tools"] == [
            {
                "name": "output",
                "description": "Give the answer, in the shape the schema requires.",
                "input_schema": SCHEMA,
            }
        ]
        assert body["tool_choice"] == {"type": "tool", "name": "output"}
        # The forced tool is the whole instruction: no prose about JSON is added.
        assert "system" not in body


def test_anthropic_without_json_schema_is_told_the_schema_in_the_system_prompt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    received = _run("anthropic", "json_mode", tmp_path, monkeypatch, capsys)
    for body in received:
        assert "tools" not in body
        assert "satisfies this JSON Schema" in body["system"]
        assert '"required":["ok"]' in body["system"]


def test_a_closed_schema_is_sent_strict() -> None:
    closed = {**SCHEMA, "additionalProperties": False}
    assert structured.strict_ready(closed)
    assert not structured.strict_ready(SCHEMA)
    nested = {**closed, "properties": {"ok": {"type": "object", "properties": {"x": {}}}}}
    assert not structured.strict_ready(nested)


def test_an_anthropic_tool_wraps_a_schema_that_is_not_an_object_and_unwraps_the_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(ENV, "sk-test")
    listed = {"type": "array", "items": {"type": "string"}}
    with model_server() as seen:
        base_url = seen.url + "/v1"
        provider = AnthropicProvider(
            ProviderConfig(
                name="peer",
                type="anthropic",
                base_url=base_url,
                api_key_env=ENV,
                script=None,
                timeout_s=None,
                max_retries=0,
                models={},
            )
        )
        request = ModelRequest(
            node_id="a",
            role="r",
            model="m",
            messages=(ChatMessage(role="user", content="List files"),),
            output_schema=listed,
            structured=True,
        )
        body = provider.body(request)
        assert body["tools"][0]["input_schema"] == {
            "type": "object",
            "properties": {"value": listed},
            "required": ["value"],
        }
        with pytest.raises(ProviderError, match="the output tool input has no 'value'"):
            # The loopback server answers with the object answer, not wrapped in value.
            asyncio.run(provider.complete(request))
    reply = {
        "type": "message",
        "content": [{"type": "tool_use", "name": "output", "input": {"value": ["a.py"]}}],
        "usage": {"input_tokens": 1, "output_tokens": 1},
    }
    assert provider._reply(request, "m", reply).text == '["a.py"]'
