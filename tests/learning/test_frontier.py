"""The candidate frontier and its parent selection, against a brute-force definition."""

from __future__ import annotations

import json
import random
from collections import Counter
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runner.learning.frontier import Frontier, frontier, pick

Scores = dict[str, dict[str, float]]


def brute_force(scores: Scores) -> tuple[list[str], str]:
    """Kept candidates and the aggregate best, by another route than the module's.

    Largest led sets first (earlier candidates first among equals), keep each one whose led
    set is not inside one already kept; the aggregate best by exact means.
    """
    names = list(scores)
    cases = list(scores[names[0]])
    led = {
        n: frozenset(c for c in cases if scores[n][c] == max(scores[m][c] for m in names))
        for n in names
    }
    kept: list[str] = []
    for n in sorted(names, key=lambda n: (-len(led[n]), names.index(n))):
        if not any(led[n] <= led[k] for k in kept):
            kept.append(n)
    means = {n: sum(Fraction(scores[n][c]) for c in cases) / len(cases) for n in names}
    best = max(names, key=lambda n: (means[n], -names.index(n)))
    return sorted(kept, key=names.index), best


def score_tables(values: st.SearchStrategy[float]) -> st.SearchStrategy[Scores]:
    return st.integers(1, 6).flatmap(
        lambda n_cases: st.lists(
            st.lists(values, min_size=n_cases, max_size=n_cases), min_size=1, max_size=6
        ).map(
            lambda rows: {
                f"cand{i}": {f"case{j}": v for j, v in enumerate(row)} for i, row in enumerate(rows)
            }
        )
    )


def check(front: Frontier, scores: Scores) -> None:
    kept, best = brute_force(scores)
    assert list(front.kept) == kept
    assert front.aggregate_best == best
    for case, leaders in front.leaders.items():
        top = max(row[case] for row in scores.values())
        assert list(leaders) == [n for n, row in scores.items() if row[case] == top]
    for name, by in front.dropped.items():
        assert by in front.kept
        assert set(front.led[name]) <= set(front.led[by])
    assert set(front.dropped) | set(front.kept) == set(scores)
    for a in front.kept:
        for b in front.kept:
            assert a == b or not set(front.led[a]) <= set(front.led[b])
    for name, weight in front.weights.items():
        if name == best:
            assert weight == max(1, len(front.led[name]))
        else:
            assert name in front.kept
            assert weight == len(front.led[name])
    assert front.weights[best] >= 1
    assert set(front.weights) == set(front.kept) | {best}
    assert json.loads(json.dumps(front.to_json(), allow_nan=False)) == front.to_json()


@settings(max_examples=80, deadline=None)
@given(score_tables(st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0])))
def test_graded_scores_match_the_brute_force(scores: Scores) -> None:
    check(frontier(scores), scores)


@settings(max_examples=80, deadline=None)
@given(score_tables(st.sampled_from([0.0, 1.0])))
def test_on_pass_fail_scores_the_aggregate_best_is_never_pruned(scores: Scores) -> None:
    front = frontier(scores)
    check(front, scores)
    # A candidate whose passes are inside another's passes fewer cases, so on pass/fail the
    # aggregate best stays on the frontier by leading cases alone.
    assert front.aggregate_best in front.kept
    assert front.rescued is None


@settings(max_examples=30, deadline=None)
@given(score_tables(st.sampled_from([0.0, 0.5, 1.0])), st.randoms(use_true_random=False))
def test_case_order_does_not_matter(scores: Scores, shuffler: random.Random) -> None:
    cases = list(next(iter(scores.values())))
    shuffler.shuffle(cases)
    reordered = {n: {c: row[c] for c in cases} for n, row in scores.items()}
    a, b = frontier(scores), frontier(reordered)
    assert (a.kept, a.dropped, a.weights, a.aggregate_best) == (
        b.kept,
        b.dropped,
        b.weights,
        b.aggregate_best,
    )


def test_the_broad_candidate_gepa_would_prune_keeps_its_weight() -> None:
    # gepa-ai/gepa PR #432: 'broad' passes the most cases, but each of them is also passed
    # by one of two specialists that also pass a case alone. GEPA's selector prunes a
    # candidate when every case it leads has another leader, which leaves 'broad' no chance.
    scores: Scores = {
        "broad": {"c1": 1, "c2": 1, "c3": 1, "c4": 1, "c5": 0, "c6": 0},
        "s1": {"c1": 1, "c2": 1, "c3": 0, "c4": 0, "c5": 1, "c6": 0},
        "s2": {"c1": 0, "c2": 0, "c3": 1, "c4": 1, "c5": 0, "c6": 1},
    }
    front = frontier(scores)
    gepa_prunes = all(
        any(other in front.leaders[case] for other in ("s1", "s2")) for case in front.led["broad"]
    )
    assert gepa_prunes
    assert front.aggregate_best == "broad"
    assert front.kept == ("broad", "s1", "s2")
    assert front.weights == {"broad": 4, "s1": 3, "s2": 3}
    assert front.rescued is None


