"""``branchleaf report`` from the command line: which runs, which format, where it goes, and
the one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from junitparser import JUnitXml
from report_runs import Stored, stored

from runner.main import main
from runner.reports.model import load
from runner.store.db import NotInState, opened


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Stored:
    return stored(tmp_path_factory)


def test_markdown_of_the_last_run_goes_to_stdout(
    runs: Stored, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", "last", "--state", str(runs.state)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("## Branchleaf report\n")
    assert f"run `{runs.out_of_time}`" in out  # the last run made
    assert "### ❌ out-of-time" in out


def test_a_failed_run_is_reported_with_exit_code_0(
    runs: Stored, capsys: pytest.CaptureFixture[str]
) -> None:
    # The report is the product: writing it succeeded, whatever the run's outcome.
    assert main(["report", runs.broken[:-2], "--state", str(runs.state)]) == 0
    assert "### ❌ broken-sum" in capsys.readouterr().out


def test_junit_to_a_file_in_new_folders(
    runs: Stored, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "out" / "deeper" / "report.xml"
    argv = ["report", runs.greeting, runs.contests, "--format", "junit", "-o", str(target)]
    assert main([*argv, "--state", str(runs.state)]) == 0
    assert capsys.readouterr().out == f"wrote {target}\n"
    suites = list(JUnitXml.fromfile(str(target)))
    assert [suite.name for suite in suites] == ["greeting", "contests"]


def test_a_run_named_twice_is_reported_once(
    runs: Stored, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["report", runs.out_of_time, "last", "--format", "junit"]
    assert main([*argv, "--state", str(runs.state)]) == 0
    (suite,) = JUnitXml.fromstring(capsys.readouterr().out.encode())
    assert suite.tests == 1


def test_an_unknown_run_is_one_clear_line_and_exit_2(
    runs: Stored, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", "nope", "--state", str(runs.state)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == "error: there is no run 'nope' in this state: `runs` lists them\n"


def test_loading_an_unknown_run_raises_not_in_state(runs: Stored) -> None:
    with opened(runs.state, create=False) as conn, pytest.raises(NotInState, match="'nope'"):
        load(conn, "nope")


def test_no_state_is_one_clear_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", "last", "--state", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: there is no Branchleaf state in ")
    assert err.count("\n") == 1
    assert not (tmp_path / "none").exists()


def test_an_unwritable_output_is_one_clear_line_and_exit_2(
    runs: Stored, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder\n", encoding="utf-8")
    target = blocker / "report.md"
    assert main(["report", "last", "-o", str(target), "--state", str(runs.state)]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith(f"error: cannot write {target}: ")
    assert captured.err.count("\n") == 1
    assert not target.exists()


def test_an_unknown_format_is_a_usage_error(
    runs: Stored, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", "last", "--format", "html", "--state", str(runs.state)]) == 2
    assert "invalid choice: 'html'" in capsys.readouterr().err
