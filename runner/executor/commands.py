"""Run a ``command`` node's argv as a subprocess that never outlives its run.

Each command gets its own process group (a new session), so a timeout, a cancelled run or a
normal exit can signal everything it started, children included: SIGTERM first, SIGKILL after
a grace period. Output is read while the process runs, capped in memory, and decoded once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import signal
import time
from collections.abc import Awaitable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from runner.errors import RunnerError

if TYPE_CHECKING:
    from runner.config import Config

T = TypeVar("T")

TERM_GRACE_S = 2.0
"""How long a process group has between SIGTERM and SIGKILL."""
DRAIN_S = 2.0
"""How long to wait for end-of-file on the output pipes once the process group is gone."""
POLL_S = 0.02
"""How often to look whether a signalled process group is gone."""
_CHUNK = 64 * 1024
WITHHELD = frozenset(
    {"GITHUB_TOKEN", "GH_TOKEN", "ACTIONS_RUNTIME_TOKEN", "ACTIONS_ID_TOKEN_REQUEST_TOKEN"}
)
"""Credentials of the CI job itself, which commands do not inherit: a command runs the code
under review (tests, linters of a pull request), and the Action puts its token in the
environment to post the report comment. A command that needs one names it in its own ``env``."""
PROVIDER_KEYS = frozenset(
    {
        "OPENAI_API_KEY",
        "AZURE_OPENAI_API_KEY",
        "AZURE_API_KEY",
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_AUTH_TOKEN",
        "GEMINI_API_KEY",
        "GOOGLE_API_KEY",
        "GOOGLE_APPLICATION_CREDENTIALS",
        "MISTRAL_API_KEY",
        "DEEPSEEK_API_KEY",
        "MOONSHOT_API_KEY",
        "ZHIPUAI_API_KEY",
        "GLM_API_KEY",
        "ZAI_API_KEY",
        "MINIMAX_API_KEY",
        "DASHSCOPE_API_KEY",
        "GROQ_API_KEY",
        "TOGETHER_API_KEY",
        "FIREWORKS_API_KEY",
        "OPENROUTER_API_KEY",
        "XAI_API_KEY",
        "COHERE_API_KEY",
        "CO_API_KEY",
        "PERPLEXITY_API_KEY",
        "CEREBRAS_API_KEY",
        "REPLICATE_API_TOKEN",
        "HF_TOKEN",
        "HUGGING_FACE_HUB_TOKEN",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_BEARER_TOKEN_BEDROCK",
    }
)
"""Well-known model-provider credentials, withheld like :data:`WITHHELD` whether or not the
configuration names them: a test that prints its environment would otherwise write a key into
the state, the exported traces and the next prompt."""


class CommandError(RunnerError):
    """A command could not be started (missing executable, missing cwd, empty argv)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CommandResult:
    """What one command run produced."""

    argv: tuple[str, ...]
    """The argv that was run, after template rendering."""
    exit_code: int | None
    """The exit status (negative N if it died of signal N); ``None`` if it was killed by a
    timeout or a cancellation."""
    stdout: str
    """Standard output, decoded as UTF-8 (bad bytes replaced), truncated with a marker line."""
    stderr: str
    """Standard error, decoded and truncated like ``stdout``."""
    timed_out: bool
    """Whether the node's ``timeout_s`` ran out and the process group was killed."""
    duration_s: float
    """Wall-clock seconds from start to the process group being gone."""

    def as_output(self) -> dict[str, int | str | None]:
        """The node's output value: exit code, stdout and stderr."""
        return {"exit_code": self.exit_code, "stdout": self.stdout, "stderr": self.stderr}


def command_line(argv: Sequence[str]) -> str:
    """The argv as a shell would read it back (items quoted where needed), for messages."""
    return shlex.join(argv)


def withheld_variables(config: Config) -> frozenset[str]:
    """What commands do not inherit under ``config``: the CI job's credentials, the
    well-known provider keys, and every variable a configured provider reads its key from."""
    configured = {p.api_key_env for p in config.providers.values() if p.api_key_env}
    return WITHHELD | PROVIDER_KEYS | configured


