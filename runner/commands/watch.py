"""``branchleaf watch RUN``: follow a run from another process, read from the state, with the
live view of ``run`` (done/total, failures, what is in flight and running longest, tokens, cost,
memo hits) until the run ends. Ctrl-C stops watching, never the run.

Each refresh is one short read transaction (the state is in WAL mode, so a reader never blocks
the run writing it) that reads the run's row and only the node events recorded since the last
refresh. Watching never writes to the state.
"""

from __future__ import annotations

import argparse
import sqlite3
import time

from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.text import Text

from runner import exits
from runner.commands.background import find_run
from runner.commands.runs import COLOURS, age
from runner.executor.results import SpendSum
from runner.humanize import cost, duration
from runner.plural import plural
from runner.progress import Snapshot, longest_of, progress_line, progress_table
from runner.status import Status
from runner.store import runs
from runner.store.db import opened, state_dir
from runner.store.stored_json import stored_value
from runner.store.trace import spend_from

REFRESH_S = 0.25
"""How often the state is read again."""
PLAIN_EVERY_S = 5.0
"""How often a plain progress line is printed."""

NEW_EVENTS_SQL = (
    "SELECT seq, path, type, at, json_extract(data, '$.kind'), json_extract(data, '$.status'),"
    " json_extract(data, '$.error'), json_extract(data, '$.spend'),"
    " json_extract(data, '$.provider_failure') FROM events"
    " WHERE run_id = ? AND seq > ? AND type IN ('node_started', 'node_finished') ORDER BY seq"
)
"""A run's node events after a given sequence number, without their outputs."""


class Follower:
    """What a run is doing, from its row and its node events, read a little at a time."""

    def __init__(self, record: runs.RunRecord) -> None:
        self.record = record
        self.last_seq = -1
        self.in_flight: dict[str, tuple[float, str]] = {}
        """Path -> (wall-clock start, kind) of every node started and not yet ended."""
        self.done = 0
        self.failed = 0
        self.spent = SpendSum()
        """What the ended nodes spent."""
        self.failures: list[str] = []
        """Nodes that ended without success since :meth:`take_failures` was last called."""
        self.outages: set[str] = set()
        """Provider failures told already: each is told for its first call only, as ``run``
        prints them."""

    def read(self, conn: sqlite3.Connection) -> runs.RunRecord:
        """Read the run's row and its new events, in one short read transaction."""
        conn.execute("BEGIN")
        try:
            record = runs.find(conn, self.record.id)
            rows = conn.execute(NEW_EVENTS_SQL, (record.id, self.last_seq)).fetchall()
        finally:
            conn.execute("COMMIT")
        for seq, path, kind, at, node_kind, status, error, spend, outage in rows:
            self.last_seq = seq
            if kind == "node_started":
                self.in_flight[path] = (at, node_kind or "")
                continue
            self.in_flight.pop(path, None)
            self.done += 1
            if status not in ("succeeded", "skipped"):
                self.failed += 1
                if outage is None or outage not in self.outages:
                    self.failures.append(f"{status}: {path}: {error}")
                if outage is not None:
                    self.outages.add(outage)
            if spend is not None:
                self.spent.add(
                    spend_from(stored_value(spend, f"the spend of event {seq} at {path}"))
                )
        self.record = record
        return record

    def take_failures(self) -> list[str]:
        """The failures not shown yet."""
        taken, self.failures = self.failures, []
        return taken

    def snapshot(self) -> Snapshot:
        """What the run is doing, as last read."""
        now = time.time()
        record = self.record
        running = record.status == runs.RUNNING
        return Snapshot(
            done=self.done,
            in_flight=len(self.in_flight),
            failed=self.failed,
            longest=longest_of(self.in_flight, now) if running else None,
            spend=self.spent.spend(),
            elapsed_s=now - record.started_at if running else record.duration_s,
        )


