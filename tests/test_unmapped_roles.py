"""With a ``branchleaf.yaml``, every role must be mapped or covered by ``roles.default``: a
misspelt role is an error naming the nearest mapped one, never a role quietly played by the mock.
The run line, the summary, the reports and ``inspect`` name who served each role."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from runner.main import main

WORKFLOW = """\
version: 1
name: review
roles:
  reviewer: {}
  writer: {}
steps:
  kind: sequence
  id: all
  steps:
    - kind: leaf
      id: draft
      role: writer
      prompt: "Write."
    - kind: leaf
      id: check
      role: reviewer
      prompt: "Review."
"""

TYPO = """\
roles:
  writer: {provider: mock}
  reviewr: {provider: mock}
"""


@pytest.fixture
def workflow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "review.yaml").write_text(WORKFLOW, encoding="utf-8")
    return "review.yaml"


@pytest.mark.parametrize("implicit", [False, True], ids=["given", "found"])
@pytest.mark.parametrize("command", ["validate", "run", "ci"])
def test_a_role_the_configuration_does_not_map_stops_with_the_nearest_name(
    workflow: str, implicit: bool, command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    Path("branchleaf.yaml").write_text(TYPO, encoding="utf-8")
    argv = [command, workflow, *([] if implicit else ["--config", "branchleaf.yaml"])]
    if command != "validate":
        argv += ["--state", "state"]
    assert main(argv) == 2
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert "Traceback" not in text
    assert "role 'reviewer' is not mapped in branchleaf.yaml" in text
    assert "did you mean 'reviewr'?" in text
    assert "'writer' is not mapped" not in text
    assert not Path("state").exists() or command == "validate"


def test_a_default_role_covers_the_roles_not_named(
    workflow: str, capsys: pytest.CaptureFixture[str]
) -> None:
    Path("branchleaf.yaml").write_text(TYPO + "  default: {provider: mock}\n", encoding="utf-8")
    assert main(["validate", workflow]) == 0


def test_mock_still_plays_every_role_whatever_the_configuration(
    workflow: str, capsys: pytest.CaptureFixture[str]
) -> None:
    Path("branchleaf.yaml").write_text(TYPO, encoding="utf-8")
    assert main(["run", workflow, "--mock", "--state", "state", "--plain"]) == 0
    assert "every role on the mock: --mock" in capsys.readouterr().out


def test_without_a_configuration_the_run_line_says_every_role_is_on_the_mock(
    workflow: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", workflow, "--state", "state", "--plain"]) == 0
    assert "every role on the mock: no branchleaf.yaml" in capsys.readouterr().out


SERVED = """\
providers:
  scripted: {type: mock, models: {tiny: {}}}
roles:
  writer: {provider: mock}
  reviewer: {provider: scripted, model: tiny}
"""


def test_every_report_names_the_provider_and_model_of_each_role(
    workflow: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    Path("branchleaf.yaml").write_text(SERVED, encoding="utf-8")
    assert main(["run", workflow, "--state", "state", "--plain", "--report-dir", "out"]) == 0
    out = capsys.readouterr().out
    assert "roles: reviewer on scripted (tiny), writer on mock" in out
    run_id = re.search(r"as run (\S+)", out)
    assert run_id is not None
    summary = json.loads(Path("out/review.summary.json").read_text(encoding="utf-8"))
    assert summary["roles"] == {
        "reviewer": {"provider": "scripted", "model": "tiny"},
        "writer": {"provider": "mock", "model": None},
    }
    assert main(["inspect", run_id.group(1), "--state", "state"]) == 0
    assert "roles: reviewer on scripted (tiny), writer on mock" in capsys.readouterr().out
    assert main(["report", run_id.group(1), "--state", "state", "-o", "report.md"]) == 0
    markdown = Path("report.md").read_text(encoding="utf-8")
    assert "roles: reviewer on scripted (tiny), writer on mock" in markdown
    argv = ["report", run_id.group(1), "--state", "state", "--format", "junit", "-o", "j.xml"]
    assert main(argv) == 0
    junit = Path("j.xml").read_text(encoding="utf-8")
    assert '<property name="role.reviewer" value="scripted/tiny"/>' in junit
    assert '<property name="role.writer" value="mock"/>' in junit
