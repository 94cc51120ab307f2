"""What each node kind does when it runs. Each returns (output, own model spend, decision)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Coroutine, Sequence
from typing import TYPE_CHECKING, Any

from runner import ir
from runner.canonical import canonical_json
from runner.errors import RunnerError
from runner.executor import redaction
from runner.executor.calls import chat
from runner.executor.frames import Frame
from runner.executor.results import NodeFailed, Spend, failure_marker
from runner.learning.lessons import MAX_LESSONS, TEACHER_REPLY_SCHEMA
from runner.providers.base import ChatMessage
from runner.render import OutputError, evaluate, parse_reply, render
from runner.schemas import compiled
from runner.status import Status, run_status, tolerable

if TYPE_CHECKING:
    from runner.executor.engine import Engine

Ran = tuple[Any, Spend, Any]

LESSONS_ASKED = (
    "You review the results below of an automated workflow run and propose lessons that would "
    'make later runs better. Reply with JSON only: {{"lessons": [...]}}, at most '
    f"{MAX_LESSONS} lessons, each an object with exactly these fields:\n"
    "- id: a new name, 1 to 64 of a-z, 0-9, '_', '.' and '-', starting with a letter or digit;\n"
    "- kind, target and content, one of:\n"
    '  note: target "role:<role name>" (every leaf the role plays) or "node:<leaf id>"; '
    'content {{"text": ...}}, a system message added to those leaves;\n'
    '  prompt_patch: target "node:<leaf id>" or "node:<tournament id>" (its judge\'s prompt); '
    'content {{"op": "append" or "prepend", "text": ...}} (added after or before the prompt, '
    'a blank line between) or {{"op": "replace", "find": ..., "text": ...}} (every "find" in '
    "the prompt's template replaced by the text);\n"
    '  example: target "role:<role name>" or "node:<leaf id>"; content {{"user": ..., '
    '"assistant": ...}}, an exchange placed before the final user message;\n'
    '  parameter: target "node:<leaf id>" with content {{"name": "temperature", "value": 0 to '
    '2}} or {{"name": "max_tokens", "value": 1 or more}}, or target "node:<tournament or '
    'pareto id>" with {{"name": "count", "value": 2 or more}};\n'
    '  test: target "workflow"; content {{"name": a new test name, "expect": a Jinja '
    'expression over inputs and outputs that must hold after the run, "description": '
    "optional}};\n"
    "- rationale: why the lesson helps;\n"
    '- evidence: at least one {{"run": the run id ("current" for this run), "node": a node '
    'id below, "event": optional event kind}} the lesson rests on.\n'
    "Texts are given to the model exactly as written."
)
"""How a lesson is written, as the teacher is told (a format string: braces doubled)."""
TEACHER_BRIEF = LESSONS_ASKED + "\n\nResults by node id:\n{results}"
"""What the teacher is asked; the reply's shape is ``TEACHER_REPLY_SCHEMA``."""


def run(engine: Engine, node: ir.Node, frame: Frame) -> Coroutine[Any, Any, Ran]:
    """The work of ``node`` in ``frame``, by its kind, for the caller to await (handed back
    rather than awaited here: one coroutine fewer per node)."""
    match node.kind:
        case "leaf":
            return _leaf(engine, node, frame)
        case "command":
            return _command(engine, node, frame)
        case "sequence":
            return _sequence(engine, node, frame)
        case "branch":
            return _branch(engine, node, frame)
        case "expand":
            return _expand(engine, node, frame)
        case "cond":
            return _cond(engine, node, frame)
        case "loop_until":
            return _loop(engine, node, frame)
        case "reduce":
            return _reduce(engine, node, frame)
        case "tournament" | "pareto":
            from runner.executor.contests import contest

            return contest(engine, node, frame)
        case "teacher_review":
            return _teacher(engine, node, frame)
    raise AssertionError(f"unknown node kind {node.kind}")


