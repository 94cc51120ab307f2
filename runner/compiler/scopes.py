"""Scopes: write scopes of nodes that may run at the same time, and children that would exceed
their parent's permissions or budget."""

from __future__ import annotations

import itertools
import posixpath
import shlex
from collections.abc import Iterator
from dataclasses import dataclass, fields

from runner import globs, ir, permissions
from runner.expressions import is_template
from runner.tree import Visit

_FAN_OUT = ("expand",)
_PARALLEL = ("branch", "tournament", "pareto")


@dataclass(frozen=True, slots=True, kw_only=True)
class Finding:
    """A scope problem at a node field."""

    visit: Visit
    """The node at fault."""
    field: str
    """The document field, relative to the node (``writes``, ``budget/tokens``...)."""
    rule: str
    """``writes``, ``permissions`` or ``budget``."""
    message: str
    """What is wrong."""
    hint: str
    """How to fix it."""


def _copies(visit: Visit) -> bool:
    """Whether ``visit`` makes concurrent copies of its child (expand, sampled candidates)."""
    node = visit.node
    return node.kind in _FAN_OUT or (
        node.kind in ("tournament", "pareto") and node.count is not None
    )


def _isolation(visit: Visit) -> str | None:
    isolation: str | None = getattr(visit.node, "isolation", None)
    return isolation


def _worktree_below(chain: list[Visit], point: Visit) -> bool:
    """Whether some worktree-isolated fan-out sits strictly below ``point`` on ``chain``."""
    for visit in chain:
        if visit is point:
            return False
        if visit.parent is not None and visit.parent is not point:
            parent = visit.parent
            if (_copies(parent) or parent.node.kind in _PARALLEL) and _isolation(
                parent
            ) == "worktree":
                return True
    return False


def _concurrency_point(a: Visit, b: Visit) -> Visit | None:
    """The node that makes ``a`` and ``b`` run at the same time, if any."""
    chain_a = [a, *a.ancestors()]
    chain_b = [b, *b.ancestors()]
    ids_b = {id(v) for v in chain_b}
    if a is not b and (id(a) in ids_b or id(b) in {id(v) for v in chain_a}):
        return None  # one encloses the other: its scope covers the other's work
    common = next(v for v in chain_a if id(v) in ids_b)
    if a is not b and common.node.kind in _PARALLEL:
        return common
    # Copies of an expand body (or of a sampled candidate) run at the same time as each other,
    # so everything inside them, the node itself included, may run beside everything else.
    for visit in chain_a[1:] if a is b else [common, *common.ancestors()]:
        if _copies(visit):
            return visit
    return None


def write_conflicts(visits: list[Visit]) -> Iterator[Finding]:
    """Overlapping write scopes of nodes that may run at the same time, outside worktrees."""
    writers = [v for v in visits if v.node.writes]
    for a, b in itertools.combinations_with_replacement(writers, 2):
        point = _concurrency_point(a, b)
        if point is None:
            continue
        pair = globs.any_overlap(a.node.writes or (), b.node.writes or ())
        if pair is None:
            continue
        chain_a, chain_b = [a, *a.ancestors()], [b, *b.ancestors()]
        if _isolation(point) == "worktree" or (
            _worktree_below(chain_a, point) and _worktree_below(chain_b, point)
        ):
            continue
        other = "other copies of itself" if a is b else repr(b.node.id)
        yield Finding(
            visit=a,
            field="writes",
            rule="writes",
            message=(
                f"{a.node.id!r} writes {pair[0]!r}, which overlaps {pair[1]!r} written by "
                f"{other}, and both may run at the same time under "
                f"{point.node.kind} {point.node.id!r}"
            ),
            hint=f"Narrow the scopes so they do not overlap, or set isolation: worktree on "
            f"{point.node.id!r}.",
        )


def _inherited(visit: Visit, workflow: ir.Workflow, attribute: str, key: str) -> object:
    """The nearest ancestor's (or the workflow's) value of ``attribute.key``."""
    for ancestor in visit.ancestors():
        holder = getattr(ancestor.node, attribute)
        if holder is not None and getattr(holder, key) is not None:
            return getattr(holder, key)
    holder = getattr(workflow, attribute)
    return None if holder is None else getattr(holder, key)


def limit_excesses(visits: list[Visit], workflow: ir.Workflow) -> Iterator[Finding]:
    """Children whose permissions or budget exceed their parent's, and permissions that
    cannot be read."""
    if workflow.permissions is not None and workflow.permissions.commands and visits:
        # Pointed at from the document's top (the workflow is no node: a visit with no pointer).
        top = Visit(node=visits[0].node, pointer="", parent=None, field=None, index=None, depth=0)
        yield from _unreadable(top, workflow.permissions.commands)
    for visit in visits:
        node = visit.node
        for f in fields(ir.Budget):
            mine = None if node.budget is None else getattr(node.budget, f.name)
            theirs = _inherited(visit, workflow, "budget", f.name)
            if isinstance(mine, int | float) and isinstance(theirs, int | float) and mine > theirs:
                yield Finding(
                    visit=visit,
                    field=f"budget/{f.name}",
                    rule="budget",
                    message=f"budget.{f.name} {mine} exceeds the enclosing limit {theirs}",
                    hint=f"Lower it to at most {theirs}, or raise the parent's.",
                )
        yield from _permission_excesses(visit, workflow)


