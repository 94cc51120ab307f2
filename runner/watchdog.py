"""Stopping a template or expression that runs too long, grows too large or is interrupted.

Rendering is Python bytecode on the event loop's thread, so nothing else runs while it does:
not the node's ``timeout_s``, not ``budget.wall_s``, not the SIGINT/SIGTERM handlers of a run.
One watchdog thread looks at the renders in progress every ``POLL_S`` and raises ``Interrupted``
in a render's thread (``PyThreadState_SetAsyncExc``) when its deadline passes, when the process
has grown by more than ``RENDER_MEMORY_MB`` since the render began, or when a stop has been
requested. The sandbox's size checks (``runner.limits``) stop single operations that would build
something huge; this catches the slow ones and whatever grows step by step.

A render's deadline is the sooner of ``RENDER_SECONDS`` from its start and the deadlines the
executor sets around it (``limit``: a node's ``timeout_s``, the run's ``budget.wall_s``).
"""

from __future__ import annotations

import contextlib
import contextvars
import ctypes
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

RENDER_SECONDS = 5.0
"""Longest one template or expression may take to render or evaluate."""
RENDER_MEMORY_MB = 256
"""How much the process may grow while one template or expression renders."""
POLL_S = 0.05
"""How often the watchdog looks at the renders in progress."""
IDLE_POLLS = 40
"""How many idle looks before the watchdog thread ends (the next render starts it again)."""

Then = Callable[[], None] | None
"""What to do, in the render's thread, once a render has been stopped (e.g. halt the run)."""

T = TypeVar("T")
_PAGE = os.sysconf("SC_PAGE_SIZE")
_TOO_LONG = f"rendering took longer than {RENDER_SECONDS:g} s, the limit for one template"
_LIMIT: contextvars.ContextVar[tuple[float, str, Then] | None] = contextvars.ContextVar(
    "branchleaf_render_limit", default=None
)


class Interrupted(BaseException):
    """Raised in a render's thread by the watchdog. A BaseException, so that no ``except
    Exception`` in the template engine swallows it."""


class Slot:
    """One render in progress."""

    __slots__ = ("deadline", "fired", "rss", "then", "why")

    def __init__(self, deadline: float, why: str, then: Then) -> None:
        self.deadline = deadline
        self.why = why
        self.then = then
        self.fired: tuple[str, Then] | None = None
        """Why the watchdog stopped this render, once it has."""
        self.rss: int | None = None
        """The process's resident size when the watchdog first saw this render."""


class _Watch:
    """The renders in progress, by thread, and the one thread that watches them."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.lock = threading.Lock()
        self.slots: dict[int, Slot] = {}
        self.stop: tuple[str, Then] | None = None
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        with self.lock:
            if self.thread is None:
                self.thread = threading.Thread(
                    target=self.run, name="branchleaf-watchdog", daemon=True
                )
                self.thread.start()

    def run(self) -> None:
        idle = 0
        while True:
            time.sleep(POLL_S)
            if not self.slots:
                idle += 1
                if idle >= IDLE_POLLS:
                    with self.lock:
                        if not self.slots:
                            self.thread = None
                            return
                continue
            idle = 0
            self.look(time.monotonic(), _rss())

    def look(self, now: float, rss: int) -> None:
        stop = self.stop
        for ident, slot in list(self.slots.items()):
            fired: tuple[str, Then] | None = None
            if stop is not None:
                fired = stop
            elif now >= slot.deadline:
                fired = (slot.why, slot.then)
            elif slot.rss is None:
                slot.rss = rss
            elif rss - slot.rss > RENDER_MEMORY_MB * 2**20:
                fired = (f"rendering grew the process by more than {RENDER_MEMORY_MB} MB", None)
            if fired is None:
                continue
            with self.lock:
                if self.slots.get(ident) is slot and slot.fired is None:
                    slot.fired = fired
                    _send(ident, Interrupted)


_watch = _Watch()


@contextlib.contextmanager
def limit(seconds: float | None, why: str, then: Then = None) -> Iterator[None]:
    """Renders inside this block end at most ``seconds`` from now, failing with ``why``."""
    if seconds is None:
        yield
        return
    deadline = time.monotonic() + seconds
    outer = _LIMIT.get()
    sooner = outer is not None and outer[0] <= deadline
    token = _LIMIT.set(outer if sooner else (deadline, why, then))
    try:
        yield
    finally:
        _LIMIT.reset(token)


def request_stop(why: str, then: Then = None) -> None:
    """Stop every render in progress and refuse new ones (safe in a signal handler)."""
    _watch.stop = (why, then)


def clear_stop() -> None:
    """Let renders run again (a new run begins)."""
    _watch.stop = None


def enter() -> Slot:
    """Start watching a render in this thread; pair with ``leave``. A slot that comes back
    already ``fired`` (a stop was requested) is not watched: the render must not start."""
    deadline = time.monotonic() + RENDER_SECONDS
    outer = _LIMIT.get()
    if outer is not None and outer[0] < deadline:
        slot = Slot(*outer)
    else:
        slot = Slot(deadline, _TOO_LONG, None)
    if _watch.stop is not None:
        slot.fired = _watch.stop
        return slot
    _watch.slots[threading.get_ident()] = slot
    if _watch.thread is None:
        _watch.start()
    return slot


def leave(slot: Slot) -> None:
    """Stop watching; an interruption that was sent but not yet raised is withdrawn."""
    ident = threading.get_ident()
    with _watch.lock:
        if _watch.slots.get(ident) is slot:
            del _watch.slots[ident]
        if slot.fired is not None:
            _send(ident, None)


def _send(ident: int, exc: type[BaseException] | None) -> None:
    # None withdraws a pending exception (the C API's NULL).
    target = ctypes.py_object(exc) if exc is not None else None
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), target)


def _rss() -> int:
    """The process's resident size in bytes (0 where /proc is not there)."""
    try:
        with open("/proc/self/statm", "rb") as file:
            return int(file.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return 0


class Stopped(Exception):
    """A render the watchdog stopped; says why."""


def guarded(work: Callable[[], T]) -> T:
    """Run ``work`` watched; raises Stopped when the watchdog stops it."""
    slot = enter()
    if slot.fired is None:
        try:
            try:
                return work()
            finally:
                leave(slot)
        except Interrupted:
            leave(slot)  # the interruption may have landed in the first leave
    assert slot.fired is not None
    why, then = slot.fired
    if then is not None:
        then()
    raise Stopped(why)


# A forked child has only the thread that forked: the watchdog thread is gone, and a render
# cut off by the fork holds nothing the child needs.
os.register_at_fork(after_in_child=_watch.reset)
