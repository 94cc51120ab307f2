"""Following a run: a live view in a terminal, plain progress lines in CI logs.

The picture is drawn from a :class:`Snapshot`, so a run followed in its own process and one
followed from the state by ``watch`` look the same.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.table import Table

from runner import ir
from runner.executor.results import NodeResult, Spend, SpendSum
from runner.humanize import cost
from runner.plural import plural
from runner.status import Status

PLAIN_EVERY_S = 10.0
"""How often a plain progress line is printed while a run goes on."""
WORK_KINDS = ("leaf", "command")
"""The kinds that do the work; the longest-running item is one of them when any is in flight."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Snapshot:
    """What a run is doing at one moment, seen in its own process or read from the state."""

    done: int
    """Nodes and copies that ended."""
    in_flight: int
    """Nodes and copies started and not yet ended."""
    failed: int
    """Nodes and copies that ended without success."""
    longest: tuple[str, float] | None
    """The in-flight item running longest and for how many seconds (see :func:`longest_of`)."""
    spend: Spend
    """Model usage so far, memo hits included."""
    elapsed_s: float
    """Seconds since the run started."""

    @property
    def total(self) -> int:
        """Nodes and copies known so far."""
        return self.done + self.in_flight


def longest_of(in_flight: Mapping[str, tuple[float, str]], now: float) -> tuple[str, float] | None:
    """The item running longest, leaves and commands first (path -> (start, kind) given)."""
    if not in_flight:
        return None
    work = {path: item for path, item in in_flight.items() if item[1] in WORK_KINDS}
    path, (since, _) = min((work or in_flight).items(), key=lambda item: item[1][0])
    return path, now - since


def progress_line(snapshot: Snapshot) -> str:
    """One line of progress."""
    longest = snapshot.longest
    slow = f", longest {longest[0]} {longest[1]:.1f}s" if longest else ""
    spend = snapshot.spend
    return (
        f"{snapshot.done}/{snapshot.total} done, {snapshot.in_flight} in flight{slow}, "
        f"{snapshot.failed} failed, {plural(spend.tokens, 'token')}, {cost(spend.cost_usd)}, "
        f"{plural(spend.memo_hits, 'memo hit')}, {snapshot.elapsed_s:.1f}s"
    )


def progress_table(snapshot: Snapshot) -> Table:
    """The live view's picture of a snapshot."""
    spend = snapshot.spend
    table = Table.grid(padding=(0, 2))
    table.add_row("done", f"{snapshot.done}/{snapshot.total}", "in flight", str(snapshot.in_flight))
    table.add_row("tokens", str(spend.tokens), "cost", cost(spend.cost_usd))
    table.add_row("failed", str(snapshot.failed), "memo hits", str(spend.memo_hits))
    table.add_row("elapsed", f"{snapshot.elapsed_s:.1f}s", "", "")
    if snapshot.longest is not None:
        path, seconds = snapshot.longest
        table.add_row("longest", escape(path), "for", f"{seconds:.1f}s")
    return table


class Tracker:
    """Counts what a run is doing; the views below render it."""

    def __init__(self) -> None:
        self.started_at = time.monotonic()
        self.in_flight: dict[str, tuple[float, str]] = {}
        self.done = 0
        self.failed = 0
        self._spent = SpendSum()

    @property
    def spend(self) -> Spend:
        """What the finished nodes spent."""
        return self._spent.spend()

    def started(self, path: str, node: ir.Node) -> None:
        """A node (or copy) started."""
        self.in_flight[path] = (time.monotonic(), node.kind)

    def finished(self, result: NodeResult) -> None:
        """A node (or copy) ended."""
        self.in_flight.pop(result.path, None)
        self.done += 1
        self._spent.add(result.spend)
        if result.status not in (Status.SUCCEEDED, Status.SKIPPED):
            self.failed += 1

    def longest(self) -> tuple[str, float] | None:
        """The in-flight item running longest, leaves and commands first."""
        return longest_of(self.in_flight, time.monotonic())

    def snapshot(self) -> Snapshot:
        """What the run is doing now."""
        now = time.monotonic()
        return Snapshot(
            done=self.done,
            in_flight=len(self.in_flight),
            failed=self.failed,
            longest=longest_of(self.in_flight, now),
            spend=self.spend,
            elapsed_s=now - self.started_at,
        )

    def line(self) -> str:
        """One line of progress."""
        return progress_line(self.snapshot())


class PlainProgress(Tracker):
    """Progress for logs: failures as they happen, and a line every few seconds."""

    def __init__(self, console: Console) -> None:
        super().__init__()
        self.console = console
        self.last = self.started_at
        self.diverged = False
        self.outages: set[str] = set()
        """The provider failures printed so far."""

    def finished(self, result: NodeResult) -> None:
        """Print failures at once, and a progress line now and then."""
        super().finished(result)
        # Only a replay's first divergence is printed: the others mostly repeat its diff, and
        # the run's summary counts them by kind. Likewise each provider failure is printed for
        # its first call only; the run's line counts the calls it stopped.
        repeated = result.status is Status.REPLAY_DIVERGED and self.diverged
        self.diverged = self.diverged or result.status is Status.REPLAY_DIVERGED
        if result.provider_failure is not None:
            repeated = result.provider_failure in self.outages
            self.outages.add(result.provider_failure)
        if result.status not in (Status.SUCCEEDED, Status.SKIPPED) and not repeated:
            status = result.status.value + (", tolerated" if result.tolerated else "")
            self.console.print(f"{status}: {result.path}: {result.error}", markup=False)
        now = time.monotonic()
        if now - self.last >= PLAIN_EVERY_S:
            self.last = now
            self.console.print(f"progress: {self.line()}", markup=False)


class LiveProgress(Tracker):
    """A live view for terminals: counters, and what is running longest."""

    def __init__(self, console: Console) -> None:
        super().__init__()
        self.live = Live(console=console, get_renderable=self.render, refresh_per_second=4)

    def __enter__(self) -> LiveProgress:
        self.live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.live.__exit__(*exc)

    def render(self) -> Group:
        """The view's current picture."""
        return Group(progress_table(self.snapshot()))
