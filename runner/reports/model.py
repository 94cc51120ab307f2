"""What a report says about one stored run, read from the state: its figures and tests, the
nodes that failed by themselves (not because something inside them did), the first divergence
of a replay, the slowest nodes, the results of its contests and every node's status."""

from __future__ import annotations

import sqlite3
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from runner.status import Status, run_status, summary_status, tests_note
from runner.store import runs
from runner.store.trace import Event, events

WORK_KINDS = frozenset({"leaf", "command", "reduce", "teacher_review"})
"""Kinds that do work themselves rather than arrange other nodes: the ones timed as slowest."""
SLOWEST = 5
"""How many of the slowest nodes a report names."""
PROBLEMS = frozenset(
    {
        Status.FAILED,
        Status.REPLAY_DIVERGED,
        Status.STUCK,
        Status.BUDGET_EXCEEDED,
        Status.PROVIDER_FAILED,
    }
)
"""Node statuses a report lists as failures. A cancelled node is not one: what stopped it (a
failed sibling, a budget, an interrupt) is reported in its place."""
TOLERATED = "tolerated"
"""The graph's colour for a node whose every copy failed and was gone on without."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TestOutcome:
    """How one workflow test came out, over one run or several."""

    name: str
    """The test's name."""
    passed: bool
    """Whether it passed (over several runs: whether enough of them did)."""
    message: str | None
    """Why it failed, or the error evaluating it."""
    runs: int = 1
    """How many times it was checked."""
    passes: int
    """How many of those runs passed."""
    threshold: float | None = None
    """The pass rate asked for (0 to 1), when the test is repeated."""

    def result(self) -> str:
        """The outcome in a few words: ``passed``, ``failed``, or ``4/5 runs passed (needs
        80%)`` for a repeated test."""
        if self.runs <= 1:
            return "passed" if self.passed else "failed"
        needs = "" if self.threshold is None else f" (needs {self.threshold * 100:.4g}%)"
        return f"{self.passes}/{self.runs} runs passed{needs}"


