"""StudentReplay: a candidate workflow run on evaluation cases, each case one recorded run
(mode ``learn``) in the state, with the memo on, so that a call a candidate makes the way an
earlier run made it is answered by the memo and costs nothing; and the teacher asked for
lessons the same way, as a recorded run of a one-leaf workflow.

Each run is bounded by what the whole learn run may still spend (:class:`Allowance`): its
budget is the workflow's own, lowered to what is left, and the engine reserves against it
before every call. A run that a budget, a provider or an interruption stopped says nothing of
the candidate, so it ends the learn run (:class:`Stopped`) rather than counting as a failed case.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner import exits, ir
from runner.compiler.build import build_workflow
from runner.config import Config
from runner.errors import RunnerError
from runner.executor.engine import Engine, declared_env, run_sync
from runner.executor.results import RunResult, Spend
from runner.learning.cases import CaseRun, case_inputs, score
from runner.learning.lessons import TEACHER_REPLY_SCHEMA
from runner.providers.registry import build_providers
from runner.status import Status
from runner.store.recording import Recording

MODE = "learn"
"""The mode of the runs a learn run records."""
TEACHER_NODE = "learn.teacher"
"""The node id of the call that asks the teacher for lessons (a mock script can name it)."""
TEACHER_ROLE = ir.DEFAULT_TEACHER_ROLE


class Stopped(RunnerError):
    """A run of the learn run ended in a way that says nothing of the candidate (a budget, a
    provider failure, an interruption); its exit code says which."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True, slots=True, kw_only=True)
class Allowance:
    """What the learn run may still spend; ``None`` is no bound."""

    calls: int | None = None
    """Model calls launched."""
    tokens: int | None = None
    """Prompt plus completion tokens."""
    cost_usd: float | None = None
    """Dollars."""

    def after(self, spend: Spend) -> Allowance:
        """What is left once ``spend`` is paid."""
        return Allowance(
            calls=None if self.calls is None else self.calls - spend.calls,
            tokens=None if self.tokens is None else self.tokens - spend.tokens,
            cost_usd=None if self.cost_usd is None else self.cost_usd - spend.cost_usd,
        )

    def spent(self) -> str | None:
        """Which bound is used up, or None while every one has some left."""
        if self.calls is not None and self.calls <= 0:
            return "its model calls"
        if self.tokens is not None and self.tokens <= 0:
            return "its tokens"
        if self.cost_usd is not None and self.cost_usd <= 0:
            return "its dollars"
        return None

    def bound(self, budget: ir.Budget | None) -> ir.Budget | None:
        """``budget`` lowered to what is left."""
        if self.calls is None and self.tokens is None and self.cost_usd is None:
            return budget
        own = budget or ir.Budget()
        return dataclasses.replace(
            own,
            leaves=_least(own.leaves, self.calls),
            tokens=_least(own.tokens, self.tokens),
            cost_usd=_least(own.cost_usd, self.cost_usd),
        )


def _least(a: Any, b: Any) -> Any:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


