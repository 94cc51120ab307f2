"""How a mock script meets a workflow: entries no call can use are warned of (run, ci,
validate), ``ci`` says which roles the script plays and which are live, ``inspect`` shows
the staged errors and the retries they caused, and the documented script stages learning: a
student that passes only when its prompt says how, and a teacher scripted by role."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from runner import docgen_config
from runner.canonical import canonical_json
from runner.compiler.pipeline import compile_file
from runner.compiler.schema import load_schema
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


# Staging learning: the script of the reference's "Staging learning" section

LEARNING = """\
version: 1
name: locate
inputs:
  note: {type: string, default: ""}
roles:
  locator: {}
  teacher: {}
steps:
  kind: sequence
  id: main
  steps:
    - kind: leaf
      id: locate
      role: locator
      prompt: "Which file builds the cache key? {{ inputs.note }}"
"""

TEACHER = "    - {kind: teacher_review, id: review, inputs: [locate]}\n"

NAMES_THE_FILE = """\
tests:
  - name: names the file
    expect: "outputs.locate == 'runner/cache.py'"
"""

NOTE = "note=Answer with the file name only."


@pytest.fixture
def learning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The documented learning script, written to mocks/learn.yaml; the working directory."""
    monkeypatch.chdir(tmp_path)
    staged = next(
        section["example"]
        for section in docgen_config.sections(load_schema("mock-script.schema.json"))
        if section["title"] == "Staging learning"
    )
    text = yaml.safe_dump(staged, sort_keys=False)
    (tmp_path / "mocks").mkdir()
    (tmp_path / "mocks" / "learn.yaml").write_text(text, encoding="utf-8")
    return text


def _run(*extra: str) -> tuple[int, dict[str, Any]]:
    argv = ["--plain", "--state", "state", "--report-dir", "r", "--mock-script", "mocks/learn.yaml"]
    code = main(["run", "locate.yaml", *argv, *extra])
    return code, json.loads(Path("r/locate.summary.json").read_text(encoding="utf-8"))


def test_the_student_passes_its_test_only_when_its_prompt_holds_the_note(
    learning: str, capsys: pytest.CaptureFixture[str]
) -> None:
    Path("locate.yaml").write_text(LEARNING + NAMES_THE_FILE, encoding="utf-8")
    code, failed = _run()
    assert code == 1
    assert failed["tests"] == [
        {"name": "names the file", "passed": False, "message": failed["tests"][0]["message"]}
    ]
    code, passed = _run("--input", NOTE)
    assert code == 0
    assert passed["tests"] == [{"name": "names the file", "passed": True, "message": None}]
    assert main(["inspect", "last", "locate", "--state", "state"]) == 0
    out = capsys.readouterr().out
    line = learning.splitlines().index("    - when:") + 1
    assert f'"model": "mock (case 1 of \'locate\', mocks/learn.yaml:{line})"' in out
    assert '"text": "runner/cache.py"' in out


def test_a_teacher_review_is_answered_by_the_role_entry_by_what_it_is_shown(
    learning: str, capsys: pytest.CaptureFixture[str]
) -> None:
    Path("locate.yaml").write_text(LEARNING + TEACHER, encoding="utf-8")
    lines = learning.splitlines()
    teacher = lines.index("    - when:", lines.index("roles:")) + 1
    default = lines.index("    - reply:", teacher) + 1
    staged = yaml.safe_load(learning)["roles"]["teacher"]["cases"]
    # The student explains itself: the teacher, shown that, proposes the note.
    _run()
    assert main(["inspect", "last", "review", "--state", "state"]) == 0
    out = capsys.readouterr().out
    assert f'"model": "mock (case 1 of \'teacher\', mocks/learn.yaml:{teacher})"' in out
    assert f'"text": {json.dumps(canonical_json(staged[0]["reply"]))}' in out
    assert '"role": "teacher"' in out
    # Told how, the student answers with the file name, and the teacher proposes nothing.
    code, summary = _run("--input", NOTE)
    assert code == 0
    assert summary["output"] == {"lessons": []}
    assert main(["inspect", "last", "review", "--state", "state"]) == 0
    out = capsys.readouterr().out
    assert f'"model": "mock (case 2 of \'teacher\', mocks/learn.yaml:{default})"' in out
