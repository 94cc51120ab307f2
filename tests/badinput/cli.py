"""Running the command line on hostile input, and what every answer must look like.

Most cases call ``main`` in-process; a case that could hang or grow without end runs
``python -m runner`` in a child process with a time limit and an address-space limit, so that a
regression fails one case instead of stopping (or swapping) the whole suite.
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from runner.main import main

TRACEBACK = "Traceback (most recent call last)"
CHILD_MEMORY = 768 * 1024**2
"""Bytes of address space a child may map: enough for Python, its imports and a run, and small
enough that an input that would build gigabytes fails at once instead of taking the memory."""
CHILD_TIMEOUT_S = 30.0
"""How long a child may run: generous, since it proves only that a case does not hang."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """What one command answered."""

    code: int | None
    """Exit code; ``None`` when the child was stopped at its time limit."""
    out: str
    """Standard output."""
    err: str
    """Standard error."""

    @property
    def text(self) -> str:
        """Both streams."""
        return self.out + self.err

    def first_line(self) -> str:
        """The line that says what went wrong (else the first that says anything)."""
        lines = [line.strip() for line in self.text.splitlines() if line.strip()]
        for marker in (ESCAPED_NOTE, "internal error", TRACEBACK, "rror"):
            for line in lines:
                if marker in line:
                    return line[:240]
        return lines[0][:240] if lines else "(no output)"

    def describe(self) -> str:
        """The exit code and first line, as a failure message shows them."""
        code = "timeout" if self.code is None else f"exit {self.code}"
        return f"{code}: {self.first_line()}"


INPROCESS_TIMEOUT_S = 20.0
"""How long an in-process case may run before it is stopped and counted as a hang."""


ESCAPED = -1000
"""The exit code recorded when an exception left ``main`` (a user would see a traceback)."""
ESCAPED_NOTE = "raised out of main"


class _Overran(BaseException):
    """Raised by the alarm; not an ``Exception``, so the error boundary does not swallow it."""


def _alarm(_signum: int, _frame: object) -> None:
    raise _Overran


def run_inprocess(
    argv: Sequence[str],
    capsys: pytest.CaptureFixture[str],
    *,
    env: Mapping[str, str] | None = None,
) -> Outcome:
    """``main(argv)`` with its output captured, stopped after :data:`INPROCESS_TIMEOUT_S`."""
    env = env or {}
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    previous = signal.signal(signal.SIGALRM, _alarm)
    code: int | None
    try:
        capsys.readouterr()
        signal.setitimer(signal.ITIMER_REAL, INPROCESS_TIMEOUT_S)
        escaped: Exception | None = None
        try:
            code = main(list(argv))
        except _Overran:
            code = None
        except Exception as exc:  # past the error boundary: a traceback for a user
            code, escaped = ESCAPED, exc
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        captured = capsys.readouterr()
    finally:
        signal.signal(signal.SIGALRM, previous)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    err = captured.err
    if escaped is not None:
        err += f"\n{ESCAPED_NOTE}: {type(escaped).__name__}: {escaped}"
    return Outcome(code=code, out=captured.out, err=err)


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (CHILD_MEMORY, CHILD_MEMORY))


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a child: ours, without anything that makes output a terminal's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "GH_"))}
    env.pop("COLUMNS", None)
    env.update(extra or {})
    return env


def start_child(
    argv: Sequence[str | bytes], *, cwd: Path, env: Mapping[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start ``python -m runner argv`` under the memory limit."""
    return subprocess.Popen(
        [sys.executable, "-m", "runner", *argv],
        cwd=cwd,
        env=child_env(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=_limit_memory,  # noqa: PLW1509 (the child imports nothing before exec)
        # Its own process group, so that a child stopped at its time limit takes the processes
        # it started (the state writer) with it.
        start_new_session=True,
    )


def finish_child(child: subprocess.Popen[bytes], timeout_s: float = CHILD_TIMEOUT_S) -> Outcome:
    """Wait for a child; one that outlives ``timeout_s`` is killed and has no exit code."""
    try:
        out, err = child.communicate(timeout=timeout_s)
        code: int | None = child.returncode
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)
        out, err = child.communicate()
        code = None
    return Outcome(
        code=code,
        out=out.decode("utf-8", "replace"),
        err=err.decode("utf-8", "replace"),
    )


def run_child(
    argv: Sequence[str | bytes],
    *,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    timeout_s: float = CHILD_TIMEOUT_S,
) -> Outcome:
    """``python -m runner argv`` in a child process with a time and memory limit."""
    return finish_child(start_child(argv, cwd=cwd, env=env), timeout_s)


def assert_clean(
    outcome: Outcome, *, allowed: Sequence[int] | None = None, command: str = ""
) -> None:
    """The promise for any input: an answer in time, no internal error, no traceback; and, when
    the input is certainly bad, one of the ``allowed`` exit codes."""
    problem = None
    if outcome.code is None:
        problem = "did not finish within its time limit"
    elif outcome.code == ESCAPED:
        problem = "an exception left main (a traceback)"
    elif TRACEBACK in outcome.text:
        problem = "printed a traceback"
    elif "internal error" in outcome.text or "This is a bug" in outcome.text:
        problem = "answered as an internal error"
    elif outcome.code < 0:
        problem = f"was killed by signal {-outcome.code}"
    elif allowed is not None and outcome.code not in allowed:
        problem = f"exit code not in {sorted(allowed)}"
    where = f"{command}: " if command else ""
    assert problem is None, f"{where}{problem}: {outcome.describe()}"


BAD = (2,)
"""Exit codes for input that is certainly invalid."""
BAD_OR_FAILED = (1, 2)
"""Exit codes for input that is invalid, or that fails a node with its reason at run time."""
BAD_OR_UNSERVED = (1, 2, 4)
"""Those, and the provider failure (exit 4) of a configuration that loads but whose provider
cannot serve a call."""
