"""The PromotionGate's rules, each against a reference written out here."""

from __future__ import annotations

import json
import math
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runner.learning.gate import CaseOutcome, decide
from runner.learning.stats import paired_bootstrap_lower


def flips(improved: int, regressed: int = 0, same: int = 3) -> list[CaseOutcome]:
    """Held-out cases: ``improved`` fail->pass, ``regressed`` pass->fail, ``same`` unchanged."""
    cases = [
        CaseOutcome(case=f"up{i}", baseline_passed=False, candidate_passed=True)
        for i in range(improved)
    ]
    cases += [
        CaseOutcome(case=f"c{i + 7}", baseline_passed=True, candidate_passed=False)
        for i in range(regressed)
    ]
    cases += [
        CaseOutcome(case=f"same{i}", baseline_passed=i % 2 == 0, candidate_passed=i % 2 == 0)
        for i in range(same)
    ]
    return cases


GOOD = {"required_tests": {"schema holds": True}, "cost": 0.2, "cap": 0.5, "seed": 1}


def test_five_flips_and_nothing_else_wrong_is_promoted() -> None:
    decision = decide(flips(5), **GOOD)
    assert decision.promoted
    assert decision.reasons == ()
    figures = decision.figures
    assert figures["p_value"] == 1 / 32
    assert (figures["improved"], figures["regressed"], figures["cases"]) == (5, 0, 8)
    assert figures["flips_needed"] == 5
    assert figures["evidence"] == "mcnemar"
    assert json.loads(json.dumps(decision.to_json(), allow_nan=False)) == decision.to_json()
    trailers = decision.trailers()
    assert ("Gate-P-Value", "0.03125") in trailers
    assert trailers[0] == ("Gate-Decision", "promoted")
    assert ("Gate-Required-Tests", "1/1 passed") in trailers
    assert ("Gate-Cost-Cap", "0.5") in trailers
    assert all(k.replace("-", "").isalnum() and "\n" not in v and v for k, v in trailers)


def test_four_flips_say_how_many_are_needed() -> None:
    decision = decide(flips(4), **GOOD)
    assert not decision.promoted
    assert decision.reasons == (
        "4 fail->pass flips give p = 0.0625, not below alpha 0.05: at least 5 are needed "
        "with no regressions",
    )
    assert ("Gate-Decision", "rejected") in decision.trailers()


def test_a_stricter_alpha_needs_more_flips() -> None:
    decision = decide(flips(6), **GOOD, alpha=0.01)
    assert decision.reasons == (
        "6 fail->pass flips give p = 0.015625, not below alpha 0.01: at least 7 are needed "
        "with no regressions",
    )
    assert decide(flips(7), **GOOD, alpha=0.01).promoted


def test_one_regression_rejects_whatever_the_improvement() -> None:
    decision = decide(flips(12, regressed=1), **GOOD)
    assert not decision.promoted
    assert decision.reasons == ("case 'c7' passes on the baseline and fails with the lesson",)
    assert decision.figures["regressions"] == ["c7"]


def test_regressions_and_too_few_flips_are_each_a_reason() -> None:
    decision = decide(flips(3, regressed=2), **GOOD)
    assert decision.reasons == (
        "cases 'c7' and 'c8' pass on the baseline and fail with the lesson",
        "3 fail->pass and 2 pass->fail flips give p = 0.5, not below alpha 0.05: with 2 "
        "regressions at least 9 fail->pass flips are needed (5 with none)",
    )


def test_many_regressions_are_named_up_to_a_limit() -> None:
    decision = decide(flips(0, regressed=11), **GOOD)
    first = decision.reasons[0]
    assert first.startswith("cases 'c7', 'c8', ")
    assert first.endswith("'c14' and 3 more pass on the baseline and fail with the lesson")
    assert len(decision.figures["regressions"]) == 11


def test_no_flip_at_all() -> None:
    decision = decide(flips(0, same=4), **GOOD)
    assert decision.reasons == (
        "0 fail->pass flips give p = 1, not below alpha 0.05: at least 5 are needed with no "
        "regressions",
    )
    one = decide(flips(1), **GOOD)
    assert one.reasons[0].startswith("1 fail->pass flip gives p = 0.5,")


def test_an_empty_held_out_set_promotes_nothing() -> None:
    decision = decide([], **GOOD)
    assert decision.reasons == ("there are no held-out cases, so no improvement can be shown",)


def test_required_tests_must_all_pass() -> None:
    tests = {"schema holds": True, "cites sources": False, "no empty answer": False}
    decision = decide(flips(5), required_tests=tests, cost=0.0, cap=None, seed=0)
    assert decision.reasons == (
        "required tests 'cites sources' and 'no empty answer' fail with the lesson",
    )
    one = decide(flips(5), required_tests={"x": False}, cost=0.0, cap=None, seed=0)
    assert one.reasons == ("required test 'x' fails with the lesson",)
    assert ("Gate-Required-Tests", "0/1 passed") in one.trailers()


def test_cost_within_the_cap() -> None:
    at_cap = decide(flips(5), required_tests={}, cost=0.5, cap=0.5, seed=0)
    assert at_cap.promoted
    over = decide(flips(5), required_tests={}, cost=0.52, cap=0.5, seed=0)
    assert over.reasons == ("the evaluation cost 0.52 is over its cap 0.5",)
    no_cap = decide(flips(5), required_tests={}, cost=1e9, cap=None, seed=0)
    assert no_cap.promoted
    assert ("Gate-Cost-Cap", "none") in no_cap.trailers()


