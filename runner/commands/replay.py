"""``branchleaf replay RUN [WORKFLOW]``: run a workflow again with every model call and command
answered from a recorded run's trace; the first divergence stops its node as replay_diverged."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from typing import Any

from rich.console import Console

from runner import ir
from runner.commands.run import rerun
from runner.compiler.build import build_workflow, to_document
from runner.compiler.pipeline import compile_file
from runner.config import from_data, load_config
from runner.overlay.use import reapply
from runner.providers.base import Provider
from runner.providers.recorded import RecordedProvider
from runner.providers.registry import build_providers
from runner.reports.model import overlay_line
from runner.store import runs
from runner.store.db import opened, state_dir
from runner.store.recording import Recording
from runner.store.trace import RecordedRun


def run(
    args: argparse.Namespace,
    console: Console,
    started: Callable[[Recording], None] | None = None,
) -> int:
    """Replay a run; 0 when it replays without divergence and its tests pass, 1 otherwise;
    ``started`` is told the replay's recording once it exists."""
    directory = state_dir(args.state)
    with opened(directory, create=False) as conn:
        record = runs.find(conn, args.run)
        answers = RecordedRun.read(directory, conn, record.id, strict=not args.allow_live)
    if args.workflow:
        # The file as it is now, with the lessons the run applied applied again: a replay
        # applies the run's lessons, whatever the overlay branch holds by now.
        workflow = compile_file(args.workflow)
        if record.overlay:
            workflow = reapply(workflow, record.overlay)
    else:
        workflow = build_workflow(record.document, source=record.source or "")  # as run
    config = from_data(record.config, record.config.get("path"))
    providers: dict[str, Provider]
    if args.allow_live:
        # Calls the trace does not answer are made for real: by the providers configured now.
        config = load_config(args.config)
        providers = build_providers(
            config,
            [name for name, _ in workflow.roles or ()],
            mock_script=record.providers.get("mock_script"),
        )
    else:
        providers = {
            name: RecordedProvider(name, spec.get("endpoint"))
            for name, spec in record.providers.get("providers", {}).items()
        }
    return rerun(
        record,
        workflow=workflow,
        config=config,
        providers=providers,
        answers=answers,
        mode="fork" if args.allow_live else "replay",
        args=args,
        console=console,
        started=lambda recording: _started(
            recording, console=console, record=record, workflow=workflow, args=args, then=started
        ),
    )


def _started(
    recording: Recording,
    *,
    console: Console,
    record: runs.RunRecord,
    workflow: ir.Workflow,
    args: argparse.Namespace,
    then: Callable[[Recording], None] | None,
) -> None:
    _say(console, record, workflow, args)
    if then is not None:
        then(recording)


def _say(
    console: Console, record: runs.RunRecord, workflow: ir.Workflow, args: argparse.Namespace
) -> None:
    what = "the recorded workflow"
    if workflow.hash != record.workflow_hash:
        # The ci block says how `ci` runs the workflow, not what it does: a replay answers the
        # same calls and commands whatever it holds.
        if _without_ci(to_document(workflow)) == _without_ci(record.document):
            how = "only its ci block differs from the run's"
        else:
            how = "changed since the run"
        if workflow.name != record.workflow:
            # Said, not refused: a renamed workflow may be checked against its old runs.
            how += f"; it is the workflow {workflow.name!r}, not the run's {record.workflow!r}"
        what = f"{args.workflow} ({how})"
    live = "; calls and commands it does not answer are made live" if args.allow_live else ""
    console.print(f"replaying run {record.id} with {what}{live}", markup=False)
    applied = overlay_line(record.overlay)
    if applied:
        console.print(f"the run's {applied}", markup=False)


def _without_ci(document: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in document.items() if key != "ci"}
