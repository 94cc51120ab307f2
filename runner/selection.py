"""Choosing among candidates: a tournament's winner and a Pareto frontier. Pure and
deterministic: the same scores give the same choice, whatever order they arrived in."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from runner.ir import Goal, Ordering

JUDGE_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {"type": "number"},
        {"type": "object", "required": ["score"], "properties": {"score": {"type": "number"}}},
    ]
}
"""What a judge replies: a score, or an object holding one (and, say, its reasons); the
output schema of every judge call, by which the mock knows one."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Entrant:
    """One finished candidate of a tournament."""

    index: int
    """Position among the candidates (the sample index for ``count`` candidates)."""
    score: float
    """Its score."""
    cost_usd: float = 0.0
    """What producing it cost."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Verdict:
    """A tournament's decision."""

    winner: int | None
    """Index of the winner, or ``None`` when no candidate reached ``min_score``."""
    ranking: tuple[int, ...]
    """Every eligible candidate, best first."""
    reason: str
    """One sentence on how the winner was chosen, for the trace and the report."""


def parse_score(text: str) -> float:
    """A judge's score: a number, or a JSON object with a numeric ``score``."""
    stripped = text.strip().strip("`").removeprefix("json").strip()
    try:
        value: Any = json.loads(stripped)
    except json.JSONDecodeError as exc:
        raise ValueError(f"the judge replied {text[:60]!r}, which is not a number") from exc
    if isinstance(value, dict):
        value = value.get("score")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"the judge replied {text[:60]!r}, which holds no finite score")
    return float(value)


def choose_winner(
    entrants: Sequence[Entrant], ordering: Ordering, min_score: float | None
) -> Verdict:
    """Pick the winner by ``ordering`` among entrants reaching ``min_score``."""
    eligible = [e for e in entrants if min_score is None or e.score >= min_score]
    if ordering == "score_then_cost":
        ranked = sorted(eligible, key=lambda e: (-e.score, e.cost_usd, e.index))
        how = "highest score, cheaper on ties"
    else:
        ranked = sorted(eligible, key=lambda e: (e.cost_usd, -e.score, e.index))
        how = "cheapest, higher score on ties"
    if not ranked:
        best = max((e.score for e in entrants), default=None)
        return Verdict(
            winner=None,
            ranking=(),
            reason=f"no candidate reached min_score {min_score} (best {best})",
        )
    winner = ranked[0]
    floor = f" among those reaching {min_score}" if min_score is not None else ""
    return Verdict(
        winner=winner.index,
        ranking=tuple(e.index for e in ranked),
        reason=f"candidate {winner.index} won with score {winner.score:g} ({how}{floor})",
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Point:
    """One candidate of a Pareto selection, with its objective values."""

    index: int
    """Position among the candidates."""
    values: tuple[float, ...]
    """One value per objective, in the objectives' order."""
    diversity_key: str | None = None
    """Canonical text of its diversity key, when the node has one."""


def dominates(a: Sequence[float], b: Sequence[float], goals: Sequence[Goal]) -> bool:
    """Whether ``a`` is at least as good as ``b`` everywhere and better somewhere."""
    better = False
    for x, y, goal in zip(a, b, goals, strict=True):
        sign = -1.0 if goal == "min" else 1.0
        if sign * x < sign * y:
            return False
        better = better or sign * x > sign * y
    return better


def frontier(points: Sequence[Point], goals: Sequence[Goal], max_items: int) -> tuple[int, ...]:
    """Indices of the non-dominated points, at most ``max_items``, in index order.

    When the frontier is larger, points that spread it (by crowding distance, extremes first)
    and that bring a diversity key not yet kept are preferred.
    """
    for point in points:
        if any(not math.isfinite(v) for v in point.values):
            raise ValueError(f"candidate {point.index} has an objective that is not a number")
    front = [
        p
        for p in points
        if not any(dominates(q.values, p.values, goals) for q in points if q is not p)
    ]
    if len(front) <= max_items:
        return tuple(sorted(p.index for p in front))
    crowding = _crowding(front, len(goals))
    order = sorted(front, key=lambda p: (-crowding[p.index], p.index))
    kept: list[Point] = []
    keys: set[str | None] = set()
    for point in order:  # first one per diversity key, then the rest in the same order
        if point.diversity_key is None or point.diversity_key not in keys:
            kept.append(point)
            keys.add(point.diversity_key)
    kept += [p for p in order if p not in kept]
    return tuple(sorted(p.index for p in kept[:max_items]))


def _crowding(front: Sequence[Point], objectives: int) -> dict[int, float]:
    distance = {p.index: 0.0 for p in front}
    for k in range(objectives):
        ordered = sorted(front, key=lambda p: (p.values[k], p.index))
        low, high = ordered[0].values[k], ordered[-1].values[k]
        distance[ordered[0].index] = distance[ordered[-1].index] = math.inf
        if high == low:
            continue
        for before, point, after in zip(ordered, ordered[1:], ordered[2:], strict=False):
            distance[point.index] += (after.values[k] - before.values[k]) / (high - low)
    return distance
