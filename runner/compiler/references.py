"""Which nodes a reader may read: those guaranteed to have finished before it runs.

``available`` gives, for every node, the ids finished when it starts; ``exposed`` the ids a node
makes readable to what comes after it. Copies (expand bodies, ``count`` candidates) and cond arms
expose nothing by their inner ids: there is no single finished copy to read, or it may not have
run; readers read the expand, tournament or cond node instead. ``explain`` says why a read is not
allowed, in the reader's terms.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from runner import ir
from runner.tree import Visit, children

_HIDING = {
    "expand": "runs once per item of expand {owner!r}; read outputs.{owner} (the list) instead",
    "cond": "is inside cond {owner!r} and may not have run; read outputs.{owner} instead",
    "tournament": "is a sampled candidate of tournament {owner!r}; read outputs.{owner} instead",
    "pareto": "is a sampled candidate of pareto {owner!r}; read outputs.{owner} instead",
}


def exposed(node: ir.Node) -> frozenset[str]:
    """Ids readable once ``node`` has finished."""
    out = {node.id}
    if node.kind in ("sequence", "branch", "loop_until") or (
        node.kind in ("tournament", "pareto") and node.candidates is not None
    ):
        for child in children(node):
            out |= exposed(child.node)
    return frozenset(out)


@dataclass(frozen=True, slots=True, kw_only=True)
class Finished:
    """The ids finished at one point of the tree: those of an enclosing point (``base``),
    ``extra`` ones, and those exposed by the steps of a sequence before step ``upto``.

    A sequence's steps share one table of where each id is exposed, so that what a long
    sequence's steps may read costs one entry per id, not one copy of every earlier id per
    step."""

    base: Finished | None = None
    extra: frozenset[str] = frozenset()
    steps: Mapping[str, int] = field(default_factory=dict)
    """Id -> the first step of the sequence that exposes it."""
    upto: int = 0

    def __contains__(self, target: object) -> bool:
        if target in self.extra:
            return True
        step = self.steps.get(target) if isinstance(target, str) else None
        if step is not None and step < self.upto:
            return True
        return self.base is not None and target in self.base


@dataclass(frozen=True, slots=True)
class Availability:
    """Ids finished before each node starts, and before each node's after-children fields."""

    before: dict[str, Finished]
    """Node id -> ids finished when it starts."""
    after_children: dict[str, Finished]
    """Node id -> ids finished once its children have (for ``until``, judges, objectives)."""
    after_run: Finished
    """Ids readable by the workflow's tests."""


def availability(root: ir.Node) -> Availability:
    """Compute what every node may read."""
    before: dict[str, Finished] = {}
    after_children: dict[str, Finished] = {}

    def visit(node: ir.Node, ready: Finished) -> None:
        before.setdefault(node.id, ready)
        inner = list(children(node))
        steps: dict[str, int] = {}
        if node.kind == "sequence":
            for i, child in enumerate(inner):
                for target in exposed(child.node):
                    steps.setdefault(target, i)
        for i, child in enumerate(inner):
            visit(child.node, Finished(base=ready, steps=steps, upto=i) if steps else ready)
        own = ready
        if node.kind in ("loop_until",) or (
            node.kind in ("tournament", "pareto") and node.candidates is not None
        ):
            extra = frozenset().union(*(exposed(child.node) for child in inner))
            own = Finished(base=ready, extra=extra)
        after_children.setdefault(node.id, own)

    visit(root, Finished())
    return Availability(
        before=before, after_children=after_children, after_run=Finished(extra=exposed(root))
    )


def hides(node: ir.Node) -> bool:
    """Whether the ids inside ``node`` are invisible from outside it."""
    return node.kind in ("expand", "cond") or (
        node.kind in ("tournament", "pareto") and node.candidates is None
    )


def explain_hidden(target: str, owner: ir.Node) -> Refusal:
    """Why ``target``, inside ``owner``, cannot be read from outside."""
    return Refusal(
        reason=f"{target!r} " + _HIDING[owner.kind].format(owner=owner.id),
        fix=f"Read outputs.{owner.id} instead of outputs.{target}.",
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Refusal:
    """Why a read is not allowed, and the fix, in the reader's terms."""

    reason: str
    """One phrase, for the diagnostic's message."""
    fix: str
    """One sentence, for its fix line."""


def missing(target: str, known: Iterable[str]) -> Refusal:
    """A read of an id no node has: the nearest id, if one is near."""
    close = difflib.get_close_matches(target, list(known), n=1)
    if close:
        return Refusal(
            reason=f"no node has the id {target!r}; did you mean {close[0]!r}?",
            fix=f"Write {close[0]!r} instead of {target!r}.",
        )
    return Refusal(
        reason=f"no node has the id {target!r}",
        fix=f"Read a node of this workflow, or give a node the id {target!r}.",
    )


def explain(reader: Visit, target: str, visits: dict[str, Visit], known: Iterable[str]) -> Refusal:
    """Why ``reader`` may not read ``target``, and what to do instead."""
    if target not in visits:
        return missing(target, known)
    after = f"Read {target!r} from a node that runs after it"
    if target == reader.node.id:
        return Refusal(
            reason=f"{target!r} is this node itself, which has not finished when it is read",
            fix=f"{after}; a node cannot read its own output.",
        )
    reader_chain = [reader, *reader.ancestors()]
    target_visit = visits[target]
    target_chain = [target_visit, *target_visit.ancestors()]
    reader_ids = [v.node.id for v in reader_chain]
    if target in reader_ids:
        return Refusal(
            reason=f"{target!r} encloses this node and has not finished when it is read",
            fix=f"{after}, outside it; inside, read the nodes before this one.",
        )
    if reader.node.id in [v.node.id for v in target_chain]:
        return Refusal(
            reason=f"{target!r} runs inside this node, after this field is read",
            fix=f"{after}, outside {reader.node.id!r}.",
        )
    common = next(v for v in target_chain if v.node.id in reader_ids)
    below_common = target_chain[: target_chain.index(common)]
    for hider in reversed(below_common[1:]):
        if hides(hider.node):
            return explain_hidden(target, hider.node)
    reader_side = reader_chain[reader_ids.index(common.node.id) - 1]
    target_side = below_common[-1]
    later = (target_side.index or 0) > (reader_side.index or 0)
    if common.node.kind == "sequence" and later:
        looped = any(v.node.kind == "loop_until" for v in [common, *common.ancestors()])
        advice = (
            f"; a loop runs its body in order each iteration, so put {target!r} first"
            if looped
            else ""
        )
        return Refusal(
            reason=f"{target!r} runs later in sequence {common.node.id!r}{advice}",
            fix=f"Move {target_side.node.id!r} before {reader_side.node.id!r} in sequence "
            f"{common.node.id!r}, or read {target!r} from a node after it.",
        )
    if common.node.kind == "cond":
        return Refusal(
            reason=f"{target!r} is in the other arm of cond {common.node.id!r}",
            fix=f"Read outputs.{common.node.id} after the cond, which holds the arm that ran.",
        )
    if common.node.kind in ("branch", "tournament", "pareto"):
        under = f"{common.node.kind} {common.node.id!r}"
        return Refusal(
            reason=f"{target!r} may run at the same time (both under {under})",
            fix=f"{after}, after {under}, or put the two in a sequence.",
        )
    return Refusal(
        reason=f"{target!r} is not guaranteed to have finished before this node runs",
        fix="Read only nodes that finish before this one starts.",
    )
