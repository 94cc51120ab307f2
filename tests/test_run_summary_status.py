"""A run whose workflow test failed says so wherever its status is shown: `runs`, the run
line, `inspect`, `watch` and both reports; its nodes keep their own statuses (issue 11,
point 10)."""

from __future__ import annotations

import textwrap
from pathlib import Path
from xml.etree import ElementTree

import pytest

from runner.main import main

WORKFLOW = """\
version: 1
name: tested
roles: {worker: {}}
steps: {kind: leaf, id: one, role: worker, prompt: "Say ok"}
tests:
  - {name: first, expect: "true"}
  - {name: second, expect: "%s"}
  - {name: third, expect: "true"}
"""


@pytest.fixture
def state(tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    """A state holding one run of the workflow, its second test passing or not."""
    verdict = getattr(request, "param", "false")
    (tmp_path / "wf.yaml").write_text(textwrap.dedent(WORKFLOW % verdict), encoding="utf-8")
    return tmp_path / "state"


def _run(state: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["run", str(state.parent / "wf.yaml"), "--plain", "--state", str(state)])
    return code, capsys.readouterr().out


def _out(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(list(argv)) == (1 if argv[0] == "watch" else 0)
    return capsys.readouterr().out


def test_the_run_line_says_failed_and_which_tests(
    state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = _run(state, capsys)
    assert code == 1
    line = next(line for line in out.splitlines() if line.startswith("tested: "))
    assert line.startswith("tested: failed (")
    assert line.endswith("— tests failed: 1 of 3")


def test_runs_shows_failed_and_the_tests_column(
    state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _run(state, capsys)
    header, row = _out(capsys, "runs", "--state", str(state)).splitlines()
    assert header.split()[2:4] == ["status", "tests"]
    assert row.split()[2:5] == ["failed", "2/3", "passed"]


def test_inspect_and_watch_say_failed_while_the_leaf_succeeded(
    state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _run(state, capsys)
    shown = _out(capsys, "inspect", "last", "--state", str(state))
    first, *tree = shown.splitlines()
    assert " tested failed (" in first
    assert first.endswith("— tests failed: 1 of 3")
    assert any("one" in line and "succeeded" in line for line in tree)
    watched = _out(capsys, "watch", "last", "--state", str(state), "--plain")
    assert " tested failed (" in watched
    assert "tests 2/3 passed" in watched


def test_the_reports_status_cell_says_failed(
    state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _run(state, capsys)
    markdown = _out(capsys, "report", "last", "--state", str(state))
    assert "❌ **failed**: tested (failed)" in markdown
    assert "**failed**: tests failed: 1 of 3" in markdown
    header = next(line for line in markdown.splitlines() if line.startswith("| status |"))
    table = markdown.splitlines()
    row = table[table.index(header) + 2]
    assert row.split("|")[1].strip() == "failed"
    junit = _out(capsys, "report", "last", "--state", str(state), "--format", "junit")
    suite = ElementTree.fromstring(junit).find("testsuite")
    assert suite is not None
    properties = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert properties["status"] == "failed"


@pytest.mark.parametrize("state", ["true"], indirect=True)
def test_a_run_whose_tests_pass_still_says_succeeded(
    state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = _run(state, capsys)
    assert code == 0
    assert "tested: succeeded (" in out
    _header, row = _out(capsys, "runs", "--state", str(state)).splitlines()
    assert row.split()[2:5] == ["succeeded", "3/3", "passed"]


def test_resume_says_why_a_run_that_failed_its_tests_has_nothing_to_resume(
    state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _run(state, capsys)
    assert main(["resume", "last", "--state", str(state), "--plain"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "succeeded (tests failed: 1 of 3): there is nothing to resume" in err
