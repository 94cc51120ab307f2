"""``branchleaf run WORKFLOW``: validate, run with the configured providers (the mock by
default), check the workflow's tests, print the result and write a JSON summary."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import os
import signal
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from runner import exits, ir, watchdog
from runner.ci_block import added, with_ci_settings
from runner.compiler.pipeline import check_file, dependents, existing
from runner.config import MOCK_ONLY, Config, load_config
from runner.errors import CompileError, UsageError
from runner.executor.engine import Engine, declared_env, run_sync
from runner.executor.results import RunResult
from runner.humanize import cost, duration
from runner.overlay.use import DEFAULT_BRANCH, Used, overlay_for
from runner.plural import plural
from runner.progress import LiveProgress, PlainProgress
from runner.providers import outage
from runner.providers.base import Provider
from runner.providers.registry import build_providers
from runner.render import resolve_inputs
from runner.reports import divergences, model
from runner.status import Status, summary_status, tests_note
from runner.store import runs
from runner.store.db import state_dir
from runner.store.recording import Recording
from runner.store.trace import RecordedRun

REPORTS = "reports"
"""The report folder in the state directory, unless ``--report-dir`` says otherwise."""


def parse_inputs(pairs: list[str]) -> dict[str, str]:
    """``k=v`` strings as a mapping."""
    out: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise UsageError(f"--input {pair!r} is not of the form name=value")
        out[name] = value
    return out


def report_dir(args: argparse.Namespace) -> Path:
    """``--report-dir``, else ``reports`` in the state directory (``.branchleaf/reports``)."""
    given = getattr(args, "report_dir", None)
    return Path(given) if given else state_dir(args.state) / REPORTS


def run(args: argparse.Namespace, console: Console) -> int:
    """Run each workflow given; 0 when every node and test passed, 4 when only a provider
    failed, 1 otherwise, 130 if interrupted (the remaining workflows are then not started)."""
    if getattr(args, "background", False):
        from runner.commands import background  # it imports this module

        return background.start(args, console)
    config = MOCK_ONLY if args.mock else load_config(args.config)
    capabilities = config.capabilities if config.path is not None else None
    worst, ran = 0, 0
    # Every file is checked before the first one runs: a typo in the last file given should
    # not wait for (or pay for) the runs of the others.
    checked_files = [
        (path, check_file(path, capabilities=capabilities, lenient=True))
        for path in files_to_run(args, console)
    ]
    diagnostics = [d for _, checked in checked_files for d in checked.diagnostics]
    if diagnostics:
        raise CompileError(diagnostics)
    planned = [(path, checked, _options(args, checked.workflow)) for path, checked in checked_files]
    for path, checked, options in planned:
        if checked.workflow is None:  # a Starlark library, or YAML that is not a workflow
            console.print(f"- {path} skipped: not a workflow ({checked.kind})", markup=False)
            continue
        words = added(args, options)
        if words:
            console.print(
                f"{checked.workflow.name}: from its ci block: {' '.join(words)}", markup=False
            )
        used = overlaid(checked.workflow, options, console)
        code = run_workflow(used.workflow, config, options, console, overlay=used.record)
        ran += 1
        if code == 130:
            return 130
        worst = exits.worst((worst, code))
    if not ran:
        return nothing_to_run(args, console)
    return worst


def _options(args: argparse.Namespace, workflow: ir.Workflow | None) -> argparse.Namespace:
    """The options a workflow runs with: with ``--changed-files`` (the pre-commit dry run),
    with the inputs and the mock script of its ``ci`` block, as ``ci`` runs it, so that one
    hook serves every workflow (issue 12); ``--input`` and ``--mock-script`` given win."""
    if workflow is None or not getattr(args, "changed_files", False):
        return args
    return with_ci_settings(workflow, args)


def files_to_run(args: argparse.Namespace, console: Console) -> list[str]:
    """The files named, which must exist; with ``--changed-files``, each Starlark library
    among them stands for the workflows that load it."""
    existing(args.workflow)
    if not getattr(args, "changed_files", False):
        return list(args.workflow)
    out: dict[Path, str] = {}
    for path in args.workflow:
        if Path(path).suffix.lower() != ".star":
            out.setdefault(Path(path).resolve(), path)
            continue
        checked = check_file(path, lenient=True)
        if checked.diagnostics:
            raise CompileError(checked.diagnostics)
        if checked.kind != "library":
            out.setdefault(Path(path).resolve(), path)
            continue
        users = dependents(path)
        if users:
            console.print(
                f"- {path} is a Starlark library: running the workflows that load it: "
                + ", ".join(users),
                markup=False,
            )
        else:
            console.print(f"- {path} skipped: a Starlark library no workflow loads", markup=False)
        for user in users:
            out.setdefault(Path(user).resolve(), user)
    return list(out.values())


def nothing_to_run(args: argparse.Namespace, console: Console) -> int:
    """When no file given is a workflow: 0 for ``--changed-files`` (a commit may touch only
    mock scripts), else a usage error."""
    if getattr(args, "changed_files", False):
        console.print("nothing to run: none of the files given is a workflow", markup=False)
        return 0
    raise UsageError("none of the files given is a workflow to run")


def run_workflow(
    workflow: ir.Workflow,
    config: Config,
    args: argparse.Namespace,
    console: Console,
    *,
    started: Callable[[Recording], None] | None = None,
    repeat: int = 0,
    overlay: dict[str, Any] | None = None,
) -> int:
    """Run one workflow as a new recorded run and return its exit code; ``started`` is told
    the run's recording once it exists; ``repeat``: which repeat of the workflow this run is
    (``ci`` repeating it for its tests); ``overlay``: the lessons applied to ``workflow``, as
    the run records them (:func:`overlaid`)."""
    inputs = resolve_inputs(workflow, parse_inputs(args.input or []))
    roles = [name for name, _ in workflow.roles or ()]
    providers = build_providers(config, roles, mock_script=args.mock_script)
    if repeat == 0:
        warn_unused_entries(workflow, providers)
    progress = progress_for(console, args)
    recording = Recording(
        state_dir(args.state),
        workflow=workflow,
        inputs=inputs,
        env=declared_env(workflow),
        config=config,
        providers=providers,
        mock_script=args.mock_script,
        mode="run",
        argv=getattr(args, "argv", None),
        run_id=getattr(args, "run_id", None),
        repeat=repeat,
        overlay=overlay,
    )
    if started is not None:
        started(recording)
    engine = Engine(
        workflow,
        config=config,
        providers=providers,
        workspace=Path.cwd(),
        observer=progress,
        memo=recording.memo,
        journal=recording.journal,
        repeat=repeat,
    )
    return execute(
        engine, inputs=inputs, recording=recording, progress=progress, args=args, console=console
    )


def overlaid(workflow: ir.Workflow, args: argparse.Namespace, console: Console) -> Used:
    """``workflow`` with the active lessons of the overlay branch applied (none with
    ``--no-overlay``); says which were applied, and warns of each that was left out."""
    if getattr(args, "no_overlay", False):
        return Used(workflow, None, ())
    branch = getattr(args, "overlay_branch", None) or DEFAULT_BRANCH
    repo = Path(getattr(args, "repo", None) or Path.cwd())
    used = overlay_for(workflow, repo=repo, branch=branch)
    errors = Console(stderr=True, highlight=False, soft_wrap=True)
    for note in used.notes:
        errors.print(f"warning: {note}", markup=False)
    if used.record is not None:
        console.print(f"{workflow.name}: {applied_line(used.record)}", markup=False)
    return used


def applied_line(overlay: Mapping[str, Any]) -> str:
    """``2 lessons applied from cached-main at abc1234: a, b``."""
    ids = [lesson["id"] for lesson in overlay.get("lessons") or ()]
    return (
        f"{plural(len(ids), 'lesson')} applied from {overlay.get('branch')} at "
        f"{str(overlay.get('commit'))[:7]}: {', '.join(ids)}"
    )


def warn_unused_entries(workflow: ir.Workflow, providers: Mapping[str, Provider]) -> None:
    """A warning on standard error for each mock-script entry no call of ``workflow`` uses."""
    from runner.providers.mock import MockProvider
    from runner.providers.script import unused_entries

    errors = Console(stderr=True, highlight=False, soft_wrap=True)
    for provider in providers.values():
        if isinstance(provider, MockProvider) and provider.script is not None:
            for line in unused_entries(provider.script, workflow):
                errors.print(f"warning: {line}", markup=False)


def rerun(
    record: runs.RunRecord,
    *,
    workflow: ir.Workflow,
    config: Config,
    providers: Mapping[str, Provider],
    answers: RecordedRun,
    mode: str,
    args: argparse.Namespace,
    console: Console,
    started: Callable[[Recording], None],
) -> int:
    """Run a recorded run's workflow again as a new run (replay, fork, resume), with its
    inputs and environment, ``answers`` answering first; ``started`` is told the new run."""
    env = runs.replayed_env(record.env, dict(os.environ))
    repeat = int(record.providers.get("repeat", 0))  # its calls' keys carry it
    recording = Recording(
        state_dir(args.state),
        workflow=workflow,
        inputs=record.inputs,
        env=env,
        config=config,
        providers=providers,
        mock_script=record.providers.get("mock_script"),
        mode=mode,
        parent=record.id,
        repeat=repeat,
        overlay=record.overlay,  # the lessons in ``workflow`` are the run's
    )
    started(recording)
    progress = progress_for(console, args)
    engine = Engine(
        workflow,
        config=config,
        providers=providers,
        workspace=Path.cwd(),
        observer=progress,
        journal=recording.journal,
        memo=recording.memo if mode != "replay" else None,  # a replay calls nothing to store
        environment=env,
        answers=answers,
        repeat=repeat,
    )
    return execute(
        engine,
        inputs=record.inputs,
        recording=recording,
        progress=progress,
        args=args,
        console=console,
    )


def progress_for(console: Console, args: argparse.Namespace) -> LiveProgress | PlainProgress:
    """The live view in a terminal (unless ``--plain``), plain lines otherwise."""
    if console.is_terminal and not args.plain:
        return LiveProgress(console)
    return PlainProgress(console)


def execute(
    engine: Engine,
    *,
    inputs: dict[str, Any],
    recording: Recording,
    progress: LiveProgress | PlainProgress,
    args: argparse.Namespace,
    console: Console,
) -> int:
    """Run an engine that records into ``recording``; print, summarise, return the exit code."""
    workflow = engine.workflow
    if isinstance(progress, PlainProgress):
        console.print(
            f"running {workflow.name} ({workflow.source}) as run {recording.run_id}",
            markup=False,
        )
    console.print(model.served_line(recording.served), markup=False)
    result: RunResult | None = None
    recording.writer.on_cancel = lambda: engine.halt(
        Status.CANCELLED, "cancelled from another process (cancel)"
    )
    with held_signals():
        try:
            with progress if isinstance(progress, LiveProgress) else contextlib.nullcontext():
                result = run_sync(run_with_signals(engine, inputs))
        finally:
            recording.close(result)
        return _finish(result, recording, args, engine, console)


def _finish(
    result: RunResult,
    recording: Recording,
    args: argparse.Namespace,
    engine: Engine,
    console: Console,
) -> int:
    """Print the result, write the summary, return the exit code."""
    _print(result, console)
    unkeyed = engine.caller.unkeyed
    if unkeyed:
        path, why = unkeyed[0]
        whose = "its request has" if len(unkeyed) == 1 else "their requests have"
        console.print(
            f"{plural(len(unkeyed), 'model call')} ran without the memo, as {whose} no key "
            f"(first: {path}: {why})",
            markup=False,
        )
    summary = _write_summary(result, report_dir(args), recording.served, recording.overlay)
    console.print(f"run {recording.run_id}; summary written to {summary}", markup=False)
    return exits.of_run(result.status, result.passed)


SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def held_signals() -> Iterator[None]:
    """From the run's start to its summary, SIGINT and SIGTERM do not kill the process: while
    the engine runs they cancel it (``run_with_signals``), and once it has ended they are
    ignored, so that a signal landing as the run finishes (``cancel`` sends one) cannot leave it
    without its summary. The handlers from before are restored at the end."""
    before = {sig: signal.getsignal(sig) for sig in SIGNALS}
    for sig in SIGNALS:
        signal.signal(sig, _ended_already)
    try:
        yield
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)


def _ended_already(signum: int, frame: object) -> None:
    """A stop asked for once the run has ended: there is nothing left to stop."""


async def run_with_signals(engine: Engine, inputs: dict[str, Any]) -> RunResult:
    """Run, turning SIGINT and SIGTERM into a clean cancellation of everything in flight."""
    loop = asyncio.get_running_loop()
    watchdog.clear_stop()
    for sig in SIGNALS:
        why = f"interrupted by {signal.Signals(sig).name}"
        loop.add_signal_handler(sig, engine.halt, Status.CANCELLED, why)
        # A rendering template holds the loop, so the handler above waits for it; the signal's
        # own handler (the loop is still woken) has the watchdog stop the render at once.
        signal.signal(sig, functools.partial(_stop_renders, engine, why))
    try:
        return await engine.run(inputs)
    finally:
        for sig in SIGNALS:
            loop.remove_signal_handler(sig)
            signal.signal(sig, _ended_already)
        watchdog.clear_stop()


def _stop_renders(engine: Engine, why: str, signum: int, frame: object) -> None:
    watchdog.request_stop(f"rendering was {why}", lambda: engine.halt(Status.CANCELLED, why))


def _print(result: RunResult, console: Console) -> None:
    colour = "green" if result.passed else "red"
    failures = [r for r in result.nodes if r.status not in (Status.SUCCEEDED, Status.SKIPPED)]
    # A replay's first divergence is shown; the others are counted by kind.
    failures, _, others = divergences.first_only(failures, lambda r: r.status, lambda r: r.error)
    # A provider failure is shown for its first call; the run's line counts the others.
    failures, same = outage.first_per_failure(failures, lambda r: r.provider_failure)
    if same:
        others = "; ".join(
            filter(None, [others, f"and {plural(same, 'more call')} that failed the same way"])
        )
    if failures:
        table = Table(title="nodes that did not succeed", title_justify="left")
        for column in ("node", "kind", "status", "why"):
            table.add_column(column)
        for node in failures[:20]:
            status = node.status.value + (", tolerated" if node.tolerated else "")
            table.add_row(escape(node.path), node.kind, status, escape(node.error or ""))
        console.print(table)
        if others is not None:
            console.print(others, markup=False)
    if result.tests:
        table = Table(title="tests", title_justify="left")
        table.add_column("test")
        table.add_column("result")
        for test in result.tests:
            message = test.message or ""
            if test.passed:
                mark = "[green]passed[/]"
            elif result.status is Status.PROVIDER_FAILED:
                mark = "[yellow]not evaluated[/]: the provider failed"
            elif result.status is not Status.SUCCEEDED:  # it ended before its tests: say why
                mark = f"[yellow]{escape(message)}[/]"
            else:
                mark = f"[red]failed[/] {escape(message)}"
            table.add_row(escape(test.name), mark)
        console.print(table)
    spend = result.spend
    tested = [test.passed for test in result.tests]
    reason = result.reason or tests_note(tested)
    tolerated = sum(1 for node in result.nodes if node.tolerated)
    went_on = f", {plural(tolerated, 'tolerated failure')}" if tolerated else ""
    console.print(
        f"[{colour}]{result.workflow}: {summary_status(result.status.value, tested)}[/] "
        f"({plural(len(result.nodes), 'node')}{went_on}, {plural(spend.calls, 'model call')}, "
        f"{plural(spend.tokens, 'token')}, "
        f"{cost(spend.cost_usd)}, {duration(result.duration_s)})"
        + (f" — {escape(reason)}" if reason else "")
    )


def summary_json(
    result: RunResult,
    served: dict[str, Any] | None = None,
    overlay: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The run summary as JSON; ``served``: the run's provider map, for who served each role;
    ``overlay``: the lessons the run applied, as recorded."""
    return {
        "workflow": result.workflow,
        "workflow_hash": result.workflow_hash,
        "status": result.status.value,
        "passed": result.passed,
        "reason": result.reason,
        "duration_s": round(result.duration_s, 3),
        "spend": {
            "calls": result.spend.calls,
            "prompt_tokens": result.spend.prompt_tokens,
            "completion_tokens": result.spend.completion_tokens,
            "cached_prompt_tokens": result.spend.cached_prompt_tokens,
            "cost_usd": result.spend.cost_usd,
        },
        "tests": [{"name": t.name, "passed": t.passed, "message": t.message} for t in result.tests],
        "nodes": [
            {
                "path": n.path,
                "id": n.node_id,
                "kind": n.kind,
                # A StrEnum's str() is its value, a quarter of the cost of .value per node.
                "status": str(n.status),
                "error": n.error,
                "attempts": n.attempts,
                "duration_s": round(n.duration_s, 4),
                "tokens": n.spend.tokens,
                "cost_usd": n.spend.cost_usd,
                "decision": n.decision,
                "tolerated": n.tolerated,
            }
            for n in result.nodes
        ],
        "tolerated": [
            {"path": n.path, "kind": n.kind, "status": n.status.value, "error": n.error}
            for n in result.nodes
            if n.tolerated
        ],
        "output": result.output,
        "provider_failures": [
            {"failure": failure, "calls": calls}
            for failure, calls in outage.tally(n.provider_failure for n in result.nodes)
        ],
        "roles": model.served_roles(served or {}),
        "all_mock": (served or {}).get("all_mock"),
        "overlay": model.overlay_summary(overlay),
    }


