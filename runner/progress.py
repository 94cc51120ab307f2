"""Following a run: a live view in a terminal, plain progress lines in CI logs."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.table import Table

from runner import ir
from runner.executor.results import NodeResult, Spend
from runner.status import Status

PLAIN_EVERY_S = 10.0
"""How often a plain progress line is printed while a run goes on."""


class Tracker:
    """Counts what a run is doing; the views below render it."""

    def __init__(self) -> None:
        self.started_at = time.monotonic()
        self.in_flight: dict[str, tuple[float, str]] = {}
        self.done = 0
        self.failed = 0
        self.spend = Spend()

    def started(self, path: str, node: ir.Node) -> None:
        """A node (or copy) started."""
        self.in_flight[path] = (time.monotonic(), node.kind)

    def finished(self, result: NodeResult) -> None:
        """A node (or copy) ended."""
        self.in_flight.pop(result.path, None)
        self.done += 1
        self.spend = self.spend + result.spend
        if result.status not in (Status.SUCCEEDED, Status.SKIPPED):
            self.failed += 1

    def longest(self) -> tuple[str, float] | None:
        """The in-flight item running longest, leaves and commands first."""
        if not self.in_flight:
            return None
        work = {p: v for p, v in self.in_flight.items() if v[1] in ("leaf", "command")}
        path, (since, _) = min((work or self.in_flight).items(), key=lambda item: item[1][0])
        return path, time.monotonic() - since

    def line(self) -> str:
        """One line of progress."""
        total = self.done + len(self.in_flight)
        longest = self.longest()
        slow = f", longest {longest[0]} {longest[1]:.1f}s" if longest else ""
        return (
            f"{self.done}/{total} done, {len(self.in_flight)} in flight{slow}, "
            f"{self.spend.tokens} tokens, ${self.spend.cost_usd:.4f}, "
            f"{time.monotonic() - self.started_at:.1f}s"
        )


class PlainProgress(Tracker):
    """Progress for logs: failures as they happen, and a line every few seconds."""

    def __init__(self, console: Console) -> None:
        super().__init__()
        self.console = console
        self.last = self.started_at

    def finished(self, result: NodeResult) -> None:
        """Print failures at once, and a progress line now and then."""
        super().finished(result)
        if result.status not in (Status.SUCCEEDED, Status.SKIPPED):
            self.console.print(
                f"{result.status.value}: {result.path}: {result.error}", markup=False
            )
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
        table = Table.grid(padding=(0, 2))
        total = self.done + len(self.in_flight)
        table.add_row("done", f"{self.done}/{total}", "in flight", str(len(self.in_flight)))
        table.add_row("tokens", str(self.spend.tokens), "cost", f"${self.spend.cost_usd:.4f}")
        table.add_row(
            "failed", str(self.failed), "elapsed", f"{time.monotonic() - self.started_at:.1f}s"
        )
        longest = self.longest()
        if longest is not None:
            table.add_row("longest", escape(longest[0]), "for", f"{longest[1]:.1f}s")
        return Group(table)
