"""Node and run statuses, and how they combine.

A node's first terminal status wins; later signals are kept as evidence, never overwrite it. A
run's status is the most severe of its nodes' by the precedence the specification fixes:
cancelled > budget_exceeded > stuck > replay_diverged > failed > provider_failed > succeeded.

``provider_failed`` (a call the provider could not do: unreachable, timed out, credentials
refused, unavailable through its retries; ``runner.providers.outage``) ranks below ``failed``: a
run where a node failed by itself has failed whatever the provider does, while one that only
the provider stopped could not be judged, and may pass when run again (exit 4, not 1).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum


class Status(StrEnum):
    """Where a node, or a run, stands."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"
    BUDGET_EXCEEDED = "budget_exceeded"
    STUCK = "stuck"
    REPLAY_DIVERGED = "replay_diverged"
    PROVIDER_FAILED = "provider_failed"

    @property
    def terminal(self) -> bool:
        """Whether the status is final."""
        return self not in (Status.PENDING, Status.RUNNING)


_SEVERITY = {
    Status.CANCELLED: 7,
    Status.BUDGET_EXCEEDED: 6,
    Status.STUCK: 5,
    Status.REPLAY_DIVERGED: 4,
    Status.FAILED: 3,
    Status.PROVIDER_FAILED: 2,
    Status.SUCCEEDED: 1,
    Status.SKIPPED: 0,
}
"""Run precedence; a skipped node (an arm not taken) does not make a run fail."""


_NEVER_TOLERATED = frozenset(
    {Status.CANCELLED, Status.BUDGET_EXCEEDED, Status.REPLAY_DIVERGED, Status.PROVIDER_FAILED}
)
"""Stops of the whole run, a replay that differs, and a provider that could not do the work: no
fan-out can go on without these. A provider failure ends the run ``provider_failed`` (exit 4),
so that CI runs it again, rather than reading as a bad reply the fan-out goes on without."""


def tolerable(status: Status) -> bool:
    """Whether a failure with ``status`` may be tolerated (``allow_fail``, ``min_successes``)."""
    ended = status.terminal and status not in (Status.SUCCEEDED, Status.SKIPPED)
    return ended and status not in _NEVER_TOLERATED


def run_status(statuses: Iterable[Status]) -> Status:
    """The run's status from its nodes' terminal statuses (succeeded when there are none)."""
    worst = Status.SUCCEEDED
    for status in statuses:
        if not status.terminal:
            raise ValueError(f"a finished run cannot hold a {status.value} node")
        if _SEVERITY[status] > _SEVERITY[worst]:
            worst = status
    return worst


@dataclass(slots=True)
class Outcome:
    """The status of one node as signals arrive: the first terminal one sticks."""

    status: Status = Status.PENDING
    """The current status."""
    reason: str | None = None
    """Why it ended, from the signal that decided it."""
    later: list[tuple[Status, str]] = field(default_factory=list)
    """Terminal signals that came after the deciding one, kept as evidence."""

    def start(self) -> None:
        """Mark the node running (only from pending)."""
        if self.status is Status.PENDING:
            self.status = Status.RUNNING

    def settle(self, status: Status, reason: str = "") -> bool:
        """Record a terminal signal; returns whether it decided the status."""
        if not status.terminal:
            raise ValueError(f"{status.value} is not a terminal status")
        if self.status.terminal:
            self.later.append((status, reason))
            return False
        self.status = status
        self.reason = reason or None
        return True


def summary_status(status: str, tests: Sequence[bool]) -> str:
    """The status a run's summary shows (``runs``, the run line, the reports): its nodes'
    status, except ``failed`` when every node succeeded but a workflow test did not pass.

    The nodes keep their statuses; only the run's one word says what its exit code (1) says,
    so that a reader of ``runs`` sees which runs failed their tests.
    """
    if status == Status.SUCCEEDED and not all(tests):
        return Status.FAILED.value
    return status


def tests_note(tests: Sequence[bool]) -> str | None:
    """``tests failed: 1 of 3`` when any workflow test failed, else None."""
    failed = sum(1 for passed in tests if not passed)
    return f"tests failed: {failed} of {len(tests)}" if failed else None
