"""Hostile variants of valid documents, generated the same way on every run.

A variant is a :class:`Variant`: a readable id, the bytes of the file, and whether the input is
certainly invalid (so the command must exit 2) or only strange (so it must merely not crash).
Structural variants change one place of a parsed document (drop a field, swap its type, put a
number JSON cannot hold there, ...); byte variants damage the file itself (truncated, not UTF-8,
empty, ...). Which places are changed is a fixed spread over the document, not a random draw.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import yaml

_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
Path_ = tuple[str | int, ...]

HUGE_INT = 10**40
LONG = "x" * 100_000
CONTROL = "\x00\x07\x1b[31m\x7f"
SURROGATE = "\ud800"
E999 = "__1e999__"
"""Stands for the JSON number ``1e999`` (no float spells it) until the text is written."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Variant:
    """One hostile file."""

    id: str
    """Names the case in a test report."""
    data: bytes
    """The file's contents."""
    bad: bool
    """Whether it is certainly invalid (exit 2), rather than only unusual."""


def nested(depth: int) -> Any:
    """A list nested ``depth`` deep."""
    value: Any = []
    for _ in range(depth):
        value = [value]
    return value


# name -> (replacement for the value at a place, certainly invalid wherever it is put)
VALUES: dict[str, tuple[Callable[[Any], Any], bool]] = {
    "null": (lambda _old: None, False),
    "int": (lambda _old: 7, False),
    "negative": (lambda _old: -1, False),
    "string": (lambda _old: "x", False),
    "empty_string": (lambda _old: "", False),
    "list": (lambda _old: [], False),
    "dict": (lambda _old: {}, False),
    "bool": (lambda _old: True, False),
    "float": (lambda _old: 0.5, False),
    "huge_int": (lambda _old: HUGE_INT, False),
    "nan": (lambda _old: math.nan, True),
    "inf": (lambda _old: math.inf, True),
    "minus_inf": (lambda _old: -math.inf, True),
    "long_string": (lambda _old: LONG, False),
    "control_chars": (lambda _old: CONTROL, False),
    "lone_surrogate": (lambda _old: SURROGATE, True),
    "deep_list": (lambda _old: nested(200), False),
    "wrapped_in_list": (lambda old: [old], False),
    "int_key": (lambda old: {1: old}, True),
    "e999": (lambda _old: E999, True),
}
"""How the value at one place is replaced."""


def places(document: Any) -> list[Path_]:
    """Every place in a document (each dict value and list item), in document order."""
    found: list[Path_] = []

    def walk(value: Any, path: Path_) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                found.append((*path, key))
                walk(item, (*path, key))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                found.append((*path, index))
                walk(item, (*path, index))

    walk(document, ())
    return found


def spread(items: list[Path_], count: int) -> list[Path_]:
    """``count`` items evenly spread over ``items`` (all of them when there are fewer)."""
    if len(items) <= count:
        return items
    step = len(items) / count
    return [items[int(i * step)] for i in range(count)]


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _parent(document: Any, path: Path_) -> Any:
    node = document
    for token in path[:-1]:
        node = node[token]
    return node


def replaced(document: Any, path: Path_, make: Callable[[Any], Any]) -> Any:
    """A copy of ``document`` with the value at ``path`` replaced by ``make(old)``."""
    copy = _copy(document)
    parent = _parent(copy, path)
    parent[path[-1]] = make(parent[path[-1]])
    return copy


def dropped(document: Any, path: Path_) -> Any:
    """A copy of ``document`` without the field or item at ``path``."""
    copy = _copy(document)
    del _parent(copy, path)[path[-1]]
    return copy


def added(document: Any, path: Path_, key: Any, value: Any) -> Any:
    """A copy of ``document`` whose dict at ``path`` has one more entry."""
    copy = _copy(document)
    node = copy
    for token in path:
        node = node[token]
    node[key] = value
    return copy


def label(path: Path_) -> str:
    """A place as a short readable id."""
    return "/".join(str(token) for token in path) or "root"


def to_yaml(document: Any) -> bytes:
    """The document as YAML (escaped, so a lone surrogate is written as ``\\uD800``)."""
    try:
        text = yaml.dump(document, Dumper=_DUMPER, sort_keys=False, width=1000)
    except UnicodeEncodeError:  # the C emitter cannot escape a lone surrogate; Python's can
        text = yaml.safe_dump(document, sort_keys=False, allow_unicode=False, width=1000)
    return text.encode()


