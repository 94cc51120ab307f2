"""What a learn run keeps of its candidates, and how it shows them: the candidates with their
runs, the table ``learn`` prints, and the learn record ``<workflow>.learn.json``."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

from runner import ir
from runner.executor.results import Spend
from runner.learning import gate
from runner.learning.cases import CaseRun, Split
from runner.learning.lessons import Lesson
from runner.plural import plural

BASELINE = "baseline"


@dataclass(slots=True, kw_only=True)
class Candidate:
    """The baseline, or the baseline with some lessons."""

    name: str
    """``baseline``, or ``c1``, ``c2``... in the order they were made."""
    lessons: tuple[Lesson, ...]
    """The lessons it adds to the baseline (the overlay's active ones are in the baseline)."""
    workflow: ir.Workflow
    """The baseline with its lessons applied: what its runs run."""
    parent: str | None
    """The candidate it was made from (None for the baseline)."""
    round: int
    """The round that made it (0 for the baseline)."""
    runs: dict[str, CaseRun] = field(default_factory=dict)
    """Its runs, by case name."""

    def spend(self) -> Spend:
        """What its runs cost."""
        return Spend.total(run.spend for run in self.runs.values())


def table(
    candidates: dict[str, Candidate],
    parts: Split,
    decisions: dict[str, gate.GateDecision],
    metric: bool,
    console: Console,
) -> None:
    table = Table(title="candidates", title_justify="left")
    for column in ("candidate", "lessons", "selection", "held-out", "calls", "memo", "gate"):
        table.add_column(column)
    for candidate in candidates.values():
        decision = decisions.get(candidate.name)
        spend = candidate.spend()
        verdict = (
            ""
            if candidate.name == BASELINE
            else "not decided"
            if decision is None
            else "promoted"
            if decision.promoted
            else f"rejected ({plural(len(decision.reasons), 'reason')} below)"
        )
        table.add_row(
            candidate.name,
            ", ".join(lesson.id for lesson in candidate.lessons) or "-",
            score_text(candidate, parts.selection, metric),
            score_text(candidate, parts.held_out, metric),
            str(spend.calls),
            str(spend.memo_hits),
            verdict,
        )
    console.print(table)
    for candidate in candidates.values():
        decision = decisions.get(candidate.name)
        if decision is not None and not decision.promoted:
            for reason in decision.reasons:
                console.print(f"{candidate.name} rejected: {reason}", markup=False)


def score_text(candidate: Candidate, names: tuple[str, ...], metric: bool) -> str:
    runs = [candidate.runs[name] for name in names if name in candidate.runs]
    if not runs:
        return "-"
    passed = sum(1 for run in runs if run.score.passed)
    text = f"{passed}/{len(runs)} pass"
    if metric:
        values = [run.score.metric for run in runs if run.score.metric is not None]
        if values:
            text += f", mean {sum(values) / len(values):.3g}"
    return text


@dataclass(slots=True, kw_only=True)
class Log:
    """What the learn run decided, for ``<workflow>.learn.json``."""

    workflow: str
    split: dict[str, Any]
    seed: int
    overlay: dict[str, Any] | None
    rounds: list[dict[str, Any]] = field(default_factory=list)
    lessons: list[dict[str, Any]] = field(default_factory=list)
    candidates: list[dict[str, Any]] = field(default_factory=list)
    frontier: dict[str, Any] | None = None
    spend: dict[str, Any] = field(default_factory=dict)

    def write(self, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{self.workflow}.learn.json"
        data = orjson.dumps(
            dataclasses.asdict(self),
            option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS,
            default=str,
        )
        temporary = target.with_suffix(".json.tmp")
        temporary.write_bytes(data + b"\n")
        temporary.replace(target)
        return target


def candidate_json(
    candidate: Candidate, decision: gate.GateDecision | None, parts: Split
) -> dict[str, Any]:
    spend = candidate.spend()
    return {
        "name": candidate.name,
        "parent": candidate.parent,
        "round": candidate.round,
        "lessons": [lesson.id for lesson in candidate.lessons],
        "runs": {
            case: {
                "run": run.run_id,
                "split": parts.of(case),
                "passed": run.score.passed,
                "failed_tests": list(run.score.failed_tests),
                "metric": run.score.metric,
            }
            for case, run in candidate.runs.items()
        },
        "spend": spend_json(spend),
        "gate": decision.to_json() if decision is not None else None,
    }


def spend_json(spend: Spend) -> dict[str, Any]:
    return {
        "calls": spend.calls,
        "tokens": spend.tokens,
        "cost_usd": spend.cost_usd,
        "memo_hits": spend.memo_hits,
    }
