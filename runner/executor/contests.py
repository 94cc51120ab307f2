"""Tournaments and Pareto selections: run the candidates apart, score them, choose."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from runner import ir
from runner.budget import BudgetExceeded
from runner.canonical import canonical_json
from runner.errors import RunnerError
from runner.executor import redaction
from runner.executor.frames import Frame, Tally
from runner.executor.kinds import Ran, fan_out, model_call
from runner.executor.results import NodeFailed, Spend, failure_marker
from runner.providers.base import ChatMessage, ProviderError
from runner.render import OutputError, RenderError, evaluate, render
from runner.selection import (
    JUDGE_SCHEMA,
    Entrant,
    Point,
    choose_winner,
    frontier,
    parse_score,
)
from runner.status import Status

if TYPE_CHECKING:
    from runner.executor.engine import Engine


async def contest(engine: Engine, node: ir.Tournament | ir.Pareto, frame: Frame) -> Ran:
    """Run a tournament or a pareto node."""
    tallies: list[Tally] = []

    # With min_successes, the candidates that fail are tolerated: the run goes on without them.
    tolerant = frame.tolerant or node.min_successes is not None

    def tallied(**changes: Any) -> Frame:
        tallies.append(Tally())
        return frame.layer(tallies=(*frame.tallies, tallies[-1]), tolerant=tolerant, **changes)

    if node.candidates is not None:
        jobs = [(candidate, tallied()) for candidate in node.candidates]
    else:
        assert node.body is not None  # the schema requires body with count
        assert node.count is not None
        jobs = [
            (
                node.body,
                tallied(
                    copies=(*frame.copies, index),
                    sample=index,
                    variables={**frame.variables, "sample": index},
                    trail=engine.trail(frame, node, index),
                ),
            )
            for index in range(node.count)
        ]
    exposed = node.candidates is not None
    outcomes = await fan_out(engine, node, frame, jobs, expose=exposed, keep_failures=True)
    costs = {index: tally.cost_usd for index, tally in enumerate(tallies)}
    finished = {i: out for i, out in enumerate(outcomes) if not isinstance(out, NodeFailed)}
    failures = [
        {"index": i, "error": out.cause} for i, out in enumerate(outcomes) if i not in finished
    ]
    least = node.min_successes
    if least is not None and len(finished) < least:
        raise NodeFailed(
            Status.FAILED,
            f"{len(finished)} of {len(jobs)} children succeeded; min_successes is {least}",
        )
    if not finished:
        raise NodeFailed(Status.FAILED, f"all {len(jobs)} candidates failed")
    if least is not None and node.candidates is not None:
        # Explicit candidates are read by id after the contest: a failed one reads as failed.
        for index, candidate in enumerate(node.candidates):
            outcome = outcomes[index]
            if isinstance(outcome, NodeFailed):
                why = redaction.text(outcome.cause, engine.redactor) or ""
                frame.record(candidate.id, failure_marker(why))
    if node.kind == "tournament":
        return await _tournament(
            engine, node, frame=frame, finished=finished, failures=failures, costs=costs
        )
    return _pareto(node, frame, finished, failures)


async def _tournament(
    engine: Engine,
    node: ir.Tournament,
    *,
    frame: Frame,
    finished: dict[int, Any],
    failures: list[dict[str, Any]],
    costs: dict[int, float],
) -> Ran:
    spend = Spend()

    async def score(index: int, output: Any) -> float:
        try:
            return await judge(index, output)
        except NodeFailed:
            raise
        except BudgetExceeded as exc:
            engine.halt(Status.BUDGET_EXCEEDED, str(exc))
            raise NodeFailed(Status.BUDGET_EXCEEDED, str(exc)) from exc
        except ProviderError as exc:
            judging = f"judging candidate {index}: {exc}"
            if exc.outage is None:
                raise NodeFailed(Status.FAILED, judging) from exc
            failure = exc.outage.sentence()
            raise NodeFailed(Status.PROVIDER_FAILED, judging, provider_failure=failure) from exc
        except (RenderError, OutputError, RunnerError) as exc:
            raise NodeFailed(Status.FAILED, f"judging candidate {index}: {exc}") from exc

    async def judge(index: int, output: Any) -> float:
        nonlocal spend
        scope = frame.scope().with_variables(candidate=output)
        if node.score is not None:
            value = evaluate(node.score, scope)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise NodeFailed(Status.FAILED, f"score gave {value!r} for candidate {index}")
            return float(value)
        assert node.judge is not None  # the schema requires judge or score
        text, used = await model_call(
            engine,
            frame,
            caller=node,
            node_id=f"{ir.instance_id(node.id, frame.copies)}/judge[{index}]",
            role=node.judge.role,
            messages=(ChatMessage(role="user", content=render(node.judge.prompt, scope)),),
            output=JUDGE_SCHEMA,
            temperature=node.judge.temperature,
            max_tokens=node.judge.max_tokens,
            sample=0,
        )
        spend = spend + used
        try:
            return parse_score(canonical_json(text))
        except ValueError as exc:
            raise NodeFailed(Status.FAILED, f"candidate {index}: {exc}") from exc

    indices = sorted(finished)
    # A task group: when one judge fails, the others are cancelled and awaited, not left behind.
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(score(i, finished[i])) for i in indices]
    except* NodeFailed as judged:
        raise judged.exceptions[0] from None
    scores = [task.result() for task in tasks]
    entrants = [
        Entrant(index=i, score=s, cost_usd=costs.get(i, 0.0))
        for i, s in zip(indices, scores, strict=True)
    ]
    verdict = choose_winner(entrants, node.ordering or ir.DEFAULT_ORDERING, node.min_score)
    decision = {
        "scores": {str(e.index): e.score for e in entrants},
        "winner": verdict.winner,
        "reason": verdict.reason,
    }
    if verdict.winner is None:
        raise NodeFailed(Status.FAILED, verdict.reason)
    by_index = {e.index: e for e in entrants}
    harvest = [
        {"index": e.index, "output": finished[e.index], "score": e.score}
        for e in entrants
        if e.index != verdict.winner
    ] + failures
    output = {
        "winner": finished[verdict.winner],
        "index": verdict.winner,
        "score": by_index[verdict.winner].score,
        "harvest": harvest,
    }
    return output, spend, decision


def _pareto(
    node: ir.Pareto, frame: Frame, finished: dict[int, Any], failures: list[dict[str, Any]]
) -> Ran:
    points = []
    for index, output in sorted(finished.items()):
        scope = frame.scope().with_variables(candidate=output)
        try:
            values = tuple(float(evaluate(o.expr, scope)) for o in node.objectives)
            key = (
                canonical_json(evaluate(node.diversity_key, scope))
                if node.diversity_key is not None
                else None
            )
        except (TypeError, ValueError, RenderError) as exc:
            raise NodeFailed(Status.FAILED, f"candidate {index}: {exc}") from exc
        points.append(Point(index=index, values=values, diversity_key=key))
    goals = [o.goal for o in node.objectives]
    kept = frontier(points, goals, node.max_items or ir.DEFAULT_PARETO_MAX_ITEMS)
    names = [o.name for o in node.objectives]
    entry = {
        p.index: {
            "index": p.index,
            "output": finished[p.index],
            "values": dict(zip(names, p.values, strict=True)),
        }
        for p in points
    }
    output = {
        "frontier": [finished[i] for i in kept],
        "values": [entry[i]["values"] for i in kept],
        "indices": list(kept),
        "harvest": [entry[p.index] for p in points if p.index not in kept] + failures,
    }
    return output, Spend(), {"frontier": list(kept), "candidates": len(points)}
