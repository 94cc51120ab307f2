"""The garbage collector's settings for bulk work: a run, or loading a recorded one.

Both allocate many small objects that live until the work ends (results, outputs, frames,
decoded events), and at CPython's default pace (a young collection every 700 allocations) the
collector keeps re-scanning them: decoding a 10,000-leaf trace took three times as long. Inside
:func:`bulk`, everything loaded before (modules, the compiled workflow) is frozen out of the
collector's scans and young collections are spaced further apart; both are restored after.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

YOUNG_THRESHOLD = 50_000
"""Allocations between young-generation collections inside :func:`bulk`."""


@contextmanager
def bulk() -> Iterator[None]:
    """The collector set for bulk work, restored afterwards (nesting is harmless)."""
    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(max(YOUNG_THRESHOLD, thresholds[0]), *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()
