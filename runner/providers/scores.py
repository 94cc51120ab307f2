"""The score an unscripted mock judge gives: a number in the range its prompt states.

A judge prompt says how it scores ("score from 0 to 10", "rate 1-5", "between 0 and 1", "a
score out of 100"); a score outside that range would make ``min_score`` and the reports
meaningless. The range is read from the prompt and the score chosen in it from the request's
hash, so every run scores alike.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from runner.canonical import canonical_json

_N = r"(-?\d+(?:\.\d+)?)"
_WORD = r"(?:scores?|scored|scoring|rate|rated|rating|grade|graded|scale|mark)"
_SPAN = (
    rf"(?:between\s+{_N}\s+and\s+{_N}"
    rf"|(?:from\s+|of\s+)?{_N}\s*(?:-|\u2013|\.\.|to)\s*{_N}"
    rf"|out\s+of\s+{_N})"
)
_NEAR = 40
"""How many characters may lie between the scoring word and the range after it."""
_BEFORE = re.compile(rf"\b{_WORD}\b[^\n]{{0,{_NEAR}}}?{_SPAN}", re.IGNORECASE)
_AFTER = re.compile(rf"\b{_SPAN}[\s-]*(?:points?[\s-]+)?{_WORD}\b", re.IGNORECASE)


@dataclass(frozen=True, slots=True, kw_only=True)
class ScoreRange:
    """The scores a judge prompt allows."""

    low: float
    """The lowest score."""
    high: float
    """The highest score."""
    whole: bool
    """Whether scores are whole numbers (the bounds are, and at least 2 apart)."""


DEFAULT_RANGE = ScoreRange(low=0, high=10, whole=True)
"""The range of a prompt that states none: as if it said ``score from 0 to 10``."""


def score_range(prompt: str) -> ScoreRange:
    """The first range ``prompt`` states next to a scoring word, else :data:`DEFAULT_RANGE`."""
    found = [match for pattern in (_BEFORE, _AFTER) for match in pattern.finditer(prompt)]
    for match in sorted(found, key=lambda match: match.start()):
        numbers = [group for group in match.groups() if group is not None]
        low, high = ("0", numbers[0]) if len(numbers) == 1 else (numbers[0], numbers[1])
        if float(low) < float(high):
            whole = "." not in low + high and float(high) - float(low) >= 2
            return ScoreRange(low=float(low), high=float(high), whole=whole)
    return DEFAULT_RANGE


def score_text(prompt: str, digest: str) -> str:
    """The judge's reply: a score in the prompt's range, chosen by ``digest`` (hex)."""
    span = score_range(prompt)
    seed = int(digest[:16], 16)
    if span.whole:
        steps = int(span.high - span.low) + 1
        return canonical_json(int(span.low) + seed % steps)
    value = round(span.low + (span.high - span.low) * (seed % 101) / 100, 2)
    return canonical_json(value)
