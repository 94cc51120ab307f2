"""``branchleaf ci``: validate, run or replay, and report, as the Action runs it."""

from __future__ import annotations

from pathlib import Path

import pytest
from junitparser import JUnitXml

from runner.main import main

PASSING = """\
version: 1
name: greet
roles:
  writer: {}
steps:
  kind: leaf
  id: hello
  role: writer
  prompt: "Say hello."
tests:
  - name: says something
    expect: "outputs.hello | length > 0"
"""

FAILING = """\
version: 1
name: count
roles:
  writer: {}
steps:
  kind: leaf
  id: words
  role: writer
  prompt: "Count the words."
tests:
  - name: answers
    expect: "outputs.words | length > 0"
  - name: answers with a number
    expect: "outputs.words is number"
"""


def _ci(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *argv: str) -> tuple[int, Path, Path]:
    """Run ``ci`` in ``tmp_path`` as GitHub Actions would; the exit code, the step summary and
    the step outputs files."""
    monkeypatch.chdir(tmp_path)
    summary = tmp_path / "summary.md"
    outputs = tmp_path / "outputs.txt"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    monkeypatch.setenv("GITHUB_OUTPUT", str(outputs))
    code = main(["ci", *argv, "--state", str(tmp_path / "state"), "--report-dir", "out"])
    return code, summary, outputs


def _cases(path: Path) -> dict[str, bool]:
    """Test case name -> whether it passed, over every suite of a JUnit file."""
    return {case.name: case.is_passed for suite in JUnitXml.fromfile(str(path)) for case in suite}


def test_passing_workflows_exit_0_and_write_both_reports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "greet.yaml").write_text(PASSING)
    code, summary, outputs = _ci(tmp_path, monkeypatch, "flows")
    assert code == 0
    assert _cases(tmp_path / "out" / "branchleaf.junit.xml") == {"says something": True}
    report = (tmp_path / "out" / "branchleaf.md").read_text()
    assert "greet" in report
    assert summary.read_text().strip() == report.strip()
    lines = outputs.read_text().splitlines()
    assert "result=passed" in lines
    assert f"junit={Path('out') / 'branchleaf.junit.xml'}" in lines


def test_one_failing_test_exits_1_and_fails_exactly_that_case(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "greet.yaml").write_text(PASSING)
    (flows / "count.yaml").write_text(FAILING)
    code, _, outputs = _ci(tmp_path, monkeypatch, "flows")
    assert code == 1
    cases = _cases(tmp_path / "out" / "branchleaf.junit.xml")
    assert {name for name, passed in cases.items() if not passed} == {"answers with a number"}
    assert cases["says something"]
    assert cases["answers"]
    assert "result=failed" in outputs.read_text().splitlines()


def test_an_invalid_workflow_stops_before_anything_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "greet.yaml").write_text(PASSING)
    (flows / "broken.yaml").write_text(PASSING.replace("kind: leaf", "kind: leef"))
    code, _, _ = _ci(tmp_path, monkeypatch, "flows")
    assert code == 2
    assert not (tmp_path / "out").exists()


def test_replaying_exported_traces_needs_no_provider_and_catches_a_changed_prompt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "greet.yaml").write_text(PASSING)
    monkeypatch.chdir(tmp_path)
    recorded = str(tmp_path / "recorded")
    assert main(["run", "flows/greet.yaml", "--state", recorded, "--plain"]) == 0
    traces = tmp_path / "traces"
    traces.mkdir()
    assert main(["trace", "export", "last", "--state", recorded, "-o", "traces/greet.jsonl"]) == 0

    code, _, outputs = _ci(tmp_path, monkeypatch, "flows", "--replay", "traces")
    assert code == 0
    assert "result=passed" in outputs.read_text().splitlines()

    (flows / "greet.yaml").write_text(PASSING.replace("Say hello.", "Say goodbye."))
    code, _, _ = _ci(tmp_path, monkeypatch, "flows", "--replay", "traces")
    assert code == 1
    cases = _cases(tmp_path / "out" / "branchleaf.junit.xml")
    assert not all(cases.values())
    assert "hello" in (tmp_path / "out" / "branchleaf.md").read_text()
