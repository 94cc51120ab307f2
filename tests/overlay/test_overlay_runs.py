"""Runs apply the overlay: ``run``, ``ci`` and ``replay`` read the active lessons straight from
``cached-main`` and apply them before the run; the run records what it applied, every report
says so, a replay applies the same lessons whatever the branch holds by then, and
``--no-overlay`` runs without them (issue 14, point 7)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest
from conftest import git
from overlay_helpers import no_user_git_config

from runner.main import main
from runner.overlay.branch import Overlay
from runner.store import runs
from runner.store.db import opened
from runner.store.trace import events

__all__ = ["no_user_git_config"]

WORKFLOW = """\
version: 1
name: greet
roles: {writer: {}}
inputs:
  who: {type: string, default: world}
steps:
  kind: leaf
  id: hello
  role: writer
  prompt: "Say hello to {{ inputs.who }}."
tests:
  - name: polite
    expect: "'please' in outputs.hello"
"""

MOCK = """\
nodes:
  hello:
    cases:
      - when: {prompt_contains: "Be polite: say please."}
        reply: "hello, please"
      - reply: "hello"
"""


def _lesson(lesson_id: str = "be-polite", **changes: Any) -> dict[str, Any]:
    lesson = {
        "id": lesson_id,
        "kind": "prompt_patch",
        "target": "node:hello",
        "content": {"op": "append", "text": "Be polite: say please."},
        "rationale": "The polite test failed on every reflection case.",
        "evidence": [{"run": "20261205-000000-abcdef", "node": "hello"}],
        **changes,
    }
    return {"lesson": lesson, "workflow": "greet", "runs": ["20261205-000000-abcdef"]}


@pytest.fixture
def project(repo: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The repository with the workflow and its mock script, as the current directory."""
    (repo / "wf.yaml").write_text(WORKFLOW, encoding="utf-8")
    (repo / "mock.yaml").write_text(MOCK, encoding="utf-8")
    monkeypatch.chdir(repo)
    return repo


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, " ".join(captured.err.split())


def _last(state: Path) -> runs.RunRecord:
    with opened(state, create=False) as conn:
        return runs.find(conn, "last")


RUN = ("run", "wf.yaml", "--plain", "--mock-script", "mock.yaml", "--state", "state")