def _permission_excesses(visit: Visit, workflow: ir.Workflow) -> Iterator[Finding]:
    node = visit.node
    allowed_commands = _inherited(visit, workflow, "permissions", "commands")
    allowed_writes = _inherited(visit, workflow, "permissions", "writes")
    own = node.permissions
    if own is not None and own.commands is not None:
        yield from _unreadable(visit, own.commands)
        # No enclosing entry admits no command, so a child cannot grant itself any.
        allowed_commands = allowed_commands if isinstance(allowed_commands, tuple) else ()
        outers = permissions.readable(allowed_commands)
        for pattern, read in zip(own.commands, _read_each(own.commands), strict=True):
            if read is not None and not any(permissions.covers(o, read) for o in outers):
                yield Finding(
                    visit=visit,
                    field="permissions/commands",
                    rule="permissions",
                    message=f"permissions.commands {pattern!r} is wider than the enclosing "
                    f"permissions allow ({', '.join(allowed_commands) or 'none'})",
                    hint="A child may only narrow its parent's permissions.",
                )
    if own is not None and own.writes is not None and isinstance(allowed_writes, tuple):
        for pattern in own.writes:
            if not globs.covered_by_any(allowed_writes, pattern):
                yield Finding(
                    visit=visit,
                    field="permissions/writes",
                    rule="permissions",
                    message=f"permissions.writes {pattern!r} is outside the enclosing "
                    f"permissions ({', '.join(allowed_writes) or 'none'})",
                    hint="A child may only narrow its parent's permissions.",
                )
    writes_allowed = own.writes if own is not None and own.writes is not None else allowed_writes
    if node.writes and isinstance(writes_allowed, tuple):
        for pattern in node.writes:
            if not globs.covered_by_any(writes_allowed, pattern):
                yield Finding(
                    visit=visit,
                    field="writes",
                    rule="permissions",
                    message=f"writes {pattern!r} is outside permissions.writes "
                    f"({', '.join(writes_allowed) or 'none'})",
                    hint="Add it to permissions.writes, or narrow the write scope.",
                )
    if node.kind == "command":
        yield from _command_permission(visit, own, allowed_commands)


def _unreadable(visit: Visit, patterns: tuple[str, ...]) -> Iterator[Finding]:
    for index, pattern in enumerate(patterns):
        try:
            permissions.parse(pattern)
        except permissions.PatternError as exc:
            yield Finding(
                visit=visit,
                field=f"permissions/commands/{index}",
                rule="permissions",
                message=f"permissions.commands {pattern!r} {exc}, so it admits nothing",
                hint="Write the program, then one item per argument, as in a shell line: "
                "'git diff *', 'python -m pytest -q *' (see docs/validation.md).",
            )


def _read_each(patterns: tuple[str, ...]) -> list[permissions.Pattern | None]:
    found: list[permissions.Pattern | None] = []
    for pattern in patterns:
        try:
            found.append(permissions.parse(pattern))
        except permissions.PatternError:
            found.append(None)
    return found


def _command_permission(
    visit: Visit, own: ir.Permissions | None, inherited: object
) -> Iterator[Finding]:
    node = visit.node
    assert isinstance(node, ir.Command)
    yield from _cwd_outside(visit, node)
    allowed = own.commands if own is not None and own.commands is not None else inherited
    patterns: tuple[str, ...] = allowed if isinstance(allowed, tuple) else ()
    # Templated items are only known at run time, where the runner checks the rendered argv
    # again; here each stands for any one value, and some value must be admissible.
    argv = [None if is_template(item) else item for item in node.run]
    env = {k: None if is_template(v) else v for k, v in (node.env or {}).items()}
    line = " ".join("*" if item is None else shlex.quote(item) for item in argv)
    if not patterns:
        yield Finding(
            visit=visit,
            field="run",
            rule="permissions",
            message=f"command {node.id!r} runs {line!r}, but no permissions.commands admit "
            "any command",
            hint=f"Add an entry such as {_suggestion(node)!r} to permissions.commands.",
        )
        return
    why = permissions.refusal(argv, env, patterns)
    if why is None:
        return
    templated = " (templated items as *)" if None in argv else ""
    yield Finding(
        visit=visit,
        field="run",
        rule="permissions",
        message=f"command {node.id!r} runs {line!r}{templated}, which no permissions.commands "
        f"entry admits ({', '.join(repr(p) for p in patterns)}): {why}",
        hint=f"Add an entry such as {_suggestion(node)!r} to permissions.commands, spelling "
        "out each option it may take (see docs/validation.md).",
    )


def _suggestion(node: ir.Command) -> str:
    """An entry admitting the node's run: templated items as '*', and its program-selecting
    env entries spelled out."""
    assignments = [
        f"{name}={'*' if is_template(value) else shlex.quote(value)}"
        for name, value in (node.env or {}).items()
        if permissions.selects_program(name)
    ]
    items = ["*" if is_template(item) else shlex.quote(item) for item in node.run]
    return " ".join([*assignments, *items])


def _cwd_outside(visit: Visit, node: ir.Command) -> Iterator[Finding]:
    """A literal ``cwd`` that leaves the workspace; a symbolic link is caught at run time."""
    if node.cwd is None or is_template(node.cwd):
        return
    normal = posixpath.normpath(node.cwd)
    if posixpath.isabs(normal) or normal == ".." or normal.startswith("../"):
        yield Finding(
            visit=visit,
            field="cwd",
            rule="permissions",
            message=f"command {node.id!r} has cwd {node.cwd!r}, outside the workspace (or the "
            "worktree) it runs in",
            hint="Give a folder inside the workspace, relative to it.",
        )
