"""Running work that cannot be interrupted from Python in a forked child, bounded in time and
memory.

Starlark evaluates in native code: a Python thread cannot stop it, and an allocation that fails
there aborts the whole process. So it runs in a child forked after the imports (cheap on
Linux), under ``RLIMIT_AS``; its result comes back through a pipe, and the parent kills
it when its time is up. Results are plain data (``marshal``: JSON-like values and tuples),
which is all a document or a diagnostic needs.
"""

from __future__ import annotations

import faulthandler
import marshal
import os
import resource
import select
import signal
import time
import warnings
from collections.abc import Callable
from typing import Any, Literal, TypeVar

T = TypeVar("T")


class ChildFailed(Exception):
    """The child ran out of time or memory, or died before it answered."""

    def __init__(self, why: Literal["time", "memory"]) -> None:
        super().__init__(why)
        self.why = why


def run_bounded(work: Callable[[], T], *, seconds: float, memory_mb: int) -> T:
    """``work()`` in a forked child that may take ``seconds`` and grow by ``memory_mb``.

    ``work`` must return plain data (what ``marshal`` writes) and raise nothing (turn its
    failures into values);
    raises ChildFailed when the child is killed at its deadline, runs out of memory or dies.
    """
    read, write = os.pipe()
    with warnings.catch_warnings():
        # Python 3.12 warns about forking with threads running: the child only computes, answers
        # and exits, touching no lock another thread could hold.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:
        os.close(read)
        _child(work, write, memory_mb)
    os.close(write)
    data: bytes | None = None
    try:
        data = _read(read, time.monotonic() + seconds)
    finally:  # an interrupted parent (Ctrl-C) leaves no child behind either
        os.close(read)
        if data is None:
            os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    if data is None:
        raise ChildFailed("time")
    if not data:
        raise ChildFailed("memory")  # it died without answering: an aborted allocation
    outcome = marshal.loads(data)
    if outcome == _OUT_OF_MEMORY:
        raise ChildFailed("memory")
    result: T = outcome[1]
    return result


_OUT_OF_MEMORY = "out of memory"


def _child(work: Callable[[], Any], write: int, memory_mb: int) -> None:
    code = 0
    try:
        # A native allocation that fails prints a backtrace before it aborts; the parent says
        # what happened in one sentence.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        faulthandler.disable()  # it writes to its own copy of stderr
        size = _address_space()
        if size is not None:  # without /proc (not Linux) only the time limit holds
            _, hard = resource.getrlimit(resource.RLIMIT_AS)
            limit = size + memory_mb * 2**20
            if hard != resource.RLIM_INFINITY:
                limit = min(limit, hard)
            resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
        try:
            data = marshal.dumps(("ok", work()))
        except MemoryError:
            data = marshal.dumps(_OUT_OF_MEMORY)
        view = memoryview(data)
        while view:
            view = view[os.write(write, view) :]
    except BaseException:  # nothing may escape a forked child
        code = 1
    finally:
        os._exit(code)  # never the parent's cleanups (atexit, open files, the test runner)


def _read(fd: int, deadline: float) -> bytes | None:
    """Everything the child writes before it exits; None if the deadline passes first."""
    chunks: list[bytes] = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            return None
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def _address_space() -> int | None:
    """This process's virtual size in bytes, where /proc tells it."""
    try:
        with open("/proc/self/statm", "rb") as file:
            return int(file.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None
