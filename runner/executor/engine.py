"""The asyncio executor: runs a compiled workflow node by node.

Dataflow without barriers: every container awaits only its own children, so a slow branch never
holds back an unrelated one. Bounds are semaphores (calls and commands; children of fan-outs),
strict by construction. Every node ends with exactly one terminal status, the first signal
winning; a budget stop or an interrupt cancels what is in flight and waits for it to stop.
The decisions themselves (winners, frontiers, statuses, budgets, rendering) are pure functions
from ``runner.selection``, ``runner.status``, ``runner.budget`` and ``runner.render``.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections import ChainMap
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from pathlib import Path
from typing import Any, Protocol, TypeVar

from runner import ir, order, watchdog
from runner.budget import BudgetExceeded, Ledger
from runner.canonical import canonical_json
from runner.config import Config
from runner.errors import RunnerError
from runner.executor import kinds, redaction
from runner.executor.calls import Caller, RetryPolicy
from runner.executor.commands import CommandResult, run_command, withheld_variables
from runner.executor.frames import Frame
from runner.executor.recording import Answers, Journal, Memo
from runner.executor.results import (
    NodeFailed,
    NodeResult,
    RunResult,
    Spend,
    TestResult,
    failure_marker,
)
from runner.gcpolicy import bulk
from runner.keys import command_key
from runner.providers import outage
from runner.providers.base import Provider, ProviderError
from runner.render import OutputError, RenderError, evaluate, unmet
from runner.status import Outcome, Status, run_status, tolerable


class Observer(Protocol):
    """Follows a run as it goes (the live view, plain progress lines)."""

    def started(self, path: str, node: ir.Node) -> None:
        """A node (or copy) started."""

    def finished(self, result: NodeResult) -> None:
        """A node (or copy) ended."""


_NOTHING = Spend()
T = TypeVar("T")


class Engine:
    """Runs one workflow once."""

    def __init__(
        self,
        workflow: ir.Workflow,
        *,
        config: Config,
        providers: Mapping[str, Provider],
        workspace: Path,
        observer: Observer | None = None,
        retry_policy: RetryPolicy | None = None,
        seed: int = 0,
        memo: Memo | None = None,
        journal: Journal | None = None,
        answers: Answers | None = None,
        environment: Mapping[str, str] | None = None,
        repeat: int = 0,
    ) -> None:
        self.workflow = workflow
        self.workspace = workspace
        self.observer = observer
        self.caller = Caller(
            config,
            providers,
            retry_policy or RetryPolicy(),
            random.Random(seed),
            bounded=self.bounded,
        )
        self.caller.memo = memo
        self.caller.journal = journal
        self.caller.answers = answers
        self.caller.repeat = repeat
        self.withheld = withheld_variables(config)
        """Variables commands do not inherit: credentials of the job and of providers."""
        self.journal = journal
        """Where the run is recorded; ``None``: nowhere."""
        self.environment = dict(environment) if environment is not None else declared_env(workflow)
        """The declared environment entries' values (a replay's are the recorded ones)."""
        self.redactor = redaction.run_redactor(self.withheld, self.environment)
        """The run's secrets, taken out of command results, replies and errors."""
        self.caller.redactor = self.redactor
        self.answers = answers
        """A recorded run answering calls and commands first (replay, resume)."""
        self.spans = order.spans(workflow.steps)
        """Every node's place in the logical order of events, by ``id(node)``."""
        self.results: list[NodeResult] = []
        self.stop = Outcome()
        self.total = 0
        self._root: asyncio.Task[Any] | None = None
        self.worktrees: Any = None
        self._plain: set[int] = set()
        """Ids of the nodes that change nothing in the frame they run in."""

    # -- the run ------------------------------------------------------------------------------

    async def run(self, inputs: Mapping[str, Any]) -> RunResult:
        """Run the workflow with typed ``inputs``; never raises for a workflow failure."""
        started = time.monotonic()
        workflow = self.workflow
        concurrency = workflow.concurrency or ir.Concurrency()
        limits = (asyncio.Semaphore(concurrency.leaves),) if concurrency.leaves else ()
        budget = workflow.budget or ir.Budget()
        frame = Frame(
            outputs=ChainMap(),
            inputs=inputs,
            env=self.environment,
            variables={},
            leaf_limits=limits,
            slots=concurrency.leaves,
            branches=concurrency.branches,
            # With no limit at all there is nothing to hold calls against.
            ledger=Ledger("the run", budget) if budget != ir.Budget() else None,
            commands=(workflow.permissions.commands or ()) if workflow.permissions else (),
            cwd=self.workspace,
        )
        output: Any = None
        self._root = asyncio.current_task()
        ran_out = f"budget.wall_s {budget.wall_s or 0:g} s ran out"
        try:
            # A template holds the event loop while it renders, so the timeout cannot stop it;
            # the watchdog does, and halts the run as the timeout would have.
            with watchdog.limit(
                budget.wall_s,
                f"rendering ran past budget.wall_s {budget.wall_s or 0:g} s",
                lambda: self.halt(Status.BUDGET_EXCEEDED, ran_out),
            ):
                async with asyncio.timeout(budget.wall_s):
                    output = await self.execute(workflow.steps, frame)
        except NodeFailed:
            pass
        except TimeoutError:
            self.stop.settle(Status.BUDGET_EXCEEDED, ran_out)
        except asyncio.CancelledError:
            if not self.stop.status.terminal:
                raise  # cancelled from outside: let the caller see it
            asyncio.current_task().uncancel()  # type: ignore[union-attr]
        finally:
            if self.worktrees is not None:
                await self.worktrees.close()
        # Nodes cancelled because a sibling failed under fail_fast, or a parent timed out, are
        # not the run's own signal: the failure that caused it is (SPEC 3, first signal wins).
        # Tolerated failures (allow_fail, min_successes) are gone on without: not the run's.
        counted = [r for r in self.results if r.status is not Status.CANCELLED and not r.tolerated]
        status = (
            self.stop.status if self.stop.status.terminal else run_status(r.status for r in counted)
        )
        reason = self.stop.reason or next(
            (r.error for r in counted if r.status is status and r.error), None
        )
        if status is Status.PROVIDER_FAILED and not self.stop.reason:
            # One sentence per cause with its count, not the same error once per call.
            reason = (
                outage.summary(r.provider_failure for r in self.results if r.provider_failure)
                or reason
            )
        tests = (
            self.check_tests(frame)
            if status is Status.SUCCEEDED
            else tuple(
                TestResult(
                    name=test.name,
                    passed=False,
                    message=f"not evaluated: the run ended {status.value}",
                )
                for test in self.workflow.tests or ()
            )
        )
        spend = Spend.total(r.spend for r in self.results)
        return RunResult(
            workflow=workflow.name,
            workflow_hash=workflow.hash,
            status=status,
            reason=None if status is Status.SUCCEEDED else reason,
            output=output,
            outputs=dict(frame.outputs),
            nodes=tuple(self.results),
            tests=tests,
            spend=spend,
            duration_s=time.monotonic() - started,
            total_nodes=max(self.total, len(self.results)),
        )

    def halt(self, status: Status, reason: str) -> None:
        """Stop the whole run: the first stop signal decides its status.

        Everything in flight is cancelled through the root task; a stop raised in the root task
        itself unwinds by its own exception instead, as nothing runs beside it then.
        """
        root = self._root
        decided = self.stop.settle(status, reason)
        if decided and root is not None and not root.done() and _current_task() is not root:
            root.cancel()

    async def worktree_for(self, name: str) -> Path:
        """A fresh git worktree of the workspace for one isolated child."""
        if self.worktrees is None:
            from runner.executor.worktrees import Worktrees

            self.worktrees = Worktrees(self.workspace)
        path: Path = await self.worktrees.create(name)
        return path

    async def release_worktree(self, path: Path) -> None:
        """Remove a child's worktree once it has finished."""
        if self.worktrees is not None:
            await self.worktrees.remove(path)

    def check_tests(self, frame: Frame) -> tuple[TestResult, ...]:
        """Evaluate the workflow's tests against the final outputs."""
        results = []
        for test in self.workflow.tests or ():
            try:
                value = evaluate(test.expect, frame.scope())
            except RenderError as exc:
                message = redaction.text(str(exc), self.redactor)
                results.append(TestResult(name=test.name, passed=False, message=message))
                continue
            redact = self.redactor.redact if self.redactor else str
            message = None if value else unmet(test.expect, value, frame.scope(), redact)
            message = redaction.text(message, self.redactor)
            results.append(TestResult(name=test.name, passed=bool(value), message=message))
        return tuple(results)

    # -- one node -----------------------------------------------------------------------------

    async def execute(self, node: ir.Node, frame: Frame) -> Any:
        """Run one node with its retries and timeout; record and return its output."""
        frame = self.enter(node, frame)
        path = frame.path(node.id)
        self.total += 1
        if self.observer is not None:
            self.observer.started(path, node)
        if self.journal is not None:
            self.journal.node_started(path, order.start(frame.trail, self.spans[id(node)]), node)
        started = time.monotonic()
        attempts = node.retry.attempts if node.retry else 1
        spent = _NOTHING
        failures: list[str] = []  # why the attempts before the last failed
        for attempt in range(1, attempts + 1):
            try:
                if node.timeout_s is None:  # most nodes: spare the timeout machinery
                    output, spend, decision = await kinds.run(self, node, frame)
                else:
                    async with asyncio.timeout(node.timeout_s):
                        with watchdog.limit(
                            node.timeout_s, f"rendering ran past timeout_s {node.timeout_s:g} s"
                        ):
                            output, spend, decision = await kinds.run(self, node, frame)
                spent = spend if spent is _NOTHING else spent + spend
                if node.kind == "reduce":  # the one output an expression computes; others are JSON
                    _require_json(node, output)
                    output = redaction.value(output, self.redactor)
                if self.answers is not None and self.answers.strict:
                    differs = self.answers.check(path, output, decision)
                    if differs is not None:
                        raise NodeFailed(Status.REPLAY_DIVERGED, differs)
                self.finish(
                    node,
                    frame,
                    Status.SUCCEEDED,
                    started,
                    attempts=attempt,
                    spend=spent,
                    output=output,
                    decision=decision,
                    failures=failures,
                    path=path,
                )
                frame.record(node.id, output)
                return output
            except (NodeFailed, TimeoutError, RenderError, OutputError, RunnerError) as exc:
                status, reason, provider_failure = _failure(node, exc)
                if isinstance(exc, kinds.ReplyRejected | kinds.RepeatedCall):  # a call was made
                    spent = exc.spend if spent is _NOTHING else spent + exc.spend
                if status is Status.FAILED and attempt < attempts:
                    failures.append(reason)
                    backoff = node.retry.backoff_s if node.retry else None
                    await asyncio.sleep((backoff or 0.0) * 2 ** (attempt - 1))
                    continue
                cause = exc.cause if isinstance(exc, NodeFailed) else reason
                allowed = node.kind == "leaf" and bool(node.allow_fail)
                tolerated = (allowed or frame.tolerant) and tolerable(status)
                self.finish(
                    node,
                    frame,
                    status,
                    started,
                    attempts=attempt,
                    spend=spent,
                    error=reason,
                    failures=failures,
                    provider_failure=provider_failure,
                    tolerated=tolerated,
                )
                if allowed and tolerated:  # the leaf's own allow_fail: it goes on as a marker
                    marker = failure_marker(redaction.text(cause, self.redactor) or "")
                    frame.record(node.id, marker)
                    return marker
                failed = f"{node.kind} {node.id!r} {status.value}"
                raise NodeFailed(status, failed, cause) from exc
            except BudgetExceeded as exc:
                self.finish(
                    node,
                    frame,
                    Status.BUDGET_EXCEEDED,
                    started,
                    attempts=attempt,
                    spend=spent,
                    error=str(exc),
                )
                self.halt(Status.BUDGET_EXCEEDED, str(exc))
                raise NodeFailed(Status.BUDGET_EXCEEDED, str(exc)) from exc
            except asyncio.CancelledError:
                self.finish(
                    node,
                    frame,
                    Status.CANCELLED,
                    started,
                    attempts=attempt,
                    spend=spent,
                    error=self.stop.reason or "cancelled",
                )
                raise
        raise AssertionError("unreachable: the last attempt returns or raises")

    def enter(self, node: ir.Node, frame: Frame) -> Frame:
        """The frame a node runs in: its own limits, budget and permissions applied."""
        if id(node) in self._plain:
            return frame
        changes: dict[str, Any] = {}
        concurrency = getattr(node, "concurrency", None)
        if concurrency is not None and concurrency.leaves is not None:
            changes["leaf_limits"] = (asyncio.Semaphore(concurrency.leaves), *frame.leaf_limits)
            changes["slots"] = min(concurrency.leaves, frame.slots or concurrency.leaves)
        if concurrency is not None and concurrency.branches is not None:
            changes["branches"] = concurrency.branches
        if node.budget is not None:
            changes["ledger"] = Ledger(f"{node.kind} {node.id!r}", node.budget, frame.ledger)
        if node.permissions is not None and node.permissions.commands is not None:
            changes["commands"] = node.permissions.commands
        if node.memo is not None:
            changes["memo"] = node.memo
        if not changes:
            self._plain.add(id(node))  # the IR outlives the run, so its ids stay its own
            return frame
        return frame.derive(**changes)

    def finish(
        self,
        node: ir.Node,
        frame: Frame,
        status: Status,
        started: float,
        *,
        attempts: int = 1,
        spend: Spend = _NOTHING,
        output: Any = None,
        error: str | None = None,
        decision: Any = None,
        failures: list[str] | None = None,
        provider_failure: str | None = None,
        tolerated: bool = False,
        path: str | None = None,
    ) -> None:
        """Record how a node ended (``failures``: why its attempts before the last failed;
        ``path``: the node's path in ``frame``, when known already)."""
        redactor = self.redactor
        result = NodeResult(
            path=frame.path(node.id) if path is None else path,
            node_id=node.id,
            kind=node.kind,
            status=status,
            output=output,
            error=None if error is None else redaction.text(error, redactor),
            attempts=attempts,
            failures=tuple(redaction.text(f, redactor) or "" for f in failures) if failures else (),
            duration_s=time.monotonic() - started,
            spend=spend,
            decision=decision,
            position="" if self.journal is None else order.end(frame.trail, self.spans[id(node)]),
            provider_failure=(
                None if provider_failure is None else redaction.text(provider_failure, redactor)
            ),
            tolerated=tolerated,
        )
        self.results.append(result)
        if self.observer is not None:
            self.observer.finished(result)
        if self.journal is not None:
            self.journal.node_finished(result)

    def fail_unstarted(self, node: ir.Node, frame: Frame, reason: str) -> NodeFailed:
        """Record a node that could not even start (no worktree for it); return its failure."""
        self.total += 1
        self.finish(node, frame, Status.FAILED, time.monotonic(), error=reason)
        return NodeFailed(Status.FAILED, reason)

    def skip(self, node: ir.Node, frame: Frame, reason: str) -> None:
        """Record a node that will not run (a cond arm not taken, steps after a failure)."""
        self.total += 1
        self.finish(node, frame, Status.SKIPPED, time.monotonic(), attempts=0, error=reason)

    def decided(self, node: ir.Node, frame: Frame, decision: Any) -> None:
        """In a replay, stop a node whose control decision differs from the recorded one
        before anything follows from it."""
        if self.answers is not None and self.answers.strict:
            differs = self.answers.decided(frame.path(node.id), decision)
            if differs is not None:
                raise NodeFailed(Status.REPLAY_DIVERGED, differs)

    def trail(self, frame: Frame, node: ir.Node, number: int) -> str:
        """The trail of repetition ``number`` of ``node`` (empty when the run is not recorded:
        only the journal reads trails)."""
        if self.journal is None:
            return ""
        return order.repeat(frame.trail, self.spans[id(node)], number)

    def call_position(self, frame: Frame, node: ir.Node, caller: str) -> str:
        """Where a call or command of ``node`` sits in the logical order, when recorded."""
        if self.journal is None:
            return ""
        return order.call(frame.trail, self.spans[id(node)], caller)

    async def command(
        self,
        node: ir.Command,
        frame: Frame,
        argv: list[str],
        *,
        cwd: Path,
        env: dict[str, str],
        refused: str | None = None,
    ) -> CommandResult:
        """Run a command node's argv, or answer it from a recorded run; record the result.
        ``refused``: why the permissions do not let it run (it fails unless answered)."""
        path = frame.path(node.id)
        position = self.call_position(frame, node, ir.instance_id(node.id, frame.copies))
        # The working directory as the workflow sees it: relative to the frame's checkout
        # (the workspace, or an isolated child's worktree, whose folder name is not the
        # workflow's business), so that a replay finds the command wherever it runs.
        tree = "worktree" if frame.cwd != self.workspace else "workspace"
        where = cwd.relative_to(frame.cwd) if cwd.is_relative_to(frame.cwd) else cwd
        key = command_key(argv, f"{tree}:{where.as_posix()}", env)
        if self.answers is not None:
            recorded = self.answers.command(path, key)
            if recorded is not None:
                if self.journal is not None:
                    self.journal.command(
                        path=path, position=position, key=key, result=recorded, source="trace"
                    )
                return recorded
            if self.answers.strict:
                raise NodeFailed(
                    Status.REPLAY_DIVERGED, self.answers.missed_command(path, tuple(argv))
                )
        if refused is not None:
            raise NodeFailed(Status.FAILED, refused)
        await self.settle()  # what the command may act on is safe before it runs
        withheld = self.withheld
        result: CommandResult = await self.bounded(
            frame,
            lambda: run_command(
                argv, cwd=cwd, env=env, timeout_s=node.timeout_s, withheld=withheld
            ),
        )
        # Before anything reads it: the next prompt, the trace, and a replay all see this text.
        result = redaction.command_result(result, self.redactor)
        if self.journal is not None:
            self.journal.command(
                path=path, position=position, key=key, result=result, source="live"
            )
            await self.settle()
        return result

    async def settle(self) -> None:
        """Make the paid live answers recorded so far safe from a crash, before anything reads
        them (the mock's answers, memo hits and a trace's answers cost nothing to redo, so
        nothing waits for them).

        Called where outputs cross into what follows: after each step of a sequence, after a
        fan-out's children and a loop's iteration, around commands. Nothing reads a child of a
        fan-out before the fan-out ends, so a wide fan-out commits its answers in large groups
        rather than one leaf at a time; a leaf's end and its call are committed together, so
        the trace never holds a finished node without its answer.
        """
        if self.journal is not None and self.journal.unsaved:
            await self.journal.durable()

    async def bounded(self, frame: Frame, work: Callable[[], Awaitable[Any]]) -> Any:
        """Run ``work`` holding every call/command slot of the frame (innermost first)."""
        limits = frame.leaf_limits
        if len(limits) == 1:  # the usual case: the run's bound only
            async with limits[0]:
                return await work()
        held: list[asyncio.Semaphore] = []
        try:
            for semaphore in frame.leaf_limits:
                await semaphore.acquire()
                held.append(semaphore)
            return await work()
        finally:
            for semaphore in held:
                semaphore.release()


