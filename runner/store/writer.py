"""Writing to the state in groups of rows per transaction, in a process of its own.

A run records an event for nearly everything it does; a transaction per event would cost more
than the work itself, and SQLite's own work would hold up the event loop. So rows are queued
as tuples of their columns, and committed together: when many are queued, when something
awaits :meth:`Writer.durable`, or at the latest :data:`FLUSH_EVERY_S` after the first was
queued.

The commits are made by a small process (``runner/store/writer_process.py``) to which each
group is sent through a pipe as one ``marshal`` frame. A thread in the run's own process would
share the interpreter lock with the event loop, and every statement it runs would take the
lock back from the busy loop; a process of its own shares nothing, and runs on another core
while the loop goes on. It answers each group once committed; the answers are read by the
event loop (or, outside one, waited for).

What costs money to redo (a paid model reply, a command's result) is awaited with ``durable``
before the run goes on, so that a killed run never pays twice for what it had finished; all
the calls finishing in one turn of the loop share one commit. A run killed at any point leaves
what the writer had committed, and the writer commits what it was sent before it sees its input
end.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import marshal
import os
import select
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner.store import writer_process
from runner.store.db import DB_FILE, PRAGMAS, STATE_DIR, StoreError
from runner.store.runs import HEARTBEAT_SQL

FLUSH_EVERY_S = 0.01
"""The longest a queued row waits for its commit."""
PIPE_BYTES = 1 << 20
"""The pipe to the writer is enlarged to this, where the system allows, so that sending a
group rarely waits for the writer to read."""
BATCH_ROWS = 2048
"""Rows queued before they are committed without waiting. A group of a wide fan-out's rows
(512 leaves) is then a frame of about half a megabyte, which the pipe holds while the writer
commits the group before it: 4096 rows made frames larger than the pipe, and every send of
one waited, 3 to 8 ms, for the writer to finish its commit and read (issue 13)."""
BATCH_CHARS = PIPE_BYTES // 2
"""Characters of rows' large columns queued before they are committed without waiting: groups
of large replies stay within half the pipe too."""
HEARTBEAT_S = 2.0
"""How often a running run's row shows it is alive."""
STOP_WAIT_S = 60.0
"""How long closing waits for the writer to commit what it was sent and stop."""

Row = tuple[Any, ...]


def insert(table: str, columns: Sequence[str], *, replace: bool = False) -> str:
    """The statement inserting one row of ``columns`` into ``table`` from its parameters: rows
    queued with :meth:`Writer.append` under it are inserted together."""
    verb = "INSERT OR REPLACE" if replace else "INSERT"
    return f"{verb} INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"


@dataclass(slots=True)
class _Group:
    """Rows committed in one transaction, and who waits for them."""

    bulk: dict[str, list[Row]] = field(default_factory=dict)
    """Rows queued with :meth:`Writer.append`, by their insert statement."""
    plain: list[tuple[str, Row]] = field(default_factory=list)
    waiters: list[asyncio.Future[None]] = field(default_factory=list)


