"""Exit codes, and the one a command that ran several workflows ends with."""

from __future__ import annotations

from collections.abc import Iterable

from runner.status import Status

SUCCESS = 0
"""Every node and test passed."""
FAILED = 1
"""A workflow failed: a node or a test did not pass, or a replay diverged."""
INVALID = 2
"""Invalid input or usage."""
INTERNAL = 3
"""An internal or state error."""
PROVIDER_FAILED = 4
"""Nothing failed but a provider, which could not do the work (unreachable, timed out, refused
the credentials...): the tests were not judged, and running again may pass."""
INTERRUPTED = 130
"""Interrupted, or cancelled from another process."""

_RANK = {SUCCESS: 0, PROVIDER_FAILED: 1, FAILED: 2, INVALID: 3, INTERNAL: 4, INTERRUPTED: 5}


def of_run(status: str, passed: bool) -> int:
    """The exit code of one finished run with ``status`` (its nodes'), ``passed`` when its
    tests passed too."""
    if status == Status.CANCELLED:
        return INTERRUPTED
    if passed:
        return SUCCESS
    return PROVIDER_FAILED if status == Status.PROVIDER_FAILED else FAILED


def worst(codes: Iterable[int]) -> int:
    """The exit code of several runs: 130 > 3 > 2 > 1 > 4 > 0. A workflow that failed by itself
    outranks a provider failure, so that 4 says that only the provider went wrong and running
    again may pass, while 1 says that running again will not help."""
    return max(codes, key=lambda code: _RANK.get(code, _RANK[INTERNAL]), default=SUCCESS)
