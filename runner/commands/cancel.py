"""``branchleaf cancel RUN``: stop a running run cleanly.

The request is recorded in the state, and the run's process, when it runs on this host, is sent
SIGTERM: the run cancels what is in flight and waits for it (a command's whole process group
included), records itself as cancelled and exits. This command waits up to
:data:`STOP_WAIT_S` for that and prints how the run ended.

A run on another host cannot be signalled from here: it finds the recorded request with its
heartbeat (every 2 s) and cancels itself the same way.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sqlite3
import time

from rich.console import Console

from runner.commands.background import find_run
from runner.commands.watch import crash_hint, status_line
from runner.errors import UsageError
from runner.store import runs
from runner.store.db import opened, state_dir

STOP_WAIT_S = 10.0
"""How long to wait for a signalled run to record its end."""
START_WAIT_S = 5.0
"""How long to wait for a run that is still starting to begin its work (and so to handle
SIGTERM as a cancellation, not die of it)."""
POLL_S = 0.1


def run(args: argparse.Namespace, console: Console) -> int:
    """Stop a run; 0 once it has stopped or if it was not running, 1 if it is still stopping."""
    directory = state_dir(args.state)
    record = find_run(directory, args.run, console)
    if _not_running(record, console):
        return 0
    with opened(directory, create=False) as conn:
        runs.request_cancel(conn, record.id)
        record = _started(conn, record)
    if _not_running(record, console):
        return 0
    if record.host != socket.gethostname() or record.pid is None:
        console.print(
            f"run {record.id} runs on {record.host}, which cannot be signalled from here: the "
            "cancel request is recorded, and the run stops within a few seconds of reading it",
            markup=False,
        )
        return 0
    pid = record.pid
    if not runs.may_be_the_run(pid, record.started_at):
        console.print(
            f"run {record.id} is not running: process {pid} is now another program, started "
            f"after the run; {crash_hint(record)}",
            markup=False,
        )
        return 0
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass  # it ended meanwhile: its row says how
    except PermissionError as exc:
        raise UsageError(
            f"cannot signal process {pid} of run {record.id}, which belongs to another user: "
            "the cancel request is recorded; stop the process as that user"
        ) from exc
    console.print(
        f"cancelling run {record.id}: process {pid} is stopping what is in flight "
        f"(waiting up to {STOP_WAIT_S:.0f}s)",
        markup=False,
    )
    with opened(directory, create=False) as conn:
        record = _ended(conn, record)
    status = runs.shown_status(record)
    if status == runs.RUNNING:
        console.print(
            f"run {record.id} has not stopped after {STOP_WAIT_S:.0f}s: "
            f"`watch {record.id}` follows it to its end",
            markup=False,
        )
        return 1
    console.print(status_line(record))
    if status == runs.CRASHED:
        console.print(crash_hint(record), markup=False)
    return 0


def _not_running(record: runs.RunRecord, console: Console) -> bool:
    """Say so and return True when the run is not running."""
    status = runs.shown_status(record)
    if status == runs.CRASHED:
        console.print(f"run {record.id} is not running: {crash_hint(record)}", markup=False)
    elif status != runs.RUNNING:
        console.print(f"run {record.id} has already ended; there is nothing to cancel")
        console.print(status_line(record))
    return status != runs.RUNNING


def _started(conn: sqlite3.Connection, record: runs.RunRecord) -> runs.RunRecord:
    """The run once it has recorded its first event (it handles SIGTERM from then on), or
    ended, or after :data:`START_WAIT_S`."""
    deadline = time.monotonic() + START_WAIT_S
    while time.monotonic() < deadline:
        found = conn.execute("SELECT 1 FROM events WHERE run_id = ? LIMIT 1", (record.id,))
        if found.fetchone() is not None:
            break
        record = runs.find(conn, record.id)
        if runs.shown_status(record) != runs.RUNNING:
            break
        time.sleep(POLL_S)
    return runs.find(conn, record.id)


def _ended(conn: sqlite3.Connection, record: runs.RunRecord) -> runs.RunRecord:
    """The run once it is no longer running, or after :data:`STOP_WAIT_S`."""
    deadline = time.monotonic() + STOP_WAIT_S
    while runs.shown_status(record) == runs.RUNNING and time.monotonic() < deadline:
        time.sleep(POLL_S)
        record = runs.find(conn, record.id)
    return record
