"""A ``branchleaf.yaml`` that cannot be used is one clear sentence and exit 2, before any run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from runner.main import main

WORKFLOW = """\
version: 1
name: hello
roles:
  reviewer: {}
steps:
  kind: leaf
  id: a
  role: reviewer
  prompt: "Say hi."
"""


@pytest.fixture
def workflow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "hello.yaml").write_text(WORKFLOW, encoding="utf-8")
    return "hello.yaml"


def _fails(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """Run ``argv``, check it exits 2 without a traceback, and return its one error line."""
    assert main(argv) == 2
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert "Traceback" not in text
    assert "internal error" not in text
    assert "error:" in captured.err
    return captured.err


@pytest.mark.parametrize("implicit", [False, True], ids=["given", "found"])
@pytest.mark.parametrize("command", ["validate", "run"])
def test_a_latin1_configuration_is_named_with_its_line(
    workflow: str, implicit: bool, command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    Path("branchleaf.yaml").write_bytes(b"providers: {}\n# caf\xe9 au lait\n")
    argv = [command, workflow, *([] if implicit else ["--config", "branchleaf.yaml"])]
    err = _fails(argv + (["--state", "state"] if command == "run" else []), capsys)
    assert "branchleaf.yaml:2:6: the configuration is not UTF-8 text: it has the byte 0xe9" in err


@pytest.mark.parametrize("implicit", [False, True], ids=["given", "found"])
def test_a_configuration_that_is_a_directory_is_not_ignored(
    workflow: str, implicit: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    Path("branchleaf.yaml").mkdir()
    err = _fails(
        ["validate", workflow, *([] if implicit else ["--config", "branchleaf.yaml"])], capsys
    )
    assert "the configuration branchleaf.yaml is a folder, not a file" in err


def test_a_configuration_that_is_a_fifo_is_not_read(
    workflow: str, capsys: pytest.CaptureFixture[str]
) -> None:
    os.mkfifo("branchleaf.yaml")
    # Opening a FIFO without a writer would block: the check must come before any read.
    err = _fails(["validate", workflow], capsys)
    assert "is a named pipe (FIFO), not a regular file" in err


@pytest.mark.parametrize(
    ("base_url", "why"),
    [
        ("http://127.0.0.1:99999/v1", "port out of range"),
        ("http://127.0.0.1:0/v1", "port 0"),
        ("ftp://llm.example.test/v1", "does not start with http"),
        ("llm.example.test/v1", "does not start with http"),
        ("http:///v1", "names no host"),
        ("http://[::1/v1", "invalid IPv6 URL"),
        ("http://llm.example.test/v 1", "space or a control character"),
    ],
)
def test_a_malformed_base_url_fails_validate(
    workflow: str, base_url: str, why: str, capsys: pytest.CaptureFixture[str]
) -> None:
    Path("live.yaml").write_text(
        "providers:\n  p:\n    type: openai\n"
        f"    base_url: {base_url!r}\n    models: {{m: {{}}}}\n",
        encoding="utf-8",
    )
    err = _fails(["validate", "--config", "live.yaml", workflow], capsys)
    assert "live.yaml:4:15: provider 'p' has the base_url" in err
    assert why in err


def test_a_base_url_error_does_not_show_credentials_written_into_it(
    workflow: str, capsys: pytest.CaptureFixture[str]
) -> None:
    Path("live.yaml").write_text(
        "providers:\n  p:\n    type: openai\n"
        "    base_url: 'http://user:hunter2@127.0.0.1:70000/v1?key=hunter3'\n"
        "    models: {m: {}}\n",
        encoding="utf-8",
    )
    err = _fails(["validate", "--config", "live.yaml", workflow], capsys)
    assert "'http://127.0.0.1:70000/v1'" in err
    assert "hunter" not in err


@pytest.mark.parametrize("command", ["validate", "run"])
@pytest.mark.parametrize("role", ["reviewer", "default"])
def test_a_role_without_a_model_on_a_provider_with_several_fails_before_running(
    workflow: str, command: str, role: str, capsys: pytest.CaptureFixture[str]
) -> None:
    Path("live.yaml").write_text(
        "providers:\n  p:\n    type: openai\n    base_url: http://127.0.0.1:9/v1\n"
        f"    models: {{small: {{}}, large: {{}}}}\nroles:\n  {role}: {{provider: p}}\n",
        encoding="utf-8",
    )
    extra = ["--state", "state"] if command == "run" else []
    err = _fails([command, "--config", "live.yaml", workflow, *extra], capsys)
    assert "live.yaml:7:" in err
    assert (
        f"role {role!r} names no model, and provider 'p' lists several "
        "(large, small): add model: one of large, small to the role"
    ) in err
    assert not Path("state").exists()


def test_a_role_without_a_model_on_a_provider_with_one_takes_that_one(
    workflow: str, capsys: pytest.CaptureFixture[str]
) -> None:
    Path("live.yaml").write_text(
        "providers:\n  p:\n    type: openai\n    models: {small: {}}\n"
        "roles:\n  reviewer: {provider: p}\n",
        encoding="utf-8",
    )
    assert main(["validate", "--config", "live.yaml", workflow]) == 0


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_a_key_a_header_cannot_carry_stops_the_run_naming_its_variable(
    workflow: str, kind: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LLM_AUTH", "sk-\u00fcber-\u20ac-secret")
    Path("live.yaml").write_text(
        f"providers:\n  p:\n    type: {kind}\n    base_url: http://127.0.0.1:9/v1\n"
        "    api_key_env: LLM_AUTH\n    models: {m: {}}\nroles:\n  default: {provider: p}\n",
        encoding="utf-8",
    )
    err = _fails(["run", "--config", "live.yaml", workflow, "--state", "state"], capsys)
    assert (
        "provider 'p': the API key in the environment variable LLM_AUTH holds a character "
        "outside Latin-1, which an HTTP header cannot carry: set LLM_AUTH to the key alone"
    ) in err
    assert "secret" not in err