def to_json(document: Any) -> bytes:
    """The document as JSON text, with ``NaN``/``Infinity`` and ``1e999`` spelled as such."""
    text = json.dumps(document, ensure_ascii=True, indent=1)
    return text.replace(f'"{E999}"', "1e999").encode()


def structural(
    name: str,
    document: Any,
    dump: Callable[[Any], bytes],
    *,
    count: int,
    required: set[str],
    json_text: bool = False,
) -> Iterator[Variant]:
    """Variants of ``document`` changed at one place each: every top-level field dropped and
    retyped, then ``count`` places spread over the whole document, each with a few of
    :data:`VALUES` in turn (so every kind of value lands somewhere)."""
    # JSON has no non-string keys (they would be written as strings), but has 1e999.
    skip = {"int_key"} if json_text else {"e999"}
    kinds = [kind for kind in VALUES if kind not in skip]
    retypes = ("null", "int", "list", "string", "dict", "bool")
    for position, key in enumerate(document):
        yield Variant(
            id=f"{name}:drop:{key}", data=dump(dropped(document, (key,))), bad=key in required
        )
        for kind in (retypes[position % 6], retypes[(position + 3) % 6]):
            make, bad = VALUES[kind]
            yield Variant(
                id=f"{name}:{kind}:{key}",
                data=dump(replaced(document, (key,), make)),
                bad=bad or (key in required and key != "name") or key == "steps",
            )
    deep = [path for path in places(document) if len(path) > 1]
    for index, path in enumerate(spread(deep, count)):
        for offset in range(3):
            kind = kinds[(index * 3 + offset) % len(kinds)]
            make, bad = VALUES[kind]
            yield Variant(
                id=f"{name}:{kind}:{label(path)}",
                data=dump(replaced(document, path, make)),
                bad=bad,
            )
        if isinstance(path[-1], str) and index % 2 == 0:
            yield Variant(
                id=f"{name}:drop:{label(path)}", data=dump(dropped(document, path)), bad=False
            )
    for path in spread([p for p in places(document) if isinstance(_at(document, p), dict)], 6):
        yield Variant(
            id=f"{name}:unknown_field:{label(path)}",
            data=dump(added(document, path, "zz_unknown_field", 1)),
            bad=False,
        )
        if not json_text:
            yield Variant(
                id=f"{name}:int_key_added:{label(path)}",
                data=dump(added(document, path, 12, "x")),
                bad=True,
            )


def _at(document: Any, path: Path_) -> Any:
    node = document
    for token in path:
        node = node[token]
    return node


def damaged(name: str, data: bytes) -> Iterator[Variant]:
    """Byte-level damage to a file: cut short, not UTF-8, empty, and the like."""
    yield Variant(id=f"{name}:empty", data=b"", bad=True)
    yield Variant(id=f"{name}:whitespace", data=b"  \n\t\n   \n", bad=True)
    yield Variant(id=f"{name}:only_comment", data=b"# nothing here\n", bad=True)
    yield Variant(id=f"{name}:nul_bytes", data=b"\x00" * 64, bad=True)
    yield Variant(id=f"{name}:random_bytes", data=bytes(range(256)) * 4, bad=True)
    yield Variant(id=f"{name}:latin1_comment", data=b"# caf\xe9\n" + data, bad=True)
    yield Variant(id=f"{name}:invalid_utf8_middle", data=_insert(data, b"\xff\xfe\xc3"), bad=True)
    yield Variant(id=f"{name}:utf16", data=data.decode().encode("utf-16"), bad=True)
    yield Variant(id=f"{name}:bom", data=b"\xef\xbb\xbf" + data, bad=False)
    yield Variant(id=f"{name}:crlf", data=data.replace(b"\n", b"\r\n"), bad=False)
    yield Variant(id=f"{name}:cr_only", data=data.replace(b"\n", b"\r"), bad=False)
    yield Variant(id=f"{name}:nul_in_middle", data=_insert(data, b"\x00"), bad=True)
    yield Variant(
        id=f"{name}:escape_codes", data=_insert(data, b"\x1b]0;title\x07\x1b[2J"), bad=False
    )
    for tenth in (1, 3, 5, 7, 9):
        yield Variant(
            id=f"{name}:truncated_{tenth}0pct", data=data[: len(data) * tenth // 10], bad=False
        )
    yield Variant(id=f"{name}:doubled", data=data + data, bad=False)
    yield Variant(id=f"{name}:tabs", data=data.replace(b"  ", b"\t"), bad=False)


def _insert(data: bytes, junk: bytes) -> bytes:
    middle = len(data) // 2
    return data[:middle] + junk + data[middle:]
