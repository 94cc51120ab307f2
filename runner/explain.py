"""Failures of templates and expressions in the workflow's own words, pure: which name is
undefined and the nearest one that is, and what the two sides of a failed comparison were.

Jinja says ``'dict object' has no attribute 'winer'``; a workflow author needs the path they
wrote (``outputs.best.winer``), what that path reached (``outputs.best``) and the key they
probably meant (``winner``).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Collection, Mapping
from typing import Any

from jinja2 import nodes
from jinja2.exceptions import UndefinedError
from jinja2.utils import missing

SHOWN = 80
"""Longest a value is shown in a message; longer ones are cut with an ellipsis."""

LISTED = 8
"""Most keys listed when none is near the missing one."""

OPERATORS = {
    "eq": "==",
    "ne": "!=",
    "lt": "<",
    "lteq": "<=",
    "gt": ">",
    "gteq": ">=",
    "in": "in",
    "notin": "not in",
}
"""Jinja's names of the comparison operators, as they are written."""


class Missing(UndefinedError):
    """A strict undefined value used: what it was read from, and under which name."""

    def __init__(self, message: str | None = None, *, obj: Any = missing, name: Any = None):
        super().__init__(message)
        self.obj = obj
        self.name = name


def shown(value: Any, redact: Callable[[str], str] = str) -> str:
    """``value`` as a message shows it: its literal, without secrets (``redact``, applied
    before the cut so that no part of a secret is left), cut at SHOWN characters."""
    text = redact(repr(value))
    return text if len(text) <= SHOWN else text[: SHOWN - 1] + "…"


def nearest(name: str, choices: Collection[str]) -> str | None:
    """The choice ``name`` is most likely a misspelling of, if one is close."""
    close = difflib.get_close_matches(name, sorted(choices), n=1, cutoff=0.6)
    return close[0] if close else None


def undefined(exc: Missing, tree: nodes.Node, names: Collection[str]) -> str:
    """Why ``exc`` was raised by the template or expression ``tree``, whose scope defines
    ``names``: the undefined path, what it reached, and the nearest defined key or name."""
    if exc.obj is missing:
        message = f"`{exc.name}` is undefined"
        near = nearest(str(exc.name), names)
        return f"{message}; did you mean `{near}`?" if near else message
    path = _path_to(tree, exc.name)
    base = path.rpartition(".")[0] if path and path.endswith(f".{exc.name}") else None
    if path and base is None and path.endswith("]"):
        base = path[: path.rindex("[")]
    written = f"`{path}`" if path else f"`{exc.name}`"
    reached = f"`{base}`" if base else "the value"
    return f"{written} is undefined: {_lacks(reached, exc.obj, exc.name)}"


def _lacks(reached: str, obj: Any, name: Any) -> str:
    if isinstance(obj, Mapping):
        keys = [key for key in obj if isinstance(key, str)]
        lacks = f"{reached} has no `{name}`"
        near = nearest(name, keys) if isinstance(name, str) else None
        if near:
            return f"{lacks}; did you mean `{near}`?"
        if not keys:
            return f"{lacks} (it is empty)"
        listed = ", ".join(f"`{key}`" for key in sorted(keys)[:LISTED])
        more = ", ..." if len(keys) > LISTED else ""
        return f"{lacks} (it has {listed}{more})"
    if isinstance(obj, list | tuple) and isinstance(name, int):
        if not obj:
            return f"{reached} is an empty list"
        return f"{reached} has {len(obj)} items, indexes 0 to {len(obj) - 1}"
    kind = {str: "text", list: "a list", tuple: "a list", bool: "a boolean"}.get(type(obj))
    kind = kind or ("a number" if isinstance(obj, int | float) else type(obj).__name__)
    return f"{reached} is {kind}, which has no `{name}`"


def _path_to(tree: nodes.Node, name: Any) -> str | None:
    """The path written in ``tree`` that reads ``name`` from something (``outputs.best.winer``)."""
    reads = (nodes.Getattr, nodes.Getitem)
    for node in [tree, *tree.find_all(reads)]:  # find_all leaves out the tree itself
        if not isinstance(node, nodes.Getattr | nodes.Getitem):
            continue
        key = node.attr if isinstance(node, nodes.Getattr) else _constant(node.arg)
        if key == name and not isinstance(key, bool):
            path = _path(node)
            if path is not None:
                return path
    return None


def _constant(node: nodes.Node) -> Any:
    return node.value if isinstance(node, nodes.Const) else None


def _path(node: nodes.Node) -> str | None:
    """A dotted path as written, for a name read through constant keys; else ``None``."""
    if isinstance(node, nodes.Name):
        return node.name
    if isinstance(node, nodes.Getattr):
        base = _path(node.node)
        return None if base is None else f"{base}.{node.attr}"
    if isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
        base = _path(node.node)
        key = node.arg.value
        if base is None:
            return None
        if isinstance(key, str) and key.isidentifier():
            return f"{base}.{key}"
        return f"{base}[{key!r}]"
    return None


def comparison(
    tree: nodes.Node, side: Callable[[nodes.Expr], Any], redact: Callable[[str], str] = str
) -> str | None:
    """What a failed comparison at the top of ``tree`` compared (``1 == 0``), each side
    evaluated by ``side``; ``None`` when ``tree`` is no comparison."""
    if not isinstance(tree, nodes.Compare):
        return None
    parts = [shown(side(tree.expr), redact)]
    for operand in tree.ops:
        parts.append(OPERATORS.get(operand.op, operand.op))
        parts.append(shown(side(operand.expr), redact))
    return " ".join(parts)