def metric_cases(deltas: list[float], passed: bool = True) -> list[CaseOutcome]:
    return [
        CaseOutcome(
            case=f"m{i}",
            baseline_passed=passed,
            candidate_passed=passed,
            baseline_metric=0.5,
            candidate_metric=0.5 + d,
        )
        for i, d in enumerate(deltas)
    ]


def test_a_metric_decides_by_the_bootstrap_bound() -> None:
    cases = metric_cases([0.1, 0.2, 0.05, 0.15, 0.1, 0.3])
    decision = decide(cases, **GOOD, resamples=500)
    assert decision.promoted, decision.reasons
    metric = decision.figures["metric"]
    assert decision.figures["evidence"] == "bootstrap"
    assert metric["lower_bound"] == paired_bootstrap_lower(
        [0.5] * 6, [c.candidate_metric or 0.0 for c in cases], seed=1, resamples=500
    )
    assert metric["lower_bound"] > 0
    names = [k for k, _ in decision.trailers()]
    assert "Gate-Bootstrap-Lower" in names
    assert "Gate-Bootstrap-Seed" in names


def test_a_metric_bound_below_the_threshold() -> None:
    cases = metric_cases([0.4, -0.3, 0.0, 0.01])
    decision = decide(cases, **GOOD, resamples=500)
    lower = decision.figures["metric"]["lower_bound"]
    assert lower < 0
    assert decision.reasons == (
        f"the paired bootstrap 95% lower bound of the metric's mean difference is {lower:.6g}, "
        "below the threshold 0",
    )
    higher = decide(metric_cases([0.1] * 5), **GOOD, threshold=0.2, resamples=100)
    assert higher.reasons[0].endswith("is 0.1, below the threshold 0.2")


def test_an_unchanged_metric_is_no_improvement() -> None:
    # The bound is 0, which meets the default threshold, yet nothing got better.
    decision = decide(metric_cases([0.0] * 6), **GOOD, resamples=100)
    assert decision.figures["metric"]["lower_bound"] == 0.0
    assert decision.reasons == (
        "the metric's mean difference is 0 over 6 held-out cases: the lesson shows no improvement",
    )


def test_metric_values_on_some_cases_only_are_refused() -> None:
    cases = [
        *metric_cases([0.1]),
        CaseOutcome(case="bare", baseline_passed=True, candidate_passed=True),
    ]
    with pytest.raises(ValueError, match="case 'bare' lacks a metric value"):
        decide(cases, **GOOD)


@pytest.mark.parametrize(
    ("cases", "kwargs", "match"),
    [
        (flips(1) + flips(1), {}, "case 'up0' is given twice"),
        (flips(5), {"cost": math.nan}, "evaluation cost"),
        (flips(5), {"cap": -1.0}, "cost cap"),
        (flips(5), {"alpha": 0.0}, "alpha"),
        (flips(5), {"threshold": math.inf}, "threshold"),
        (metric_cases([math.nan]), {}, "not a number"),
    ],
)
def test_bad_input_is_one_sentence(
    cases: list[CaseOutcome], kwargs: dict[str, float], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        decide(cases, **{**GOOD, **kwargs})


def reference_p(improved: int, regressed: int) -> Fraction:
    n = improved + regressed
    return sum((Fraction(math.comb(n, k), 2**n) for k in range(improved, n + 1)), Fraction(0))


outcomes = st.lists(st.tuples(st.booleans(), st.booleans()), max_size=14)


@settings(max_examples=80, deadline=None)
@given(
    outcomes,
    st.dictionaries(st.sampled_from(["a", "b", "c"]), st.booleans()),
    st.floats(0, 2),
    st.none() | st.floats(0, 2),
    st.sampled_from([0.05, 0.01, 0.2]),
)
def test_pass_fail_decision_matches_the_rules(
    pairs: list[tuple[bool, bool]],
    tests: dict[str, bool],
    cost: float,
    cap: float | None,
    alpha: float,
) -> None:
    cases = [
        CaseOutcome(case=f"k{i}", baseline_passed=b, candidate_passed=c)
        for i, (b, c) in enumerate(pairs)
    ]
    decision = decide(cases, required_tests=tests, cost=cost, cap=cap, seed=0, alpha=alpha)
    up = sum(1 for b, c in pairs if c and not b)
    down = sum(1 for b, c in pairs if b and not c)
    rules = [
        down == 0,
        bool(pairs) and reference_p(up, down) < Fraction(alpha),
        all(tests.values()),
        cap is None or cost <= cap,
    ]
    assert decision.promoted == all(rules)
    assert len(decision.reasons) == rules.count(False)
    assert decision.figures["p_value"] == (float(reference_p(up, down)) if up + down else 1.0)
    assert (decision.figures["improved"], decision.figures["regressed"]) == (up, down)


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1)), min_size=1, max_size=8),
    st.integers(0, 1000),
    st.sampled_from([0.0, 0.05, -0.1]),
)
def test_metric_decision_matches_the_rules(
    pairs: list[tuple[float, float]], seed: int, threshold: float
) -> None:
    cases = [
        CaseOutcome(
            case=f"k{i}",
            baseline_passed=True,
            candidate_passed=True,
            baseline_metric=b,
            candidate_metric=c,
        )
        for i, (b, c) in enumerate(pairs)
    ]
    decision = decide(
        cases, required_tests={}, cost=0, cap=None, seed=seed, threshold=threshold, resamples=60
    )
    base = [b for b, _ in pairs]
    cand = [c for _, c in pairs]
    lower = paired_bootstrap_lower(base, cand, seed=seed, resamples=60)
    mean = sum(Fraction(c - b) for b, c in pairs) / len(pairs)
    assert decision.promoted == (lower >= threshold and mean > 0)
    assert decision.figures["metric"]["lower_bound"] == lower
