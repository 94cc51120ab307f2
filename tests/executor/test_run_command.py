"""`branchleaf run` as users run it: exit codes, messages and the JSON summary."""

from __future__ import annotations

import json
import sys
import textwrap
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from runner.main import main

WORKFLOW = """\
version: 1
name: small
inputs: {n: {type: integer, default: 2}}
roles: {reviewer: {needs: [json_mode]}}
steps:
  kind: sequence
  id: main
  steps:
    - kind: expand
      id: review
      over: "range(inputs.n) | list"
      as: item
      max_children: 10
      body:
        kind: leaf
        id: one
        role: reviewer
        prompt: "Review item {{ item }}."
        output: {type: object, properties: {ok: {type: boolean}}, required: [ok]}
    - kind: reduce
      id: oks
      inputs: [review]
      expr: "outputs.review | selectattr('ok') | list | length"
tests:
  - {name: every item reviewed, expect: "outputs.review | length == inputs.n"}
  - {name: {test_name}, expect: "{expect}"}
"""
SCRIPT = """\
nodes:
  "one[1]": {reply: {ok: false}}
  "one*": {reply: {ok: true}}
"""


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write(path: Path, text: str) -> str:
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path.name


def workflow(expect: str = "outputs.oks == inputs.n - 1", test_name: str = "one not ok") -> str:
    return WORKFLOW.replace("{test_name}", test_name).replace("{expect}", expect)


def summary(workdir: Path, name: str = "small") -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        (workdir / "reports" / f"{name}.summary.json").read_text(encoding="utf-8")
    )
    return data


def run(*args: str) -> int:
    return main(["run", *args, "--report-dir", "reports"])


