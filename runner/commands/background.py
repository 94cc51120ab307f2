"""``branchleaf run --background``: check the workflows here, then run each one in a detached
process of its own, which records itself in the state under an id printed here; ``watch``,
``runs`` and ``cancel`` follow and stop it from any terminal.

The child is ``python -m runner run FILE ... --run-id ID --plain`` in a new session (no
terminal, so closing this one does not stop it), with its output in ``<state>/logs/ID.log``.
Several files start one child each. This command returns once every child has recorded its
run (well under a second), so that ``watch last`` right after names it.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from runner.commands.run import files_to_run, nothing_to_run, parse_inputs
from runner.compiler.pipeline import check_file
from runner.config import MOCK_ONLY, load_config
from runner.errors import CompileError, RunnerError, UsageError
from runner.providers.registry import build_providers
from runner.render import resolve_inputs
from runner.store import runs
from runner.store.db import StoreError, opened, state_dir

LOGS_DIR = "logs"
"""Where background runs' output goes, under the state directory."""
STARTUP_WAIT_S = 10.0
"""How long a run just started in the background is waited for to record itself."""
POLL_S = 0.05


class BackgroundError(RunnerError):
    """A background run stopped before it could record itself."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True, slots=True, kw_only=True)
class Started:
    """One child process started for one workflow file."""

    path: str
    """The workflow file."""
    name: str
    """The workflow's name."""
    run_id: str
    """The id the child records its run under."""
    log: Path
    """Where its output goes."""
    process: subprocess.Popen[bytes]
    """The child."""


def log_path(directory: Path, run_id: str) -> Path:
    """The log of a run started in the background."""
    return directory / LOGS_DIR / f"{run_id}.log"


