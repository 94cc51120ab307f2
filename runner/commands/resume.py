"""``branchleaf resume RUN``: finish a run that crashed, was killed or was cancelled. Every model
call and command it had finished is answered from its trace, so none is paid for twice; the
rest runs live. The resumed run is recorded as a new run whose parent is the old one."""

from __future__ import annotations

import argparse

from rich.console import Console

from runner.commands.run import rerun
from runner.compiler.build import build_workflow
from runner.config import from_data
from runner.errors import UsageError
from runner.providers.registry import build_providers
from runner.status import tests_note
from runner.store import runs
from runner.store.db import opened, state_dir, transaction
from runner.store.recording import Recording
from runner.store.trace import RecordedRun


def run(args: argparse.Namespace, console: Console) -> int:
    """Resume a run; the exit code is the resumed run's."""
    directory = state_dir(args.state)
    with opened(directory, create=False) as conn:
        record = runs.find(conn, args.run)
        status = runs.shown_status(record)
        if status == runs.RUNNING:
            raise UsageError(
                f"run {record.id} is still running (process {record.pid} on {record.host}): "
                f"`cancel {record.id}` stops it"
            )
        if status == "succeeded":
            note = tests_note(runs.test_results(record))
            if note is not None:  # shown as failed, for its tests: say why resuming is moot
                raise UsageError(
                    f"every node of run {record.id} succeeded ({note}): there is nothing to "
                    f"resume; `replay {record.id} WORKFLOW` checks a changed workflow against it"
                )
            raise UsageError(f"run {record.id} succeeded: there is nothing to resume")
        answers = RecordedRun.read(directory, conn, record.id, strict=False)
    workflow = build_workflow(record.document, source=record.source or "")
    config = from_data(record.config, record.config.get("path"))
    mock_script = record.providers.get("mock_script")
    providers = build_providers(
        config, [name for name, _ in workflow.roles or ()], mock_script=mock_script
    )

    def started(recording: Recording) -> None:
        with opened(directory) as conn, transaction(conn):
            conn.execute(
                "UPDATE runs SET status = ?, reason = ? WHERE id = ? AND status = ?",
                (runs.CRASHED, f"resumed as {recording.run_id}", record.id, runs.RUNNING),
            )
            conn.execute(
                "UPDATE runs SET reason = COALESCE(reason || '; ', '') || ? WHERE id = ?"
                " AND status != ?",
                (f"resumed as {recording.run_id}", record.id, runs.CRASHED),
            )
        console.print(
            f"resuming run {record.id} ({status}) as run {recording.run_id}", markup=False
        )

    return rerun(
        record,
        workflow=workflow,
        config=config,
        providers=providers,
        answers=answers,
        mode="resume",
        args=args,
        console=console,
        started=started,
    )