@dataclass(frozen=True, slots=True, kw_only=True)
class FailedNode:
    """A node (or copy) that ended without success by itself."""

    path: str
    """Where it ran (its id with copy indices and loop iterations)."""
    kind: str
    """Its node kind."""
    status: str
    """Its terminal status."""
    error: str
    """Why it did not succeed (for a replay divergence, the message with its diff)."""
    seconds: float
    """Its wall time, retries included."""
    provider_failure: str | None = None
    """The provider failure that stopped it, in the words shared by every call it stopped."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Divergence:
    """Where a replay first differed from the recorded run, and how."""

    path: str
    """The node that diverged."""
    message: str
    """What differs, in one line."""
    diff: str
    """The recorded and the replayed value as a unified diff (empty when there is none, as
    for a call the recorded run never made)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SlowNode:
    """One of a run's slowest nodes."""

    path: str
    """Where it ran."""
    kind: str
    """Its node kind."""
    seconds: float
    """Its wall time, retries included."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TournamentResult:
    """How a tournament chose its winner."""

    path: str
    """Where the tournament ran."""
    winner: int | None
    """The winning candidate's index."""
    score: float | None
    """The winner's score."""
    scores: tuple[tuple[int, float], ...]
    """Every judged candidate's index and score, by index."""
    reason: str | None
    """Why the winner won, as the tournament put it."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ParetoResult:
    """Which candidates a pareto node kept."""

    path: str
    """Where the pareto node ran."""
    front: tuple[int, ...]
    """Indices of the candidates on the kept front."""
    values: tuple[dict[str, float], ...]
    """Their objective values, by objective name, in the order of ``front``."""
    candidates: int
    """How many candidates were scored."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RunReport:
    """Everything a report shows about one run."""

    run_id: str
    """The run's id."""
    workflow: str
    """The workflow's name."""
    source: str | None
    """The file the workflow was compiled from."""
    mode: str
    """``run``, ``replay``, ``resume`` or ``fork``."""
    parent: str | None
    """The run replayed or resumed."""
    status: str
    """The run's status (``crashed`` for a running run whose process is gone)."""
    reason: str | None
    """What decided a status other than succeeded."""
    started_at: float
    """Start, seconds since the epoch."""
    duration_s: float
    """Seconds from start to end."""
    done: int
    """Nodes and copies that ended."""
    total: int
    """Nodes and copies known."""
    failed: int
    """Nodes and copies that did not succeed."""
    calls: int
    """Model calls that reached a provider."""
    tokens: int
    """Tokens of those calls."""
    cost_usd: float
    """Dollars of those calls."""
    memo_hits: int
    """Calls the memo answered."""
    memo_misses: int
    """Calls the memo could have answered but did not."""
    saved_tokens: int
    """Tokens the memo saved."""
    saved_usd: float
    """Dollars the memo saved."""
    tests: tuple[TestOutcome, ...]
    """The workflow tests, in the workflow's order."""
    failures: tuple[FailedNode, ...]
    """Nodes that failed by themselves, in the run's logical order."""
    tolerated: tuple[FailedNode, ...] = ()
    """Failures the run went on without (``allow_fail``, ``min_successes``), by themselves
    likewise, in logical order."""
    divergence: Divergence | None
    """A replay's first divergence, if it diverged."""
    slowest: tuple[SlowNode, ...]
    """The slowest nodes that do work themselves, slowest first."""
    tournaments: tuple[TournamentResult, ...]
    """Every tournament that chose a winner, in logical order."""
    paretos: tuple[ParetoResult, ...]
    """Every pareto node that kept a front, in logical order."""
    statuses: dict[str, str]
    """Each node id's status, its copies combined (the most severe wins), for the graph."""
    document: dict[str, Any]
    """The compiled workflow document, as run."""
    served: dict[str, Any] = field(default_factory=dict)
    """Which provider and model served each role, as the run recorded it (its provider map:
    ``roles``, ``providers``, ``all_mock``)."""
    overlay: dict[str, Any] | None = None
    """The overlay lessons the run applied (branch, commit, lessons, digest), or None."""
    repeats: tuple[str, ...] = ()
    """Other runs of the workflow, repeated for its tests, whose usage and memo figures are
    summed into this report's (``ci``); their tests are counted in :attr:`tests`."""

    @property
    def memo_hit_rate(self) -> float | None:
        """Hits over the calls the memo could answer; ``None`` when it could answer none."""
        asked = self.memo_hits + self.memo_misses
        return self.memo_hits / asked if asked else None

    @property
    def passed(self) -> bool:
        """Whether the run succeeded and every test passed."""
        return self.status == Status.SUCCEEDED and all(test.passed for test in self.tests)

    @property
    def shown_status(self) -> str:
        """The run's status as its summary shows it: ``failed`` when its nodes succeeded but
        a workflow test did not pass (``runner.status.summary_status``)."""
        return summary_status(self.status, [test.passed for test in self.tests])

    @property
    def shown_reason(self) -> str | None:
        """What decided the shown status: the run's reason, or which tests failed."""
        return self.reason or tests_note([test.passed for test in self.tests])