def start(args: argparse.Namespace, console: Console) -> int:
    """Check every workflow given, start one detached run per workflow and print their ids."""
    if args.run_id is not None and len(args.workflow) > 1:
        raise UsageError("--run-id names one run: give one workflow file with it")
    config = MOCK_ONLY if args.mock else load_config(args.config)
    capabilities = config.capabilities if config.path is not None else None
    wanted: list[tuple[str, str]] = []
    # Everything a run checks before it starts is checked here, so a mistake fails at once.
    for path in files_to_run(args, console):
        checked = check_file(path, capabilities=capabilities, lenient=True)
        if checked.diagnostics:
            raise CompileError(checked.diagnostics)
        if checked.workflow is None:  # a Starlark library, or YAML that is not a workflow
            console.print(f"- {path} skipped: not a workflow ({checked.kind})", markup=False)
            continue
        workflow = checked.workflow
        resolve_inputs(workflow, parse_inputs(args.input or []))
        roles = [name for name, _ in workflow.roles or ()]
        build_providers(config, roles, mock_script=args.mock_script)
        wanted.append((path, workflow.name))
    if not wanted:
        return nothing_to_run(args, console)
    directory = state_dir(args.state)
    with opened(directory):  # the state exists, migrated, before any child opens it
        pass
    try:
        (directory / LOGS_DIR).mkdir(exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create {directory / LOGS_DIR}: {exc.strerror}") from exc
    started = [
        _launch(path, name, args, directory, args.run_id or runs.new_run_id())
        for path, name in wanted
    ]
    recorded = _wait_recorded(directory, started)
    state = f" --state {shlex.quote(args.state)}" if args.state else ""
    failed: list[Started] = []
    for child in started:
        if child.run_id not in recorded:
            if child.process.poll() is not None:
                failed.append(child)
                continue
            note = f" (not recorded yet after {STARTUP_WAIT_S:.0f}s: see its log)"
        else:
            note = ""
        console.print(
            f"started {child.name} ({child.path}) in the background as run {child.run_id}{note}",
            markup=False,
        )
        console.print(f"  follow it: `watch {child.run_id}{state}`", markup=False)
        console.print(f"  stop it:   `cancel {child.run_id}{state}`", markup=False)
        console.print(f"  its log:   {child.log}", markup=False)
    if len(failed) < len(started):
        console.print(f"`runs{state}` lists every run and its status", markup=False)
    for child in started:
        if child not in failed:
            _reap(child.process)
    if failed:
        child = failed[0]
        code = child.process.returncode
        raise BackgroundError(
            f"the background run of {child.path} stopped before it started: "
            f"{_last_line(child.log)} (its log: {child.log})",
            code if code in (1, 2, 3) else 3,
        )
    return 0


def child_argv(path: str, args: argparse.Namespace, directory: Path, run_id: str) -> list[str]:
    """The command line of the child that runs one workflow under ``run_id``."""
    argv = [sys.executable, "-m", "runner"]
    if getattr(args, "debug", False):
        argv.append("--debug")
    argv += ["run", path]
    for pair in args.input or []:
        argv += ["--input", pair]
    if args.config:
        argv += ["--config", args.config]
    if args.mock_script:
        argv += ["--mock-script", args.mock_script]
    if args.mock:
        argv.append("--mock")
    if args.report_dir:  # else the child's default: reports in the same state directory
        argv += ["--report-dir", args.report_dir]
    if getattr(args, "no_overlay", False):
        argv.append("--no-overlay")
    if getattr(args, "overlay_branch", None):
        argv += ["--overlay-branch", args.overlay_branch]
    argv += ["--state", str(directory)]
    return [*argv, "--run-id", run_id, "--plain"]


def find_run(directory: Path, ref: str, console: Console) -> runs.RunRecord:
    """The run ``ref`` names; a run just started in the background is waited for a few
    seconds (it has a log before it has a row)."""
    deadline: float | None = None
    while True:
        try:
            with opened(directory, create=False) as conn:
                return runs.find(conn, ref)
        except StoreError:
            log = log_path(directory, ref)
            if not log.is_file():
                raise
            now = time.monotonic()
            if deadline is None:
                deadline = now + STARTUP_WAIT_S
                console.print(f"waiting for run {ref} to start", markup=False)
            elif now > deadline:
                raise StoreError(
                    f"run {ref} has not started after {STARTUP_WAIT_S:.0f}s: its log {log} says why"
                ) from None
        time.sleep(POLL_S * 4)


def _launch(
    path: str, name: str, args: argparse.Namespace, directory: Path, run_id: str
) -> Started:
    log = log_path(directory, run_id)
    argv = child_argv(path, args, directory, run_id)
    try:
        with log.open("wb") as out:
            process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # no terminal: its hang-up and Ctrl-C do not reach it
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
    except OSError as exc:
        raise RunnerError(
            f"cannot start a background run of {path}: {exc.strerror or exc}"
        ) from exc
    return Started(path=path, name=name, run_id=run_id, log=log, process=process)


def _wait_recorded(directory: Path, started: list[Started]) -> set[str]:
    """The ids of the children that recorded their run before they ended or time ran out."""
    ids = [child.run_id for child in started]
    recorded: set[str] = set()
    deadline = time.monotonic() + STARTUP_WAIT_S
    with opened(directory, create=False) as conn:
        while True:
            marks = ",".join("?" * len(ids))
            rows = conn.execute(f"SELECT id FROM runs WHERE id IN ({marks})", ids).fetchall()
            recorded = {row[0] for row in rows}
            waiting = [c for c in started if c.run_id not in recorded and c.process.poll() is None]
            if not waiting or time.monotonic() > deadline:
                return recorded
            time.sleep(POLL_S)


def _reap(process: subprocess.Popen[bytes]) -> None:
    # In a long-lived caller (an embedding program, the tests) an unreaped child would linger as
    # a zombie once it ends, and look alive to `runs`; the thread dies with a short-lived caller,
    # whose children are then reaped by init.
    threading.Thread(target=process.wait, name="branchleaf-reaper", daemon=True).start()


def _last_line(log: Path) -> str:
    try:
        lines = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except OSError:
        return "its log cannot be read"
    return lines[-1].strip().removeprefix("error: ") if lines else "it printed nothing"
