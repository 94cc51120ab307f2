"""The logical order of a run's events: a function of the workflow and of which copy or
iteration an event belongs to, never of timing.

Every node gets its pre-order index in the workflow tree and the index of its last
descendant. An event's position is a string whose order is that logical order: the trail of
enclosing repetitions (expand items, loop iterations, sampled candidates), each written as the
repeating node's index and the repetition's number, then the node's own index. A node starts at
its own index and ends after its last descendant, so everything it contains sorts between its
start and its end. Fixed-width numbers make string order equal numeric order.
"""

from __future__ import annotations

from runner import ir
from runner.tree import walk

WIDTH = 6
"""Digits per number in a position."""

Span = tuple[str, str]
"""A node's pre-order index and the index of its last descendant, written as in positions
(a run writes positions for every event, so the numbers are written once per node)."""


def spans(root: ir.Node) -> dict[int, Span]:
    """Every node's span, by ``id(node)`` (the IR outlives the run that uses this)."""
    order = [visit.node for visit in walk(root)]
    index = {id(node): i for i, node in enumerate(order)}
    last = dict(index)
    for visit in reversed(list(walk(root))):
        if visit.parent is not None:
            parent = id(visit.parent.node)
            last[parent] = max(last[parent], last[id(visit.node)])
    return {key: (_number(index[key]), _number(last[key])) for key in index}


def _number(value: int) -> str:
    return f"{value:0{WIDTH}d}"


def start(trail: str, span: Span) -> str:
    """Where a node's start sits."""
    return trail + span[0]


def end(trail: str, span: Span) -> str:
    """Where a node's end sits: after everything it contains, before its next sibling."""
    return trail + span[1] + "~"


def call(trail: str, span: Span, caller: str) -> str:
    """Where a model call or command of a node sits: after the node's start, before its
    children (``caller`` tells apart the judge calls of one tournament)."""
    return trail + span[0] + ":" + caller


def repeat(trail: str, span: Span, number: int) -> str:
    """The trail of repetition ``number`` (an expand item, a loop iteration, a candidate
    sample) of the node with ``span``."""
    return trail + span[0] + "." + _number(number) + "/"
