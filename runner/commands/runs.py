"""``branchleaf runs``: the runs in the state, newest first."""

from __future__ import annotations

import argparse
import time

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from runner.humanize import cost, duration
from runner.store import runs as store
from runner.store.db import opened, state_dir

COLOURS = {
    "succeeded": "green",
    "running": "cyan",
    "crashed": "magenta",
    "failed": "red",
    "replay_diverged": "red",
    "cancelled": "yellow",
    "budget_exceeded": "yellow",
    "stuck": "yellow",
    "provider_failed": "yellow",
}


def run(args: argparse.Namespace, console: Console) -> int:
    """List runs; 0 always (an empty state lists nothing)."""
    with opened(state_dir(args.state), create=False) as conn:
        records = store.listed(conn, args.limit)
    if not records:
        console.print("no runs yet", markup=False)
        return 0
    table = Table(title_justify="left", box=None, pad_edge=False)
    for column in (
        "run",
        "workflow",
        "status",
        "tests",
        "done",
        "duration",
        "calls",
        "cost",
        "memo",
    ):
        table.add_column(
            column, justify="right" if column in ("done", "calls", "cost") else "left", no_wrap=True
        )
    for record in records:
        status = store.summary_status(record)
        colour = COLOURS.get(status, "white")
        mode = "" if record.mode == "run" else f" ({record.mode})"
        table.add_row(
            escape(record.id),
            escape(record.workflow) + escape(mode),
            f"[{colour}]{status}[/]",
            _tests(store.test_results(record)),
            f"{record.done}/{record.total}",
            duration(record.duration_s),
            str(record.calls),
            cost(record.cost_usd),
            f"{record.memo_hits} hit{'s' if record.memo_hits != 1 else ''}",
        )
    console.print(table, width=max(console.width, 120))
    return 0


def _tests(results: list[bool]) -> str:
    """The tests cell: how many passed of how many, red when any failed."""
    if not results:
        return ""
    passed = sum(results)
    colour = "green" if passed == len(results) else "red"
    return f"[{colour}]{passed}/{len(results)} passed[/]"


def age(when: float) -> str:
    """How long ago ``when`` was."""
    return duration(max(0.0, time.time() - when)) + " ago"
