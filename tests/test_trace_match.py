"""``ci --replay``: a trace replays against the file it was recorded from, with the same
workflow name; a trace whose file is gone or now holds another workflow fails, by name."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from junitparser import Error, JUnitXml

from runner.main import main
from runner.trace_match import same_file

FLOW = """\
version: 1
name: {name}
roles:
  writer: {{}}
steps:
  kind: leaf
  id: hello
  role: writer
  prompt: "Say hello."
tests:
  - name: says something
    expect: "outputs.hello | length > 0"
"""


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``flows/a.yaml`` (greet) and ``flows/b.yaml`` (other), each run and exported to
    ``traces/``, once for the module."""
    root = tmp_path_factory.mktemp("exported")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        (root / "flows").mkdir()
        (root / "traces").mkdir()
        for stem, name in (("a", "greet"), ("b", "other")):
            (root / "flows" / f"{stem}.yaml").write_text(FLOW.format(name=name))
            assert main(["run", f"flows/{stem}.yaml", "--state", "recorded", "--plain"]) == 0
            export = ["trace", "export", "last", "--state", "recorded"]
            assert main([*export, "-o", f"traces/{stem}.jsonl"]) == 0
    return root


@pytest.fixture
def recorded(exported: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the workflows and their traces in ``tmp_path``, the working directory."""
    for folder in ("flows", "traces"):
        shutil.copytree(exported / folder, tmp_path / folder)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _ci(*paths: str) -> int:
    return main(["ci", *paths, "--replay", "traces", "--state", "state", "--report-dir", "out"])


def _errors(tmp_path: Path) -> dict[str, str]:
    """Each erroring case's ``suite/case`` -> its error's text."""
    found = {}
    for suite in JUnitXml.fromfile(str(tmp_path / "out" / "branchleaf.junit.xml")):
        for case in suite:
            for result in case.result:
                if isinstance(result, Error):
                    assert result.type == "unmatched_trace"
                    found[f"{suite.name}/{case.name}"] = result.text
    return found


def test_traces_replay_against_their_own_files_with_plain_case_names(
    recorded: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _ci("flows") == 0
    names = [
        (suite.name, case.name)
        for suite in JUnitXml.fromfile(str(recorded / "out" / "branchleaf.junit.xml"))
        for case in suite
    ]
    assert names == [("greet", "says something"), ("other", "says something")]
    assert "error:" not in capsys.readouterr().out


def test_a_deleted_workflow_fails_its_trace_instead_of_replaying_the_recorded_one(
    recorded: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (recorded / "flows" / "b.yaml").unlink()
    assert _ci("flows") == 1
    gone = (
        "trace traces/b.jsonl was recorded from flows/b.yaml (workflow 'other'), which no "
        "longer exists: the workflow it guards is gone; delete the trace or restore the file"
    )
    assert _errors(recorded) == {"other/trace traces/b.jsonl": gone}
    assert f"error: {gone}" in capsys.readouterr().out
    report = (recorded / "out" / "branchleaf.md").read_text()
    assert "1 trace with no workflow file" in report
    assert "failed**: 1 of 2 traces did not pass" in report


def test_a_moved_workflow_fails_with_the_file_that_now_has_its_name(recorded: Path) -> None:
    (recorded / "flows" / "a.yaml").rename(recorded / "flows" / "moved.yaml")
    assert _ci("flows") == 1
    (text,) = _errors(recorded).values()
    assert text.startswith(
        "trace traces/a.jsonl was recorded from flows/a.yaml (workflow 'greet'), which no "
        "longer exists; flows/moved.yaml now has that name: if it is the same workflow moved, "
        "record the trace again (`branchleaf run flows/moved.yaml`, then "
        "`branchleaf trace export last -o traces/a.jsonl`)"
    )


def test_a_file_that_now_holds_another_workflow_fails_its_trace(recorded: Path) -> None:
    (recorded / "flows" / "b.yaml").write_text(FLOW.format(name="renamed"))
    assert _ci("flows") == 1
    (text,) = _errors(recorded).values()
    assert "recorded from flows/b.yaml (workflow 'other'), which now holds the workflow " in text
    assert "'renamed'" in text


def test_a_workflow_outside_the_paths_given_is_named(recorded: Path) -> None:
    assert _ci("flows/a.yaml") == 1
    (text,) = _errors(recorded).values()
    assert "which is not under the paths given: give its folder too" in text


def test_the_same_file_named_from_another_folder_or_checkout() -> None:
    here = "/home/ci/repo"
    assert same_file("workflows/a.yaml", "./workflows/a.yaml", here)
    assert same_file("/home/ci/repo/workflows/a.yaml", "workflows/a.yaml", here)
    # A trace recorded in another checkout, as the golden traces are.
    assert same_file("/work/main/workflows/a.yaml", "workflows/a.yaml", here)
    assert not same_file("/work/main/workflows/b.yaml", "workflows/a.yaml", here)
    # Under the repository, the path is known: a moved file is another file.
    assert not same_file("/home/ci/repo/old/workflows/a.yaml", "workflows/a.yaml", here)
    assert not same_file("a.yaml", "workflows/a.yaml", here)
    assert not same_file("workflows/a.yaml", "workflows/b.yaml", here)
    assert not same_file("old/a.yaml", "workflows/a.yaml", here)
    assert not same_file("workflows/xa.yaml", "workflows/a.yaml", here)


def test_replay_by_hand_against_a_file_of_another_workflow_says_so(
    recorded: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["trace", "import", "traces/a.jsonl", "--state", "state"]) == 0
    assert main(["replay", "last", "flows/b.yaml", "--state", "state", "--plain"]) == 0
    assert (
        "with flows/b.yaml (changed since the run; it is the workflow 'other', not the run's "
        "'greet')"
    ) in capsys.readouterr().out
