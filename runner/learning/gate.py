"""The PromotionGate: whether a candidate's held-out results prove its lessons help.

Pure: the decision is a function of the per-case results, the required tests, the cost and the
seed. A candidate is promoted only when every rule holds:

(a) no held-out case that passes on the baseline fails with the lesson;
(b) the improvement is real: without a metric, the exact one-sided McNemar p on the flips is
    below ``alpha``; with a metric, the seeded paired bootstrap lower bound of the mean
    difference is at least ``threshold`` and the mean difference is above zero (so a candidate
    that changes nothing is never promoted, whatever the threshold);
(c) every required test passes;
(d) the evaluation cost is within its cap.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from runner.learning.stats import flips_needed, mcnemar_one_sided, paired_bootstrap_lower
from runner.plural import plural

NAMED_CASES = 8
"""How many case names a reason lists before it says how many more there are."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CaseOutcome:
    """One held-out case, run on the baseline and on the candidate."""

    case: str
    """The case's name."""
    baseline_passed: bool
    """Whether the workflow's tests pass on the baseline."""
    candidate_passed: bool
    """Whether they pass with the candidate's lessons."""
    baseline_metric: float | None = None
    """The workflow's metric on the baseline, when it declares one."""
    candidate_metric: float | None = None
    """The metric with the candidate's lessons, when the workflow declares one."""


@dataclass(frozen=True, slots=True, kw_only=True)
class GateDecision:
    """The gate's verdict on one candidate."""

    promoted: bool
    """Whether every rule holds."""
    reasons: tuple[str, ...]
    """One sentence per rule that failed, naming the cases and figures; empty when promoted."""
    figures: dict[str, Any]
    """The figures the rules were decided on, JSON-ready, for the lesson file and the log."""

    def to_json(self) -> dict[str, Any]:
        """The decision as the lesson file's ``gate`` mapping."""
        return {"promoted": self.promoted, "reasons": list(self.reasons), "figures": self.figures}

    def trailers(self) -> list[tuple[str, str]]:
        """The figures as git commit trailers, in a fixed order (``Gate-P-Value: 0.03125``)."""
        f = self.figures
        rows = [
            ("Gate-Decision", "promoted" if self.promoted else "rejected"),
            ("Gate-Cases", str(f["cases"])),
            ("Gate-Improved", str(f["improved"])),
            ("Gate-Regressed", str(f["regressed"])),
            ("Gate-P-Value", _num(f["p_value"])),
            ("Gate-Alpha", _num(f["alpha"])),
        ]
        metric = f["metric"]
        if metric is not None:
            rows += [
                ("Gate-Mean-Difference", _num(metric["mean_difference"])),
                ("Gate-Bootstrap-Lower", _num(metric["lower_bound"])),
                ("Gate-Threshold", _num(metric["threshold"])),
                ("Gate-Bootstrap-Seed", str(metric["seed"])),
            ]
        tests = f["required_tests"]
        passed = sum(1 for ok in tests.values() if ok)
        rows += [
            ("Gate-Required-Tests", f"{passed}/{len(tests)} passed"),
            ("Gate-Cost", _num(f["cost"])),
            ("Gate-Cost-Cap", "none" if f["cap"] is None else _num(f["cap"])),
        ]
        return rows