class Student:
    """Runs workflows on cases as recorded runs in one state, within one allowance."""

    def __init__(
        self,
        *,
        state: Path,
        config: Config,
        mock_script: str | None,
        allowance: Allowance,
        argv: list[str] | None = None,
    ) -> None:
        self.state = state
        self.config = config
        self.mock_script = mock_script
        self.allowance = allowance
        self.argv = argv
        self.spend = Spend()
        """Everything the learn run's runs cost so far."""

    def run_case(
        self, workflow: ir.Workflow, case: ir.Case, *, overlay: dict[str, Any] | None
    ) -> CaseRun:
        """``case`` run by ``workflow`` (a candidate's: the lessons applied to it)."""
        inputs = case_inputs(workflow, case)
        result, run_id = self._run(
            workflow, inputs, overlay=overlay, what=f"case {case.name!r} of {workflow.name!r}"
        )
        scored = score(
            workflow,
            result.outputs,
            result.tests,
            inputs=inputs,
            env=declared_env(workflow),
            run_succeeded=result.status == Status.SUCCEEDED,
        )
        return CaseRun(
            case=case.name, run_id=run_id, score=scored, spend=result.spend, result=result
        )

    def ask_teacher(self, workflow: ir.Workflow, brief: str) -> tuple[Any, str, RunResult]:
        """The teacher's reply to ``brief`` (its parsed JSON, of the lessons reply shape), the
        run that asked, and its result; a run whose reply did not fit is returned as it is."""
        asking = teacher_workflow(workflow)
        result, run_id = self._run(
            asking, {"brief": brief}, overlay=None, what="the teacher's call"
        )
        return result.output, run_id, result

    def _run(
        self,
        workflow: ir.Workflow,
        inputs: dict[str, Any],
        *,
        overlay: dict[str, Any] | None,
        what: str,
    ) -> tuple[RunResult, str]:
        from runner.commands.run import held_signals, run_with_signals

        left = self.allowance.after(self.spend)
        short = left.spent()
        if short is not None:
            raise Stopped(
                f"the learn budget is spent ({short}) before {what}: nothing more is run; "
                "raise it with --max-calls, --max-tokens or --max-cost",
                exits.FAILED,
            )
        bounded = dataclasses.replace(workflow, budget=left.bound(workflow.budget))
        roles = [name for name, _ in bounded.roles or ()]
        providers = build_providers(self.config, roles, mock_script=self.mock_script)
        recording = Recording(
            self.state,
            workflow=bounded,
            inputs=inputs,
            env=declared_env(bounded),
            config=self.config,
            providers=providers,
            mock_script=self.mock_script,
            mode=MODE,
            argv=self.argv,
            overlay=overlay,
        )
        engine = Engine(
            bounded,
            config=self.config,
            providers=providers,
            workspace=Path.cwd(),
            memo=recording.memo,
            journal=recording.journal,
        )
        result: RunResult | None = None
        with held_signals():
            try:
                result = run_sync(run_with_signals(engine, inputs))
            finally:
                recording.close(result)
        self.spend = self.spend + result.spend
        run_id = recording.run_id
        if result.status == Status.CANCELLED:
            raise Stopped(f"interrupted during {what} (run {run_id})", exits.INTERRUPTED)
        if result.status == Status.BUDGET_EXCEEDED:
            raise Stopped(
                f"the learn budget ran out during {what} (run {run_id}): {result.reason}; "
                "its results would say nothing of the candidate, so nothing more is run",
                exits.FAILED,
            )
        if result.status == Status.PROVIDER_FAILED:
            raise Stopped(
                f"a provider failed during {what} (run {run_id}): {result.reason}; a provider "
                "outage says nothing of a lesson, so nothing more is run: try again later",
                exits.PROVIDER_FAILED,
            )
        return result, run_id


def teacher_workflow(workflow: ir.Workflow) -> ir.Workflow:
    """The one-leaf workflow that asks the ``teacher`` role for lessons about ``workflow``,
    the brief its input, its reply of the strict lessons shape."""
    role = dict(workflow.roles or ()).get(TEACHER_ROLE)
    document: dict[str, Any] = {
        "version": 1,
        "name": f"{workflow.name}.learn",
        "description": f"Asks the teacher for lessons about the workflow {workflow.name!r}.",
        "inputs": {"brief": {"type": "string", "description": "What the teacher is shown."}},
        "roles": {
            TEACHER_ROLE: {"description": role.description}
            if role is not None and role.description
            else {"description": "Turns run evidence into lessons."}
        },
        "steps": {
            "kind": "leaf",
            "id": TEACHER_NODE,
            "role": TEACHER_ROLE,
            "prompt": "{{ inputs.brief }}",
            "output": TEACHER_REPLY_SCHEMA,
            "temperature": 0,
        },
    }
    return build_workflow(document, source=workflow.source)
