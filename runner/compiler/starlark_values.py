"""What a Starlark workflow file may hand to a builtin: JSON, and nothing JSON cannot hold.

starlark-pyo3 hands NaN and infinity to Python as ``None``, which a builtin reads as a field
left out; so ``float()`` refuses them where they are made, and number literals too large for a
float are found in the source text. Keys must be strings, and values at most ``MAX_DEPTH``
levels deep (deeper than any workflow needs, and shallow enough for recursive code after).
"""

from __future__ import annotations

import io
import json
import math
import re
import tokenize
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import orjson

from runner.errors import Diagnostic

MAX_DEPTH = 100
"""Deepest nesting of lists and dicts a builtin accepts."""


class NotJSONError(Exception):
    """A value a builtin was given that JSON cannot hold (raised inside the builtin, so that
    Starlark places it at the call)."""


def finite_float(*args: Any) -> float:
    """Starlark's ``float()``, refusing NaN and infinity: the document is JSON, and Starlark
    would hand them over as ``None``, silently dropping the field."""
    if not args:
        return 0.0
    if len(args) > 1 or not isinstance(args[0], int | float | str):
        raise NotJSONError("float() takes one number or string")
    value = float(args[0])
    if not math.isfinite(value):
        raise NotJSONError(f"float({args[0]!r}) is {value}, which is not a JSON number")
    return value


class _Refused(Exception):
    """A value ``_fast`` does not take: ``_explained`` says why."""


def plain(value: Any, where: str, depth: int) -> Any:
    """A builtin's argument as JSON (lists for tuples), or a NotJSONError saying why not."""
    try:
        return _fast(value, depth)
    except _Refused:
        return _explained(value, where, depth)


_SCALARS = (str, int, bool, type(None))


def _fast(value: Any, depth: int) -> Any:
    """``plain`` without building the place of every value, which only an error needs."""
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, dict):
        if depth > MAX_DEPTH:
            raise _Refused
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise _Refused
            out[key] = item if isinstance(item, _SCALARS) else _fast(item, depth + 1)
        return out
    if isinstance(value, list | tuple):
        if depth > MAX_DEPTH:
            raise _Refused
        return [item if isinstance(item, _SCALARS) else _fast(item, depth + 1) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        raise _Refused
    return value


def _explained(value: Any, where: str, depth: int) -> Any:
    if isinstance(value, dict):
        if depth > MAX_DEPTH:
            raise NotJSONError(f"{_field(where)} is nested more than {MAX_DEPTH} levels deep")
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise NotJSONError(
                    f"{where} has the key {key!r}, which is not a string; JSON keys are strings"
                )
            out[key] = _explained(item, f"{where}.{key}", depth + 1)
        return out
    if isinstance(value, list | tuple):
        if depth > MAX_DEPTH:
            raise NotJSONError(f"{_field(where)} is nested more than {MAX_DEPTH} levels deep")
        return [_explained(item, f"{where}[{i}]", depth + 1) for i, item in enumerate(value)]
    if isinstance(value, float) and not math.isfinite(value):
        raise NotJSONError(f"{where} is {value}, which is not a JSON number; give a finite one")
    return value


_BIG_EXPONENT = re.compile(r"[0-9.][eE]\+?[0-9]{3}")


def _field(where: str) -> str:
    """``leaf(): output`` of ``leaf(): output.a.a[0]``."""
    return re.split(r"[.\[]", where, maxsplit=1)[0]


def infinite_literals(display: str, text: str) -> list[Diagnostic]:
    """Number literals too large for a float (``1e999``): Starlark makes them infinity, which
    reaches Python as ``None`` and would silently drop the field."""
    if not _BIG_EXPONENT.search(text):
        return []
    found = []
    try:
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            if token.type == tokenize.NUMBER and not math.isfinite(_number(token.string)):
                line, col = token.start
                found.append(
                    Diagnostic(
                        file=display,
                        line=line,
                        col=col + 1,
                        rule="starlark",
                        message=f"{token.string} is too large for a number (it would be "
                        "infinity, which is not a JSON number)",
                    )
                )
    except (tokenize.TokenError, SyntaxError):  # Starlark reports its own syntax errors
        pass
    return found


def _number(literal: str) -> float:
    try:
        return float(literal.replace("_", ""))
    except ValueError:  # an integer literal, 0x..., or something Starlark will refuse
        return 0.0


_LONG_DIGITS = re.compile(r"[0-9]{19}")


class _ReadValues(dict[str, Any]):
    """The value of every JSON text read so far, by its text: a text read again (the same
    string, key or number given to another builtin, or to the next enclosing one) is one
    lookup in C, without a Python frame."""

    def __init__(self, standard: Callable[[str], Any]) -> None:
        super().__init__()
        self.standard = standard

    def __missing__(self, text: str) -> Any:
        if len(text) > 18 and _LONG_DIGITS.search(text):
            value = self.standard(text)  # maybe an integer beyond 64 bits: orjson reads a float
        else:
            try:
                value = orjson.loads(text)
            except orjson.JSONDecodeError:
                value = self.standard(text)
        if not isinstance(value, dict | list):  # only what cannot change is shared
            self[text] = value
        return value


@contextmanager
def values_read_once() -> Iterator[None]:
    """``json.loads`` answered from a table of the texts already read, while a file is
    evaluated (in the forked child).

    starlark-pyo3 hands a value to a builtin one scalar at a time, each as JSON text read by
    ``json.loads``, looked up at each call; a leaf's strings are read again by every builtin
    that encloses it. Each distinct text is read once, by orjson (several times faster than
    the standard library, and the same values); a text with 19 digits in a row, which may hold
    an integer beyond 64 bits, and anything orjson refuses, by the standard library. Only
    scalars are kept, so no two values share a list or a dict.
    """
    standard = json.loads
    json.loads = _ReadValues(standard).__getitem__  # type: ignore[assignment]  # a text in, its value out
    try:
        yield
    finally:
        json.loads = standard