class Writer:
    """Queues rows and has them committed in groups by the writer process."""

    def __init__(self, directory: Path, *, heartbeat: str | None = None) -> None:
        self.directory = directory
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
        self._idle = False
        """Whether the timer scheduled is only the heartbeat of an idle run (which a queued
        row brings forward to :data:`FLUSH_EVERY_S`)."""
        self._beat = 0.0
        self._failure: StoreError | None = None
        self._sent = 0
        """Groups sent to the writer, numbered from 1."""
        self._answered = 0
        """Groups the writer has answered for."""
        self._waiting: dict[int, list[asyncio.Future[None]]] = {}
        self._answers = b""
        self._listening: asyncio.AbstractEventLoop | None = None
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-I", "-S", writer_process.__file__],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                start_new_session=True,  # a Ctrl-C is the run's to handle, not the writer's
            )
        except OSError as exc:
            raise StoreError(f"cannot start the state writer: {exc}") from exc
        stdin, stdout = self._process.stdin, self._process.stdout
        if stdin is None or stdout is None:  # pragma: no cover - PIPE always gives both
            raise StoreError("cannot talk to the state writer")
        self._to = stdin.fileno()
        self._from = stdout.fileno()
        with contextlib.suppress(AttributeError, OSError):  # Linux only; a smaller pipe works
            fcntl.fcntl(self._to, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
        self._send((str(directory / DB_FILE), list(PRAGMAS)))

    def append(self, statement: str, row: Row, chars: int = 0) -> None:
        """Queue one row for an :func:`insert` statement; ``chars``: the length of its large
        columns (what bounds the memory queued rows take)."""
        rows = self._group.bulk.get(statement)
        if rows is None:
            rows = self._group.bulk[statement] = []
        rows.append(row)
        self._rows += 1
        self._chars += chars
        if self._rows >= BATCH_ROWS or self._chars >= BATCH_CHARS:
            self.flush()
        elif self._scheduled is None or self._idle:
            self._schedule(FLUSH_EVERY_S)

    @property
    def groups(self) -> int:
        """How many groups of rows have been sent to be committed so far."""
        return self._sent

    def write(self, statement: str, row: Row) -> None:
        """Queue one statement with its parameters; it is run with the next group."""
        self._group.plain.append((statement, row))
        self._rows += 1
        if self._scheduled is None or self._idle:
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
        """Send everything queued to the writer to commit; raise StoreError if an earlier
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
        check_cancel = beat and self.on_cancel is not None
        if group.bulk or group.plain or group.waiters:
            self._listen()
            statements = list(group.bulk.items())
            statements += [(statement, [row]) for statement, row in group.plain]
            self._sent += 1
            if group.waiters:
                self._waiting[self._sent] = group.waiters
            if self._failure is None:
                self._send((self._sent, statements, self.heartbeat if check_cancel else None))
        if self._failure is not None:
            for future in self._waiting.pop(self._sent, ()):
                if not future.done():
                    future.set_exception(self._failure)
            raise self._failure

    def close(self) -> None:
        """Commit what is queued, wait for it, and stop the writer; raise StoreError if a
        commit failed."""
        try:
            self.on_cancel = None  # the run has ended: nothing is left to cancel
            self._beat = 0.0  # the last counters are written
            self.flush()
        finally:
            self._stop_listening()
            assert self._process.stdin is not None
            with contextlib.suppress(OSError):
                self._process.stdin.close()  # the end of its input: it commits what it has
            deadline = time.monotonic() + STOP_WAIT_S
            while self._answered < self._sent and self._failure is None:
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([self._from], [], [], left)[0]:
                    self._stopped(f"the state writer did not answer within {STOP_WAIT_S:g} s")
                    break
                if not self._read():
                    break
            # Its output ends as it exits (the system closes it last): waited for here, rather
            # than polling for its exit, which sleeps 0.5, 1, 2, 4 ms (7 ms on every close).
            ended = False
            while self._failure is None and not ended:
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([self._from], [], [], left)[0]:
                    break  # the wait below says so
                ended = not self._read()
            try:
                if ended:
                    self._process.wait()  # its files are closed: it has all but exited
                else:
                    self._process.wait(timeout=max(0.0, deadline - time.monotonic()) + 1.0)
            except subprocess.TimeoutExpired:
                self._process.kill()  # what it had answered for is committed
                self._process.wait()
                self._stopped(f"the state writer did not stop within {STOP_WAIT_S:g} s")
            assert self._process.stdout is not None
            self._process.stdout.close()
        if self._failure is not None:
            raise self._failure

    def _send(self, value: Any) -> None:
        try:
            body = marshal.dumps(value)
        except ValueError as exc:  # marshal takes the JSON-like values rows hold, no others
            self._fail(f"cannot write to the state database: a row holds {exc}")
            return
        try:
            # The header on its own: joined to the body, a group's megabyte is copied once more.
            data = memoryview(writer_process.HEADER.pack(len(body)))
            while data:
                data = data[os.write(self._to, data) :]
            data = memoryview(body)
            while data:
                data = data[os.write(self._to, data) :]
        except OSError as exc:
            self._stopped(f"the state writer stopped ({exc})")

    def _listen(self) -> None:
        """Have the running loop, if any, read the writer's answers as they come."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        if self._listening is loop:
            return
        self._stop_listening()
        loop.add_reader(self._from, self._read)
        self._listening = loop

    def _stop_listening(self) -> None:
        if self._listening is not None:
            with contextlib.suppress(RuntimeError, ValueError, OSError):  # the loop is closed
                self._listening.remove_reader(self._from)
            self._listening = None

    def _read(self) -> bool:
        """Read what the writer has answered and settle whoever waits for it; ``False`` when
        it has stopped."""
        try:
            data = os.read(self._from, 1 << 16)
        except OSError:
            data = b""
        if not data:
            self._stop_listening()
            if self._answered < self._sent:
                self._stopped(f"the state writer stopped (exit code {self._process.poll()})")
            return False
        self._answers += data
        size = writer_process.HEADER.size
        while len(self._answers) >= size:
            (length,) = writer_process.HEADER.unpack_from(self._answers)
            if len(self._answers) < size + length:
                break
            number, error, cancel = marshal.loads(self._answers[size : size + length])
            self._answers = self._answers[size + length :]
            self._answered = number
            if error is not None:
                self._fail(error)
            for future in self._waiting.pop(number, ()):
                if not future.done():
                    if self._failure is None:
                        future.set_result(None)
                    else:
                        future.set_exception(self._failure)
            if cancel and self.on_cancel is not None:
                notify, self.on_cancel = self.on_cancel, None
                notify()
        return True

    def _stopped(self, reason: str) -> None:
        """Fail because the writer is gone, saying how the run is finished: what it committed
        stays, and a resume answers it from there."""
        if self.heartbeat is not None:
            state = ""
            if self.directory != Path(STATE_DIR):
                state = f" --state {shlex.quote(str(self.directory))}"
            reason += (
                f"; what it had committed is kept: `branchleaf resume {self.heartbeat}{state}` "
                "finishes the run"
            )
        self._fail(reason)

    def _fail(self, reason: str) -> None:
        """Record the first failure, and fail everyone still waiting."""
        if self._failure is None:
            self._failure = StoreError(reason)
        for waiters in self._waiting.values():
            for future in waiters:
                if not future.done():
                    future.set_exception(self._failure)
        self._waiting.clear()

    def _schedule(self, delay: float) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop: rows wait for flush() or close()
            return
        if self._scheduled is not None:
            self._scheduled.cancel()
        self._scheduled = loop.call_later(delay, self._flush_later)
        self._idle = False

    def _flush_later(self) -> None:
        self._scheduled = None
        try:
            self.flush()
        except StoreError:
            return  # kept in _failure: every later durable() and close() raise it
        if self.heartbeat is not None and self._scheduled is None:
            self._schedule(HEARTBEAT_S)  # alive while idle too (a long command)
            self._idle = True