def load(conn: sqlite3.Connection, run_id: str) -> RunReport:
    """The report of run ``run_id`` (NotInState when the state has no such run)."""
    record = runs.find(conn, run_id)
    recorded = events(conn, record.id)
    status = runs.shown_status(record)
    starts = {e.path: e.position for e in recorded if e.type == "node_started"}
    ended = [e for e in recorded if e.type == "node_finished"]
    causes = _causes(starts, [e for e in ended if not e.data.get("tolerated")])
    went_on = _causes(starts, [e for e in ended if e.data.get("tolerated")])
    return RunReport(
        run_id=record.id,
        workflow=record.workflow,
        source=record.source,
        mode=record.mode,
        parent=record.parent,
        status=status,
        reason=record.reason,
        started_at=record.started_at,
        duration_s=record.duration_s,
        done=record.done,
        total=record.total,
        failed=record.failed,
        calls=record.calls,
        tokens=record.tokens,
        cost_usd=record.cost_usd,
        memo_hits=record.memo_hits,
        memo_misses=record.memo_misses,
        saved_tokens=record.saved_tokens,
        saved_usd=record.saved_usd,
        tests=tuple(_outcome(test) for test in record.tests or ()),
        failures=tuple(_failed(e) for e in causes),
        tolerated=tuple(_failed(e) for e in went_on),
        divergence=next(
            (_divergence(e) for e in causes if e.data["status"] == Status.REPLAY_DIVERGED), None
        ),
        slowest=_slowest(ended),
        tournaments=tuple(_tournaments(ended)),
        paretos=tuple(_paretos(ended)),
        statuses=_statuses(recorded, running=status == runs.RUNNING),
        document=record.document,
        served=record.providers,
        overlay=record.overlay,
    )


def served_roles(served: dict[str, Any]) -> dict[str, dict[str, str | None]]:
    """Role -> ``{"provider": ..., "model": ...}`` from a run's provider map."""
    roles = served.get("roles")
    if not isinstance(roles, dict):
        return {}
    return {
        str(role): {"provider": spec.get("provider"), "model": spec.get("model")}
        for role, spec in sorted(roles.items())
        if isinstance(spec, dict)
    }


def overlay_line(overlay: dict[str, Any] | None) -> str | None:
    """``lessons applied: a, b (cached-main at abc1234)``; None when the run applied none."""
    if not overlay or not overlay.get("lessons"):
        return None
    ids = ", ".join(str(lesson.get("id")) for lesson in overlay["lessons"])
    if overlay.get("candidate"):
        return f"lessons applied: {ids} (learn candidate {overlay['candidate']})"
    return f"lessons applied: {ids} ({overlay.get('branch')} at {str(overlay.get('commit'))[:7]})"


def overlay_summary(overlay: dict[str, Any] | None) -> dict[str, Any] | None:
    """What a summary or report file says of the lessons applied: where from, and each
    lesson's id, kind and target."""
    if not overlay:
        return None
    return {
        "branch": overlay.get("branch"),
        "commit": overlay.get("commit"),
        "digest": overlay.get("digest"),
        "lessons": [
            {key: lesson.get(key) for key in ("id", "kind", "target")}
            for lesson in overlay.get("lessons") or ()
        ],
    }


def served_line(served: dict[str, Any]) -> str:
    """Who served the roles, in one line: ``roles: reviewer on openai (gpt-4o), writer on
    mock``, or ``every role on the mock: no branchleaf.yaml`` (or ``--mock``)."""
    if served.get("all_mock"):
        return f"every role on the mock: {served['all_mock']}"
    roles = served_roles(served)
    if not roles:
        return "roles: none"
    return "roles: " + ", ".join(
        f"{role} on {spec['provider']}" + (f" ({spec['model']})" if spec["model"] else "")
        for role, spec in roles.items()
    )


def _outcome(test: dict[str, Any]) -> TestOutcome:
    passed = bool(test["passed"])
    repeated = int(test.get("runs", 1))
    return TestOutcome(
        name=test["name"],
        passed=passed,
        message=test.get("message"),
        runs=repeated,
        passes=int(test.get("passes", repeated if passed else 0)),
        threshold=test.get("threshold"),
    )


