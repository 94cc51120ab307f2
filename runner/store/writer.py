"""Writing to the state in groups of rows per transaction, on a thread of its own.

A run records an event for nearly everything it does; a transaction per event would cost more
than the work itself, and SQLite's own work would hold up the event loop. So rows are queued,
and committed together, by a writer thread: when many are queued, when something awaits
:meth:`Writer.durable`, or at the latest :data:`FLUSH_EVERY_S` after the first was queued.

The many rows of a run (events, memo entries) are queued as tuples of their columns and reach
SQLite a chunk at a time, by one multi-row INSERT of :data:`CHUNK_ROWS` rows (a short chunk
padded with rows of NULLs that the statement skips), so the statement is prepared once and
reused, and each chunk costs one call into SQLite: a statement per row would need the
interpreter lock back between rows, and wait for the busy event loop to give it up every time.
The few other statements (the run's counters, its heartbeat) are queued with their parameters
(:meth:`Writer.write`).

What costs money to redo (a model reply, a command's result) is awaited with ``durable``
before the run goes on, so that a killed run never pays twice for what it had finished; all
the calls finishing in one turn of the loop share one commit.
"""

from __future__ import annotations

import asyncio
import itertools
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner.store.db import StoreError, connect, transaction
from runner.store.runs import HEARTBEAT_SQL

FLUSH_EVERY_S = 0.05
"""The longest a queued row waits for its commit."""
BATCH_ROWS = 4096
"""Rows queued before they are committed without waiting."""
BATCH_CHARS = 8 << 20
"""Characters of rows' large columns queued before they are committed without waiting."""
CHUNK_ROWS = 512
"""Rows one INSERT statement takes."""
QUEUED_GROUPS = 16
"""Groups handed to the thread and not yet committed before queueing more waits: what bounds
memory when the disk is slower than the run."""
HEARTBEAT_S = 2.0
"""How often a running run's row shows it is alive."""


Row = tuple[Any, ...]


class Bulk:
    """An INSERT into a table whose rows are queued as tuples of their columns and inserted
    :data:`CHUNK_ROWS` at a time. The first column must never be NULL: rows of NULLs pad a
    short chunk."""

    def __init__(self, table: str, columns: Sequence[str], *, replace: bool = False) -> None:
        verb = "INSERT OR REPLACE" if replace else "INSERT"
        into = f"{verb} INTO {table} ({', '.join(columns)})"
        row = f"({', '.join('?' * len(columns))})"
        self.width = len(columns)
        self.chunk = (
            f"{into} SELECT * FROM (VALUES {', '.join([row] * CHUNK_ROWS)})"
            " WHERE column1 IS NOT NULL"
        )
        """The statement inserting one chunk of rows."""
        self.plain = f"{into} VALUES {row}"
        """The statement inserting one row from its parameters."""

    def chunks(self, rows: list[Row]) -> Iterator[list[Any]]:
        """The parameters of :attr:`chunk` for each chunk of ``rows``."""
        pad = (None,) * self.width
        for start in range(0, len(rows), CHUNK_ROWS):
            part = rows[start : start + CHUNK_ROWS]
            padding = itertools.repeat(pad, CHUNK_ROWS - len(part))
            yield list(itertools.chain.from_iterable(itertools.chain(part, padding)))


@dataclass(slots=True)
class _Group:
    """Rows committed in one transaction, and who waits for them."""

    bulk: dict[Bulk, list[Row]] = field(default_factory=dict)
    plain: list[tuple[str, Row]] = field(default_factory=list)
    waiters: list[asyncio.Future[None]] = field(default_factory=list)
    loop: asyncio.AbstractEventLoop | None = None
    check_cancel: bool = False


