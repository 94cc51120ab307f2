"""`validate` reports, with file:line:col and a fix, every command a permission does not admit
as a reviewer reads it: options not spelled, program-selecting env entries, a cwd outside the
workspace, and entries whose program is a glob."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runner.main import main

TOP = """\
version: 1
name: rules
inputs: {{base: {{type: string, default: main}}}}
permissions: {{commands: {commands}}}
steps:
  kind: sequence
  id: main
  steps:
{steps}"""


def validate(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, commands: str, *steps: str
) -> list[dict[str, object]]:
    """The diagnostics `validate --format json` reports for the workflow."""
    body = "".join(f"    - {step}\n" for step in steps)
    path = tmp_path / "wf.yaml"
    path.write_text(TOP.format(commands=commands, steps=body), encoding="utf-8")
    capsys.readouterr()
    code = main(["validate", "--format", "json", str(path)])
    data = json.loads(capsys.readouterr().out)
    found = [d for f in data["files"] for d in f["diagnostics"]]
    assert code == (2 if found else 0)
    return found


def test_admitted_commands_pass(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    plain = "{kind: command, id: a, run: [git, diff, HEAD]}"
    assert validate(capsys, tmp_path, '["git diff *"]', plain) == []
    assert (
        validate(
            capsys,
            tmp_path,
            '["git diff --stat *"]',
            '{kind: command, id: a, run: [git, diff, --stat, "{{ inputs.base }}...HEAD"]}',
        )
        == []
    )


@pytest.mark.parametrize(
    ("commands", "step", "expected"),
    [
        (
            '["git diff *"]',
            "{kind: command, id: a, run: [git, diff, --output=/tmp/x]}",
            ("/steps/steps/0/run", "argument 2 '--output=/tmp/x' is an option"),
        ),
        (
            '["git diff *"]',
            "{kind: command, id: a, run: [git, diff, HEAD], env: {PATH: /tmp/evil}}",
            ("/steps/steps/0/run", "its env sets PATH"),
        ),
        (
            '["git diff *"]',
            "{kind: command, id: a, run: [git, diff, HEAD], env: {GIT_EXTERNAL_DIFF: '{{ inputs.base }}'}}",  # noqa: E501
            ("/steps/steps/0/run", "its env sets GIT_EXTERNAL_DIFF"),
        ),
        (
            '["git diff *"]',
            "{kind: command, id: a, run: [git, diff, HEAD], cwd: /}",
            ("/steps/steps/0/cwd", "outside the workspace"),
        ),
        (
            '["git diff *"]',
            "{kind: command, id: a, run: [git, diff, HEAD], cwd: sub/../..}",
            ("/steps/steps/0/cwd", "outside the workspace"),
        ),
        (
            '["echo*"]',
            "{kind: command, id: a, run: [echo, hi]}",
            ("/permissions/commands/0", "a program must be spelled out exactly"),
        ),
        (
            '["git diff *"]',
            "{kind: sequence, id: inner, permissions: {commands: ['git diff -* *']}, "
            "steps: [{kind: command, id: b, run: [git, diff, --stat]}]}",
            (
                "/steps/steps/0/permissions/commands",
                "is wider than the enclosing permissions allow",
            ),
        ),
    ],
)
def test_what_is_not_admitted_is_reported(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    commands: str,
    step: str,
    expected: tuple[str, str],
) -> None:
    pointer, phrase = expected
    found = validate(capsys, tmp_path, commands, step)
    at = [d for d in found if d["pointer"] == pointer]
    assert at, found
    assert phrase in str(at[0]["message"])
    assert at[0]["rule"] == "permissions"
    assert isinstance(at[0]["line"], int)
    assert at[0]["line"] > 0
    assert at[0]["hint"]
