"""JSON text from users, read strictly: only what every JSON reader and writer agrees on.

Python's reader accepts ``NaN`` and ``Infinity``, reads ``1e999`` as infinity, keeps lone
surrogates (``"\\ud800"``) that no UTF-8 output can carry, and recurses once per nesting
level. :func:`parse_json` refuses each of these with one sentence, so that a workflow file or
an ``--input`` value never reaches the later stages (hashing, storing, printing) holding one.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

MAX_DEPTH = 100
"""Deepest nesting of lists and mappings: every later stage walks values recursively, and a
workflow's 32 levels of nodes need about 70."""

TOO_DEEP = f"nests lists and mappings more than {MAX_DEPTH} levels deep"
"""Completes "the document ..." or "the value ..."."""

_SURROGATE = re.compile("[\ud800-\udfff]")


class JSONProblem(ValueError):
    """JSON text that cannot be used; ``message`` is one phrase, ``hint`` how to fix it."""

    def __init__(
        self, message: str, hint: str, *, line: int | None = None, col: int | None = None
    ) -> None:
        self.message = message
        self.hint = hint
        self.line = line
        self.col = col
        super().__init__(message)


def parse_json(text: str) -> Any:
    """The value of ``text``; JSONProblem for invalid JSON or a value that must not be used."""

    def reject(constant: str) -> Any:
        raise JSONProblem(f"{constant} is not a JSON number", "Use a finite number.")

    def finite(digits: str) -> float:
        number = float(digits)
        if not math.isfinite(number):  # 1e999 is read as infinity
            raise JSONProblem(f"{digits} is too large for a JSON number", "Use a finite number.")
        return number

    try:
        value = json.loads(text, parse_constant=reject, parse_float=finite)
    except json.JSONDecodeError as exc:
        raise JSONProblem(
            f"invalid JSON: {exc.msg}",
            "Check the commas, quotes and brackets around this place.",
            line=exc.lineno,
            col=exc.colno,
        ) from exc
    except JSONProblem:
        raise
    except ValueError as exc:  # Python's guard against slow conversion of huge integers
        raise JSONProblem(
            "a number has more than 4300 digits", "Use a number of at most 4300 digits."
        ) from exc
    except RecursionError as exc:
        raise JSONProblem(f"the value {TOO_DEEP}", "Flatten it.") from exc
    problem = value_problem(value)
    if problem is not None:
        raise JSONProblem(*problem)
    return value


def value_problem(data: Any) -> tuple[str, str] | None:
    """What a JSON value must not hold: nesting past MAX_DEPTH, lone surrogates. (message,
    hint), or None."""
    pending: list[tuple[Any, int]] = [(data, 0)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, dict | list) and depth >= MAX_DEPTH:
            return f"the value {TOO_DEEP}", "Flatten it."
        if isinstance(value, dict):
            pending.extend((key, depth + 1) for key in value)
            pending.extend((item, depth + 1) for item in value.values())
        elif isinstance(value, list):
            pending.extend((item, depth + 1) for item in value)
        elif isinstance(value, str) and has_lone_surrogate(value):
            return lone_surrogate(value)
    return None


def has_lone_surrogate(text: str) -> bool:
    """Whether ``text`` holds a code point that UTF-8 cannot encode."""
    return _SURROGATE.search(text) is not None


def escape_surrogates(text: str) -> str:
    """``text`` with each lone surrogate written as ``\\udcxx``, so that it can be printed."""
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def lone_surrogate(value: str) -> tuple[str, str]:
    """(message, hint) for a string holding a lone surrogate."""
    return (
        f'the string "{escape_surrogates(value)[:60]}" holds a lone surrogate, which is not '
        "a character",
        "Write a character outside the BMP as it is, or escaped as a pair (\\ud83d\\ude00).",
    )
