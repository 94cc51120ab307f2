"""How large a single template or expression operation may make its result.

One operation of the sandbox runs in C and cannot be interrupted (``'a' * 10**9``,
``'%999999999d' % 1``, ``indent(10**9)``), so its size is checked before it runs: text at most
``MAX_TEXT`` characters, a list at most ``MAX_ITEMS`` items, an integer at most ``MAX_INT_BITS``
bits; a width, count or length given to a filter or a string method at most ``MAX_TEXT``. The
rendered text of a whole template is held to ``MAX_TEXT`` too. What grows step by step, or
takes long, is the watchdog's (``runner.watchdog``).

A list may hold the same list many times (``[x, x]`` doubled in a loop): small in memory, huge
once printed or written as JSON, which happens in C. So a value is weighed (``weigh``: its
characters and items, each repeat counted) before it is printed, joined, summed or returned.
"""

from __future__ import annotations

import functools
import inspect
import operator
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sized
from typing import Any, TypeGuard

MAX_TEXT = 10_000_000
"""Longest text (characters) one operation, or one whole template, may make."""
MAX_ITEMS = 1_000_000
"""Most items one operation may put in a list."""
MAX_VALUE = 100_000_000
"""Largest value (in characters of its JSON) an expression may return: outputs are stored."""
MAX_INT_BITS = 1_000_000
"""Largest integer (in bits, about 300,000 digits) one operation may make."""


class LimitError(Exception):
    """An operation that would build something larger than the limits allow."""


def _too_long(what: str, size: int) -> LimitError:
    return LimitError(f"{what} would make {size:,} characters, more than the limit of {MAX_TEXT:,}")


def _too_many(what: str, size: int) -> LimitError:
    return LimitError(f"{what} would make {size:,} items, more than the limit of {MAX_ITEMS:,}")


def weigh(value: Any) -> int:
    """About how many characters ``value`` makes printed: every repeat of a shared part
    counted, each distinct part visited once."""
    if not _is_container(value):
        return len(value) if isinstance(value, str) else 1
    weights: dict[int, int] = {}
    pending: list[tuple[Any, bool]] = [(value, False)]
    while pending:
        node, ready = pending.pop()
        if ready:
            weights[id(node)] = 2 + sum(
                2 + (weights[id(part)] if _is_container(part) else weigh(part))
                for part in _children(node)
            )
        elif id(node) not in weights:
            pending.append((node, True))
            pending.extend(
                (part, False)
                for part in _children(node)
                if _is_container(part) and id(part) not in weights
            )
    return weights[id(value)]


def _is_container(value: Any) -> bool:
    return isinstance(value, list | tuple | dict)


def _children(node: Any) -> Iterable[Any]:
    return [*node.keys(), *node.values()] if isinstance(node, dict) else node


def check_weight(what: str, value: Any, limit: int = MAX_TEXT) -> None:
    """Fail when ``value`` printed would pass ``limit`` characters."""
    if isinstance(value, list | tuple | dict):
        weight = weigh(value)
        if weight > limit:
            raise LimitError(
                f"{what} would make {weight:,} characters, more than the limit of {limit:,}"
            )


def _width(what: str, value: Any) -> None:
    if isinstance(value, int) and value > MAX_TEXT:
        raise LimitError(f"{what} {value:,} is more than the limit of {MAX_TEXT:,}")


# -- binary operators ------------------------------------------------------------------------

_OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "*": operator.mul,
    "**": operator.pow,
    "%": operator.mod,
    "+": operator.add,
}
INTERCEPTED = frozenset(_OPERATORS)
"""The binary operators the sandbox hands to ``binop``."""


