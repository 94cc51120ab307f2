"""Walking the IR: children in document order, with the JSON pointer of every node."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from runner import ir
from runner.compiler.source import pointer_join

CHILD_FIELDS: dict[str, tuple[str, ...]] = {
    "sequence": ("steps",),
    "branch": ("children",),
    "expand": ("body",),
    "cond": ("then", "else_"),
    "loop_until": ("body",),
    "tournament": ("candidates", "body"),
    "pareto": ("candidates", "body"),
}
"""Python field names that hold child nodes, per kind, in document order."""

FIELD_DOC_NAMES = {"else_": "else", "as_": "as", "if_": "if"}


@dataclass(frozen=True, slots=True, kw_only=True)
class Child:
    """A child node and where it sits under its parent."""

    node: ir.Node
    """The child."""
    field: str
    """Document field holding it (``steps``, ``children``, ``body``, ``then``, ``else``,
    ``candidates``)."""
    index: int | None
    """Position in the list, for list fields."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Visit:
    """A node met on a walk, with its place in the tree."""

    node: ir.Node
    """The node."""
    pointer: str
    """JSON pointer of the node in the workflow document."""
    parent: Visit | None
    """The enclosing node's visit (``None`` for the root)."""
    field: str | None
    """Field of the parent holding this node."""
    index: int | None
    """Position in that field, for list fields."""
    depth: int
    """Nesting depth, the root being 1."""

    def ancestors(self) -> Iterator[Visit]:
        """Enclosing visits, innermost first."""
        current = self.parent
        while current is not None:
            yield current
            current = current.parent


def children(node: ir.Node) -> list[Child]:
    """The direct children of ``node`` in document order."""
    out: list[Child] = []
    for name in CHILD_FIELDS.get(node.kind, ()):
        value = getattr(node, name)
        doc_name = FIELD_DOC_NAMES.get(name, name)
        if isinstance(value, tuple):
            out.extend(Child(node=child, field=doc_name, index=i) for i, child in enumerate(value))
        elif value is not None:
            out.append(Child(node=value, field=doc_name, index=None))
    return out


def walk(root: ir.Node, pointer: str = "/steps") -> Iterator[Visit]:
    """Every node under ``root`` (included), parents before children, in document order."""
    stack = [Visit(node=root, pointer=pointer, parent=None, field=None, index=None, depth=1)]
    while stack:
        visit = stack.pop()
        yield visit
        below = []
        for child in children(visit.node):
            child_pointer = pointer_join(visit.pointer, child.field)
            if child.index is not None:
                child_pointer = pointer_join(child_pointer, child.index)
            below.append(
                Visit(
                    node=child.node,
                    pointer=child_pointer,
                    parent=visit,
                    field=child.field,
                    index=child.index,
                    depth=visit.depth + 1,
                )
            )
        stack.extend(reversed(below))
