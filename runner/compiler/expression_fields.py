"""The template and expression fields of each node kind, and the names each one sees."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from runner import ir
from runner.tree import Visit


@dataclass(frozen=True, slots=True, kw_only=True)
class TextField:
    """One template or expression field of a node."""

    field: str
    """Its path under the node, as a JSON pointer suffix (``messages/0/content``)."""
    text: str
    """The template or expression."""
    expression: bool
    """An expression (``if``, ``over``, ...) rather than a template."""
    after_children: bool = False
    """Read once the node's children have run (``until``, judges, objectives)."""
    names: frozenset[str] = frozenset()
    """Names it sees beyond the enclosing scope (``iteration``, ``candidate``)."""


def text_fields(node: ir.Node) -> Iterator[TextField]:
    """The template and expression fields of ``node``, with the extra names each sees."""
    match node.kind:
        case "leaf":
            if node.prompt is not None:
                yield TextField(field="prompt", text=node.prompt, expression=False)
            for i, message in enumerate(node.messages or ()):
                yield TextField(
                    field=f"messages/{i}/content", text=message.content, expression=False
                )
        case "command":
            for i, item in enumerate(node.run):
                yield TextField(field=f"run/{i}", text=item, expression=False)
            if node.cwd is not None:
                yield TextField(field="cwd", text=node.cwd, expression=False)
            for key, value in (node.env or {}).items():
                yield TextField(field=f"env/{key}", text=value, expression=False)
        case "expand":
            yield TextField(field="over", text=node.over, expression=True)
        case "cond":
            yield TextField(field="if", text=node.if_, expression=True)
        case "loop_until":
            yield TextField(
                field="until",
                text=node.until,
                expression=True,
                after_children=True,
                names=frozenset({"iteration"}),
            )
        case "reduce":
            if node.expr is not None:
                yield TextField(field="expr", text=node.expr, expression=True)
            if node.prompt is not None:
                yield TextField(field="prompt", text=node.prompt, expression=False)
        case "tournament":
            scored = frozenset({"candidate"})
            if node.judge is not None:
                yield TextField(
                    field="judge/prompt",
                    text=node.judge.prompt,
                    expression=False,
                    after_children=True,
                    names=scored,
                )
            if node.score is not None:
                yield TextField(
                    field="score",
                    text=node.score,
                    expression=True,
                    after_children=True,
                    names=scored,
                )
        case "pareto":
            scored = frozenset({"candidate"})
            for i, objective in enumerate(node.objectives):
                yield TextField(
                    field=f"objectives/{i}/expr",
                    text=objective.expr,
                    expression=True,
                    after_children=True,
                    names=scored,
                )
            if node.diversity_key is not None:
                yield TextField(
                    field="diversity_key",
                    text=node.diversity_key,
                    expression=True,
                    after_children=True,
                    names=scored,
                )
        case "teacher_review":
            if node.prompt is not None:
                yield TextField(field="prompt", text=node.prompt, expression=False)
        case _:
            return


def scope_names(visit: Visit) -> frozenset[str]:
    """Variables bound by the enclosing expands, loops and sampled candidates."""
    names: set[str] = set()
    child = visit
    for ancestor in visit.ancestors():
        node = ancestor.node
        if node.kind == "expand":
            names.add(node.as_)
        elif node.kind == "loop_until":
            names.add("iteration")
        elif node.kind in ("tournament", "pareto") and child.field == "body":
            names.add("sample")
        child = ancestor
    return frozenset(names)