def binop(op: str, left: Any, right: Any) -> Any:
    """``left op right``, once its result is known to fit."""
    if op == "*":
        _check_product(left, right)
    elif op == "**":
        if _is_int(left) and _is_int(right) and right > 0 and abs(left) > 1:
            bits = left.bit_length() * right
            if bits > MAX_INT_BITS:
                raise LimitError(
                    f"{left} ** {right} would make a number of about {bits:,} bits, more than "
                    f"the limit of {MAX_INT_BITS:,}"
                )
    elif op == "%":
        if isinstance(left, str):
            check_percent_format(left, right)
    elif op == "+":
        if isinstance(left, str) and isinstance(right, str):
            if len(left) + len(right) > MAX_TEXT:
                raise _too_long("+", len(left) + len(right))
        elif (
            isinstance(left, list | tuple)
            and isinstance(right, list | tuple)
            and len(left) + len(right) > MAX_ITEMS
        ):
            raise _too_many("+", len(left) + len(right))
    return _OPERATORS[op](left, right)


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_product(left: Any, right: Any) -> None:
    if _is_int(left) and _is_int(right):
        bits = left.bit_length() + right.bit_length()
        if bits > MAX_INT_BITS:
            raise LimitError(
                f"the product would make a number of about {bits:,} bits, more than the limit "
                f"of {MAX_INT_BITS:,}"
            )
        return
    if _is_int(left):
        left, right = right, left
    if not _is_int(right) or right <= 0:
        return
    if isinstance(left, str) and len(left) * right > MAX_TEXT:
        raise _too_long("repeating a text", len(left) * right)
    if isinstance(left, list | tuple) and len(left) * right > MAX_ITEMS:
        raise _too_many("repeating a list", len(left) * right)


# -- format strings --------------------------------------------------------------------------

_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")
_DIGITS = re.compile(r"\d+")


def check_percent_format(text: str, args: Any) -> None:
    """A ``%`` format whose widths and precisions fit (``*`` takes them from the arguments)."""
    if "%" not in text:
        return
    for arg in args if isinstance(args, tuple) else (args,):
        check_weight("formatting", arg)
    starred = False
    for found in _PERCENT_SPEC.finditer(text):
        for number in found.groups():
            if number == "*":
                starred = True
            elif number is not None:
                _width("a format width", int(number))
    if starred:
        for arg in args if isinstance(args, tuple) else (args,):
            _width("a format width", arg)


def check_brace_format(text: str, args: Iterable[Any]) -> None:
    """A ``str.format`` whose widths and precisions fit (nested fields take them from the
    arguments)."""
    nested = False
    for spec in re.findall(r":([^{}]*(?:\{[^{}]*\}[^{}]*)*)\}", text):
        nested = nested or "{" in spec
        for number in _DIGITS.findall(spec):
            _width("a format width", int(number))
    if nested:
        for arg in args:
            _width("a format width", arg)


# -- string methods called from a template ---------------------------------------------------