def working_directory(root: Path, given: str | None) -> Path:
    """Where a command with ``cwd: given`` runs: ``root`` (the workspace or the node's
    worktree), or a folder inside it; :class:`CommandError` for anything that leaves it, by
    ``..``, an absolute path or a symbolic link."""
    if given is None:
        return root
    home = root.resolve()
    target = (home / given).resolve()
    if not target.is_relative_to(home):
        raise CommandError(
            f"the command's cwd {given!r} leads to {target}, outside {root} where the node "
            "runs (the workspace or its worktree); give a folder inside it, relative to it"
        )
    # Named under root as given, so the path recorded with the command stays relative to it.
    return root / target.relative_to(home)


async def run_command(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str] | None,
    timeout_s: float | None,
    max_output_bytes: int = 1_000_000,
    withheld: Collection[str] = WITHHELD | PROVIDER_KEYS,
) -> CommandResult:
    """Run argv (no shell) in cwd and return its result; kill its whole group on timeout/cancel.

    The command inherits the runner's environment except ``withheld`` (see
    :func:`withheld_variables`), then gets ``env``."""
    args = tuple(argv)
    started = time.monotonic()
    # A cancel that lands while the child is being created must still find and stop it.
    child, cancel = await _through(_spawn(args, cwd, command_env(os.environ, env, withheld)))
    transport, protocol = child
    assert protocol.stdout is not None
    assert protocol.stderr is not None
    readers = (
        asyncio.create_task(_read(protocol.stdout, max_output_bytes)),
        asyncio.create_task(_read(protocol.stderr, max_output_bytes)),
    )
    timed_out = False
    try:
        if cancel is not None:
            raise cancel
        async with asyncio.timeout(timeout_s):
            # Shielded: a cancelled await would cancel the future, and _stop still needs it.
            await asyncio.shield(protocol.exited)
    except TimeoutError:
        timed_out = True
    finally:
        # Runs on cancellation too, and cannot itself be cut short: nothing may be left running.
        exit_code = transport.get_returncode()
        (out, out_total), (err, err_total) = await finish(_stop(transport, protocol, readers))
    return CommandResult(
        argv=args,
        exit_code=None if timed_out else exit_code,
        stdout=_text(out, out_total, max_output_bytes),
        stderr=_text(err, err_total, max_output_bytes),
        timed_out=timed_out,
        duration_s=time.monotonic() - started,
    )


def command_env(
    inherited: Mapping[str, str],
    given: Mapping[str, str] | None,
    withheld: Collection[str] = WITHHELD | PROVIDER_KEYS,
) -> dict[str, str]:
    """A command's environment: the runner's, without the ``withheld`` credentials, then the
    entries the node sets (which may pass one of them on explicitly)."""
    kept = {name: value for name, value in inherited.items() if name not in withheld}
    return {**kept, **(given or {})}


async def finish(awaitable: Awaitable[T]) -> T:
    """Await to the end even if the caller is cancelled meanwhile, then re-raise the cancel."""
    result, cancel = await _through(awaitable)
    if cancel is not None:
        raise cancel
    return result


async def _through(awaitable: Awaitable[T]) -> tuple[T, asyncio.CancelledError | None]:
    """Await to the end through any cancels; return the result and the first cancel seen."""
    task = asyncio.ensure_future(awaitable)
    cancel: asyncio.CancelledError | None = None
    while not task.done():
        try:
            # Unlike a plain await, wait() leaves the task running when the caller is cancelled.
            await asyncio.wait((task,))
        except asyncio.CancelledError as exc:
            cancel = cancel or exc
    try:
        return task.result(), cancel
    except BaseException as exc:
        if cancel is not None:
            raise cancel from exc
        raise


