"""Real stored runs for the report tests: small workflows run through the command line with
the mock provider, once per test session, into one state."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from runner.main import main
from runner.reports.model import RunReport, load
from runner.store import runs
from runner.store.db import opened

GREETING = """\
version: 1
name: greeting
roles: {writer: {}}
steps:
  kind: sequence
  id: main
  steps:
    - kind: leaf
      id: greet
      role: writer
      prompt: "Greet the reviewers of this change."
    - kind: reduce
      id: shout
      inputs: [greet]
      expr: "outputs.greet | upper"
tests:
  - name: the greeting is written
    expect: "outputs.greet | length > 0"
  - name: the greeting is shouted
    expect: "outputs.shout == outputs.greet | upper"
"""

BROKEN = """\
version: 1
name: broken-sum
roles: {writer: {}}
steps:
  kind: sequence
  id: main
  steps:
    - kind: leaf
      id: draft
      role: writer
      prompt: "Write a haiku about sums."
    - kind: reduce
      id: total
      inputs: [draft]
      expr: "outputs.draft.missing.deeper"
tests:
  - name: the total is ten
    expect: "outputs.total == 10"
"""

CONTESTS = """\
version: 1
name: contests
roles: {writer: {}}
steps:
  kind: sequence
  id: main
  steps:
    - kind: leaf
      id: brief
      role: writer
      prompt: "Brief the candidates."
    - kind: tournament
      id: pick
      score: "candidate.n"
      candidates:
        - {kind: reduce, id: small, inputs: [brief], expr: "{'n': 1}"}
        - {kind: reduce, id: big, inputs: [brief], expr: "{'n': 3}"}
    - kind: pareto
      id: front
      count: 3
      body:
        kind: reduce
        id: plan
        inputs: [pick]
        expr: "{'value': sample, 'risk': [1, 1, 4][sample]}"
      objectives:
        - {name: value, expr: candidate.value, goal: max}
        - {name: risk, expr: candidate.risk, goal: min}
    - kind: leaf
      id: say
      role: writer
      prompt: "Say which plan won: {{ outputs.pick.index }}"
tests:
  - name: the big candidate wins
    expect: "outputs.pick.score == 3"
  - name: the front holds all three
    expect: "outputs.front.frontier | length == 3"
"""

OUT_OF_TIME = """\
version: 1
name: out-of-time
roles: {writer: {}}
budget: {wall_s: 0.2}
steps:
  kind: leaf
  id: slow
  role: writer
  prompt: "Take your time."
"""

SLOW_SCRIPT = """\
nodes:
  "slow": {latency_ms: 5000}
"""


@dataclass(frozen=True)
class Stored:
    """The state and the ids of the runs made in it, in the order they were made."""

    state: Path
    root: Path
    first_greeting: str
    """A passing run whose call missed the memo."""
    greeting: str
    """The same workflow again: a passing run the memo answered."""
    broken: str
    """A failed node, and so a test not evaluated."""
    contests: str
    """A tournament, a pareto front, a passing and a failing test."""
    replay: str
    """A replay of ``contests`` with a changed prompt: it diverges at ``say``."""
    out_of_time: str
    """Stopped by its wall-clock budget, with no node failing by itself; the last run."""


_STORED: Stored | None = None


def stored(factory: pytest.TempPathFactory) -> Stored:
    """The stored runs, made on first use."""
    global _STORED  # noqa: PLW0603  # one set of runs for every report test module
    if _STORED is None:
        _STORED = _make(factory.mktemp("reports"))
    return _STORED


def _make(root: Path) -> Stored:
    state = root / "state"
    for name, text in (
        ("greeting.yaml", GREETING),
        ("broken.yaml", BROKEN),
        ("contests.yaml", CONTESTS),
        ("changed.yaml", CONTESTS.replace("Say which plan won", "Tell which plan won")),
        ("out_of_time.yaml", OUT_OF_TIME),
        ("slow.yaml", SLOW_SCRIPT),
    ):
        (root / name).write_text(textwrap.dedent(text), encoding="utf-8")
    common = ["--state", str(state), "--plain", "--report-dir", str(root / "summaries")]
    ids = []
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        for argv, code in (
            (["run", "greeting.yaml"], 0),
            (["run", "greeting.yaml"], 0),
            (["run", "broken.yaml"], 1),
            (["run", "contests.yaml"], 1),
            (["replay", "last", "changed.yaml"], 1),
            (["run", "out_of_time.yaml", "--mock-script", "slow.yaml"], 1),
        ):
            assert main([*argv, *common]) == code, argv
            with opened(state, create=False) as conn:
                ids.append(runs.find(conn, "last").id)
    return Stored(state, root, *ids)


def reports(stored: Stored, *run_ids: str) -> list[RunReport]:
    """The reports of runs in the stored state."""
    with opened(stored.state, create=False) as conn:
        return [load(conn, run_id) for run_id in run_ids]
