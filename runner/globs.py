"""Segment-aware path globs for write scopes: do two scopes meet, does one contain another.

A pattern is a repository-relative path whose ``/``-separated segments may use ``*``, ``?`` and
``[...]`` as in :mod:`fnmatch`; a segment that is exactly ``**`` stands for zero or more whole
segments. Scopes are directories: a pattern covers every path it matches and everything below.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import NamedTuple, TypeAlias, TypeVar

GLOBSTAR = "**"

_T = TypeVar("_T")
_State: TypeAlias = tuple[int, int]


class _Chars(NamedTuple):
    """The characters one non-star token accepts: a union of ranges, possibly complemented."""

    negated: bool
    ranges: tuple[tuple[str, str], ...]

    def has(self, char: str) -> bool:
        # A path segment never contains the separator, whatever a negated class says.
        return char != "/" and any(lo <= char <= hi for lo, hi in self.ranges) != self.negated


_ANY = _Chars(True, ())
_Token: TypeAlias = _Chars | None  # None is `*`


def split(pattern: str) -> tuple[str, ...]:
    """The normalised segments of ``pattern``; ``.`` and the empty pattern give ``()``."""
    return tuple(segment for segment in pattern.split("/") if segment not in ("", "."))


def overlaps(a: str, b: str) -> bool:
    """True when some path is covered by both patterns."""
    return _meet(split(a), split(b), GLOBSTAR, _segments_meet, _segment_viable, prefix=True)


def covers(outer: str, inner: str) -> bool:
    """True when every path covered by ``inner`` is covered by ``outer`` (sound; may say False)."""
    return _within(split(inner), split(outer), GLOBSTAR, _segment_within, prefix=True)


def covered_by_any(outers: Iterable[str], inner: str) -> bool:
    """True when one of ``outers`` covers ``inner``."""
    return any(covers(outer, inner) for outer in outers)


def any_overlap(a: Iterable[str], b: Iterable[str]) -> tuple[str, str] | None:
    """The first pair ``(x, y)`` with ``x`` from ``a`` and ``y`` from ``b`` that overlap."""
    others = list(b)
    for x in a:
        for y in others:
            if overlaps(x, y):
                return x, y
    return None


def _reachable(
    moves: Callable[[int, int], Iterator[_State]], accept: Callable[[int, int], bool]
) -> bool:
    seen: set[_State] = {(0, 0)}
    stack: list[_State] = [(0, 0)]
    while stack:
        i, j = stack.pop()
        if accept(i, j):
            return True
        for state in moves(i, j):
            if state not in seen:
                seen.add(state)
                stack.append(state)
    return False


def _meet(
    a: Sequence[_T],
    b: Sequence[_T],
    star: _T,
    meet: Callable[[_T, _T], bool],
    viable: Callable[[_T], bool],
    *,
    prefix: bool,
) -> bool:
    # Product automaton over token positions; the same search serves characters within a
    # segment (star `*`) and segments within a path (star `**`).
    def moves(i: int, j: int) -> Iterator[_State]:
        a_star = i < len(a) and a[i] == star
        b_star = j < len(b) and b[j] == star
        if a_star:
            yield i + 1, j
        if b_star:
            yield i, j + 1
        if i == len(a) or j == len(b) or (a_star and b_star):
            return
        if a_star:
            if viable(b[j]):
                yield i, j + 1
        elif b_star:
            if viable(a[i]):
                yield i + 1, j
        elif meet(a[i], b[j]):
            yield i + 1, j + 1

    def accept(i: int, j: int) -> bool:
        if not prefix:
            return i == len(a) and j == len(b)
        # Directory scope: once one pattern has matched a path, any path the other can still
        # reach below it is covered by both.
        return (i == len(a) and all(map(viable, b[j:]))) or (
            j == len(b) and all(map(viable, a[i:]))
        )

    return _reachable(moves, accept)


def _within(
    inner: Sequence[_T],
    outer: Sequence[_T],
    star: _T,
    within: Callable[[_T, _T], bool],
    *,
    prefix: bool,
) -> bool:
    # Sound simulation: each outer token must absorb a run of inner tokens; an outer star absorbs
    # any run (inner stars included), any other outer token exactly one non-star inner token.
    def moves(i: int, j: int) -> Iterator[_State]:
        if i < len(outer) and outer[i] == star:
            yield i + 1, j
            if j < len(inner):
                yield i, j + 1
        elif i < len(outer) and j < len(inner) and inner[j] != star and within(inner[j], outer[i]):
            yield i + 1, j + 1

    return _reachable(moves, lambda i, j: i == len(outer) and (prefix or j == len(inner)))


@functools.lru_cache(maxsize=4096)
def _tokens(segment: str) -> tuple[_Token, ...]:
    out: list[_Token] = []
    i = 0
    while i < len(segment):
        char = segment[i]
        i += 1
        if char == "*":
            if not out or out[-1] is not None:  # `**` inside a longer segment is just `*`
                out.append(None)
        elif char == "?":
            out.append(_ANY)
        elif char == "[" and (end := _class_end(segment, i)) > 0:
            out.append(_parse_class(segment[i:end]))
            i = end + 1
        else:
            out.append(_Chars(False, ((char, char),)))
    return tuple(out)


def _class_end(segment: str, start: int) -> int:
    # As in fnmatch: a `]` right after `[` or `[!` is a member; no closing `]` makes `[` literal.
    j = start + 1 if segment.startswith("!", start) else start
    return segment.find("]", j + 1)


def _parse_class(body: str) -> _Chars:
    negated = body.startswith("!")
    body = body[1:] if negated else body
    ranges: list[tuple[str, str]] = []
    k = 0
    while k < len(body):
        if k + 2 < len(body) and body[k + 1] == "-":
            ranges.append((body[k], body[k + 2]))  # a reversed range is empty, as in fnmatch
            k += 3
        else:
            ranges.append((body[k], body[k]))
            k += 1
    return _Chars(negated, tuple(ranges))


def _candidates(*tokens: _Chars) -> set[str]:
    # Every set involved is a union of ranges, and so is any intersection or difference of them;
    # a non-empty one contains the start of one of its ranges, which is the character 0, `0`
    # (just past `/`), or the low end of some range or one past its high end. Testing those
    # characters therefore decides emptiness exactly.
    found = {"\0", "0"}
    for token in tokens:
        for lo, hi in token.ranges:
            found.add(lo)
            if ord(hi) < 0x10FFFF:
                found.add(chr(ord(hi) + 1))
    return found


def _chars(token: _Token) -> _Chars:
    return _ANY if token is None else token


def _chars_meet(x: _Token, y: _Token) -> bool:
    cx, cy = _chars(x), _chars(y)
    return any(cx.has(c) and cy.has(c) for c in _candidates(cx, cy))


def _chars_viable(x: _Token) -> bool:
    cx = _chars(x)
    return any(cx.has(c) for c in _candidates(cx))


def _chars_within(x: _Token, y: _Token) -> bool:
    cx, cy = _chars(x), _chars(y)
    return all(cy.has(c) for c in _candidates(cx, cy) if cx.has(c))


@functools.lru_cache(maxsize=4096)
def _segments_meet(a: str, b: str) -> bool:
    return _meet(_tokens(a), _tokens(b), None, _chars_meet, _chars_viable, prefix=False)


def _segment_viable(segment: str) -> bool:
    return all(map(_chars_viable, _tokens(segment)))


@functools.lru_cache(maxsize=4096)
def _segment_within(inner: str, outer: str) -> bool:
    return _within(_tokens(inner), _tokens(outer), None, _chars_within, prefix=False)