class _Protocol(asyncio.subprocess.SubprocessStreamProtocol):
    """The stream protocol, plus a future set when the process exits.

    ``Process.wait()`` also waits for end-of-file on the pipes (CPython 3.11), which a
    background child holding stdout delays for as long as it lives.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(limit=_CHUNK, loop=loop)
        self.exited: asyncio.Future[None] = loop.create_future()

    def process_exited(self) -> None:
        super().process_exited()
        if not self.exited.done():
            self.exited.set_result(None)


async def _spawn(
    argv: tuple[str, ...], cwd: Path, env: dict[str, str]
) -> tuple[asyncio.SubprocessTransport, _Protocol]:
    if not argv or not argv[0]:
        raise CommandError("command has an empty `run` argv; give at least the program to run")
    if not cwd.is_dir():
        raise CommandError(
            f"command {argv[0]!r} cannot start: its cwd {cwd} is not an existing directory; "
            "fix the node's `cwd` or create the directory in an earlier step"
        )
    try:
        loop = asyncio.get_running_loop()
        return await loop.subprocess_exec(
            lambda: _Protocol(loop),
            *argv,
            cwd=cwd,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
    except FileNotFoundError as exc:
        raise CommandError(
            f"command {argv[0]!r} was not found (PATH and cwd {cwd}); install it, "
            "put it on PATH or fix the node's `run`"
        ) from exc
    except OSError as exc:  # e.g. permission denied, not an executable
        raise CommandError(
            f"command {argv[0]!r} cannot start (cwd {cwd}): {exc.strerror or exc}; "
            "check that it is an executable program or fix the node's `run`"
        ) from exc


async def _read(stream: asyncio.StreamReader, limit: int) -> tuple[bytes, int]:
    # Keep reading past the limit: a full pipe would block the writer forever.
    kept = bytearray()
    total = 0
    while chunk := await stream.read(_CHUNK):
        total += len(chunk)
        room = limit - len(kept)
        if room > 0:
            kept += chunk[:room]
    return bytes(kept), total


def _text(kept: bytes, total: int, limit: int) -> str:
    text = kept.decode("utf-8", errors="replace")
    cut = total - len(kept)
    if cut <= 0:
        return text
    newline = "" if text.endswith("\n") or not text else "\n"
    return f"{text}{newline}[output truncated: {cut} of {total} bytes cut, limit {limit}]\n"


async def _stop(
    transport: asyncio.SubprocessTransport,
    protocol: _Protocol,
    readers: tuple[asyncio.Task[tuple[bytes, int]], ...],
) -> tuple[tuple[bytes, int], ...]:
    """End the process group, reap the process and collect what the readers got."""
    group = transport.get_pid()  # start_new_session makes the child its group's leader
    if _signal(group, signal.SIGTERM) and not await _gone(protocol, group, TERM_GRACE_S):
        _signal(group, signal.SIGKILL)
        await _gone(protocol, group, TERM_GRACE_S)
    await protocol.exited
    _, pending = await asyncio.wait(readers, timeout=DRAIN_S)
    # A descendant that left the group (setsid) may still hold a pipe: stop waiting for it.
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending)
    transport.close()
    return tuple(
        (b"", 0) if task.cancelled() or task.exception() else task.result() for task in readers
    )


async def _gone(protocol: _Protocol, group: int, seconds: float) -> bool:
    """Wait up to seconds for the leader to be reaped and the group to be empty."""
    deadline = time.monotonic() + seconds
    while True:
        if protocol.exited.done() and not _group_alive(group):
            return True
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(POLL_S)


def _signal(group: int, sig: int) -> bool:
    """Send sig to the group; False once no member is left."""
    try:
        os.killpg(group, sig)
    except ProcessLookupError:
        return False
    except PermissionError:
        # A member changed its user (setuid); the ones we own were signalled.
        return True
    return True


def _group_alive(group: int) -> bool:
    """Whether a member of the group is still running; zombies do not count."""
    if not _signal(group, 0):
        return False
    proc_root = Path("/proc")
    if not proc_root.is_dir():
        return True
    # Orphans become zombies until their new parent reaps them, and in containers that parent
    # (PID 1) may never do so; killpg(..., 0) still finds them, /proc tells them apart.
    for entry in proc_root.iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == group and fields[0] not in {"Z", "X"}:
                return True
    return False