def check_method(method: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    """Check a call of a ``str`` method whose result size its arguments decide."""
    # The sandbox hands out str.format wrapped, its method kept as __wrapped__.
    method = getattr(method, "__wrapped__", method)
    owner = getattr(method, "__self__", None)
    if not isinstance(owner, str):
        return
    name = getattr(method, "__name__", "")
    if name in ("ljust", "rjust", "center", "zfill"):
        width = args[0] if args else kwargs.get("width", 0)
        _width(f"the width of {name}()", width)
    elif name == "expandtabs":
        size = args[0] if args else kwargs.get("tabsize", 8)
        if _is_int(size) and owner.count("\t") * size + len(owner) > MAX_TEXT:
            raise _too_long("expandtabs()", owner.count("\t") * size + len(owner))
    elif name == "replace" and len(args) >= 2:
        _check_replace(owner, args[0], args[1], args[2] if len(args) > 2 else -1)
    elif name in ("format", "format_map"):
        values = [*args, *kwargs.values()]
        if name == "format_map" and args and isinstance(args[0], Mapping):
            values = list(args[0].values())
        for value in values:
            check_weight(f"{name}()", value)
        check_brace_format(owner, values)
    elif name == "join" and args:
        _check_join(owner, args[0])


def _check_replace(text: str, old: Any, new: Any, count: Any) -> None:
    if not (isinstance(old, str) and isinstance(new, str)) or len(new) <= len(old):
        return
    times = text.count(old) if old else len(text) + 1
    if _is_int(count) and count >= 0:
        times = min(times, count)
    size = len(text) + times * (len(new) - len(old))
    if size > MAX_TEXT:
        raise _too_long("replace()", size)


def _check_join(separator: str, items: Any) -> None:
    if separator and isinstance(items, Sized) and len(separator) * len(items) > MAX_TEXT:
        raise _too_long("join()", len(separator) * len(items))


# -- filters ---------------------------------------------------------------------------------


def _indent(bound: dict[str, Any]) -> None:
    text, width = str(bound.get("s", "")), bound.get("width", 4)
    step = len(width) if isinstance(width, str) else width
    if _is_int(step) and len(text) + (text.count("\n") + 1) * step > MAX_TEXT:
        raise _too_long("indent", len(text) + (text.count("\n") + 1) * step)


def _format(bound: dict[str, Any]) -> None:
    check_percent_format(str(bound.get("value", "")), tuple(bound.get("args", ())))


def _wordwrap(bound: dict[str, Any]) -> None:
    _width("the width of wordwrap", bound.get("width", 79))
    text, wrap = str(bound.get("s", "")), bound.get("wrapstring") or "\n"
    width = bound.get("width", 79)
    if _is_int(width) and width > 0 and isinstance(wrap, str):
        size = len(text) + (len(text) // width + 1) * len(wrap)
        if size > MAX_TEXT:
            raise _too_long("wordwrap", size)


def _replace(bound: dict[str, Any]) -> None:
    _check_replace(str(bound.get("s", "")), bound.get("old"), bound.get("new"), bound.get("count"))


def _truncate(bound: dict[str, Any]) -> None:
    length, end = bound.get("length", 255), bound.get("end", "...")
    if _is_int(length) and isinstance(end, str) and length < len(end):
        raise LimitError(
            f"truncate's length {length} is shorter than its end {end!r}; give a length of at "
            f"least {len(end)}"
        )
    leeway = bound.get("leeway")
    if _is_int(leeway) and leeway < 0:
        raise LimitError(f"truncate's leeway {leeway} is negative; give 0 or more")


def _count(argument: str, fill: str | None = None) -> Callable[[dict[str, Any]], None]:
    def check(bound: dict[str, Any]) -> None:
        value = bound.get(argument)
        if _is_int(value) and value > MAX_ITEMS and (fill is None or bound.get(fill) is not None):
            raise _too_many(f"{argument} {value:,}", value)

    return check


def _join(bound: dict[str, Any]) -> None:
    separator = bound.get("d", "")
    if not isinstance(bound.get("value"), Sized):  # a generator: count what it gives
        bound["value"] = list(bound.get("value") or ())
    if isinstance(separator, str) and separator:
        _check_join(separator, bound["value"])
    if bound.get("attribute") is None:
        for item in bound["value"]:
            check_weight("join", item)


def _sum(bound: dict[str, Any]) -> None:
    start = bound.get("start", 0)
    if not isinstance(start, list | tuple | str):
        return
    items = list(bound.get("iterable") or ())
    bound["iterable"] = items
    size = len(start) + sum(len(item) for item in items if isinstance(item, Sized))
    limit = MAX_TEXT if isinstance(start, str) else MAX_ITEMS
    if size > limit:
        raise _too_many("sum", size) if limit == MAX_ITEMS else _too_long("sum", size)


def _printed(what: str) -> Callable[[dict[str, Any]], None]:
    def check(bound: dict[str, Any]) -> None:
        for value in bound.values():  # the printed value, whatever the filter names it
            check_weight(what, value)

    return check


def _tojson(bound: dict[str, Any]) -> None:
    _width("the indent of tojson", bound.get("indent"))
    check_weight("tojson", bound.get("value"))


_FILTER_CHECKS: dict[str, Callable[[dict[str, Any]], None]] = {
    "center": lambda bound: _width("the width of center", bound.get("width", 80)),
    "indent": _indent,
    "format": _format,
    "wordwrap": _wordwrap,
    "replace": _replace,
    "truncate": _truncate,
    "batch": _count("linecount", "fill_with"),
    "slice": _count("slices"),
    "tojson": _tojson,
    "join": _join,
    "sum": _sum,
    "string": _printed("string"),
    "pprint": _printed("pprint"),
}


def checked_filters(filters: Mapping[str, Callable[..., Any]]) -> Iterator[tuple[str, Any]]:
    """The filters whose result size their arguments decide, each checking them first."""
    for name, check in _FILTER_CHECKS.items():
        if name in filters:
            yield name, _checked(filters[name], check)


def _checked(function: Callable[..., Any], check: Callable[[dict[str, Any]], None]) -> Any:
    signature = inspect.signature(function)

    @functools.wraps(function)  # keeps Jinja's pass_context/pass_environment marks
    def filter_(*args: Any, **kwargs: Any) -> Any:
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError:
            return function(*args, **kwargs)  # let the filter say what is wrong
        bound.apply_defaults()
        check(bound.arguments)  # may replace an argument, e.g. a generator by its list
        return function(*bound.args, **bound.kwargs)

    return filter_
