"""Running hostile work in a forked child under a memory limit and a time limit, so that a
bound that does not hold fails a test instead of the machine."""

from __future__ import annotations

import os
import resource
import select
import signal
import time
from collections.abc import Callable

CHILD_MEMORY = 768 * 2**20
"""How much more address space than the test process the child may take."""


def _address_space() -> int:
    with open("/proc/self/statm", "rb") as file:
        return int(file.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


def in_child(work: Callable[[], object], *, within_s: float = 60.0) -> str:
    """What ``work()`` returned (as ``"ok: ..."``) or raised (``"Name: message"``), run in a
    forked child; ``"ran past N s"`` if it had to be killed."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report, then leave without running the parent's cleanups
        try:
            os.close(read)
            limit = _address_space() + CHILD_MEMORY
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
            try:
                text = f"ok: {work()}"
            except BaseException as exc:  # the child reports whatever ended it
                text = f"{type(exc).__name__}: {exc}"
            os.write(write, text.encode("utf-8", "replace")[:60000])
        finally:
            os._exit(0)
    os.close(write)
    chunks = []
    deadline = time.monotonic() + within_s
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([read], [], [], left)[0]:
                os.kill(pid, signal.SIGKILL)
                return f"ran past {within_s:g} s"
            chunk = os.read(read, 65536)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(read)
        os.waitpid(pid, 0)
    return b"".join(chunks).decode("utf-8")
