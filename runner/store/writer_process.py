"""The state writer's own process: commits the groups of rows a run sends it, in order.

Started by :class:`runner.store.writer.Writer` as ``python -I -S writer_process.py``, so it
imports the standard library only and starts in milliseconds. It speaks in frames on its
standard input and output: each frame is a 4-byte little-endian length and a ``marshal``
payload.

- In: first ``(database path, [pragma statements])``; then one frame per group,
  ``(number, [(statement, [row, ...]), ...], cancel check run id or None)``.
- Out: one frame per group, ``(number, error or None, cancel requested)``, once the group is
  committed (or failed: after a failure, nothing more is written and every later group is
  answered with the same error).

One thread reads and commits: a second one, reading while the first commits, would wait for
the interpreter lock at every read. The run's side of the pipe is enlarged so that it holds a
group or more while the previous one is committed. At the end of its input (the run closed
it, or died) the process commits what it was sent, closes the database and exits. Interrupts
are for the run, which records how it ended through this process: they are ignored here.
"""

from __future__ import annotations

import marshal
import os
import signal
import sqlite3
import struct
import sys
from typing import Any, BinaryIO

HEADER = struct.Struct("<I")


def read_frame(stream: BinaryIO) -> Any:
    """The next frame's value, or ``None`` at the end of the stream."""
    head = stream.read(HEADER.size)
    if len(head) < HEADER.size:
        return None
    (size,) = HEADER.unpack(head)
    body = stream.read(size)
    if len(body) < size:
        return None
    return marshal.loads(body)


def frame(value: Any) -> bytes:
    """``value`` as one frame."""
    body = marshal.dumps(value)
    return HEADER.pack(len(body)) + body


def main() -> int:
    """Commit groups until the input ends."""
    for name in ("SIGINT", "SIGTERM", "SIGHUP"):
        signal.signal(getattr(signal, name), signal.SIG_IGN)
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    opening = read_frame(stdin)
    if opening is None:
        return 0
    path, pragmas = opening
    failure: str | None = None
    conn: sqlite3.Connection | None = None
    try:
        conn = sqlite3.connect(path, isolation_level=None)
        for pragma in pragmas:
            conn.execute(pragma)
    except sqlite3.Error as exc:
        failure = f"cannot open the state database {path}: {exc}"
    while True:
        group = read_frame(stdin)
        if group is None:
            if conn is not None:
                conn.close()
            return 0
        number, statements, cancel_of = group
        cancel = False
        if conn is not None and failure is None:
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    for statement, rows in statements:
                        conn.executemany(statement, rows)
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            except (sqlite3.Error, ValueError, TypeError, OverflowError) as exc:
                failure = f"cannot write to the state database: {exc}"
            if cancel_of is not None and failure is None:
                try:
                    row = conn.execute(
                        "SELECT cancel_requested FROM runs WHERE id = ?", (cancel_of,)
                    ).fetchone()
                    cancel = bool(row and row[0])
                except sqlite3.Error:
                    cancel = False  # a busy state: the next heartbeat asks again
        try:
            stdout.write(frame((number, failure, cancel)))
            stdout.flush()
        except OSError:  # the run is gone; what it sent is committed
            return 0


if __name__ == "__main__":
    # Everything sent is committed and answered, and the database closed: the interpreter's
    # teardown would only hold up the run that waits for this process to end (by 3 to 6 ms).
    os._exit(main())
