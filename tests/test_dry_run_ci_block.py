"""The pre-commit dry run (``run --mock --plain --changed-files``) runs each workflow with the
inputs and mock script of its own ``ci`` block, as ``ci`` does; options given win."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.main import main

STAGED = """\
version: 1
name: {name}
inputs:
  greeting: {{type: string, default: hello}}
roles:
  writer: {{}}
steps:
  kind: leaf
  id: say
  role: writer
  prompt: "Say {{{{ inputs.greeting }}}}."
tests:
  - name: the ci input is used
    expect: "inputs.greeting == '{greeting}'"
  - name: the mock script's reply is used
    expect: "outputs.say == '{reply}'"
ci:
  inputs: {{greeting: {greeting}}}
  mock_script: mocks/{name}.yaml
"""


@pytest.fixture
def flows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Two workflows in ``workflows/``, each with its own ci inputs and mock script."""
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "workflows"
    (folder / "mocks").mkdir(parents=True)
    for name, greeting in (("first", "bonjour"), ("second", "hola")):
        reply = f"{name} reply"
        (folder / f"{name}.yaml").write_text(
            STAGED.format(name=name, greeting=greeting, reply=reply)
        )
        (folder / "mocks" / f"{name}.yaml").write_text(f'nodes:\n  say: {{reply: "{reply}"}}\n')
    return folder


def _dry_run(*argv: str) -> int:
    return main(["run", "--mock", "--plain", "--state", "state", "--changed-files", *argv])


def test_one_hook_entry_serves_every_workflow_with_its_ci_block(
    flows: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = _dry_run("workflows/first.yaml", "workflows/second.yaml", "workflows/mocks/first.yaml")
    out = capsys.readouterr().out
    assert code == 0, out
    assert (
        "first: from its ci block: --input greeting=bonjour "
        "--mock-script workflows/mocks/first.yaml"
    ) in out
    assert "second: from its ci block: --input greeting=hola" in out
    assert "first: succeeded" in out
    assert "second: succeeded" in out


def test_options_given_win_over_the_ci_block(
    flows: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    given = ["--input", "greeting=hola", "--mock-script", "workflows/mocks/second.yaml"]
    assert _dry_run(*given, "workflows/first.yaml", "workflows/second.yaml") == 1
    out = capsys.readouterr().out
    # The first workflow took the second's input and script, so its tests fail...
    assert "first: failed" in out
    assert "from its ci block" not in out
    # ...and the second, given what its block says, passes.
    assert "second: succeeded" in out


def test_run_without_changed_files_still_ignores_the_ci_block(
    flows: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", "--mock", "--plain", "--state", "state", "workflows/first.yaml"]) == 1
    assert "from its ci block" not in capsys.readouterr().out
