"""Strings that match a regular expression, built from its parse tree: what the mock answers
for a ``pattern`` in an output schema. Each choice (how many repeats, which branch) is asked of
a chooser, so a seeded chooser gives one string per seed."""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from typing import Any

# The parser `re.search` itself uses (private, 3.11+), so built strings follow the very syntax
# the validator applies; without it, patterns are only matched, never built from.
try:
    _PARSER: Any = importlib.import_module("re._parser")
except ImportError:  # pragma: no cover
    _PARSER = None
_PROBES = "a0A_-. ~zZ9"
_CATEGORIES: dict[str, Callable[[str], bool]] = {
    "DIGIT": str.isdecimal,
    "WORD": lambda char: char.isalnum() or char == "_",
    "SPACE": str.isspace,
}


class _Unsupported(Exception):
    """A pattern construct strings are not built for (lookarounds, backreferences...)."""


def pattern_text(pattern: str, choose: Callable[[int], int]) -> str | None:
    """A string ``pattern`` matches, built from its parse tree; None where that is not done."""
    out: list[str] = []
    try:
        _emit(_PARSER.parse(pattern), choose, out)
    except (_Unsupported, AttributeError, re.error):
        return None
    return "".join(out)


def _emit(items: Any, choose: Callable[[int], int], out: list[str]) -> None:
    for op, arg in items:
        name = op.name
        if name == "LITERAL":
            out.append(chr(arg))
        elif name in ("NOT_LITERAL", "ANY"):  # ANY's argument is None
            out.append(next(char for char in _PROBES if ord(char) != arg))
        elif name == "IN":
            out.append(_member(arg))
        elif name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            low, high, body = arg
            for _ in range(low + choose(min(high, low + 3) - low + 1)):
                _emit(body, choose, out)
        elif name in ("SUBPATTERN", "ATOMIC_GROUP"):
            _emit(arg[-1] if name == "SUBPATTERN" else arg, choose, out)
        elif name == "BRANCH":
            _emit(arg[1][choose(len(arg[1]))], choose, out)
        elif name != "AT":  # anchors match places, not characters
            raise _Unsupported(name)


def _member(items: Any) -> str:
    """A character of a class such as ``[a-z_]``, ``[^0-9]`` or ``\\d``."""
    negated = bool(items) and items[0][0].name == "NEGATE"
    named = [
        chr(arg if op.name == "LITERAL" else arg[0])
        for op, arg in items
        if op.name in ("LITERAL", "RANGE")
    ]
    for char in [*named, *_PROBES]:
        if any(_has(str(op.name), arg, char) for op, arg in items) != negated:
            return str(char)
    raise _Unsupported("class")


def _has(kind: str, arg: Any, char: str) -> bool:
    if kind in ("LITERAL", "RANGE"):
        low, high = (arg, arg) if kind == "LITERAL" else arg
        return bool(low <= ord(char) <= high)
    if kind == "CATEGORY":
        name = str(arg.name).removeprefix("CATEGORY_")
        test = _CATEGORIES.get(name.removeprefix("NOT_"))
        if test is None:
            raise _Unsupported(name)
        return test(char) != name.startswith("NOT_")
    if kind != "NEGATE":
        raise _Unsupported(kind)
    return False
