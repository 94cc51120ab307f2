"""Writing to the state from a background thread, in groups of rows per transaction.

A run records an event for nearly everything it does; a transaction per event would cost more
than the work itself. Rows are queued by the event loop and committed by one thread, as many
as have queued up in one transaction (group commit). JSON columns are encoded on that thread
too. What costs money to redo (a model reply, a command's result) is awaited with
:meth:`Writer.durable` before the run goes on, so that a killed run never pays twice for what
it had finished; everything else is written without waiting.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner.canonical import canonical_json
from runner.store.db import StoreError, connect, transaction
from runner.store.runs import HEARTBEAT_SQL

FLUSH_EVERY_S = 0.05
"""The longest a queued row waits for its commit when nothing awaits it."""
HEARTBEAT_S = 2.0
"""How often a running run's row shows it is alive."""


@dataclass(frozen=True, slots=True)
class Json:
    """A column value written as canonical JSON (encoded on the writer's thread)."""

    value: Any
    """A JSON value."""


Row = tuple[Any, ...]
Waiter = tuple[asyncio.AbstractEventLoop, "asyncio.Future[None]"]


class Writer:
    """Commits queued rows on its own thread and connection."""

    def __init__(self, directory: Path, *, heartbeat: str | None = None) -> None:
        self.directory = directory
        self.heartbeat = heartbeat
        """The run whose row is touched every :data:`HEARTBEAT_S` while this writer lives."""
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._rows: list[tuple[str, Row]] = []
        self._waiters: list[Waiter] = []
        self._closing = False
        self._failure: BaseException | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="branchleaf-writer", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._failure is not None:
            raise self._failure

    def write(self, statement: str, row: Row) -> None:
        """Queue one row; committed within :data:`FLUSH_EVERY_S` or with the next group."""
        with self._lock:
            self._rows.append((statement, row))

    def durable(self) -> asyncio.Future[None]:
        """A future done once every row queued so far is committed (or failed to be)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        with self._lock:
            if self._failure is not None:
                future.set_exception(_failed(self._failure))
                return future
            self._waiters.append((loop, future))
        self._wake.set()
        return future

    def flush(self) -> None:
        """Block until everything queued so far is committed; raise StoreError if it was not."""
        done = threading.Event()
        with self._lock:
            self._rows.append(("", (done,)))
        self._wake.set()
        done.wait()
        if self._failure is not None:
            raise _failed(self._failure)

    def close(self) -> None:
        """Commit what is queued and stop the thread; raise StoreError if a commit failed."""
        with self._lock:
            self._closing = True
        self._wake.set()
        self._thread.join()
        if self._failure is not None:
            raise _failed(self._failure)

    # -- the thread ---------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            conn = connect(self.directory)
        except BaseException as exc:  # reported to the constructor
            self._failure = exc
            self._ready.set()
            return
        self._ready.set()
        beat = 0.0
        try:
            while True:
                self._wake.wait(FLUSH_EVERY_S)
                self._wake.clear()
                now = time.time()
                if self.heartbeat is not None and now - beat >= HEARTBEAT_S:
                    beat = now
                    self.write(HEARTBEAT_SQL, (now, self.heartbeat))
                with self._lock:
                    rows, self._rows = self._rows, []
                    waiters, self._waiters = self._waiters, []
                    closing = self._closing
                self._commit(conn, rows)
                _resolve(waiters, self._failure)
                if closing:
                    with self._lock:
                        rows, self._rows = self._rows, []
                        waiters, self._waiters = self._waiters, []
                    self._commit(conn, rows)
                    _resolve(waiters, self._failure)
                    return
        finally:
            conn.close()

    def _commit(self, conn: sqlite3.Connection, rows: list[tuple[str, Row]]) -> None:
        if not rows:
            return
        markers = [row[0] for statement, row in rows if not statement]
        groups: dict[str, list[Row]] = {}
        for statement, row in rows:
            if statement:
                groups.setdefault(statement, []).append(tuple(_encode(v) for v in row))
        if groups and self._failure is None:
            try:
                with transaction(conn):
                    for statement, batch in groups.items():
                        conn.executemany(statement, batch)
            except (sqlite3.Error, TypeError, ValueError) as exc:
                self._failure = exc
        for marker in markers:
            marker.set()


def _encode(value: Any) -> Any:
    return canonical_json(value.value) if isinstance(value, Json) else value


def _failed(exc: BaseException) -> StoreError:
    if isinstance(exc, StoreError):
        return exc
    return StoreError(f"cannot write to the state database: {exc}")


def _resolve(waiters: list[Waiter], failure: BaseException | None) -> None:
    by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
    for loop, future in waiters:
        by_loop.setdefault(loop, []).append(future)
    for loop, futures in by_loop.items():
        error = _failed(failure) if failure is not None else None
        try:
            loop.call_soon_threadsafe(_settle, futures, error)
        except RuntimeError:  # the loop has closed: nobody waits any more
            continue


def _settle(futures: list[asyncio.Future[None]], error: StoreError | None) -> None:
    for future in futures:
        if future.done():
            continue
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)
