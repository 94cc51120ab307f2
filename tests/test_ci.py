"""``branchleaf ci``: validate, run or replay, and report, as the Action runs it."""

from __future__ import annotations

from pathlib import Path

import pytest
from junitparser import JUnitXml

from runner.main import main
from runner.store import runs
from runner.store.db import opened

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


STAGED = """\
version: 1
name: staged
inputs:
  greeting: {type: string, default: hello}
  count: {type: integer, default: 1}
roles:
  writer: {}
steps:
  kind: leaf
  id: say
  role: writer
  prompt: "Say {{ inputs.greeting }} {{ inputs.count }} times."
tests:
  - name: the ci inputs are used
    expect: "inputs.greeting == 'bonjour' and inputs.count == 3"
  - name: the mock script's reply is used
    expect: "outputs.say == 'staged reply'"
ci:
  inputs: {greeting: bonjour, count: 3}
  mock_script: mocks/staged.yaml
"""


def test_the_ci_block_gives_its_inputs_and_mock_script_to_live_runs_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    flows = tmp_path / "flows"
    (flows / "mocks").mkdir(parents=True)
    (flows / "staged.yaml").write_text(STAGED)
    (flows / "mocks" / "staged.yaml").write_text('nodes:\n  say: {reply: "staged reply"}\n')
    code, _, _ = _ci(tmp_path, monkeypatch, "flows")
    out = capsys.readouterr().out
    assert code == 0, out
    assert _cases(tmp_path / "out" / "branchleaf.junit.xml") == {
        "the ci inputs are used": True,
        "the mock script's reply is used": True,
    }
    assert (
        "staged: from its ci block: --input greeting=bonjour --input count=3 "
        "--mock-script flows/mocks/staged.yaml"
    ) in out
    with opened(tmp_path / "state", create=False) as conn:
        record = runs.find(conn, "last")
    assert record.inputs == {"greeting": "bonjour", "count": 3}
    assert record.providers["mock_script"].endswith("flows/mocks/staged.yaml")

    # A replay takes the inputs and the script the run recorded, whatever the block says now;
    # the block is not what the workflow does, so a change to it alone is no change.
    traces = tmp_path / "traces"
    assert main(["trace", "export", "last", "--state", "state", "-o", "traces/staged.jsonl"]) == 0
    (flows / "staged.yaml").write_text(STAGED.replace("greeting: bonjour", "greeting: salut"))
    capsys.readouterr()
    code, _, _ = _ci(tmp_path, monkeypatch, "flows", "--replay", str(traces))
    assert code == 0
    assert "with flows/staged.yaml (only its ci block differs from the run's)" in (
        capsys.readouterr().out
    )

    # `run` ignores the block: the defaults and the mock's derived replies fail both tests.
    assert (
        main(["run", "flows/staged.yaml", "--plain", "--state", "state", "--report-dir", "r"]) == 1
    )
    with opened(tmp_path / "state", create=False) as conn:
        record = runs.find(conn, "last")
    assert record.inputs == {"greeting": "hello", "count": 1}
    assert not record.providers.get("mock_script")


def test_a_required_input_the_ci_block_leaves_out_stops_before_anything_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "greet.yaml").write_text(PASSING)
    (flows / "needs.yaml").write_text(
        PASSING.replace("name: greet", "name: needs").replace(
            "roles:", "inputs:\n  who: {type: string}\nroles:"
        )
    )
    code, _, _ = _ci(tmp_path, monkeypatch, "flows")
    assert code == 2
    err = capsys.readouterr().err
    assert "the workflow 'needs' needs the input 'who', which has no default" in err
    assert "give it a value under ci: inputs: in the workflow" in err
    assert not (tmp_path / "state").exists()


def test_comment_warnings_go_to_standard_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("GITHUB_EVENT_PATH", "GITHUB_TOKEN", "GH_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "greet.yaml").write_text(PASSING)
    code, _, _ = _ci(tmp_path, monkeypatch, "flows", "--comment")
    assert code == 0  # no comment is a warning, not a failure
    captured = capsys.readouterr()
    assert "warning: " in captured.err
    assert "GITHUB_EVENT_PATH" in captured.err
    assert "warning" not in captured.out


def test_reports_go_under_the_state_directory_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "greet.yaml").write_text(PASSING)
    monkeypatch.chdir(tmp_path)
    assert main(["ci", "flows", "--state", "elsewhere"]) == 0
    reports = tmp_path / "elsewhere" / "reports"
    assert sorted(path.name for path in reports.iterdir()) == [
        "branchleaf.junit.xml",
        "branchleaf.md",
        "greet.summary.json",
    ]
    assert not (tmp_path / ".branchleaf").exists()
    assert f"reports written to {reports.relative_to(tmp_path) / 'branchleaf.junit.xml'}" in (
        capsys.readouterr().out
    )


FLAKY = """\
version: 1
name: flaky
roles:
  judge: {}
steps:
  kind: leaf
  id: judge
  role: judge
  prompt: "Is the change safe?"
  output:
    type: object
    properties: {ok: {type: boolean}}
    required: [ok]
tests:
  - name: the judge approves
    expect: "outputs.judge.ok"
    repeat: 6
    pass_rate: RATE
  - name: the judge answers
    expect: "outputs.judge.ok is boolean"
"""


def _repeated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rate: str) -> tuple[int, Path]:
    (tmp_path / "flaky.yaml").write_text(FLAKY.replace("RATE", rate))
    code, _, _ = _ci(tmp_path, monkeypatch, "flaky.yaml")
    return code, tmp_path / "out"


def test_a_repeated_test_passes_at_its_rate_over_runs_that_asked_anew(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out = _repeated(tmp_path, monkeypatch, "0.3")
    assert code == 0
    assert _cases(out / "branchleaf.junit.xml") == {
        "the judge approves": True,
        "the judge answers": True,
    }
    with opened(tmp_path / "state", create=False) as conn:
        keys = conn.execute("SELECT DISTINCT key FROM events WHERE type = 'model_call'").fetchall()
        verdicts = conn.execute("SELECT tests FROM runs").fetchall()
    assert len(keys) == 6  # every repeat asked the model again: six keys, no memo hits
    approving = sum('"name":"the judge approves","passed":true' in row[0] for row in verdicts)
    assert 0 < approving < 6  # the mock's answers differ between repeats
    report = (out / "branchleaf.md").read_text()
    assert f"{approving}/6 runs passed (needs 30%)" in report
    assert "6 runs for its repeated tests, figures summed" in report
    suite = next(iter(JUnitXml.fromfile(str(out / "branchleaf.junit.xml"))))
    assert {p.name: p.value for p in suite.properties()}["calls"] == "6"


def test_a_repeated_test_below_its_rate_fails_only_that_case(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out = _repeated(tmp_path, monkeypatch, "1")
    assert code == 1
    assert _cases(out / "branchleaf.junit.xml") == {
        "the judge approves": False,
        "the judge answers": True,
    }
    assert "first failure (run " in (out / "branchleaf.junit.xml").read_text()
    # The last repeat replays from its trace: its calls' keys carry its repeat index again.
    main(["replay", "last", "--state", str(tmp_path / "state"), "--plain"])
    with opened(tmp_path / "state", create=False) as conn:
        replayed = runs.find(conn, "last")
    assert (replayed.mode, replayed.status, replayed.calls) == ("replay", "succeeded", 0)
