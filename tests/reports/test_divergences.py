"""A prompt changed in one place: the replay shows its first divergence in full and counts the
others by kind, in the console, `inspect` and both reports (issue 11, point 9)."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from xml.etree import ElementTree

import pytest

from runner.main import main
from runner.reports.divergences import counted, kind_of
from runner.store.trace import RecordedRun

WORKFLOW = """\
version: 1
name: fanned
roles: {worker: {}}
steps:
  kind: sequence
  id: main
  steps:
    - {kind: leaf, id: seed, role: worker, prompt: "Give a seed"}
    - kind: branch
      id: both
      fail_fast: false
      children:
        - kind: expand
          id: fan
          over: "range(40) | list"
          as: item
          max_children: 40
          body: {kind: leaf, id: one, role: worker, prompt: "Judge item {{ item }} carefully"}
        - kind: expand
          id: twice
          over: "range(20) | list"
          as: item
          max_children: 20
          body: {kind: reduce, id: two, inputs: [seed], expr: "item + 1"}
"""

DIFF = "-[user] Judge item "


@pytest.fixture
def replayed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[Path, str]:
    """A run of the workflow, replayed with its prompt and its expression changed: the state
    and what the replay printed."""
    monkeypatch.chdir(tmp_path)
    Path("wf.yaml").write_text(textwrap.dedent(WORKFLOW), encoding="utf-8")
    changed = WORKFLOW.replace("carefully", "with care").replace("item + 1", "item + 2")
    Path("changed.yaml").write_text(textwrap.dedent(changed), encoding="utf-8")
    assert main(["run", "wf.yaml", "--plain", "--state", "state"]) == 0
    capsys.readouterr()
    assert main(["replay", "last", "changed.yaml", "--plain", "--state", "state"]) == 1
    return tmp_path / "state", capsys.readouterr().out


def test_the_console_shows_one_diff_and_counts_the_rest(replayed: tuple[Path, str]) -> None:
    _, out = replayed
    # One diff in the progress lines, one in the table, one in the run line's reason.
    assert out.count(DIFF) <= 3
    more = re.findall(r"and 59 more divergences: (.*)", out)
    assert more in (
        ["39 requests not in the trace, 20 outputs that differ"],
        ["40 requests not in the trace, 19 outputs that differ"],
    )


def test_inspect_shows_one_diff(
    replayed: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    state, _ = replayed
    assert main(["inspect", "last", "--state", str(state)]) == 0
    out = capsys.readouterr().out
    assert out.count(DIFF) == 2  # the run's reason, and the first divergent node
    assert "one[39] leaf replay_diverged" in out


def test_the_markdown_report_lists_the_first_and_counts_the_rest(
    replayed: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    state, _ = replayed
    assert main(["report", "last", "--state", str(state)]) == 0
    markdown = capsys.readouterr().out
    failures = markdown.split("#### Failures")[1].split("**First divergence**")[0]
    listed = [line for line in failures.splitlines() if line.startswith("- ")]
    assert listed[0].startswith("- `one[0]` (leaf, replay_diverged): the model call at one")
    assert listed[-1] == (
        "- … and 59 more divergences: 39 requests not in the trace, 20 outputs that differ"
    )
    assert not [line for line in listed if "`one[1]`" in line or "`two[" in line]
    assert markdown.count(DIFF) == 1


def test_the_junit_report_has_one_case_for_the_rest(
    replayed: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    state, _ = replayed
    assert main(["report", "last", "--state", str(state), "--format", "junit"]) == 0
    suite = ElementTree.fromstring(capsys.readouterr().out).find("testsuite")
    assert suite is not None
    cases = {case.get("name"): case for case in suite.iter("testcase")}
    assert "one[0]" in cases
    assert "one[1]" not in cases
    rest = cases["59 more divergences"].find("failure")
    assert rest is not None
    assert rest.get("message") == (
        "and 59 more divergences: 39 requests not in the trace, 20 outputs that differ"
    )
    assert "two[19]: the output of two[19] differs" in (rest.text or "")


def test_every_divergence_message_has_a_kind() -> None:
    ended = {"status": "succeeded", "output": 1, "decision": {"arm": "then"}}
    failed = {"status": "failed", "output": None}
    recorded = RecordedRun(
        [("a/e", "node_finished", None, ended), ("a/f", "node_finished", None, failed)],
        strict=True,
    )
    assert kind_of(recorded.missed_call("a/b", None)) == "request"
    assert kind_of(recorded.missed_command("a/c", ("echo", "hi"))) == "command"
    assert kind_of(recorded.check("a/d", 1, None) or "") == "ended"
    assert kind_of(recorded.decided("a/e", {"arm": "else"}) or "") == "decision"
    assert kind_of(recorded.check("a/e", 2, {"arm": "then"}) or "") == "output"
    assert kind_of(recorded.check("a/f", 2, None) or "") == "ended"
    # A node that diverged only because a child did is not counted as a divergence.
    assert kind_of("40 of 40 children did not succeed") is None
    assert counted(["the output of x differs", "the command at y differs"]) == (
        "1 command not in the trace, 1 output that differs"
    )
