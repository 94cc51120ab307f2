"""The gate's statistics against straightforward reference computations."""

from __future__ import annotations

import itertools
import math
import random
from fractions import Fraction

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from runner.learning.stats import (
    flips_needed,
    mcnemar_one_sided,
    paired_bootstrap_lower,
    percentile_index,
)


def reference_p(improved: int, regressed: int) -> Fraction:
    """P(X >= improved) by counting every way the flips could have gone."""
    n = improved + regressed
    if n == 0:
        return Fraction(1)
    ways = sum(1 for signs in itertools.product((0, 1), repeat=n) if sum(signs) >= improved)
    return Fraction(ways, 2**n)


def binomial_p(improved: int, regressed: int) -> Fraction:
    """The same tail as an exact sum of binomial terms, for counts too large to enumerate."""
    n = improved + regressed
    return sum((Fraction(math.comb(n, k), 2**n) for k in range(improved, n + 1)), Fraction(0))


def reference_lower(base: list[float], cand: list[float], seed: int, b: int, conf: str) -> float:
    """The documented rule, written out as a loop over indices and exact means."""
    rng = random.Random(seed)
    n = len(base)
    means = []
    for _ in range(b):
        picks = [math.floor(rng.random() * n) for _ in range(n)]
        total = sum((Fraction(cand[i]) - Fraction(base[i]) for i in picks), Fraction(0))
        means.append(total / n)
    means.sort()
    index = math.floor((1 - Fraction(conf)) / 2 * b)
    return float(means[index])


@pytest.mark.parametrize(
    ("improved", "regressed", "p"),
    [(5, 0, 1 / 32), (4, 0, 1 / 16), (0, 0, 1.0), (0, 5, 1.0), (3, 1, 5 / 16), (6, 2, 37 / 256)],
)
def test_mcnemar_examples(improved: int, regressed: int, p: float) -> None:
    assert mcnemar_one_sided(improved, regressed) == p


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 7), st.integers(0, 7))
def test_mcnemar_matches_enumeration(improved: int, regressed: int) -> None:
    exact = reference_p(improved, regressed)
    assert mcnemar_one_sided(improved, regressed) == float(exact)
    if improved + regressed:
        assert binomial_p(improved, regressed) == exact


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 60), st.integers(0, 60))
@example(0, 53)  # p = 1 - 2**-54 exactly, 1.0 as a float
def test_mcnemar_more_improvement_is_more_significant(improved: int, regressed: int) -> None:
    # Exactly, one more improvement always lowers p; as floats, p within 2**-53 of 1 (one
    # improvement among 53 regressions) rounds to 1.0 either way, so there it may only tie.
    assert binomial_p(improved + 1, regressed) < binomial_p(improved, regressed)
    assert mcnemar_one_sided(improved + 1, regressed) <= mcnemar_one_sided(improved, regressed)
    assert mcnemar_one_sided(improved, regressed + 1) >= mcnemar_one_sided(improved, regressed)


def test_mcnemar_is_exact_for_many_flips() -> None:
    # 2**2000 is beyond a float; the ratio of two integers is still rounded once.
    assert mcnemar_one_sided(60, 0) == 2.0**-60
    assert mcnemar_one_sided(1000, 1000) == float(binomial_p(1000, 1000))
    assert mcnemar_one_sided(1100, 0) == 0.0


@pytest.mark.parametrize("bad", [(-1, 0), (0, -2), (1.0, 0), (True, 0)])
def test_mcnemar_refuses_what_is_not_a_count(bad: tuple[object, object]) -> None:
    with pytest.raises(ValueError, match="must be a count"):
        mcnemar_one_sided(*bad)


@pytest.mark.parametrize(("alpha", "needed"), [(0.05, 5), (0.01, 7), (0.5, 2), (1.0, 1)])
def test_flips_needed_examples(alpha: float, needed: int) -> None:
    assert flips_needed(alpha) == needed


@settings(max_examples=40, deadline=None)
@given(st.floats(1e-12, 1.0), st.integers(0, 6))
def test_flips_needed_is_the_least_count_below_alpha(alpha: float, regressed: int) -> None:
    needed = flips_needed(alpha, regressed)
    assert binomial_p(needed, regressed) < Fraction(alpha)
    if needed:
        assert binomial_p(needed - 1, regressed) >= Fraction(alpha)


@pytest.mark.parametrize(
    ("resamples", "confidence", "index"),
    [(10_000, 0.95, 250), (1000, 0.9, 50), (1000, 0.8, 100), (39, 0.95, 0), (40, 0.95, 1)],
)
def test_percentile_index_uses_the_decimal_confidence(
    resamples: int, confidence: float, index: int
) -> None:
    assert percentile_index(resamples, confidence) == index


@settings(max_examples=25, deadline=None)
@given(
    st.lists(st.tuples(st.floats(-5, 5), st.floats(-5, 5)), min_size=1, max_size=7),
    st.integers(0, 2**32),
    st.integers(1, 60),
    st.sampled_from(["0.95", "0.9", "0.8", "0.5"]),
)
def test_bootstrap_matches_the_naive_loop(
    pairs: list[tuple[float, float]], seed: int, resamples: int, conf: str
) -> None:
    base = [b for b, _ in pairs]
    cand = [c for _, c in pairs]
    got = paired_bootstrap_lower(base, cand, seed=seed, resamples=resamples, confidence=float(conf))
    want = reference_lower(base, cand, seed, resamples, conf)
    assert math.isclose(got, want, rel_tol=1e-12, abs_tol=1e-12)
    diffs = [c - b for b, c in pairs]
    assert min(diffs) - 1e-12 <= got <= max(diffs) + 1e-12


def test_bootstrap_is_deterministic_for_a_seed() -> None:
    rng = random.Random(7)
    base = [rng.random() for _ in range(20)]
    cand = [x + rng.uniform(-0.1, 0.3) for x in base]
    first = paired_bootstrap_lower(base, cand, seed=11, resamples=300)
    assert paired_bootstrap_lower(base, cand, seed=11, resamples=300) == first
    others = {paired_bootstrap_lower(base, cand, seed=s, resamples=300) for s in range(5)}
    assert len(others) > 1


def test_bootstrap_of_one_case_or_a_constant_difference() -> None:
    assert paired_bootstrap_lower([0.25], [1.0], seed=0, resamples=50) == 0.75
    assert paired_bootstrap_lower([0.0] * 9, [0.5] * 9, seed=3, resamples=50) == 0.5


def test_bootstrap_default_is_ten_thousand_resamples_at_95_percent() -> None:
    # With every difference but one zero, the bound is the 251st smallest of 10,000 means.
    base = [0.0] * 4
    cand = [0.0, 0.0, 0.0, 4.0]
    rng = random.Random(5)
    counts = sorted(
        sum(1 for _ in range(4) if math.floor(rng.random() * 4) == 3) for _ in range(10_000)
    )
    assert paired_bootstrap_lower(base, cand, seed=5) == float(counts[250])


@pytest.mark.parametrize(
    ("base", "cand", "kwargs", "match"),
    [
        ([1.0], [1.0, 2.0], {}, "one pair per case"),
        ([], [], {}, "at least one case"),
        ([math.nan], [1.0], {}, "not a finite number"),
        ([1.0], [1.0], {"resamples": 0}, "resamples"),
        ([1.0], [1.0], {"confidence": 1.0}, "confidence"),
    ],
)
def test_bootstrap_refuses_bad_input(
    base: list[float], cand: list[float], kwargs: dict[str, float], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        paired_bootstrap_lower(base, cand, seed=0, **kwargs)