async def _branch(engine: Engine, node: ir.Branch, frame: Frame) -> Ran:
    tolerant = node.min_successes is not None
    jobs = [(child, frame.layer(tolerant=tolerant or frame.tolerant)) for child in node.children]
    outputs = await fan_out(
        engine, node, frame, jobs, expose=True, min_successes=node.min_successes
    )
    return {c.id: out for c, out in zip(node.children, outputs, strict=True)}, Spend(), None


async def model_call(
    engine: Engine,
    frame: Frame,
    *,
    caller: ir.Node,
    node_id: str,
    role: str,
    messages: tuple[ChatMessage, ...],
    output: Any,
    temperature: float | None,
    max_tokens: int | None,
    sample: int,
) -> tuple[Any, Spend]:
    """One model call under the frame's bounds and budget; the reply parsed when ``output``."""
    schema = compiled(output).plain if output is not None else None
    request, key = engine.caller.request(
        node_id=node_id,
        role=role,
        messages=messages,
        output_schema=schema,
        temperature=temperature,
        max_tokens=max_tokens,
        sample=sample,
    )
    call = await engine.caller.call(
        request,
        key,
        frame,
        path=frame.at(node_id),
        position=engine.call_position(frame, caller, node_id),
    )
    if frame.watch is not None:
        try:
            _watch_repeats(frame.watch, node_id, request)
        except NodeFailed as exc:  # the call was made: the leaf that stops is charged for it
            raise RepeatedCall(exc.status, exc.reason, call.spend) from exc
    for tally in frame.tallies:
        tally.cost_usd += call.spend.cost_usd
    if output is None:
        return call.reply.text, call.spend
    try:
        return parse_reply(call.reply.text, output), call.spend
    except OutputError as exc:
        engine.caller.forget(key)  # a flaky reply is asked again next time, not remembered
        raise ReplyRejected(str(exc), call.spend) from exc


class ReplyRejected(OutputError):
    """A reply that does not fit the output schema, with what its call cost: the node that
    made it is charged for it, though it failed (a tolerated failure leaves the run's totals
    short otherwise)."""

    def __init__(self, message: str, spend: Spend) -> None:
        super().__init__(message)
        self.spend = spend


class RepeatedCall(NodeFailed):
    """A loop that sent the same request again, stopped as stuck, with what the last call cost."""

    def __init__(self, status: Status, reason: str, spend: Spend) -> None:
        super().__init__(status, reason)
        self.spend = spend


REPEATS_STUCK = 3
"""The same request this many times in a row within a loop stops the loop as stuck."""


def _watch_repeats(watch: dict[str, tuple[str, int]], node_id: str, request: Any) -> None:
    key = canonical_json(
        [
            request.role,
            request.model,
            [[m.role, m.content] for m in request.messages],
            request.temperature,
            request.max_tokens,
            request.output_schema,
            request.sample,
        ]
    )
    last, count = watch.get(node_id, ("", 0))
    count = count + 1 if key == last else 1
    watch[node_id] = (key, count)
    if count >= REPEATS_STUCK:
        raise NodeFailed(
            Status.STUCK, f"the same request was sent {count} times in a row within the loop"
        )


async def _leaf(engine: Engine, node: ir.Leaf, frame: Frame) -> Ran:
    scope = frame.scope()
    messages = chat(node, lambda template: render(template, scope))
    sample = node.sample if node.sample is not None else (frame.sample or 0)
    value, spend = await model_call(
        engine,
        frame,
        caller=node,
        node_id=ir.instance_id(node.id, frame.copies),
        role=node.role,
        messages=messages,
        output=node.output,
        temperature=node.temperature,
        max_tokens=node.max_tokens,
        sample=sample,
    )
    return value, spend, None


