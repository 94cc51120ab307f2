"""Canonical JSON and content hashes: the one way Branchleaf turns data into keys."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import orjson


def _mapping(value: Any) -> Any:
    # Frozen mappings serialise as the dicts they stand for (tuples already serialise as lists),
    # so frozen data needs no copy before hashing.
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


# One encoder for every call: json.dumps with options builds a new one each time.
_ENCODER = json.JSONEncoder(
    sort_keys=True,
    separators=(",", ":"),
    ensure_ascii=False,
    allow_nan=False,
    default=_mapping,
)


_COMPACT = json.JSONEncoder(
    separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=_mapping
)


def compact_json(value: Any) -> str:
    """Serialise ``value`` compactly, keys in the order they were built: for stored records
    built in a fixed order, where sorting keys would only cost time (keys and hashes use
    :func:`canonical_json`).

    Encoded by orjson, about ten times faster than the standard library, which matters on the
    event loop of a run recording thousands of events; what orjson refuses (integers beyond 64
    bits, lone surrogates, keys that are not strings) is encoded by the standard library. The
    text may spell a float otherwise than :func:`canonical_json` (``1e-5`` for ``1e-05``); it
    reads back as the same value. Non-finite floats are written as ``null``: the values recorded
    (outputs, keys, replies) are checked to be JSON before they reach here.
    """
    try:
        return orjson.dumps(value, default=_mapping).decode()
    except orjson.JSONEncodeError:
        return _COMPACT.encode(value)


def canonical_json(value: Any) -> str:
    """Serialise ``value`` with sorted keys and fixed separators; the same data, the same text."""
    return _ENCODER.encode(value)


def canonical_bytes(value: Any, *, floats_alike: bool = False) -> bytes:
    """:func:`canonical_json` of ``value``, as UTF-8.

    ``floats_alike``: the caller knows every float in ``value`` is one orjson spells as Python
    does (none at all, or only finite ones from 1e-4 up to 1e16, and zero). orjson then writes
    it with sorted keys, the same bytes several times faster: strings, integers, true, false
    and null are spelled alike, only floats outside that range differ (``1e-5`` for
    ``1e-05``). What orjson refuses (integers beyond 64 bits, lone surrogates, keys that are
    not strings) is written by the standard library, as is everything without the flag.
    """
    if floats_alike:
        try:
            return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
        except orjson.JSONEncodeError:
            pass
    return canonical_json(value).encode("utf-8")


def content_hash(value: Any, *, floats_alike: bool = False) -> str:
    """SHA-256 hex digest of the canonical JSON of ``value`` (``floats_alike``: as for
    :func:`canonical_bytes`)."""
    return hashlib.sha256(canonical_bytes(value, floats_alike=floats_alike)).hexdigest()


def freeze(value: Any) -> Any:
    """A deeply immutable copy of a JSON value: mappings become read-only, lists tuples."""
    if isinstance(value, Mapping):
        return MappingProxyType({key: freeze(item) for key, item in value.items()})
    if isinstance(value, list | tuple):
        return tuple(freeze(item) for item in value)
    return value


def thaw(value: Any) -> Any:
    """A plain JSON copy (dicts and lists) of a value made by :func:`freeze`."""
    if isinstance(value, Mapping):
        return {key: thaw(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [thaw(item) for item in value]
    return value


def same_json(one: Any, two: Any) -> bool:
    """Whether two JSON values have the same canonical JSON, compared without writing it:
    ``true`` is not ``1``, ``1`` is not ``1.0``, ``-0.0`` is not ``0.0``; lists and tuples
    both stand for arrays, any mapping for an object."""
    if isinstance(one, list | tuple):
        return (
            isinstance(two, list | tuple)
            and len(one) == len(two)
            and all(same_json(a, b) for a, b in zip(one, two, strict=True))
        )
    if isinstance(one, Mapping):
        return (
            isinstance(two, Mapping)
            and one.keys() == two.keys()
            and all(same_json(one[key], two[key]) for key in one)
        )
    if type(one) is not type(two):
        return False
    if isinstance(one, float):
        return one == two and math.copysign(1.0, one) == math.copysign(1.0, two)
    return bool(one == two)
