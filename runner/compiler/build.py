"""Document <-> IR: the one mapping between the JSON contract and the typed IR.

The document must already satisfy the schema; nothing here validates. The mapping is driven by
the dataclass fields of ``runner.ir`` so that a field added to the schema and the IR needs no
code here, and ``to_document(build(doc)) == doc`` for every schema-valid document.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from runner import ir
from runner.canonical import content_hash, freeze, thaw

_INTERNAL = frozenset({"hash", "source", "source_line", "has_default"})
_NODE_CLASSES = frozenset(ir.NODE_TYPES.values())
_PAIRED = ("inputs", "roles")


def build_workflow(document: Mapping[str, Any], *, source: str = "") -> ir.Workflow:
    """The IR of a schema-valid workflow document."""
    values = _fields_from(ir.Workflow, {k: v for k, v in document.items() if k not in _PAIRED})
    values["inputs"] = _pairs(document.get("inputs"), ir.InputSpec)
    values["roles"] = _pairs(document.get("roles"), ir.Role)
    return ir.Workflow(**values, hash=content_hash(document), source=source)


def build_node(data: Mapping[str, Any]) -> ir.Node:
    """The IR of one schema-valid node object."""
    cls = ir.NODE_TYPES[data["kind"]]
    return cls(**_fields_from(cls, data))


def to_document(workflow: ir.Workflow) -> dict[str, Any]:
    """The workflow document the IR was built from (plain dicts and lists)."""
    out: dict[str, Any] = _to_json(workflow)
    for key in _PAIRED:
        pairs = getattr(workflow, key)
        if pairs is not None:
            out[key] = {name: _to_json(spec) for name, spec in pairs}
    return out


def node_to_document(node: ir.Node) -> dict[str, Any]:
    """The document object of one node."""
    out: dict[str, Any] = _to_json(node)
    return out


def _pairs(mapping: Mapping[str, Any] | None, cls: type[Any]) -> Any:
    if mapping is None:
        return None
    return tuple((name, cls(**_fields_from(cls, spec))) for name, spec in mapping.items())


_HINTS: dict[type[Any], dict[str, Any]] = {}


def _hints(cls: type[Any]) -> dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls, vars(ir))
    return _HINTS[cls]


def _doc_name(f: dataclasses.Field[Any]) -> str:
    return str(f.metadata.get("doc", f.name))


_PLANS: dict[type[Any], tuple[tuple[str, str, Callable[[Any], Any]], ...]] = {}


def _plan(cls: type[Any]) -> tuple[tuple[str, str, Callable[[Any], Any]], ...]:
    """(field, document name, converter) for each field of ``cls`` a document sets: worked
    out once per class, as a long workflow builds thousands of nodes of a few classes."""
    if cls not in _PLANS:
        hints = _hints(cls)
        _PLANS[cls] = tuple(
            (f.name, _doc_name(f), _converter(hints[f.name]))
            for f in dataclasses.fields(cls)
            if f.name not in _INTERNAL
        )
    return _PLANS[cls]


def _fields_from(cls: type[Any], data: Mapping[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for field, name, convert in _plan(cls):
        if name in data:
            value = data[name]
            values[field] = None if value is None else convert(value)
    if cls is ir.InputSpec:
        values["has_default"] = "default" in data
    return values


def _converter(hint: Any) -> Callable[[Any], Any]:
    """The function that converts a JSON value (not None) to the IR type ``hint``."""
    origin = typing.get_origin(hint)
    if origin in (types.UnionType, typing.Union):
        args = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        if any(arg in _NODE_CLASSES for arg in args):
            return build_node
        if len(args) == 1:
            return _converter(args[0])
        return _same
    if origin is tuple:
        (item,) = typing.get_args(hint)[:1]
        each = _converter(item)
        return lambda value: tuple(None if e is None else each(e) for e in value)
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        if hint in _NODE_CLASSES:
            return build_node
        cls = hint
        return lambda value: cls(**_fields_from(cls, value))
    if hint is Any:
        return _shared_freeze
    if hint is int:
        return _integer
    return _same


_FROZEN: dict[bytes, Any] = {}


def _shared_freeze(value: Any) -> Any:
    """``freeze(value)``, one frozen object for each distinct JSON text: a long workflow
    repeats a few output schemas many times, and what is frozen is never changed. The text
    tells ``1`` from ``1.0`` and ``true``, in the order of the keys; a value with ``null`` is
    frozen on its own, as orjson writes NaN as ``null`` too."""
    if not isinstance(value, dict | list):
        return value
    try:
        text = orjson.dumps(value)
    except (orjson.JSONEncodeError, TypeError):
        return freeze(value)
    if b"null" in text:
        return freeze(value)
    found = _FROZEN.get(text)
    if found is None:
        if len(_FROZEN) >= 4096:  # a long-lived process: keep the memory bounded
            _FROZEN.clear()
        found = _FROZEN[text] = freeze(value)
    return found


def _same(value: Any) -> Any:
    return value


def _integer(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        # JSON Schema counts 1000.0 (and YAML's 1e3) as an integer; the IR holds an int.
        return int(value)
    return value


def _to_json(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out: dict[str, Any] = {}
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            if f.name in _INTERNAL or value is None:
                continue
            out[_doc_name(f)] = _to_json(value)
        if isinstance(obj, ir.InputSpec) and obj.has_default:
            out["default"] = thaw(obj.default)
        return out
    if isinstance(obj, tuple):
        return [_to_json(item) for item in obj]
    return thaw(obj)
