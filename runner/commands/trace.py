"""``branchleaf trace export RUN [-o FILE]`` and ``branchleaf trace import FILE``: a run as a
portable JSONL file (``docs/trace-format.md``), and such a file read into a state, where
``replay`` then runs it again without any provider."""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import shlex
from pathlib import Path

from rich.console import Console

from runner.errors import UsageError
from runner.plural import plural
from runner.store import portable
from runner.store.db import opened, state_dir


def run(args: argparse.Namespace, console: Console) -> int:
    """Export or import a trace; 0 when done."""
    if args.verb == "export":
        return export(run=args.run, output=args.output, state=args.state, console=console)
    return import_(file=args.file, state=args.state, console=console)


def export(*, run: str, output: str | None, state: str | None, console: Console) -> int:
    """Write a run's trace to ``output``, or to standard output."""
    with opened(state_dir(state), create=False) as conn:
        trace = portable.read_run(conn, run)
    content = portable.dumps(trace)
    if output is None:
        _write_out(console, content)
        return 0
    _write_atomically(Path(output), content)
    console.print(
        f"exported run {trace.run['id']} ({trace.run['workflow']}, "
        f"{plural(len(trace.events), 'event')}) "
        f"to {output}",
        markup=False,
    )
    return 0


def import_(*, file: str, state: str | None, console: Console) -> int:
    """Read a trace file into the state and print the run id."""
    trace = portable.loads(portable.read_file(file), file)
    directory = state_dir(state)
    with opened(directory) as conn:
        done = portable.store(conn, trace)
    if done.already:
        console.print(
            f"run {done.run_id} is already in {directory}, identical: nothing imported",
            markup=False,
        )
    else:
        console.print(
            f"imported run {done.run_id} ({trace.run['workflow']}, {done.status}, "
            f"{plural(done.events, 'event')}) into {directory}",
            markup=False,
        )
    where = "" if state is None else f" --state {shlex.quote(state)}"
    console.print(f"replay it with: branchleaf replay {done.run_id}{where}", markup=False)
    return 0


def _write_out(console: Console, content: bytes) -> None:
    """Write the bytes to the console's file (standard output), unchanged."""
    stream = console.file
    stream.flush()
    binary = getattr(stream, "buffer", None)
    try:
        if binary is None:
            stream.write(content.decode("utf-8"))
            stream.flush()
        else:
            binary.write(content)
            binary.flush()
    except BrokenPipeError:
        # The reader has gone (`| head`): it wants no more. Point standard output at devnull so
        # that the flush at exit does not fail again.
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), stream.fileno())


def _write_atomically(target: Path, content: bytes) -> None:
    """Write through a temporary file in the same folder (made if missing), renamed over the
    target once complete, so that a reader never sees half a file."""
    if not target.name or target.is_dir():
        raise UsageError(f"cannot write the trace to {target}: it is a folder; name a file")
    if target.exists() and not target.is_file():
        # A device or a FIFO (`-o /dev/stdout`) is written into: renaming a file over it
        # would replace the device rather than write to it.
        try:
            with target.open("wb") as handle:
                handle.write(content)
        except OSError as exc:
            raise UsageError(f"cannot write the trace to {target}: {exc.strerror or exc}") from exc
        return
    if target.is_symlink():
        target = Path(os.path.realpath(target))  # the file it names is replaced, not the link
    temporary = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError as exc:
        raise UsageError(
            f"cannot write the trace to {target}: {target.parent} is a file, not a folder"
        ) from exc
    except OSError as exc:
        raise UsageError(f"cannot write the trace to {target}: {exc.strerror or exc}") from exc
    try:
        # os.open with 0o666 leaves the permissions to the umask, as for any new file.
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(content)
            os.replace(temporary, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
    except OSError as exc:
        raise UsageError(f"cannot write the trace to {target}: {exc.strerror or exc}") from exc