def test_an_aggregate_best_covered_by_another_keeps_a_chance() -> None:
    scores: Scores = {
        "steady": {"a": 1.0, "b": 0.9, "d": 0.9},
        "spiky": {"a": 1.0, "b": 1.0, "d": 0.0},
        "late": {"a": 0.0, "b": 0.0, "d": 1.0},
    }
    front = frontier(scores)
    assert front.kept == ("spiky", "late")
    assert front.dropped == {"steady": "spiky"}
    assert front.aggregate_best == "steady"
    assert front.weights == {"steady": 1, "spiky": 2, "late": 1}
    assert front.rescued == (
        "'steady' has the best mean score (0.933333) but every case it leads is also led by "
        "'spiky'; it keeps weight 1 so it can still be picked"
    )


def test_an_aggregate_best_that_leads_no_case_keeps_a_chance() -> None:
    scores: Scores = {
        "a": {"x": 1.0, "y": 0.0, "z": 0.0},
        "b": {"x": 0.0, "y": 1.0, "z": 0.0},
        "c": {"x": 0.0, "y": 0.0, "z": 1.0},
        "even": {"x": 0.9, "y": 0.9, "z": 0.9},
    }
    front = frontier(scores)
    assert front.led["even"] == ()
    assert front.dropped == {"even": "a"}
    assert front.weights == {"a": 1, "b": 1, "c": 1, "even": 1}
    assert front.rescued is not None
    assert "'even' has the best mean score (0.9) but it leads no case" in front.rescued
    assert Counter(pick(front, random.Random(s)) for s in range(400))["even"] > 50


def test_equal_led_sets_keep_the_earliest() -> None:
    scores: Scores = {
        "baseline": {"p": 1, "q": 0},
        "copy": {"p": 1, "q": 0},
        "other": {"p": 0, "q": 1},
    }
    front = frontier(scores)
    assert front.kept == ("baseline", "other")
    assert front.dropped == {"copy": "baseline"}
    assert front.to_json()["dropped"] == [{"candidate": "copy", "covered_by": "baseline"}]
    flipped = frontier({"copy": scores["copy"], "baseline": scores["baseline"]})
    assert flipped.kept == ("copy",)


def test_a_single_candidate_leads_everything() -> None:
    front = frontier({"baseline": {"a": 0.0, "b": 0.0}})
    assert front.weights == {"baseline": 2}
    assert pick(front, random.Random(0)) == "baseline"


@settings(max_examples=12, deadline=None)
@given(score_tables(st.sampled_from([0.0, 0.5, 1.0])), st.integers(0, 2**32))
def test_pick_frequencies_follow_the_weights(scores: Scores, seed: int) -> None:
    front = frontier(scores)
    rng = random.Random(seed)
    draws = 4000
    counts = Counter(pick(front, rng) for _ in range(draws))
    total = sum(front.weights.values())
    assert set(counts) <= set(front.weights)
    for name, weight in front.weights.items():
        # Six standard deviations of a proportion from 4,000 draws is under 0.05.
        assert abs(counts[name] / draws - weight / total) < 0.05


def test_pick_is_deterministic_for_a_seed() -> None:
    front = frontier({"a": {"x": 1, "y": 0, "z": 1}, "b": {"x": 0, "y": 1, "z": 1}})
    first = [pick(front, random.Random(9)) for _ in range(5)]
    assert first == [pick(front, random.Random(9)) for _ in range(5)]
    rng = random.Random(3)
    assert {pick(front, rng) for _ in range(50)} == {"a", "b"}


@pytest.mark.parametrize(
    ("scores", "match"),
    [
        ({}, "at least one candidate"),
        ({"a": {}}, "at least one selection case"),
        ({"a": {"x": 1}, "b": {"y": 1}}, "scored on different cases"),
        ({"a": {"x": float("nan")}}, "not a number"),
    ],
)
def test_bad_scores_are_one_sentence(scores: Scores, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        frontier(scores)
