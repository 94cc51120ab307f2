"""Recording one run in the state: its row in the run list, its writer, journal and memo,
opened before the run and closed after it, whatever the run's end."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from runner import ir
from runner.compiler.build import to_document
from runner.config import Config, to_data
from runner.executor.results import RunResult
from runner.providers.base import Provider
from runner.secrets import key_variables
from runner.store import runs
from runner.store.db import connect
from runner.store.journal import RunJournal
from runner.store.memo import StoreMemo
from runner.store.writer import Writer


def provider_map(
    workflow: ir.Workflow,
    config: Config,
    providers: Mapping[str, Provider],
    mock_script: str | None,
    repeat: int = 0,
) -> dict[str, Any]:
    """Which provider and model serve each of the workflow's roles, and each provider's
    endpoint; with the repeat index, when not 0: what, besides the request, its calls' keys
    cover."""
    roles = {}
    for role, _ in workflow.roles or ():
        provider, model = config.serve(role)
        roles[role] = {"provider": provider.name, "model": model.name if model else None}
    return {
        "roles": roles,
        "providers": {
            name: {"type": config.providers[name].type, "endpoint": provider.endpoint}
            for name, provider in providers.items()
        },
        "mock_script": mock_script,
        **({"all_mock": config.all_mock} if config.all_mock else {}),
        **({"repeat": repeat} if repeat else {}),
    }


class Recording:
    """The state side of one run."""

    def __init__(
        self,
        directory: Path,
        *,
        workflow: ir.Workflow,
        inputs: dict[str, Any],
        env: dict[str, str],
        config: Config,
        providers: Mapping[str, Provider],
        mock_script: str | None,
        mode: str,
        parent: str | None = None,
        argv: list[str] | None = None,
        run_id: str | None = None,
        repeat: int = 0,
        overlay: dict[str, Any] | None = None,
    ) -> None:
        self.directory = directory
        self.conn: sqlite3.Connection = connect(directory)
        self.run_id = run_id or runs.new_run_id()
        self.served = provider_map(workflow, config, providers, mock_script, repeat)
        """Which provider and model serve each role (the run's recorded provider map)."""
        runs.create(
            self.conn,
            run_id=self.run_id,
            workflow=workflow.name,
            workflow_hash=workflow.hash,
            source=workflow.source,
            document=to_document(workflow),
            inputs=inputs,
            env=runs.recorded_env(env, key_variables(config)),
            config=to_data(config),
            providers=self.served,
            mode=mode,
            parent=parent,
            argv=argv,
            overlay=overlay,
        )
        self.overlay = overlay
        """The overlay lessons the run applies, as recorded (None: none)."""
        self.writer = Writer(directory, heartbeat=self.run_id)
        self.journal = RunJournal(self.writer, self.run_id, answers_recorded=mode != "replay")
        try:
            self.memo = StoreMemo(self.conn, self.writer, self.journal)
        except BaseException:
            self.writer.close()  # its process stops with it
            raise

    def close(self, result: RunResult | None) -> None:
        """Commit everything and close the run (``None``: it ended without a result)."""
        try:
            self.journal.close()
            self.writer.close()
        finally:
            try:
                if result is None:
                    runs.finish(
                        self.conn,
                        self.run_id,
                        status="failed",
                        reason="the run stopped before it could finish",
                        output=None,
                        tests=[],
                    )
                else:
                    runs.finish(
                        self.conn,
                        self.run_id,
                        status=result.status.value,
                        reason=result.reason,
                        output=result.output,
                        tests=[
                            {"name": t.name, "passed": t.passed, "message": t.message}
                            for t in result.tests
                        ],
                    )
            finally:
                self.conn.close()