def _causes(starts: dict[str, str], ended: list[Event]) -> list[Event]:
    """The failed nodes with no failed node inside them, in logical order.

    Everything a node contains sorts between its start and its end (``runner.order``), and
    nodes are nested or apart, never overlapping: a failed node holds another one exactly when
    the next failed start after its own comes no later than its end. A node that never started
    has only its end, which stands for its start too.
    """
    failed = [e for e in ended if e.data["status"] in PROBLEMS]
    begun = sorted(starts.get(e.path, e.position) for e in failed)
    causes = []
    for event in failed:
        after = bisect_right(begun, starts.get(event.path, event.position))
        if after < len(begun) and begun[after] <= event.position:
            continue  # it failed because something inside it did
        causes.append(event)
    return causes


def _failed(event: Event) -> FailedNode:
    return FailedNode(
        path=event.path,
        kind=event.data.get("kind", ""),
        status=event.data["status"],
        error=event.data.get("error") or event.data["status"],
        seconds=float(event.data.get("duration_s", 0.0)),
        provider_failure=event.data.get("provider_failure"),
    )


def _divergence(event: Event) -> Divergence:
    lines = (event.data.get("error") or "").splitlines()
    # A divergence message is a line saying what differs, then the diff indented by four.
    diff = [line.removeprefix("    ") for line in lines[1:]]
    return Divergence(
        path=event.path, message=lines[0] if lines else "", diff="\n".join(diff).strip("\n")
    )


def _slowest(ended: list[Event]) -> tuple[SlowNode, ...]:
    timed = [e for e in ended if e.data.get("kind") in WORK_KINDS and e.data.get("attempts", 1) > 0]
    timed.sort(key=lambda e: (-float(e.data.get("duration_s", 0.0)), e.position))
    return tuple(
        SlowNode(path=e.path, kind=e.data["kind"], seconds=float(e.data.get("duration_s", 0.0)))
        for e in timed[:SLOWEST]
    )


def _tournaments(ended: list[Event]) -> Iterable[TournamentResult]:
    for event in ended:
        decision = event.data.get("decision")
        if event.data.get("kind") != "tournament" or not isinstance(decision, dict):
            continue
        output = event.data.get("output")
        score = output.get("score") if isinstance(output, dict) else None
        yield TournamentResult(
            path=event.path,
            winner=decision.get("winner"),
            score=float(score) if isinstance(score, int | float) else None,
            scores=tuple(
                sorted((int(index), float(value)) for index, value in decision["scores"].items())
            ),
            reason=decision.get("reason"),
        )


def _paretos(ended: list[Event]) -> Iterable[ParetoResult]:
    for event in ended:
        decision = event.data.get("decision")
        if event.data.get("kind") != "pareto" or not isinstance(decision, dict):
            continue
        output = event.data.get("output")
        values = output.get("values", []) if isinstance(output, dict) else []
        yield ParetoResult(
            path=event.path,
            front=tuple(decision.get("frontier", ())),
            values=tuple(values),
            candidates=int(decision.get("candidates", 0)),
        )


def _statuses(recorded: list[Event], *, running: bool) -> dict[str, str]:
    """Each node id's status over its copies: skipped when every copy was, else the most
    severe of the others, leaving out failures the run went on without (``tolerated`` when
    those are all there is); a node of a live run still going is running."""
    ended = [e for e in recorded if e.type == "node_finished"]
    seen: dict[str, list[Status]] = {}
    tolerated: set[str] = set()
    for event in ended:
        node = event.data["node"]
        if event.data.get("tolerated"):
            tolerated.add(node)
            seen.setdefault(node, [])
        else:
            seen.setdefault(node, []).append(Status(event.data["status"]))
    statuses = {}
    for node, found in seen.items():
        ran = [status for status in found if status is not Status.SKIPPED]
        if ran:
            statuses[node] = run_status(ran).value
        else:
            statuses[node] = TOLERATED if node in tolerated else Status.SKIPPED.value
    if running:
        finished = {e.path for e in ended}
        for event in recorded:
            if event.type == "node_started" and event.path not in finished:
                statuses[event.data["node"]] = Status.RUNNING.value
    return statuses
