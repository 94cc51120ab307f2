"""TeacherReview for ``learn``, pure: the evidence of the reflection cases' runs and the brief
the teacher is asked with.

The evidence of one case's run: whether it passed, each failed test with its message, each
failed node with its error, the decisions of contests (a tournament's scores and its losers, a
pareto front), and the outputs of the nodes that make model calls, cut to a few thousand
characters each. The brief names the workflow's model-calling nodes with their prompts, so
that a lesson can target them, and asks for lessons in the strict reply shape.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from runner import ir
from runner.executor.kinds import LESSONS_ASKED
from runner.learning.cases import CaseRun
from runner.tree import walk

OUTPUT_CHARS = 2_000
"""The most of one node's output the teacher is shown."""
PROMPT_CHARS = 4_000
"""The most of one prompt the teacher is shown."""
_CALLING = ("leaf", "tournament", "pareto", "reduce", "teacher_review")


def evidence(run: CaseRun) -> dict[str, Any]:
    """One reflection case's run as the teacher sees it: by the case's name, not the run's id,
    so that the same runs make the same brief and a learn run repeated is answered by the
    memo."""
    result = run.result
    failed_nodes = [
        {"node": n.path, "kind": n.kind, "status": str(n.status), "error": n.error}
        for n in result.nodes
        if n.error and not n.tolerated
    ]
    decisions = [
        {"node": n.path, "kind": n.kind, "decision": n.decision}
        for n in result.nodes
        if n.kind in ("tournament", "pareto") and n.decision is not None
    ]
    outputs = {
        n.path: _cut(n.output, OUTPUT_CHARS)
        for n in result.nodes
        if n.kind in _CALLING and n.output is not None
    }
    data: dict[str, Any] = {
        "case": run.case,
        "passed": run.score.passed,
        "failed_tests": [
            {"name": t.name, "message": t.message} for t in result.tests if not t.passed
        ],
    }
    if run.score.metric is not None or run.score.metric_error is not None:
        data["metric"] = run.score.metric
        if run.score.metric_error:
            data["metric_error"] = run.score.metric_error
    if failed_nodes:
        data["failed_nodes"] = failed_nodes
    if decisions:
        data["decisions"] = decisions
    data["outputs"] = outputs
    return data


def nodes(workflow: ir.Workflow) -> list[dict[str, Any]]:
    """The workflow's nodes that make model calls: id, kind, role and prompt (or messages)."""
    out: list[dict[str, Any]] = []
    for visit in walk(workflow.steps):
        node = visit.node
        if node.kind not in _CALLING:
            continue
        entry: dict[str, Any] = {"node": node.id, "kind": node.kind}
        role = getattr(node, "role", None)
        if role:
            entry["role"] = role
        prompt = getattr(node, "prompt", None)
        if prompt:
            entry["prompt"] = _cut(prompt, PROMPT_CHARS)
        messages = getattr(node, "messages", None)
        if messages:
            entry["messages"] = [
                {"role": m.role, "content": _cut(m.content, PROMPT_CHARS)} for m in messages
            ]
        if node.kind == "reduce" and not prompt:
            continue  # an expression: no model call to teach
        out.append(entry)
    return out


def brief(workflow: ir.Workflow, shown: Sequence[CaseRun], taken: Sequence[str] = ()) -> str:
    """What the teacher is asked: how to write a lesson, the workflow's model-calling nodes,
    the reflection cases' runs, and the lesson ids already taken (on the overlay, or proposed
    in an earlier round), which it must not propose again."""
    about = {
        "workflow": workflow.name,
        "nodes": nodes(workflow),
        "tests": [{"name": t.name, "expect": t.expect} for t in workflow.tests or ()],
        "roles": [name for name, _ in workflow.roles or ()],
    }
    runs = [evidence(run) for run in shown]
    return (
        LESSONS_ASKED.format()
        .replace("the results below of an automated workflow run", "the runs below of a workflow")
        .replace('the run id ("current" for this run)', "the name of a case below")
        + "\n\nThe workflow:\n"
        + json.dumps(about, indent=2, sort_keys=True, default=str)
        + "\n\nRuns of the reflection cases:\n"
        + json.dumps(runs, indent=2, sort_keys=True, default=str)
        + (
            "\n\nLesson ids already taken (on the overlay or tried before; propose new "
            "ones): " + ", ".join(sorted(taken))
            if taken
            else ""
        )
    )


def _cut(value: Any, limit: int) -> Any:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    if len(text) <= limit:
        return value
    return text[:limit] + f"… ({len(text) - limit} more characters)"