def run(args: argparse.Namespace, console: Console) -> int:
    """Follow a run until it ends: 0 if it succeeded, 1 if not, 130 if watching is interrupted."""
    directory = state_dir(args.state)
    record = find_run(directory, args.run, console)
    follower = Follower(record)
    if runs.shown_status(record) == runs.RUNNING:
        console.print(
            f"watching run {record.id}: {record.workflow} ({record.source}), started "
            f"{age(record.started_at)}; Ctrl-C stops watching, not the run",
            markup=False,
        )
    try:
        with opened(directory, create=False) as conn:
            if console.is_terminal and not args.plain:
                _follow_live(conn, follower, console)
            else:
                _follow_plain(conn, follower, console)
    except KeyboardInterrupt:
        console.print(
            f"stopped watching; run {record.id} goes on (`cancel {record.id}` stops it)",
            markup=False,
        )
        return 130
    record = follower.record
    crashed = runs.shown_status(record) == runs.CRASHED
    console.print(status_line(record, follower.snapshot() if crashed else None))
    if crashed:
        console.print(crash_hint(record), markup=False)
    if passed(record):
        return 0
    return exits.PROVIDER_FAILED if record.status == Status.PROVIDER_FAILED else 1


def status_line(record: runs.RunRecord, snapshot: Snapshot | None = None) -> str:
    """How a run stands, in one line of rich markup (counts from ``snapshot`` when given)."""
    status = runs.summary_status(record)
    colour = COLOURS.get(status, "white")
    done, total, failed = record.done, record.total, record.failed
    if snapshot is not None:
        done, total, failed = snapshot.done, snapshot.total, snapshot.failed
    tests = record.tests or []
    tested = ""
    if tests:
        ok = sum(1 for test in tests if test["passed"])
        tested = f", tests {ok}/{len(tests)} passed"
    reason = f" — {escape(record.reason)}" if record.reason else ""
    return (
        f"run {escape(record.id)}: {escape(record.workflow)} [{colour}]{status}[/] "
        f"({done}/{total} done, {failed} failed, {duration(record.duration_s)}, "
        f"{plural(record.calls, 'call')}, {plural(record.tokens, 'token')}, "
        f"{cost(record.cost_usd)}, {plural(record.memo_hits, 'memo hit')}{tested}){reason}"
    )


def crash_hint(record: runs.RunRecord) -> str:
    """What a crashed run means and what to do about it."""
    return (
        f"its process ({record.pid} on {record.host}) is gone without recording an end: "
        f"`resume {record.id}` finishes it without paying again for what it had done"
    )


def passed(record: runs.RunRecord) -> bool:
    """Whether a run ended with every node and every test passing."""
    return record.status == "succeeded" and all(test["passed"] for test in record.tests or [])


def _follow_plain(conn: sqlite3.Connection, follower: Follower, console: Console) -> None:
    shown = time.monotonic()
    while True:
        record = follower.read(conn)
        for line in follower.take_failures():
            console.print(line, markup=False)
        if runs.shown_status(record) != runs.RUNNING:
            return
        if time.monotonic() - shown >= PLAIN_EVERY_S:
            shown = time.monotonic()
            console.print(f"progress: {progress_line(follower.snapshot())}", markup=False)
        time.sleep(REFRESH_S)


def _follow_live(conn: sqlite3.Connection, follower: Follower, console: Console) -> None:
    with Live(console=console, auto_refresh=False) as view:
        while True:
            record = follower.read(conn)
            for line in follower.take_failures():
                view.console.print(line, markup=False)
            status = runs.shown_status(record)
            view.update(_picture(record, status, follower.snapshot()), refresh=True)
            if status != runs.RUNNING:
                return
            time.sleep(REFRESH_S)


def _picture(record: runs.RunRecord, status: str, snapshot: Snapshot) -> Group:
    colour = COLOURS.get(status, "white")
    title = f"run {escape(record.id)}  {escape(record.workflow)}  [{colour}]{status}[/]"
    return Group(Text.from_markup(title), progress_table(snapshot))