class Writer:
    """Queues rows and commits them in groups, on its own connection and thread."""

    def __init__(self, directory: Path, *, heartbeat: str | None = None) -> None:
        self.conn = connect(directory, shared=True)
        self.heartbeat = heartbeat
        """The run whose row is touched at least every :data:`HEARTBEAT_S` while the loop
        runs, so that other processes see it is alive."""
        self.snapshot: Callable[[], tuple[str, Row]] | None = None
        """A row describing the run now (its counters), written with every group."""
        self.on_cancel: Callable[[], None] | None = None
        """Called once, on the loop, when the heartbeat finds the run's cancel requested in
        the state (by ``cancel`` from a process that cannot signal this one)."""
        self._group = _Group()
        self._rows = 0
        self._chars = 0
        self._scheduled: asyncio.TimerHandle | None = None
        self._soon = False
        self._beat = 0.0
        self._failure: StoreError | None = None
        self._groups: queue.Queue[_Group | None] = queue.Queue(QUEUED_GROUPS)
        self._thread = threading.Thread(target=self._commit_groups, name="state-writer")
        self._thread.daemon = True  # a run that dies leaves what it had committed
        self._thread.start()

    def append(self, bulk: Bulk, row: Row, chars: int = 0) -> None:
        """Queue one row of ``bulk``; ``chars``: the length of its large columns (what bounds
        the memory queued rows take)."""
        rows = self._group.bulk.get(bulk)
        if rows is None:
            rows = self._group.bulk[bulk] = []
        rows.append(row)
        self._rows += 1
        self._chars += chars
        if self._rows >= BATCH_ROWS or self._chars >= BATCH_CHARS:
            self.flush()
        elif self._scheduled is None:
            self._schedule(FLUSH_EVERY_S)

    def write(self, statement: str, row: Row) -> None:
        """Queue one statement with its parameters; it is run with the next group."""
        self._group.plain.append((statement, row))
        self._rows += 1
        if self._scheduled is None:
            self._schedule(FLUSH_EVERY_S)

    def durable(self) -> asyncio.Future[None]:
        """A future done once every row queued so far is committed (or failed to be); one
        future for everything waiting on the same commit."""
        waiters = self._group.waiters
        if waiters:  # everything else finishing in this turn of the loop joins in
            return waiters[0]
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self._failure is not None:
            future.set_exception(self._failure)
            return future
        waiters.append(future)
        if not self._soon:
            self._schedule(0.0)
            self._soon = True
        return future

    def flush(self) -> None:
        """Hand everything queued to the thread to commit; raise StoreError if an earlier
        commit failed."""
        if self._scheduled is not None:
            self._scheduled.cancel()
            self._scheduled = None
        self._soon = False
        group, self._group = self._group, _Group()
        self._rows = self._chars = 0
        now = time.time()
        beat = self.heartbeat is not None and now - self._beat >= HEARTBEAT_S
        if self.snapshot is not None and (group.bulk or group.plain or beat):
            group.plain.append(self.snapshot())  # its time is the heartbeat too
            self._beat = now
        elif beat:
            group.plain.append((HEARTBEAT_SQL, (now, self.heartbeat)))
            self._beat = now
        group.check_cancel = beat and self.on_cancel is not None
        if group.bulk or group.plain or group.waiters:
            try:
                group.loop = asyncio.get_running_loop()
            except RuntimeError:
                group.loop = None
            self._groups.put(group)
        if self._failure is not None:
            raise self._failure

    def close(self) -> None:
        """Commit what is queued, wait for it, and close the connection; raise StoreError
        if a commit failed."""
        try:
            self.on_cancel = None  # the run has ended: nothing is left to cancel
            self._beat = 0.0  # the last counters are written
            try:
                self.flush()
            finally:
                self._groups.put(None)
                self._thread.join()
        finally:
            self.conn.close()
        if self._failure is not None:
            raise self._failure

    def _commit_groups(self) -> None:
        """The thread: commit each group handed over, in order, then tell its waiters."""
        while True:
            group = self._groups.get()
            if group is None:
                return
            cancel = False
            if self._failure is None:
                try:
                    if group.bulk or group.plain:  # else only earlier groups are waited for
                        with transaction(self.conn):
                            for bulk, rows in group.bulk.items():
                                for chunk in bulk.chunks(rows):
                                    self.conn.execute(bulk.chunk, chunk)
                            for statement, row in group.plain:
                                self.conn.execute(statement, row)
                except (sqlite3.Error, TypeError, ValueError) as exc:
                    self._failure = StoreError(f"cannot write to the state database: {exc}")
                if group.check_cancel and self._failure is None:
                    cancel = self._cancel_requested()
            if group.loop is not None and (group.waiters or cancel):
                try:
                    group.loop.call_soon_threadsafe(self._settle, group.waiters, cancel)
                except RuntimeError:
                    continue  # the loop is closed: nobody waits any more

    def _settle(self, waiters: list[asyncio.Future[None]], cancel: bool) -> None:
        """On the loop: tell the waiters of a group that it is committed (or failed)."""
        for future in waiters:
            if future.done():
                continue
            if self._failure is None:
                future.set_result(None)
            else:
                future.set_exception(self._failure)
        if cancel and self.on_cancel is not None:
            notify, self.on_cancel = self.on_cancel, None
            notify()

    def _cancel_requested(self) -> bool:
        try:
            row = self.conn.execute(
                "SELECT cancel_requested FROM runs WHERE id = ?", (self.heartbeat,)
            ).fetchone()
        except sqlite3.Error:
            return False  # a busy state: the next heartbeat asks again
        return bool(row and row[0])

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