async def _command(engine: Engine, node: ir.Command, frame: Frame) -> Ran:
    from runner.executor.commands import command_line, working_directory
    from runner.permissions import refusal

    scope = frame.scope()
    argv = [render(item, scope) for item in node.run]
    env = {key: render(value, scope) for key, value in (node.env or {}).items()}
    line = command_line(argv)
    for index, item in enumerate([*argv, *env.values()]):
        if "\0" in item:
            what = f"argument {index}" if index < len(argv) else "an env value"
            raise _failed(f"{what} of {line!r} holds a NUL character, which no program can get")
    # Checked here, refused only if the command would run: a recorded run answers it without
    # running anything, under the permissions it was recorded with.
    why = refusal(argv, env, frame.commands)
    refused = None
    if why is not None:
        allowed = ", ".join(repr(p) for p in frame.commands) or "none"
        refused = f"{line!r} is not admitted by permissions.commands ({allowed}): {why}"
    try:
        cwd = working_directory(frame.cwd, None if node.cwd is None else render(node.cwd, scope))
    except RunnerError as exc:
        cwd, refused = frame.cwd, refused or f"{line!r} is refused: {exc}"
    result = await engine.command(node, frame, argv, cwd=cwd, env=env, refused=refused)
    if result.timed_out:
        raise _failed(f"{line!r} timed out after {node.timeout_s:g} s")
    if result.exit_code != 0 and not node.allow_fail:
        tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
        raise _failed(f"{line!r} exited with {result.exit_code}: " + " | ".join(tail))
    return result.as_output(), Spend(), {"exit_code": result.exit_code}


async def _sequence(engine: Engine, node: ir.Sequence, frame: Frame) -> Ran:
    output: Any = None
    for index, step in enumerate(node.steps):
        try:
            output = await engine.execute(step, frame)
        except Exception:
            for later in node.steps[index + 1 :]:
                engine.skip(later, frame, f"step {step.id!r} before it did not succeed")
            raise
        await engine.settle()  # the next step reads this one
    return output, Spend(), None


async def fan_out(
    engine: Engine,
    node: ir.Node,
    frame: Frame,
    jobs: Sequence[tuple[ir.Node, Frame]],
    *,
    expose: bool,
    keep_failures: bool = False,
    min_successes: int | None = None,
) -> list[Any]:
    """Run children at the same time within the frame's branch bound.

    With ``expose``, what the children finished becomes readable after the fan-out (branches,
    explicit candidates; not copies). A failure fails the fan-out (after the others finish, or
    at once under ``fail_fast``), unless ``keep_failures``: failures then come back in place of
    outputs; or ``min_successes``: with at least that many successes, failure markers come
    back in place of the failures (the children's frames are tolerant: the caller made them so).
    """
    limit = asyncio.Semaphore(frame.branches) if frame.branches else None
    isolation = getattr(node, "isolation", None)

    async def one(index: int, child: ir.Node, child_frame: Frame) -> Any:
        async with limit if limit is not None else contextlib.nullcontext():
            if isolation == "worktree":
                try:
                    path = await engine.worktree_for(f"{node.id}-{index}")
                except RunnerError as exc:
                    raise engine.fail_unstarted(child, child_frame, str(exc)) from exc
                try:
                    return await engine.execute(child, child_frame.derive(cwd=path))
                finally:
                    await engine.release_worktree(path)
            return await engine.execute(child, child_frame)

    fail_fast = bool(getattr(node, "fail_fast", False)) and not keep_failures
    # Children with nothing to set up around them run as they are, one coroutine fewer each.
    direct = limit is None and isolation != "worktree"
    pool = _pool_size(frame, jobs) if direct and not fail_fast else None
    if pool is not None:
        pooled = await _pooled(engine, jobs, pool)
        await engine.settle()  # what follows reads the children
        if min_successes is not None:
            pooled = _go_on(engine, jobs, pooled, min_successes)
        if expose:
            for _, child_frame in jobs:
                frame.expose(child_frame)
        return _fan_in(pooled, len(jobs), keep_failures)
    children = [engine.execute(c, f) if direct else one(i, c, f) for i, (c, f) in enumerate(jobs)]
    if fail_fast:
        try:
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(child) for child in children]
        except* NodeFailed as failures:
            raise failures.exceptions[0] from None
        await engine.settle()
        outcomes: list[Any] = [task.result() for task in tasks]
    else:
        outcomes = await asyncio.gather(*children, return_exceptions=True)
        await engine.settle()  # what follows reads the children
        for outcome in outcomes:
            if isinstance(outcome, BaseException) and not isinstance(outcome, NodeFailed):
                raise outcome
    if min_successes is not None:
        outcomes = _go_on(engine, jobs, outcomes, min_successes)
    if expose:
        for _, child_frame in jobs:
            frame.expose(child_frame)
    return _fan_in(outcomes, len(jobs), keep_failures)


