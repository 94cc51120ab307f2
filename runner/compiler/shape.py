"""The static launch shape: how many model calls a workflow can make at most, and how deep it
nests. Loops and expands multiply, both arms of a cond count."""

from __future__ import annotations

from runner import ir
from runner.tree import children

MAX_DEPTH = 32
"""Deepest nesting of nodes a workflow may have."""


def launch_leaves(node: ir.Node) -> int:
    """The most model calls ``node`` can launch."""
    inner = sum(launch_leaves(child.node) for child in children(node))
    match node.kind:
        case "leaf" | "teacher_review":
            return 1
        case "reduce":
            return 1 if node.role is not None else 0
        case "expand":
            return node.max_children * inner
        case "loop_until":
            return node.max_iterations * inner
        case "tournament" | "pareto":
            runs = (node.count or 0) * inner if node.candidates is None else inner
            entrants = node.count if node.candidates is None else len(node.candidates)
            judged = node.kind == "tournament" and node.judge is not None
            return runs + ((entrants or 0) if judged else 0)
        case _:
            return inner


def depth(node: ir.Node) -> int:
    """Nesting depth of ``node``'s subtree, ``node`` itself being 1."""
    return 1 + max((depth(child.node) for child in children(node)), default=0)
