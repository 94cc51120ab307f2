"""The promotion gate's statistics: an exact one-sided McNemar test and a seeded paired
bootstrap. Pure: the same inputs (and seed) give the same figure on every machine."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from fractions import Fraction


def mcnemar_one_sided(improved: int, regressed: int) -> float:
    """The exact one-sided McNemar p-value that the candidate is better than the baseline.

    ``improved`` counts the fail->pass flips and ``regressed`` the pass->fail ones; under the
    null hypothesis each of the ``n = improved + regressed`` flips goes either way with
    probability 1/2, so p = P(X >= improved) for X ~ Binomial(n, 1/2), computed as one exact
    integer ratio and a single rounding (so (5, 0) gives exactly 1/32). With no flips there
    is no evidence either way and p is 1.0.
    """
    for name, value in (("improved", improved), ("regressed", regressed)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be a count (an integer >= 0), not {value!r}")
    flips = improved + regressed
    if flips == 0:
        return 1.0
    tail = sum(math.comb(flips, k) for k in range(improved, flips + 1))
    return tail / (1 << flips)


def flips_needed(alpha: float, regressed: int = 0) -> int:
    """The fewest fail->pass flips whose one-sided McNemar p is below ``alpha``."""
    if not 0.0 < alpha <= 1.0:
        raise ValueError(f"alpha must be above 0 and at most 1, not {alpha!r}")
    # p falls strictly as improved grows (regressed fixed) and tends to 0, so this ends;
    # alpha = 1e-300 needs about a thousand flips.
    improved = 0
    while mcnemar_one_sided(improved, regressed) >= alpha:
        improved += 1
    return improved


def percentile_index(resamples: int, confidence: float) -> int:
    """Index of the lower bound among ``resamples`` sorted means: floor((1 - c) / 2 * B).

    ``confidence`` is taken at the decimal value it prints as, so 0.95 with B = 10,000 is
    index 250 exactly, not 249 from binary rounding of 1 - 0.95.
    """
    if isinstance(resamples, bool) or not isinstance(resamples, int) or resamples < 1:
        raise ValueError(f"resamples must be a whole number >= 1, not {resamples!r}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be strictly between 0 and 1, not {confidence!r}")
    tail = (1 - Fraction(repr(confidence))) / 2
    return math.floor(tail * resamples)


def paired_bootstrap_lower(
    base: Sequence[float],
    cand: Sequence[float],
    *,
    seed: int,
    resamples: int = 10_000,
    confidence: float = 0.95,
) -> float:
    """The lower bound of the two-sided percentile interval of the mean of ``cand - base``.

    The rule, exactly: with the paired differences ``d[i] = cand[i] - base[i]`` over the ``n``
    cases and ``rng = random.Random(seed)``, each of the ``B = resamples`` resamples draws ``n``
    case indices with replacement as ``rng.choices(range(n), k=n)`` (one ``rng.random()`` per
    index, index ``floor(rng.random() * n)``), and its mean is ``math.fsum`` of the drawn
    differences divided by ``n``. The bound is the value at index
    :func:`percentile_index` ``(B, confidence)`` of the ``B`` means sorted ascending.
    """
    if len(base) != len(cand):
        raise ValueError(
            f"the baseline has {len(base)} metric values and the candidate {len(cand)}: "
            "the bootstrap needs one pair per case"
        )
    if not base:
        raise ValueError("the bootstrap needs at least one case with metric values")
    for side, values in (("baseline", base), ("candidate", cand)):
        for i, value in enumerate(values):
            if not math.isfinite(value):
                raise ValueError(f"the {side}'s metric value at case {i} is not a finite number")
    index = percentile_index(resamples, confidence)
    diffs = [c - b for b, c in zip(base, cand, strict=True)]
    n = len(diffs)
    rng = random.Random(seed)
    means = sorted(math.fsum(rng.choices(diffs, k=n)) / n for _ in range(resamples))
    return means[index]