def declared_env(workflow: ir.Workflow) -> dict[str, str]:
    """The values of the environment entries ``workflow`` declares, from this process."""
    return {name: os.environ.get(name, "") for name in workflow.env or ()}


def run_sync(work: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` for a run, with the garbage collector set for bulk work
    (``runner.gcpolicy``). The result is handed back outside the main task: when
    ``asyncio.run`` restores the SIGINT handler, CPython 3.11 formats the repr of the handler,
    which holds the main task and so its result (tens of milliseconds for a 10,000-node run).
    """
    box: list[T] = []

    async def main() -> None:
        box.append(await work)

    with bulk():
        asyncio.run(main())
    return box[0]


def _current_task() -> asyncio.Task[Any] | None:
    try:
        return asyncio.current_task()
    except RuntimeError:  # called from a signal handler outside a running task
        return None


def _require_json(node: ir.Node, output: Any) -> None:
    """Outputs must be JSON, so that traces can hold them and replays compare them."""
    try:
        canonical_json(output)
    except (TypeError, ValueError) as exc:
        raise NodeFailed(Status.FAILED, f"the output is not JSON: {exc}") from exc


def _failure(node: ir.Node, exc: BaseException) -> tuple[Status, str, str | None]:
    """The status, reason and provider failure (if it is one) of a node that raised ``exc``."""
    if isinstance(exc, NodeFailed):
        return exc.status, exc.reason, exc.provider_failure
    if isinstance(exc, TimeoutError):
        return Status.FAILED, f"timed out after {node.timeout_s:g} s", None
    if isinstance(exc, ProviderError) and exc.outage is not None:
        return Status.PROVIDER_FAILED, str(exc), exc.outage.sentence()
    return Status.FAILED, str(exc), None