def test_a_run_applies_the_promoted_lesson_and_every_report_says_so(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _run(capsys, *RUN)
    assert code == 1  # without the lesson the model is rude
    assert "applied" not in out

    tip = Overlay(project).promote([_lesson()])[-1]
    head, index = git(project, "rev-parse", "HEAD"), (project / ".git" / "index").read_bytes()
    code, out, err = _run(capsys, *RUN)
    assert code == 0, out + err
    assert f"greet: 1 lesson applied from cached-main at {tip[:7]}: be-polite" in out
    assert err == ""
    record = _last(project / "state")
    assert record.overlay is not None
    assert (record.overlay["branch"], record.overlay["commit"]) == ("cached-main", tip)
    assert [lesson["id"] for lesson in record.overlay["lessons"]] == ["be-polite"]
    # The document recorded is the workflow as it ran: with the lesson in its prompt.
    assert "Be polite: say please." in json.dumps(record.document)
    # Running reads the branch and touches nothing else.
    assert git(project, "rev-parse", "HEAD") == head
    assert (project / ".git" / "index").read_bytes() == index

    summary = json.loads((project / "state/reports/greet.summary.json").read_text())
    assert summary["overlay"]["commit"] == tip
    assert summary["overlay"]["lessons"] == [
        {"id": "be-polite", "kind": "prompt_patch", "target": "node:hello"}
    ]
    line = f"lessons applied: be-polite (cached-main at {tip[:7]})"
    _, out, _ = _run(capsys, "inspect", "last", "--state", "state")
    assert line in out
    _, out, _ = _run(capsys, "report", "last", "--state", "state")
    assert line in out
    _, out, _ = _run(capsys, "report", "last", "--format", "junit", "--state", "state")
    assert f'<property name="lessons" value="{line}"/>' in out


def test_a_replay_applies_the_runs_lessons_with_no_call_whatever_the_branch_holds(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    overlay = Overlay(project)
    overlay.promote([_lesson()])
    assert _run(capsys, *RUN)[0] == 0
    state = project / "state"
    original = _last(state)
    assert original.overlay is not None
    commit = original.overlay["commit"]
    # The lesson is gone from the branch by the time of the replay: the run's own are used.
    overlay.demote("be-polite", "tried without it")
    for extra in ([], ["wf.yaml"]):
        code, out, _ = _run(capsys, "replay", original.id, *extra, "--plain", "--state", "state")
        assert code == 0, out
        assert f"the run's lessons applied: be-polite (cached-main at {commit[:7]})" in out
        replay = _last(state)
        assert (replay.mode, replay.calls, replay.memo_hits) == ("replay", 0, 0)
        assert replay.output == original.output == "hello, please"
        assert replay.document == original.document
        assert replay.overlay == original.overlay
        with opened(state, create=False) as conn:
            assert not [e for e in events(conn, replay.id) if e.type == "replay_diverged"]

    # A trace carries the lessons to another state, and replays there.
    assert _run(capsys, "trace", "export", original.id, "-o", "t.jsonl", "--state", "state")[0] == 0
    assert _run(capsys, "trace", "import", "t.jsonl", "--state", "other")[0] == 0
    assert (
        _run(capsys, "trace", "export", original.id, "-o", "again.jsonl", "--state", "other")[0]
        == 0
    )
    assert (project / "again.jsonl").read_bytes() == (project / "t.jsonl").read_bytes()
    code, out, _ = _run(capsys, "replay", original.id, "wf.yaml", "--plain", "--state", "other")
    assert code == 0, out
    assert _last(project / "other").overlay == original.overlay


def test_demote_stops_a_lesson_and_no_overlay_runs_without_it(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    overlay = Overlay(project)
    overlay.promote([_lesson()])
    code, out, _ = _run(capsys, *RUN, "--no-overlay")
    assert code == 1
    assert "applied" not in out
    assert _last(project / "state").overlay is None

    code, out, _ = _run(capsys, "overlay", "demote", "be-polite", "--reason", "hurt case 3")
    assert code == 0, out
    code, out, _ = _run(capsys, *RUN)
    assert code == 1
    assert "applied" not in out
    assert _last(project / "state").overlay is None


def test_lessons_for_another_workflow_or_that_do_not_fit_are_left_out_with_a_warning(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = _lesson("for-another")
    other["workflow"] = "another"
    misfit = _lesson("gone-node", target="node:goodbye")
    anywhere = _lesson("anywhere")
    del anywhere["workflow"]  # a file naming no workflow applies wherever it fits
    Overlay(project).promote([other, misfit, anywhere])
    code, out, err = _run(capsys, *RUN)
    assert code == 0, out + err
    assert "1 lesson applied from cached-main" in out
    assert ": anywhere" in out
    assert "for-another" not in out + err
    assert err.startswith("warning: the overlay lesson 'gone-node' (cached-main at ")
    assert "is not applied to 'greet'" in err
    assert err.count("warning:") == 1


def test_another_branch_and_no_repository(
    project: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    Overlay(project, "lessons-exp").promote([_lesson()])
    code, out, _ = _run(capsys, *RUN)
    assert code == 1
    assert "applied" not in out
    code, out, _ = _run(capsys, *RUN, "--overlay-branch", "lessons-exp")
    assert code == 0
    assert "1 lesson applied from lessons-exp" in out

    code, out, err = _run(capsys, *RUN, "--overlay-branch", "bad..name")
    assert code == 1
    assert err == (
        "warning: the overlay is not applied: 'bad..name' is not a valid branch name: "
        "name another with --branch NAME"
    )

    outside = tmp_path / "outside"
    outside.mkdir()
    for name in ("wf.yaml", "mock.yaml"):
        (outside / name).write_bytes((project / name).read_bytes())
    monkeypatch.chdir(outside)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    code, out, err = _run(capsys, *RUN)
    assert code == 1
    assert err == ""  # outside a repository there is no overlay, and nothing to say of it


def test_ci_applies_the_overlay(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "wf.yaml").write_text(
        WORKFLOW
        + textwrap.dedent("""\
            ci:
              mock_script: mock.yaml
            """),
        encoding="utf-8",
    )
    Overlay(project).promote([_lesson()])
    code, out, _ = _run(capsys, "ci", "wf.yaml", "--state", "state")
    assert code == 0, out
    assert "greet: 1 lesson applied from cached-main" in out
    assert "lessons applied: be-polite" in (project / "state/reports/branchleaf.md").read_text()
    code, out, _ = _run(capsys, "ci", "wf.yaml", "--state", "state", "--no-overlay")
    assert code == 1