def summary_bytes(summary: dict[str, Any]) -> bytes:
    """The summary's file: JSON indented by two spaces with sorted keys, in UTF-8, written by
    orjson in one piece (about ten times faster than the standard library's ``json.dump``);
    what orjson refuses (integers beyond 64 bits, text that is not Unicode) by the standard
    library, in the same form with non-ASCII characters escaped."""
    try:
        return orjson.dumps(summary, option=_SUMMARY_OPTIONS, default=str)
    except orjson.JSONEncodeError:
        return json.dumps(summary, indent=2, sort_keys=True, default=str).encode("ascii")


_SUMMARY_OPTIONS = orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS


def _write_summary(
    result: RunResult,
    report_dir: Path,
    served: dict[str, Any],
    overlay: dict[str, Any] | None = None,
) -> Path:
    """Write the summary atomically, so a crash never leaves half a file."""
    target = report_dir / f"{result.workflow}.summary.json"
    try:
        report_dir.mkdir(parents=True, exist_ok=True)
        data = summary_bytes(summary_json(result, served, overlay))
        with tempfile.NamedTemporaryFile(
            "wb", dir=report_dir, delete=False, suffix=".tmp"
        ) as handle:
            handle.write(data)
        os.replace(handle.name, target)
    except OSError as exc:
        raise UsageError(f"cannot write the run summary to {report_dir}: {exc.strerror}") from exc
    return target
