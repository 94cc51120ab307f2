"""Output schemas at run time, compiled once per schema object.

A leaf's output schema is checked once per reply, and the mock checks every value it makes:
on large fan-outs validation is a large share of a leaf's cost. :func:`compiled` keeps, per
schema object (the IR's schemas are never changed), its plain JSON, its content hash, the
general 2020-12 validator, and for simple schemas a fast check: a schema built only from the
keywords below compiles into nested closures that answer exactly what
``Draft202012Validator(schema).is_valid`` answers (a property test holds the two together).
Any other keyword, or a keyword whose value is malformed, gives no fast check, and the general
validator decides; it also explains every failure.

Supported: boolean schemas; ``type``, ``enum``, ``const``; ``properties``, ``required``,
``additionalProperties``, ``minProperties``, ``maxProperties``; ``items``, ``minItems``,
``maxItems``, ``uniqueItems``; ``minLength``, ``maxLength``, ``pattern``; ``minimum``,
``maximum``, ``exclusiveMinimum``, ``exclusiveMaximum``; ``propertyNames``,
``dependentRequired``; ``allOf``, ``anyOf``, ``oneOf``, ``not``, ``if``/``then``/``else``;
``$ref`` to a place in the same document (``#/$defs/node``), ``$defs``, and ``$schema`` and
``$id`` at the root; and annotations (``format`` included: the validator does not assert
formats unless asked to). The workflow and configuration schemas are built from these, so a
valid document is told valid without the general validator (``runner.compiler.schema``).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator

from runner.canonical import content_hash, thaw

Check = Callable[[Any], bool]
"""Whether a JSON value is valid."""

_ANNOTATIONS = frozenset(
    {
        "title",
        "description",
        "$comment",
        "examples",
        "default",
        "deprecated",
        "readOnly",
        "writeOnly",
        "format",
    }
)
_TYPES: dict[str, Check] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "integer": lambda v: (
        (isinstance(v, int) and not isinstance(v, bool))
        or (isinstance(v, float) and v.is_integer())
    ),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Compiled:
    """One schema, ready to check values against."""

    plain: Any
    """The schema as plain JSON (dicts and lists)."""
    digest: str
    """SHA-256 of its canonical JSON."""
    validator: Draft202012Validator
    """The general validator, which also explains failures."""
    check: Check | None
    """The fast equivalent of ``validator.is_valid``, for simple schemas."""

    def is_valid(self, value: Any) -> bool:
        """Whether ``value`` is valid, by the fast check where there is one."""
        return self.check(value) if self.check is not None else self.validator.is_valid(value)


_COMPILED: dict[int, tuple[Any, Compiled]] = {}
_CACHE_SIZE = 4096


def compiled(schema: Any) -> Compiled:
    """The compiled form of ``schema`` (a JSON value, frozen or not), built once per object.

    Raises TypeError or ValueError for a schema that is not JSON.
    """
    found = _COMPILED.get(id(schema))
    if found is not None and found[0] is schema:
        return found[1]
    plain = thaw(schema)
    result = Compiled(
        plain=plain,
        digest=content_hash(plain),
        validator=Draft202012Validator(plain),
        check=compile_check(plain),
    )
    if len(_COMPILED) >= _CACHE_SIZE:  # schemas built per call: keep the newest ones only
        del _COMPILED[next(iter(_COMPILED))]
    # The schema is kept alive with its entry, so its id cannot be reused while it is cached.
    # Its plain form is what requests carry: it finds the same entry.
    _COMPILED[id(schema)] = (schema, result)
    _COMPILED[id(plain)] = (plain, result)
    return result


class _Unsupported(Exception):
    """The schema needs the general validator."""


def compile_check(schema: Any) -> Check | None:
    """A fast check equivalent to the 2020-12 validator for ``schema``, or ``None``."""
    try:
        return _Compiler(schema).compile(schema, root=True)
    except (_Unsupported, re.error, RecursionError):
        return None


def _always(value: Any) -> bool:
    return True


def _never(value: Any) -> bool:
    return False


_RESOURCE = frozenset({"$schema", "$id"})
"""Keywords that only the root may hold: lower down they start a new resource, whose
references resolve against it, and that is left to the general validator."""


class _Compiler:
    """Compiles the schemas of one document, sharing what its local ``$ref`` s point to."""

    def __init__(self, root: Any) -> None:
        self.root = root
        self.targets: dict[str, Check] = {}

    def compile(self, schema: Any, *, root: bool = False) -> Check:
        if schema is True:
            return _always
        if schema is False:
            return _never
        if not isinstance(schema, Mapping):
            raise _Unsupported
        for key in schema:
            # An ``x-`` key is no keyword of any vocabulary: the validator passes over it.
            known = (
                key in _KEYWORDS
                or key in _ANNOTATIONS
                or key == "$defs"
                or str(key).startswith("x-")
            )
            if not known and not (root and key in _RESOURCE):
                raise _Unsupported
        if not isinstance(schema.get("$defs", {}), Mapping):
            raise _Unsupported
        checks: list[Check] = []
        if "type" in schema:
            checks.append(_type(schema["type"]))
        if "enum" in schema:
            members = schema["enum"]
            if isinstance(members, str | Mapping) or not isinstance(members, Sequence):
                raise _Unsupported
            allowed = frozenset(_key(member) for member in members)
            checks.append(lambda v: _key(v) in allowed)
        if "const" in schema:
            wanted = _key(schema["const"])
            checks.append(lambda v: _key(v) == wanted)
        for group in (self._object, _array_of(self), _string, _number, self._logic):
            check = group(schema)
            if check is not None:
                checks.append(check)
        if "$ref" in schema:
            checks.append(self._ref(schema["$ref"]))
        return _all(checks)

    def _ref(self, target: Any) -> Check:
        """The check of a ``#/...`` reference into this document, compiled once (lazily, as
        a node may contain nodes)."""
        if not isinstance(target, str) or not (target == "#" or target.startswith("#/")):
            raise _Unsupported  # another document, or an anchor
        found = self.targets.get(target)
        if found is not None:
            return found
        schema = self.root
        for token in target[2:].split("/") if target != "#" else ():
            if "~" in token or "%" in token or not isinstance(schema, Mapping):
                raise _Unsupported
            if token not in schema:
                raise _Unsupported
            schema = schema[token]
        cell: list[Check] = []

        def later(value: Any) -> bool:  # compiled below, once the target can refer to itself
            return cell[0](value)

        self.targets[target] = later
        cell.append(self.compile(schema))
        return later

    def _object(self, schema: Mapping[str, Any]) -> Check | None:
        check = _object(schema, self.compile)
        names = schema.get("propertyNames")
        needs = schema.get("dependentRequired")
        if names is None and needs is None:
            return check
        name_check = self.compile(names) if names is not None else _always
        if needs is None:
            needs = {}
        if not isinstance(needs, Mapping) or not all(
            isinstance(need, list) and all(isinstance(n, str) for n in need)
            for need in needs.values()
        ):
            raise _Unsupported
        pairs = tuple((name, tuple(need)) for name, need in needs.items())

        def more(value: Any) -> bool:
            if not isinstance(value, dict):
                return True
            if name_check is not _always and not all(name_check(key) for key in value):
                return False
            for name, need in pairs:
                if name in value and not all(n in value for n in need):
                    return False
            return True

        return _all([c for c in (check, more) if c is not None])

    def _logic(self, schema: Mapping[str, Any]) -> Check | None:
        checks: list[Check] = []
        for key in ("allOf", "anyOf", "oneOf"):
            if key not in schema:
                continue
            parts = schema[key]
            if not isinstance(parts, list) or not parts:
                raise _Unsupported
            if key == "allOf":
                dispatch = self._dispatch(parts)
                if dispatch is not None:
                    checks.append(dispatch)
                    continue
            subs = tuple(self.compile(part) for part in parts)
            if key == "allOf":
                checks.append(_all(list(subs)))
            elif key == "anyOf":
                checks.append(functools.partial(_any, subs))
            else:
                checks.append(functools.partial(_exactly_one, subs))
        if "not" in schema:
            negated = self.compile(schema["not"])
            checks.append(lambda v: not negated(v))
        if "if" in schema:
            condition = self.compile(schema["if"])
            then = self.compile(schema.get("then", True))
            otherwise = self.compile(schema.get("else", True))
            checks.append(lambda v: then(v) if condition(v) else otherwise(v))
        return _all(checks) if checks else None

    def _dispatch(self, parts: list[Any]) -> Check | None:
        """``allOf`` made only of ``{"if": {"properties": {K: {"const": C}}, "required": [K]},
        "then": ...}`` on one key K (how the workflow schema picks a node's kind), compiled to a
        lookup of ``value[K]``: the same answer as trying each ``if`` in turn, in one step."""
        found: str | None = None
        table: dict[Any, list[Check]] = {}
        loose: list[Check] = []  # thens whose if holds for every value that is not an object
        for part in parts:
            condition = part.get("if") if isinstance(part, Mapping) else None
            if not isinstance(condition, Mapping) or set(part) - {"if", "then"}:
                return None
            if set(condition) - {"type", "properties", "required"}:
                return None
            properties = condition.get("properties")
            if condition.get("type", "object") != "object" or not isinstance(properties, Mapping):
                return None
            if len(properties) != 1:
                return None
            ((name, wanted),) = properties.items()
            if condition.get("required") != [name] or found not in (None, name):
                return None
            if not isinstance(wanted, Mapping) or set(wanted) != {"const"}:
                return None
            found = name
            then = self.compile(part.get("then", True))
            table.setdefault(_key(wanted["const"]), []).append(then)
            if "type" not in condition:
                loose.append(then)
        if found is None:
            return None
        key = found
        branches = {value: _all(thens) for value, thens in table.items()}
        others = _all(loose)

        def dispatch(value: Any) -> bool:
            if not isinstance(value, dict):
                return others(value)
            if key not in value:
                return True
            branch = branches.get(_key(value[key]))
            return branch is None or branch(value)

        return dispatch


def _any(subs: tuple[Check, ...], value: Any) -> bool:
    return any(sub(value) for sub in subs)


def _exactly_one(subs: tuple[Check, ...], value: Any) -> bool:
    found = False
    for sub in subs:
        if sub(value):
            if found:
                return False
            found = True
    return found


def _all(checks: list[Check]) -> Check:
    if not checks:
        return _always
    if len(checks) == 1:
        return checks[0]
    if len(checks) == 2:
        first, second = checks
        return lambda v: first(v) and second(v)
    frozen = tuple(checks)
    return lambda v: all(check(v) for check in frozen)


def _type(declared: Any) -> Check:
    names = [declared] if isinstance(declared, str) else declared
    if not isinstance(names, list) or not names or any(name not in _TYPES for name in names):
        raise _Unsupported
    if len(names) == 1:
        return _TYPES[names[0]]
    checks = tuple(_TYPES[name] for name in names)
    return lambda v: any(check(v) for check in checks)


def _count(schema: Mapping[str, Any], key: str) -> int | None:
    value = schema.get(key)
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise _Unsupported
    return value


def _sizes(schema: Mapping[str, Any], low_key: str, high_key: str) -> tuple[int, int | None]:
    return _count(schema, low_key) or 0, _count(schema, high_key)


def _object(schema: Mapping[str, Any], compile: Callable[[Any], Check]) -> Check | None:
    properties = schema.get("properties", {})
    required = schema.get("required", [])
    extra = schema.get("additionalProperties", True)
    low, high = _sizes(schema, "minProperties", "maxProperties")
    if not isinstance(properties, Mapping) or not isinstance(required, list):
        raise _Unsupported
    if not all(isinstance(name, str) for name in required):
        raise _Unsupported
    if not properties and not required and extra is True and low == 0 and high is None:
        return None
    fields = {name: compile(sub) for name, sub in properties.items()}
    others = None if extra is True else compile(extra)
    needed = tuple(dict.fromkeys(required))

    def check(value: Any) -> bool:
        if not isinstance(value, dict):
            return True
        for name in needed:
            if name not in value:
                return False
        for name, item in value.items():
            field = fields.get(name, others)
            if field is not None and not field(item):
                return False
        size = len(value)
        return size >= low and (high is None or size <= high)

    return check


def _array_of(compiler: _Compiler) -> Callable[[Mapping[str, Any]], Check | None]:
    return lambda schema: _array(schema, compiler.compile)


def _array(schema: Mapping[str, Any], compile: Callable[[Any], Check]) -> Check | None:
    low, high = _sizes(schema, "minItems", "maxItems")
    unique = schema.get("uniqueItems", False)
    if not isinstance(unique, bool):
        raise _Unsupported
    if "items" not in schema and not unique and low == 0 and high is None:
        return None
    items = compile(schema.get("items", True))

    def check(value: Any) -> bool:
        if not isinstance(value, list):
            return True
        size = len(value)
        if size < low or (high is not None and size > high):
            return False
        if items is not _always and not all(items(item) for item in value):
            return False
        return not unique or len({_key(item) for item in value}) == size

    return check


def _string(schema: Mapping[str, Any]) -> Check | None:
    low, high = _sizes(schema, "minLength", "maxLength")
    pattern = schema.get("pattern")
    if pattern is not None and not isinstance(pattern, str):
        raise _Unsupported
    if pattern is None and low == 0 and high is None:
        return None
    search = re.compile(pattern).search if pattern is not None else None

    def check(value: Any) -> bool:
        if not isinstance(value, str):
            return True
        size = len(value)
        if size < low or (high is not None and size > high):
            return False
        return search is None or search(value) is not None

    return check


def _number(schema: Mapping[str, Any]) -> Check | None:
    bounds = []
    for key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        if key in schema:
            bound = schema[key]
            if not isinstance(bound, int | float) or isinstance(bound, bool):
                raise _Unsupported
            bounds.append((key, bound))
    if not bounds:
        return None
    low = max((b for k, b in bounds if k == "minimum"), default=None)
    high = min((b for k, b in bounds if k == "maximum"), default=None)
    above = max((b for k, b in bounds if k == "exclusiveMinimum"), default=None)
    below = min((b for k, b in bounds if k == "exclusiveMaximum"), default=None)

    def check(value: Any) -> bool:
        if not isinstance(value, int | float) or isinstance(value, bool):
            return True
        return (
            (low is None or value >= low)
            and (high is None or value <= high)
            and (above is None or value > above)
            and (below is None or value < below)
        )

    return check


def _key(value: Any) -> Any:
    """A hashable stand-in for a JSON value under the validator's equality: booleans differ
    from numbers, 1 equals 1.0, objects compare without order."""
    if isinstance(value, bool):
        return (bool, value)
    if isinstance(value, int | float):
        return (float, value)
    if isinstance(value, str) or value is None:
        return value
    if isinstance(value, list | tuple):
        return (list, tuple(_key(item) for item in value))
    if isinstance(value, Mapping):
        return (dict, frozenset((name, _key(item)) for name, item in value.items()))
    return (type(value), id(value))


_KEYWORDS = frozenset(
    {
        "type",
        "enum",
        "const",
        "properties",
        "required",
        "additionalProperties",
        "minProperties",
        "maxProperties",
        "items",
        "minItems",
        "maxItems",
        "uniqueItems",
        "minLength",
        "maxLength",
        "pattern",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "propertyNames",
        "dependentRequired",
        "allOf",
        "anyOf",
        "oneOf",
        "not",
        "if",
        "then",
        "else",
        "$ref",
    }
)