def _go_on(
    engine: Engine, jobs: Sequence[tuple[ir.Node, Frame]], outcomes: list[Any], least: int
) -> list[Any]:
    """The outcomes with failure markers for the tolerated failures, when at least ``least``
    children succeeded; a failure no fan-out goes on without (a replay divergence) fails it."""
    failed = [o for o in outcomes if isinstance(o, NodeFailed)]
    if not failed:
        return outcomes
    hard = [f for f in failed if not tolerable(f.status)]
    if hard:
        status = run_status(f.status for f in hard)
        raise NodeFailed(status, f"{len(hard)} of {len(jobs)} children ended {status.value}")
    succeeded = len(outcomes) - len(failed)
    if succeeded < least:
        raise NodeFailed(
            Status.FAILED,
            f"{succeeded} of {len(jobs)} children succeeded; min_successes is {least}",
        )
    marked = []
    for (child, child_frame), outcome in zip(jobs, outcomes, strict=True):
        if isinstance(outcome, NodeFailed):
            marker = failure_marker(redaction.text(outcome.cause, engine.redactor) or "")
            child_frame.record(child.id, marker)  # read by id after a branch, like a success
            marked.append(marker)
        else:
            marked.append(outcome)
    return marked


def _fan_in(outcomes: list[Any], count: int, keep_failures: bool) -> list[Any]:
    failed = [o for o in outcomes if isinstance(o, NodeFailed)]
    if failed and not keep_failures:
        status = run_status(f.status for f in failed)
        raise NodeFailed(status, f"{len(failed)} of {count} children did not succeed")
    return outcomes


POOL_AFTER = 4
"""A fan-out of single leaves this many times wider than its call bound runs through a pool."""


def _pool_size(frame: Frame, jobs: Sequence[tuple[ir.Node, Frame]]) -> int | None:
    """How many workers run a wide fan-out of plain leaves, or None to give each its task.

    Each leaf holds one call slot while it calls, so workers as many as the slots start every
    leaf as soon as a slot is free, as tasks would, without a task and a wait per leaf. Leaves
    that retry or time out wait outside their slot, so they keep their own tasks.
    """
    slots = frame.slots
    if slots is None or len(jobs) <= POOL_AFTER * slots:
        return None
    for child, _ in jobs:
        if child.kind != "leaf" or child.retry is not None or child.timeout_s is not None:
            return None
    return slots


async def _pooled(engine: Engine, jobs: Sequence[tuple[ir.Node, Frame]], workers: int) -> list[Any]:
    """Run the jobs in order through ``workers`` workers; failures come back in place."""
    outcomes: list[Any] = [None] * len(jobs)
    queue = iter(enumerate(jobs))

    async def worker() -> None:
        for index, (child, child_frame) in queue:
            try:
                outcomes[index] = await engine.execute(child, child_frame)
            except NodeFailed as failed:
                outcomes[index] = failed

    async with asyncio.TaskGroup() as group:
        for _ in range(workers):
            group.create_task(worker())
    return outcomes


