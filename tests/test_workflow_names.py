"""Two workflow files with the same ``name`` are refused by ``validate`` and ``ci``: JUnit
suites, test history and traces are keyed by the workflow name."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runner.main import main

FLOW = """\
version: 1
name: greet
roles:
  writer: {}
steps:
  kind: leaf
  id: hello
  role: writer
  prompt: "Say hello."
"""


@pytest.fixture
def flows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "flows"
    folder.mkdir()
    (folder / "a.yaml").write_text(FLOW)
    (folder / "b.yaml").write_text("# a copy\n" + FLOW)
    (folder / "c.yaml").write_text(FLOW.replace("name: greet", "name: other"))
    return folder


def test_validate_names_both_files_with_the_line_of_their_name(
    flows: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["validate", "flows"]) == 2
    out = capsys.readouterr().out
    assert (
        "flows/a.yaml:2:7: [names] the workflow name 'greet' is also the name of flows/b.yaml:3"
        in out
    )
    assert (
        "flows/b.yaml:3:7: [names] the workflow name 'greet' is also the name of flows/a.yaml:2"
        in out
    )
    hint = "fix: Rename one: JUnit suites, test history and traces are keyed by the workflow name."
    assert out.count(hint) == 2
    assert "✓ flows/c.yaml (other)" in out
    assert "2 errors in 2 of 3 files" in out


def test_validate_json_marks_both_files_invalid(
    flows: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["validate", "--format", "json", "flows"]) == 2
    report = json.loads(capsys.readouterr().out)
    rules = {entry["path"]: [d["rule"] for d in entry["diagnostics"]] for entry in report["files"]}
    assert rules == {"flows/a.yaml": ["names"], "flows/b.yaml": ["names"], "flows/c.yaml": []}


def test_a_file_named_twice_is_one_workflow_and_only_what_is_given_counts(flows: Path) -> None:
    # The pre-commit hook passes the changed files only: one of the pair alone is valid.
    assert main(["validate", "flows/a.yaml", "flows/c.yaml", "flows/a.yaml"]) == 0


def test_ci_runs_nothing_when_two_workflows_share_a_name(
    flows: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["ci", "flows", "--state", str(tmp_path / "state"), "--report-dir", "out"])
    assert code == 2
    err = capsys.readouterr().err
    assert "[names] the workflow name 'greet' is also the name of flows/b.yaml:3" in err
    assert not (tmp_path / "out").exists()


def test_a_file_named_and_inside_a_folder_given_runs_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "a.yaml").write_text(FLOW)
    code = main(["ci", "flows", "flows/a.yaml", "./flows/a.yaml", "--state", "s"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert out.count("running greet") == 1, out
