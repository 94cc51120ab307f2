"""Writing to the state in groups of rows per transaction, on the event loop's own thread.

A run records an event for nearly everything it does; a transaction per event would cost more
than the work itself, and a writer thread would fight the event loop for the interpreter lock.
So rows are queued, and committed together: when many are queued, when something awaits
:meth:`Writer.durable`, or at the latest :data:`FLUSH_EVERY_S` after the first was queued.
What costs money to redo (a model reply, a command's result) is awaited with ``durable``
before the run goes on, so that a killed run never pays twice for what it had finished; all
the calls finishing in one turn of the loop share one commit. Callers encode JSON
columns themselves.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from runner.store.db import StoreError, connect, transaction
from runner.store.runs import HEARTBEAT_SQL

FLUSH_EVERY_S = 0.05
"""The longest a queued row waits for its commit."""
BATCH_ROWS = 4096
"""Rows queued before they are committed without waiting."""
HEARTBEAT_S = 2.0
"""How often a running run's row shows it is alive."""


Row = tuple[Any, ...]


class Writer:
    """Queues rows and commits them in groups, on its own connection."""

    def __init__(self, directory: Path, *, heartbeat: str | None = None) -> None:
        self.conn = connect(directory)
        self.heartbeat = heartbeat
        """The run whose row is touched at least every :data:`HEARTBEAT_S` while the loop
        runs, so that other processes see it is alive."""
        self.snapshot: Callable[[], tuple[str, Row]] | None = None
        """A row describing the run now (its counters), written with every group."""
        self.on_cancel: Callable[[], None] | None = None
        """Called once when the heartbeat finds the run's cancel requested in the state (by
        ``cancel`` from a process that cannot signal this one)."""
        self._rows: list[tuple[str, Row]] = []
        self._waiters: list[asyncio.Future[None]] = []
        self._scheduled: asyncio.TimerHandle | None = None
        self._soon = False
        self._beat = 0.0
        self._failure: StoreError | None = None

    def write(self, statement: str, row: Row) -> None:
        """Queue one row; it is committed with the next group."""
        self._rows.append((statement, row))
        if len(self._rows) >= BATCH_ROWS:
            self.flush()
        elif self._scheduled is None:
            self._schedule(FLUSH_EVERY_S)

    def durable(self) -> asyncio.Future[None]:
        """A future done once every row queued so far is committed (or failed to be); one
        future for everything waiting on the same commit."""
        if self._waiters:  # everything else finishing in this turn of the loop joins in
            return self._waiters[0]
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self._failure is not None:
            future.set_exception(self._failure)
            return future
        self._waiters.append(future)
        if not self._soon:
            self._schedule(0.0)
            self._soon = True
        return future

    def flush(self) -> None:
        """Commit everything queued now; raise StoreError if a commit failed."""
        if self._scheduled is not None:
            self._scheduled.cancel()
            self._scheduled = None
        self._soon = False
        rows, self._rows = self._rows, []
        waiters, self._waiters = self._waiters, []
        now = time.time()
        beat = self.heartbeat is not None and now - self._beat >= HEARTBEAT_S
        if self.snapshot is not None and (rows or beat):
            rows.append(self.snapshot())  # its time is the heartbeat too
            self._beat = now
        elif beat:
            rows.append((HEARTBEAT_SQL, (now, self.heartbeat)))
            self._beat = now
        if beat and self.on_cancel is not None and self._cancel_requested():
            notify, self.on_cancel = self.on_cancel, None
            notify()
        if rows and self._failure is None:
            self._commit(rows)
        for future in waiters:
            if future.done():
                continue
            if self._failure is None:
                future.set_result(None)
            else:
                future.set_exception(self._failure)
        if self._failure is not None:
            raise self._failure

    def _cancel_requested(self) -> bool:
        try:
            row = self.conn.execute(
                "SELECT cancel_requested FROM runs WHERE id = ?", (self.heartbeat,)
            ).fetchone()
        except sqlite3.Error:
            return False  # a busy state: the next heartbeat asks again
        return bool(row and row[0])

    def close(self) -> None:
        """Commit what is queued and close the connection."""
        try:
            self.on_cancel = None  # the run has ended: nothing is left to cancel
            self._beat = 0.0  # the last counters are written
            self.flush()
        finally:
            self.conn.close()

    def _commit(self, rows: list[tuple[str, Row]]) -> None:
        groups: dict[str, list[Row]] = {}
        try:
            for statement, row in rows:
                groups.setdefault(statement, []).append(row)
            with transaction(self.conn):
                for statement, batch in groups.items():
                    self.conn.executemany(statement, batch)
        except (sqlite3.Error, TypeError, ValueError) as exc:
            self._failure = StoreError(f"cannot write to the state database: {exc}")

    def _schedule(self, delay: float) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop: rows wait for flush() or close()
            return
        if self._scheduled is not None:
            self._scheduled.cancel()
        self._scheduled = loop.call_later(delay, self._flush_later)

    def _flush_later(self) -> None:
        self._scheduled = None
        try:
            self.flush()
        except StoreError:
            return  # kept in _failure: every later durable() and close() raise it
        if self.heartbeat is not None and self._scheduled is None:
            self._schedule(HEARTBEAT_S)  # alive while idle too (a long command)
