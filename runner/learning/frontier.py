"""The candidate frontier (GEPA style): which candidates lead which selection cases, and how
likely each is to be the next parent. Pure; the only randomness is the ``random.Random`` that
:func:`pick` is handed.

The stable order of candidates is the order of the ``scores`` mapping (the learn loop adds
candidates as it creates them, the baseline first), so every tie goes to the older candidate.
Scores are compared exactly: candidates tie on a case when their scores are equal.

GEPA's selector prunes a candidate when each case it leads is also led by some other
candidate; on pass/fail metrics that gives the broadly strong candidate, which rarely solves a
case alone, zero chance of being picked (gepa-ai/gepa PR #432). Here a candidate is dropped
only when one other candidate leads every case it leads, and the candidate best on the
aggregate always keeps a weight of at least 1.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True, kw_only=True)
class Frontier:
    """The per-case leaders of a set of candidates and the parent-selection weights."""

    candidates: tuple[str, ...]
    """Every candidate, in the stable order."""
    leaders: dict[str, tuple[str, ...]]
    """For each selection case, the candidates tied for the best score there (stable order)."""
    led: dict[str, tuple[str, ...]]
    """For each candidate, the cases it leads (in the cases' order)."""
    kept: tuple[str, ...]
    """The candidates no other candidate covers, in the stable order."""
    dropped: dict[str, str]
    """Each dropped candidate and the kept one that leads every case it leads (the earliest)."""
    means: dict[str, float]
    """Each candidate's mean score over all the cases."""
    aggregate_best: str
    """The candidate with the highest mean (the earliest on a tie)."""
    weights: dict[str, int]
    """The chance of being picked, in proportion: the number of cases each kept candidate
    leads, and at least 1 for the aggregate best."""
    rescued: str | None
    """Why the aggregate best has a weight it would not have had by leading cases alone."""

    def to_json(self) -> dict[str, Any]:
        """The frontier as a trace event's payload."""
        return {
            "candidates": list(self.candidates),
            "leaders": {case: list(names) for case, names in self.leaders.items()},
            "kept": list(self.kept),
            "dropped": [{"candidate": c, "covered_by": by} for c, by in self.dropped.items()],
            "means": dict(self.means),
            "aggregate_best": self.aggregate_best,
            "weights": dict(self.weights),
            "rescued": self.rescued,
        }


def frontier(scores: Mapping[str, Mapping[str, float]]) -> Frontier:
    """The frontier of candidates given each one's score on every selection case."""
    candidates = tuple(scores)
    if not candidates:
        raise ValueError("the frontier needs at least one candidate")
    cases = tuple(scores[candidates[0]])
    if not cases:
        raise ValueError("the frontier needs at least one selection case")
    for name in candidates:
        row = scores[name]
        if set(row) != set(cases):
            missing = sorted(set(cases) - set(row)) or sorted(set(row) - set(cases))
            raise ValueError(
                f"candidate {name!r} and candidate {candidates[0]!r} are scored on different "
                f"cases (case {missing[0]!r} differs): score every candidate on every case"
            )
        for case, value in row.items():
            if not math.isfinite(value):
                raise ValueError(
                    f"candidate {name!r} has a score on case {case!r} that is not a number"
                )

    leaders: dict[str, tuple[str, ...]] = {}
    for case in cases:
        best = max(scores[name][case] for name in candidates)
        leaders[case] = tuple(n for n in candidates if scores[n][case] == best)
    led = {name: tuple(c for c in cases if name in leaders[c]) for name in candidates}
    sets = {name: frozenset(led[name]) for name in candidates}
    rank = {name: i for i, name in enumerate(candidates)}

    def covers(other: str, name: str) -> bool:
        # ``other`` leads every case ``name`` leads and more, or the same cases and is older.
        return other != name and (
            sets[name] < sets[other] or (sets[name] == sets[other] and rank[other] < rank[name])
        )

    kept = tuple(n for n in candidates if not any(covers(o, n) for o in candidates))
    # Covering is a strict order, so every dropped candidate is covered by a kept one (a
    # maximal element above it); name the earliest.
    dropped = {n: next(k for k in kept if covers(k, n)) for n in candidates if n not in kept}
    means = {n: math.fsum(scores[n][c] for c in cases) / len(cases) for n in candidates}
    top = max(means.values())
    aggregate_best = next(n for n in candidates if means[n] == top)

    weights = {n: len(led[n]) for n in kept}
    rescued: str | None = None
    if weights.get(aggregate_best, 0) == 0:
        weights[aggregate_best] = max(1, len(led[aggregate_best]))
        if not led[aggregate_best]:
            why = "it leads no case"
        else:
            why = f"every case it leads is also led by {dropped[aggregate_best]!r}"
        rescued = (
            f"{aggregate_best!r} has the best mean score ({top:.6g}) but {why}; it keeps "
            f"weight {weights[aggregate_best]} so it can still be picked"
        )
    ordered = {n: weights[n] for n in candidates if n in weights}
    return Frontier(
        candidates=candidates,
        leaders=leaders,
        led=led,
        kept=kept,
        dropped=dropped,
        means=means,
        aggregate_best=aggregate_best,
        weights=ordered,
        rescued=rescued,
    )


def pick(front: Frontier, rng: random.Random) -> str:
    """A parent, drawn with probability proportional to its weight."""
    total = sum(front.weights.values())
    if total <= 0:
        raise ValueError("the frontier has no candidate with a weight above zero")
    draw = rng.randrange(total)
    for name, weight in front.weights.items():
        if draw < weight:
            return name
        draw -= weight
    raise AssertionError("unreachable: the draw is below the total weight")