def decide(
    cases: Sequence[CaseOutcome],
    *,
    required_tests: Mapping[str, bool],
    cost: float,
    cap: float | None,
    seed: int,
    alpha: float = 0.05,
    threshold: float = 0.0,
    resamples: int = 10_000,
    confidence: float = 0.95,
) -> GateDecision:
    """Decide whether the candidate is promoted on its held-out ``cases``; ``cap=None`` is none."""
    _check(cases, cost=cost, cap=cap, alpha=alpha, threshold=threshold)
    metric_mode = _has_metric(cases)
    improvements = [c.case for c in cases if c.candidate_passed and not c.baseline_passed]
    regressions = [c.case for c in cases if c.baseline_passed and not c.candidate_passed]
    improved, regressed = len(improvements), len(regressions)
    p = mcnemar_one_sided(improved, regressed)
    needed = flips_needed(alpha)
    reasons: list[str] = []

    if regressions:
        verb = (
            "passes on the baseline and fails"
            if regressed == 1
            else "pass on the baseline and fail"
        )
        reasons.append(f"{_cases(regressions)} {verb} with the lesson")

    metric: dict[str, Any] | None = None
    if not cases:
        reasons.append("there are no held-out cases, so no improvement can be shown")
    elif metric_mode:
        base = [float(c.baseline_metric) for c in cases if c.baseline_metric is not None]
        cand = [float(c.candidate_metric) for c in cases if c.candidate_metric is not None]
        diffs = [y - x for x, y in zip(base, cand, strict=True)]
        mean = math.fsum(diffs) / len(diffs)
        lower = paired_bootstrap_lower(
            base, cand, seed=seed, resamples=resamples, confidence=confidence
        )
        metric = {
            "mean_difference": mean,
            "lower_bound": lower,
            "threshold": threshold,
            "confidence": confidence,
            "resamples": resamples,
            "seed": seed,
        }
        level = f"{_num(confidence * 100)}%"
        if lower < threshold:
            reasons.append(
                f"the paired bootstrap {level} lower bound of the metric's mean difference is "
                f"{_num(lower)}, below the threshold {_num(threshold)}"
            )
        elif mean <= 0:
            reasons.append(
                f"the metric's mean difference is {_num(mean)} over "
                f"{plural(len(diffs), 'held-out case')}: the lesson shows no improvement"
            )
    elif p >= alpha:
        flips = f"{improved} fail->pass"
        if regressed:
            flips += f" and {regressed} pass->fail"
        flips += " flip" if improved + regressed == 1 else " flips"
        verb = "gives" if improved + regressed == 1 else "give"
        if regressed:
            more = flips_needed(alpha, regressed)
            need = (
                f"with {plural(regressed, 'regression')} at least {more} fail->pass flips are "
                f"needed ({needed} with none)"
            )
        else:
            need = f"at least {needed} {'is' if needed == 1 else 'are'} needed with no regressions"
        reasons.append(f"{flips} {verb} p = {_num(p)}, not below alpha {_num(alpha)}: {need}")

    failing = [name for name, ok in required_tests.items() if not ok]
    if failing:
        noun = "required test" if len(failing) == 1 else "required tests"
        verb = "fails" if len(failing) == 1 else "fail"
        names = _names(failing)
        reasons.append(f"{noun} {names} {verb} with the lesson")

    if cap is not None and cost > cap:
        reasons.append(f"the evaluation cost {_num(cost)} is over its cap {_num(cap)}")

    figures: dict[str, Any] = {
        "cases": len(cases),
        "baseline_passes": sum(1 for c in cases if c.baseline_passed),
        "candidate_passes": sum(1 for c in cases if c.candidate_passed),
        "improved": improved,
        "regressed": regressed,
        "improvements": improvements,
        "regressions": regressions,
        "evidence": "bootstrap" if metric_mode else "mcnemar",
        "p_value": p,
        "alpha": alpha,
        "flips_needed": needed,
        "metric": metric,
        "required_tests": dict(required_tests),
        "cost": cost,
        "cap": cap,
    }
    return GateDecision(promoted=not reasons, reasons=tuple(reasons), figures=figures)


def _check(
    cases: Sequence[CaseOutcome], *, cost: float, cap: float | None, alpha: float, threshold: float
) -> None:
    seen: set[str] = set()
    for outcome in cases:
        if outcome.case in seen:
            raise ValueError(f"case {outcome.case!r} is given twice: name each held-out case once")
        seen.add(outcome.case)
        for value in (outcome.baseline_metric, outcome.candidate_metric):
            if value is not None and not math.isfinite(value):
                raise ValueError(f"case {outcome.case!r} has a metric value that is not a number")
    if not math.isfinite(cost) or cost < 0:
        raise ValueError(f"the evaluation cost must be a number >= 0, not {cost!r}")
    if cap is not None and (not math.isfinite(cap) or cap < 0):
        raise ValueError(f"the cost cap must be a number >= 0 or none, not {cap!r}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be strictly between 0 and 1, not {alpha!r}")
    if not math.isfinite(threshold):
        raise ValueError(f"the metric threshold must be a number, not {threshold!r}")


def _has_metric(cases: Sequence[CaseOutcome]) -> bool:
    """Whether the cases carry metric values: all of them both, or none of them any."""
    full = [c.baseline_metric is not None and c.candidate_metric is not None for c in cases]
    if all(full):
        return bool(cases)
    empty = [c.baseline_metric is None and c.candidate_metric is None for c in cases]
    if all(empty):
        return False
    odd = next(c for c, f in zip(cases, full, strict=True) if not f)
    raise ValueError(
        f"case {odd.case!r} lacks a metric value that other cases have: give every held-out "
        "case both metric values, or none"
    )


def _cases(names: Sequence[str]) -> str:
    return f"{'case' if len(names) == 1 else 'cases'} {_names(names)}"


def _names(names: Sequence[str]) -> str:
    quoted = [repr(n) for n in names[:NAMED_CASES]]
    if len(names) > NAMED_CASES:
        quoted.append(f"{len(names) - NAMED_CASES} more")
    if len(quoted) == 1:
        return quoted[0]
    return f"{', '.join(quoted[:-1])} and {quoted[-1]}"


def _num(value: float) -> str:
    """A figure for a sentence or a trailer: up to six significant digits, no trailing zeros."""
    return format(value, ".6g")
