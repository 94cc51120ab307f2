"""How a mock script meets a workflow: entries no call can use are warned of (run, ci,
validate), ``ci`` says which roles the script plays and which are live, and ``inspect`` shows
the staged errors and the retries they caused."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from runner.compiler.pipeline import compile_file
from runner.main import main
from runner.providers.script import ScriptEntry, call_ids, load_script, unused_entries

WORKFLOW = """\
version: 1
name: judged
roles:
  writer: {}
  judge: {}
ci:
  mock_script: mocks/judged.yaml
steps:
  kind: sequence
  id: main
  steps:
    - kind: expand
      id: each
      over: '["a", "b"]'
      as: item
      max_children: 5
      body:
        kind: tournament
        id: best
        count: 2
        body: {kind: leaf, id: draft, role: writer, prompt: "Draft {{ item }} ({{ sample }})."}
        judge: {role: judge, prompt: "Score from 0 to 10: {{ candidate }}"}
    - kind: leaf
      id: ask
      role: writer
      prompt: Say hello.
      retry: {attempts: 2}
"""

SCRIPT = """\
nodes:
  "draft[1][0]": {reply: "one draft"}
  "draft*": {reply: "a draft"}
  "best[0]/judge*": {score: 7}
  "best*/judje*": {score: 1}
  "ask": {errors: [429, 429, 429, 429, 429], reply: "hello"}
"""


@pytest.fixture
def flows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder with the workflow and its mock script; the working directory."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mocks").mkdir()
    (tmp_path / "judged.yaml").write_text(WORKFLOW, encoding="utf-8")
    (tmp_path / "mocks" / "judged.yaml").write_text(SCRIPT, encoding="utf-8")
    return tmp_path


def test_call_ids_write_every_copy_index_as_zero(flows: Path) -> None:
    workflow = compile_file(str(flows / "judged.yaml"))
    assert call_ids(workflow) == [
        "main",
        "each",
        "best[0]",
        "best[0]/judge[0]",
        "draft[0][0]",
        "ask",
    ]


def test_a_copy_index_in_a_pattern_matches_that_copy() -> None:
    entry = ScriptEntry(pattern="best[0]/judge*")
    assert entry.matches("best[0]/judge[1]")
    assert entry.matches("best0/judge")  # still a character class too
    assert not entry.matches("best[1]/judge[0]")
    assert ScriptEntry(pattern="draft[1][0]").matches("draft[1][0]")
    assert not ScriptEntry(pattern="draft[1]*").matches("draft[0][1]")


def test_only_the_entry_no_call_can_use_is_reported(flows: Path) -> None:
    workflow = compile_file(str(flows / "judged.yaml"))
    script = load_script("mocks/judged.yaml")
    assert unused_entries(script, workflow) == [
        "mocks/judged.yaml:5: the mock script entry 'best*/judje*' matches no node of the "
        "workflow 'judged' (nearest: best[0]/judge[0]), so no call uses it"
    ]


def test_run_warns_of_unused_entries_and_inspect_shows_the_retries(
    flows: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--plain", "--state", "state", "--report-dir", "r"]
    assert main(["run", "judged.yaml", "--mock-script", "mocks/judged.yaml", *argv]) == 0
    err = capsys.readouterr().err
    assert err.count("warning: ") == 1
    assert "warning: mocks/judged.yaml:5: the mock script entry 'best*/judje*'" in err
    assert main(["inspect", "last", "--state", "state"]) == 0
    out = capsys.readouterr().out
    # Attempt 1 of `ask` gave up after 4 calls; its node retry's call failed once more.
    line = next(line for line in out.splitlines() if "ask leaf succeeded" in line)
    assert line.endswith("1 failed call retried (HTTP 429), ran 2 times (node retry) → hello")
    assert (
        "attempt 1 failed: mock script: call 4 of ask failed with HTTP 429 "
        "(gave up after 4 attempts)"
    ) in out
    assert main(["inspect", "last", "ask", "--state", "state"]) == 0
    detail = capsys.readouterr().out
    assert '"error": "mock script: call 5 of ask failed with HTTP 429"' in detail
    assert '"status": 429' in detail


def test_validate_warns_of_unused_entries_of_the_ci_script_and_still_passes(
    flows: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["validate", "judged.yaml"]) == 0
    captured = capsys.readouterr()
    assert captured.err.count("warning: ") == 1
    assert "'best*/judje*' matches no node of the workflow 'judged'" in captured.err
    assert main(["validate", "judged.yaml", "--format", "json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["valid"] is True
    assert "'best*/judje*'" in captured.err


def test_validate_refuses_a_ci_script_that_does_not_load(
    flows: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """ci would stop on it with exit 2, so the pre-commit hook must not call it valid."""
    (flows / "mocks" / "judged.yaml").write_text("nodes:\n  ask: {reply: [open\n")
    assert main(["validate", "judged.yaml"]) == 2
    out = capsys.readouterr().out
    assert "mocks/judged.yaml:3:1: [syntax] invalid YAML" in out
    assert main(["validate", "judged.yaml", "--format", "json"]) == 2
    found = json.loads(capsys.readouterr().out)
    assert found["valid"] is False
    assert found["files"][0]["diagnostics"][0]["file"] == "mocks/judged.yaml"


class _Chat(BaseHTTPRequestHandler):
    """An OpenAI-compatible chat-completions endpoint that answers every call alike."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        payload = json.dumps(
            {
                "model": "small",
                "choices": [{"message": {"content": "live draft"}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 5, "completion_tokens": 2},
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The base URL of a chat-completions server on loopback."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Chat)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_ci_says_which_roles_the_script_plays_and_which_are_live(
    flows: Path, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    (flows / "live.yaml").write_text(
        f"providers:\n  local: {{type: openai, base_url: '{endpoint}', models: {{small: {{}}}}}}\n"
        "roles:\n  writer: {provider: local}\n  judge: {provider: mock}\n",
        encoding="utf-8",
    )
    argv = ["--config", "live.yaml", "--state", "state", "--report-dir", "out"]
    assert main(["ci", "judged.yaml", *argv]) == 0
    out = capsys.readouterr().out
    assert (
        "judged: roles mocked by mocks/judged.yaml: judge; live: writer on local (small)\n"
    ) in out
    assert "roles: judge on mock, writer on local (small)" in out