def test_run_passes_and_writes_the_summary(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wf = write(workdir / "wf.yaml", workflow())
    script = write(workdir / "script.yaml", SCRIPT)
    assert run(wf, "--mock-script", script) == 0
    out = capsys.readouterr().out
    assert "small: succeeded" in out
    assert "summary written to reports/small.summary.json" in out
    data = summary(workdir)
    assert data["status"] == "succeeded"
    assert data["passed"] is True
    assert data["reason"] is None
    assert data["output"] == 1
    assert data["tests"] == [
        {"name": "every item reviewed", "passed": True, "message": None},
        {"name": "one not ok", "passed": True, "message": None},
    ]
    nodes = {node["path"]: node for node in data["nodes"]}
    assert set(nodes) == {"one[0]", "one[1]", "review", "oks", "main"}
    assert all(node["status"] == "succeeded" for node in nodes.values())
    assert nodes["one[1]"]["id"] == "one"
    assert nodes["review"]["decision"] == {"items": 2}
    assert data["spend"]["calls"] == 2
    assert data["spend"]["prompt_tokens"] > 0
    assert not list((workdir / "reports").glob("*.tmp"))


def test_a_failing_workflow_test_exits_1(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    wf = write(workdir / "wf.yaml", workflow(expect="outputs.oks == inputs.n", test_name="all ok"))
    script = write(workdir / "script.yaml", SCRIPT)
    assert run(wf, "--mock-script", script) == 1
    out = capsys.readouterr().out
    assert "all ok" in out
    data = summary(workdir)
    assert data["status"] == "succeeded"
    assert data["passed"] is False
    assert data["tests"][1] == {
        "name": "all ok",
        "passed": False,
        "message": "expected 'outputs.oks == inputs.n' to hold, got 1 == 2",
    }


def test_a_failing_node_exits_1_and_is_listed(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wf = write(workdir / "wf.yaml", workflow())
    script = write(workdir / "script.yaml", 'nodes:\n  "one[1]": {reply: "not json"}\n')
    assert run(wf, "--mock-script", script) == 1
    out = capsys.readouterr().out
    assert "nodes that did not succeed" in out
    assert "one[1]" in out
    assert "│ not evaluated: the run ended failed" in out  # not "failed not evaluated"
    data = summary(workdir)
    assert data["status"] == "failed"
    assert data["tests"]
    assert all(not test["passed"] for test in data["tests"])
    assert {test["message"] for test in data["tests"]} == {"not evaluated: the run ended failed"}
    failed = [node for node in data["nodes"] if node["status"] == "failed"]
    assert [node["path"] for node in failed] == ["one[1]", "review", "main"]
    assert "the reply is not JSON" in failed[0]["error"]
    assert [n["path"] for n in data["nodes"] if n["status"] == "skipped"] == ["oks"]


def test_inputs_are_typed_by_their_declaration(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wf = write(workdir / "wf.yaml", workflow())
    script = write(workdir / "script.yaml", SCRIPT)
    assert run(wf, "--mock-script", script, "--input", "n=3") == 0
    data = summary(workdir)
    assert data["output"] == 2
    assert [n["path"] for n in data["nodes"] if n["id"] == "one"] == ["one[0]", "one[1]", "one[2]"]

    capsys.readouterr()
    assert run(wf, "--input", "n=three") == 2
    err = capsys.readouterr().err
    assert "--input n=three is not a valid integer" in err
    assert run(wf, "--input", "n=2.5") == 2
    err = capsys.readouterr().err
    assert "--input n=2.5 is not a" in err
    assert "integer, as the workflow declares it" in err


def test_an_unknown_input_exits_2(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    wf = write(workdir / "wf.yaml", workflow())
    assert run(wf, "--input", "m=3") == 2
    captured = capsys.readouterr()
    assert "the workflow 'small' has no input 'm' (declared: n)" in captured.err
    assert not (workdir / "reports").exists()


def test_a_malformed_input_pair_exits_2(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    wf = write(workdir / "wf.yaml", workflow())
    assert run(wf, "--input", "n") == 2
    assert "--input 'n' is not of the form name=value" in capsys.readouterr().err


def test_a_bad_mock_script_exits_2_with_its_line(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wf = write(workdir / "wf.yaml", workflow())
    script = write(
        workdir / "script.yaml",
        """\
        nodes:
          one: {reply: {ok: true}}
          flaky: {errors: [404]}
        """,
    )
    assert run(wf, "--mock-script", script) == 2
    err = capsys.readouterr().err
    assert "script.yaml:3:" in err
    assert "/nodes/flaky/errors/0" in err
    assert not (workdir / "reports").exists()


def test_an_invalid_workflow_exits_2_before_running(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wf = write(workdir / "wf.yaml", workflow().replace("      max_children: 10\n", ""))
    assert run(wf) == 2
    err = capsys.readouterr().err
    assert "wf.yaml:" in err
    assert "max_children" in err
    assert not (workdir / "reports").exists()


def test_a_budget_stop_exits_1_with_a_summary(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wf = write(
        workdir / "wf.yaml",
        """\
        version: 1
        name: tight
        roles: {w: {}}
        budget: {tokens: 10}
        steps:
          kind: sequence
          id: main
          steps:
            - {kind: leaf, id: big, role: w, prompt: "hello", max_tokens: 500}
        """,
    )
    assert run(wf) == 1
    assert summary(workdir, "tight")["status"] == "budget_exceeded"


# -- a real OpenAI-compatible server on loopback ----------------------------------------------


class ChatServer(ThreadingHTTPServer):
    daemon_threads = True
    received: list[tuple[str, dict[str, Any]]]


class ChatHandler(BaseHTTPRequestHandler):
    server: ChatServer

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.received.append((self.path, body))
        if self.path != "/v1/chat/completions":
            self.send_error(404)
            return
        reply = {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "model": body["model"],
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": '{"ok": true}'},
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": 123,
                "completion_tokens": 7,
                "total_tokens": 130,
                "prompt_tokens_details": {"cached_tokens": 100},
            },
        }
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def chat_server() -> Iterator[ChatServer]:
    server = ChatServer(("127.0.0.1", 0), ChatHandler)
    server.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_a_role_served_by_an_openai_compatible_server(
    workdir: Path, capsys: pytest.CaptureFixture[str], chat_server: ChatServer
) -> None:
    port = chat_server.server_address[1]
    write(
        workdir / "branchleaf.yaml",
        f"""\
        providers:
          local:
            type: openai
            base_url: http://127.0.0.1:{port}/v1
            timeout_s: 10
            models:
              small:
                capabilities: [json_mode]
                price: {{input_per_mtok: 1.0, output_per_mtok: 2.0}}
        roles:
          reviewer: {{provider: local, model: small}}
        """,
    )
    wf = write(workdir / "wf.yaml", workflow(expect="outputs.oks == inputs.n", test_name="all ok"))
    assert run(wf, "--input", "n=1") == 0, capsys.readouterr()
    data = summary(workdir)
    assert data["status"] == "succeeded"
    assert data["output"] == 1
    assert data["spend"] == {
        "calls": 1,
        "prompt_tokens": 123,
        "completion_tokens": 7,
        "cached_prompt_tokens": 100,
        "cost_usd": pytest.approx((123 * 1.0 + 7 * 2.0) / 1_000_000),
    }
    [leaf] = [node for node in data["nodes"] if node["id"] == "one"]
    assert leaf["tokens"] == 130
    assert data["roles"] == {"reviewer": {"provider": "local", "model": "small"}}
    out = capsys.readouterr().out
    assert "roles: reviewer on local (small)" in out
    # A cheap model's cost shows its digits, not $0.0000.
    assert "1 model call, 130 tokens, $0.00014, " in out
    [(path, body)] = chat_server.received
    assert path == "/v1/chat/completions"
    assert body["model"] == "small"
    assert body["response_format"] == {"type": "json_object"}
    assert body["messages"][-1] == {"role": "user", "content": "Review item 0."}


def test_mock_flag_ignores_the_config_and_runs_several_workflows(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(
        workdir / "branchleaf.yaml",
        """\
        providers:
          remote: {type: openai, base_url: "http://127.0.0.1:9/v1", api_key_env: UNSET_KEY_X}
        roles:
          default: {provider: remote}
        """,
    )
    wf = write(workdir / "wf.yaml", workflow(expect="true", test_name="runs"))
    lib = write(workdir / "lib.star", "def helper():\n    return 1\n")
    assert run(wf) == 2  # the configured provider cannot serve the workflow's roles
    assert "provider 'remote'" in capsys.readouterr().err
    assert run("--mock", lib, wf, wf) == 0
    out = capsys.readouterr().out
    assert f"{lib} skipped: not a workflow (library)" in out
    assert out.count("small: succeeded") == 2


def test_nothing_to_run_is_a_usage_error(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lib = write(workdir / "lib.star", "def helper():\n    return 1\n")
    assert run(lib) == 2
    assert "none of the files given is a workflow" in capsys.readouterr().err


CREDENTIALS = (
    "GITHUB_TOKEN",
    "GH_TOKEN",
    "ACTIONS_RUNTIME_TOKEN",
    "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
)
PRINT_ENV = "import json, os, sys; print(json.dumps([os.environ.get(n) for n in sys.argv[1:]]))"


def test_command_steps_do_not_inherit_the_ci_credentials(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in CREDENTIALS:
        monkeypatch.setenv(name, f"secret-{name.lower()}")
    monkeypatch.setenv("BL_ORDINARY", "kept")
    argv = json.dumps([sys.executable, "-c", PRINT_ENV, *CREDENTIALS, "BL_ORDINARY"])
    wf = write(
        workdir / "wf.yaml",
        f"""\
        version: 1
        name: credentials
        env: [GH_TOKEN]
        permissions: {{commands: ["*"]}}
        steps:
          kind: sequence
          id: main
          steps:
            - {{kind: command, id: inherited, run: {argv}}}
            - kind: command
              id: passed_on
              run: {argv}
              env: {{GH_TOKEN: "{{{{ env.GH_TOKEN }}}}"}}
            - kind: reduce
              id: seen
              inputs: [inherited, passed_on]
              expr: "[outputs.inherited.stdout | trim, outputs.passed_on.stdout | trim]"
        """,
    )
    assert run(wf, "--plain") == 0
    inherited, passed_on = (json.loads(text) for text in summary(workdir, "credentials")["output"])
    assert inherited == [None, None, None, None, "kept"]
    # A step gets a credential only when it names it in its env, from a variable the workflow
    # declares; what it prints of it is redacted before anything reads it.
    assert passed_on == [None, "[redacted]", None, None, "kept"]


LIBRARY = """\
def greeting(id):
    return leaf(id = id, role = "writer", prompt = "Say hello.")
"""
USES_LIBRARY = """\
load("greetings.star", "greeting")

workflow(
    name = "uses-library",
    roles = {"writer": {}},
    steps = sequence(id = "main", steps = [greeting("hello")]),
)
"""


def test_changed_files_stand_a_library_for_the_workflows_that_load_it(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flows = workdir / "workflows"
    (flows / "nested").mkdir(parents=True)
    (flows / "mocks").mkdir()
    write(flows / "greetings.star", LIBRARY)
    write(flows / "uses_library.star", USES_LIBRARY)
    write(flows / "other.star", USES_LIBRARY.replace("uses-library", "other").split("\n", 2)[2])
    # Below the library: load() cannot reach up to it from there.
    write(flows / "nested" / "below.star", USES_LIBRARY.replace("uses-library", "below"))
    write(flows / "mocks" / "script.yaml", 'nodes:\n  hello: {reply: "hi"}\n')
    changed = ["--mock", "--plain", "--changed-files"]

    assert run(*changed, "workflows/greetings.star") == 0
    out = capsys.readouterr().out
    assert (
        "- workflows/greetings.star is a Starlark library: running the workflows that load it: "
        "workflows/uses_library.star"
    ) in out
    assert "uses-library: succeeded" in out
    assert "other" not in out
    assert "below" not in out

    # Named as well as loaded: it runs once.
    assert run(*changed, "workflows/uses_library.star", "workflows/greetings.star") == 0
    assert capsys.readouterr().out.count("uses-library: succeeded") == 1

    # Only a mock script: nothing to run, and that is fine.
    assert run(*changed, "workflows/mocks/script.yaml") == 0
    assert "nothing to run: none of the files given is a workflow" in capsys.readouterr().out

    # Without the flag, a library alone is still a usage error.
    assert run("--mock", "workflows/greetings.star") == 2

    # A library nothing loads is passed over; a broken one fails.
    write(flows / "unused.star", "def unused():\n    return 1\n")
    assert run(*changed, "workflows/unused.star") == 0
    assert "workflows/unused.star skipped: a Starlark library no workflow loads" in (
        capsys.readouterr().out
    )
    write(flows / "greetings.star", LIBRARY.replace("leaf(", "leaf(1, "))
    assert run(*changed, "workflows/greetings.star") == 2
    assert "greetings.star" in capsys.readouterr().err


def test_the_summary_goes_under_the_state_directory_by_default(workdir: Path) -> None:
    wf = write(workdir / "wf.yaml", workflow())
    script = write(workdir / "script.yaml", SCRIPT)
    assert main(["run", wf, "--mock-script", script, "--state", "elsewhere", "--plain"]) == 0
    assert (workdir / "elsewhere" / "reports" / "small.summary.json").is_file()
    assert not (workdir / ".branchleaf").exists()
    assert main(["run", wf, "--mock-script", script, "--plain"]) == 0
    assert (workdir / ".branchleaf" / "reports" / "small.summary.json").is_file()


def test_every_file_is_checked_before_any_runs(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = write(workdir / "good.yaml", workflow())
    bad = write(workdir / "bad.yaml", "version: 1\nname: bad\nsteps: {kind: leaf}\n")
    assert run(good, bad) == 2
    err = capsys.readouterr().err
    assert "bad.yaml:3" in err
    assert not (workdir / ".branchleaf").exists()  # the good workflow did not run


def test_a_signal_after_the_run_ended_does_not_lose_its_summary() -> None:
    """`cancel` may signal a run just as it finishes: from the run's start to its summary the
    process must not die of SIGTERM or SIGINT; the handlers from before come back afterwards."""
    import os
    import signal

    from runner.commands import run

    before = signal.getsignal(signal.SIGTERM)
    with run.held_signals():
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGINT)
        alive = True
    assert alive
    assert signal.getsignal(signal.SIGTERM) is before
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_the_summary_file_is_indented_sorted_json_whatever_it_holds() -> None:
    from runner.commands.run import summary_bytes

    plain = {"b": [1, 2.5, None, True], "a": {"z": "é", "y": {}}, "c": []}
    assert summary_bytes(plain).decode() == json.dumps(
        plain, indent=2, sort_keys=True, ensure_ascii=False
    )
    # What orjson refuses is written by the standard library, still valid JSON.
    for odd in ({"n": 2**70}, {"t": "\ud800"}):
        assert json.loads(summary_bytes(odd)) == odd
