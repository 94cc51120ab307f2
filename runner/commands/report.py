"""``branchleaf report RUN... [--format junit|markdown] [-o FILE]``: a report of stored runs
(runs and replays alike), as markdown for people or as JUnit XML for CI test views."""

from __future__ import annotations

import argparse

from rich.console import Console

from runner.commands.output import emit
from runner.reports import junit, markdown
from runner.reports.model import load
from runner.store import runs
from runner.store.db import opened, state_dir


def run(args: argparse.Namespace, console: Console) -> int:
    """Write the report of the runs named; 0 once it is written, whatever the runs' outcome."""
    with opened(state_dir(args.state), create=False) as conn:
        # Each run once, in the order named, though two references may name the same one.
        ids = list(dict.fromkeys(runs.find(conn, ref).id for ref in args.run))
        reports = [load(conn, run_id) for run_id in ids]
    renderer = junit if args.format == "junit" else markdown
    emit(renderer.render(reports), args.output, console)
    return 0
