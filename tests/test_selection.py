"""Tournament winners and Pareto frontiers."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runner.selection import Entrant, Point, choose_winner, dominates, frontier, parse_score


@pytest.mark.parametrize(
    ("text", "score"),
    [
        ("7", 7.0),
        (" 0.25\n", 0.25),
        ('{"score": 9, "why": "clear"}', 9.0),
        ("```json\n3\n```", 3.0),
    ],
)
def test_parse_score(text: str, score: float) -> None:
    assert parse_score(text) == score


@pytest.mark.parametrize("text", ["seven", '{"why": 1}', "true", "NaN", '{"score": "9"}'])
def test_parse_score_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="judge replied"):
        parse_score(text)


ENTRANTS = [
    Entrant(index=0, score=7, cost_usd=0.3),
    Entrant(index=1, score=9, cost_usd=0.5),
    Entrant(index=2, score=9, cost_usd=0.2),
    Entrant(index=3, score=4, cost_usd=0.01),
]


def test_score_then_cost_prefers_the_cheaper_of_equal_scores() -> None:
    verdict = choose_winner(ENTRANTS, "score_then_cost", None)
    assert verdict.winner == 2
    assert verdict.ranking == (2, 1, 0, 3)


def test_cost_then_score_takes_the_cheapest_above_min_score() -> None:
    assert choose_winner(ENTRANTS, "cost_then_score", None).winner == 3
    verdict = choose_winner(ENTRANTS, "cost_then_score", 5)
    assert verdict.winner == 2
    assert verdict.ranking == (2, 0, 1)
    assert "reaching 5" in verdict.reason


def test_no_winner_below_min_score() -> None:
    verdict = choose_winner(ENTRANTS, "score_then_cost", 10)
    assert verdict.winner is None
    assert "best 9" in verdict.reason


def test_winner_does_not_depend_on_arrival_order() -> None:
    assert choose_winner(ENTRANTS[::-1], "score_then_cost", None).winner == 2


def test_dominates() -> None:
    assert dominates((2, 1), (1, 1), ("max", "min"))
    assert dominates((1, 0), (1, 1), ("max", "min"))
    assert not dominates((1, 1), (1, 1), ("max", "min"))
    assert not dominates((2, 2), (1, 1), ("max", "min"))


def test_frontier_keeps_the_non_dominated() -> None:
    points = [
        Point(index=0, values=(0.9, 5.0)),
        Point(index=1, values=(0.5, 1.0)),
        Point(index=2, values=(0.4, 2.0)),  # dominated by 1
        Point(index=3, values=(0.9, 4.0)),  # dominates 0
    ]
    assert frontier(points, ("max", "min"), 8) == (1, 3)


def test_frontier_over_max_items_keeps_extremes_and_diverse_keys() -> None:
    line = [Point(index=i, values=(float(i), float(i)), diversity_key="same") for i in range(6)]
    line[3] = Point(index=3, values=(3.0, 3.0), diversity_key="other")
    kept = frontier(line, ("max", "min"), 3)
    assert len(kept) == 3
    assert {0, 5, 3} == set(kept)


def test_frontier_rejects_non_numbers() -> None:
    with pytest.raises(ValueError, match="candidate 1"):
        frontier([Point(index=1, values=(float("nan"),))], ("max",), 8)


values = st.lists(
    st.tuples(st.integers(0, 5), st.integers(0, 5)).map(lambda t: (float(t[0]), float(t[1]))),
    min_size=1,
    max_size=12,
)


@settings(max_examples=200, deadline=None)
@given(values=values, max_items=st.integers(1, 8), data=st.data())
def test_frontier_properties(values: list[tuple[float, float]], max_items: int, data) -> None:  # type: ignore[no-untyped-def]
    points = [Point(index=i, values=v) for i, v in enumerate(values)]
    goals = ("max", "min")
    kept = frontier(points, goals, max_items)
    assert 1 <= len(kept) <= max_items
    for i in kept:
        assert not any(dominates(q.values, points[i].values, goals) for q in points)
    non_dominated = [
        p.index for p in points if not any(dominates(q.values, p.values, goals) for q in points)
    ]
    if len(non_dominated) <= max_items:
        assert kept == tuple(non_dominated)
    shuffled = data.draw(st.permutations(points))
    assert frontier(shuffled, goals, max_items) == kept