async def _expand(engine: Engine, node: ir.Expand, frame: Frame) -> Ran:
    items = evaluate(node.over, frame.scope())
    if isinstance(items, dict) or not isinstance(items, list | tuple):
        raise _failed(f"over yields {type(items).__name__}, not a list")
    if len(items) > node.max_children:
        raise _failed(f"over yields {len(items)} items, more than max_children {node.max_children}")
    engine.decided(node, frame, {"items": len(items)})
    tolerant = frame.tolerant or node.min_successes is not None
    jobs = [
        (
            node.body,
            frame.layer(
                copies=(*frame.copies, index),
                variables={**frame.variables, node.as_: item},
                trail=engine.trail(frame, node, index),
                tolerant=tolerant,
            ),
        )
        for index, item in enumerate(items)
    ]
    outputs = await fan_out(
        engine, node, frame, jobs, expose=False, min_successes=node.min_successes
    )
    return list(outputs), Spend(), {"items": len(items)}


async def _cond(engine: Engine, node: ir.Cond, frame: Frame) -> Ran:
    value = evaluate(node.if_, frame.scope())
    taken, other = (node.then, node.else_) if value else (node.else_, node.then)
    decision = {"arm": "then" if value else "else", "value": bool(value)}
    engine.decided(node, frame, decision)
    if other is not None:
        engine.skip(other, frame, f"cond {node.id!r} took the {decision['arm']} arm")
    if taken is None:
        return None, Spend(), decision
    return await engine.execute(taken, frame.layer()), Spend(), decision


async def _loop(engine: Engine, node: ir.LoopUntil, frame: Frame) -> Ran:
    previous: str | None = None
    output: Any = None
    watch: dict[str, tuple[str, int]] = {}
    for iteration in range(node.max_iterations):
        layer = frame.layer(
            loops=(*frame.loops, iteration),
            variables={**frame.variables, "iteration": iteration},
            watch=watch,
            trail=engine.trail(frame, node, iteration),
        )
        output = await engine.execute(node.body, layer)
        await engine.settle()  # the next iteration and the predicate read this one
        frame.expose(layer)
        if evaluate(node.until, layer.scope()):
            return output, Spend(), {"iterations": iteration + 1, "until": True}
        snapshot = canonical_json(dict(layer.outputs.maps[0]))
        if snapshot == previous:
            raise NodeFailed(
                Status.STUCK,
                f"iteration {iteration} left every output as iteration {iteration - 1} had it",
            )
        previous = snapshot
    return output, Spend(), {"iterations": node.max_iterations, "until": False}


async def _reduce(engine: Engine, node: ir.Reduce, frame: Frame) -> Ran:
    scope = frame.scope()
    if node.expr is not None:
        return evaluate(node.expr, scope), Spend(), None
    assert node.role is not None  # the schema requires role and prompt together
    assert node.prompt is not None
    value, spend = await model_call(
        engine,
        frame,
        caller=node,
        node_id=ir.instance_id(node.id, frame.copies),
        role=node.role,
        messages=(ChatMessage(role="user", content=render(node.prompt, scope)),),
        output=node.output,
        temperature=node.temperature,
        max_tokens=node.max_tokens,
        sample=frame.sample or 0,
    )
    return value, spend, None


async def _teacher(engine: Engine, node: ir.TeacherReview, frame: Frame) -> Ran:
    scope = frame.scope()
    results = {name: frame.outputs.get(name) for name in node.inputs}
    brief = TEACHER_BRIEF.format(results=json.dumps(results, indent=2, sort_keys=True))
    extra = render(node.prompt, scope) if node.prompt is not None else ""
    messages = (ChatMessage(role="user", content=brief + ("\n\n" + extra if extra else "")),)
    value, spend = await model_call(
        engine,
        frame,
        caller=node,
        node_id=ir.instance_id(node.id, frame.copies),
        role=node.role or ir.DEFAULT_TEACHER_ROLE,
        messages=messages,
        output=TEACHER_REPLY_SCHEMA,
        temperature=node.temperature,
        max_tokens=node.max_tokens,
        sample=frame.sample or 0,
    )
    return value, spend, {"lessons": len(value["lessons"])}


def _failed(reason: str) -> Exception:
    return NodeFailed(Status.FAILED, reason)
