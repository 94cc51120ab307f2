"""Deterministic instances of JSON Schemas: the values the mock provider answers with.

Every choice (which optional fields, how many items, which ``anyOf`` branch, which characters)
is read from SHA-256 of the seed and the JSON pointer of the value being made, so one request
always gives one value. Values are built to fit the keywords leaf outputs use; where there are
alternatives, and once more for the whole value, the validator checks them, so a value is valid
or a ValueError names the part of the schema that could not be satisfied.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import re
from collections.abc import Callable, Iterator, Mapping
from fractions import Fraction
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, best_match
from referencing.exceptions import Unresolvable

from runner.canonical import canonical_bytes, canonical_json, thaw
from runner.compiler.source import pointer_join
from runner.providers.patterns import pattern_text
from runner.schemas import Compiled, compiled

OPTIONAL_DEPTH = 5
"""From this depth on only what is required is made, so recursive schemas end."""
MAX_DEPTH = 40
"""Deeper than this, a schema recurses without end (through required fields or minItems)."""
MAX_CHECKS = 2_000
"""Validator checks one value may cost before the search for it gives up."""

Parts = list[tuple[Any, str]]
"""Schemas a value must satisfy together, each with its pointer in the root schema."""
Choice = tuple[str, str, Any]
"""An ``anyOf``/``oneOf`` still to decide: the owner's pointer, the keyword, the branches."""
Flat = tuple[dict[str, Any], list[Choice], str]
"""Parts merged: the keywords about the value, its choices left, where its first keyword is."""

_FLAT: dict[tuple[int, int, str], tuple[Any, Any, Flat]] = {}
_FLAT_SIZE = 8192

_LOWER = frozenset({"minimum", "exclusiveMinimum", "minItems", "minLength", "minProperties"})
_UPPER = frozenset({"maximum", "exclusiveMaximum", "maxItems", "maxLength", "maxProperties"})
_NESTED = frozenset({"items", "additionalProperties", "contains", "propertyNames"})
_ANNOTATIONS = frozenset({"$schema", "$id", "$defs", "$comment", "title", "description"})
_HINTS = (
    ("object", ("properties", "required", "additionalProperties", "minProperties")),
    ("array", ("items", "prefixItems", "minItems", "maxItems", "contains")),
    ("string", ("minLength", "maxLength", "pattern", "format")),
    ("number", ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")),
)


def instance(schema: Any, seed: bytes) -> Any:
    """A value valid against ``schema``, the same for the same seed; ValueError if none is found."""
    return _made(schema, seed)[0]


def instance_text(schema: Any, seed: bytes) -> str:
    """``canonical_json(instance(schema, seed))``: the mock's reply text, written by orjson
    when a plan made the value without any float (:func:`runner.canonical.canonical_bytes`)."""
    value, float_free = _made(schema, seed)
    return canonical_bytes(value, floats_alike=float_free).decode()


def _made(schema: Any, seed: bytes) -> tuple[Any, bool]:
    """The instance, and whether a plan made it without any float."""
    try:
        schema_of = compiled(schema)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"the schema is not JSON: {exc}") from exc
    _, plan, floats = _planned(schema_of)
    if plan is not None:
        try:
            value = plan(seed, "")
        except (_Off, TypeError, ValueError, ArithmeticError):
            pass  # a case only the search handles (and explains, if it fails)
        else:
            if schema_of.is_valid(value):
                return value, not floats
    return searched(schema_of, seed), False


def searched(schema_of: Compiled, seed: bytes) -> Any:
    """:func:`instance` made by the maker's search alone, without a plan."""
    root, validator = schema_of.plain, schema_of.validator
    maker = _Maker(root, seed, schema_of)
    try:
        value = maker.made([(root, "")], "", 0)
        if maker.valid(root, value):
            return value
    except (Unresolvable, re.error) as exc:
        raise ValueError(f"{_at('')} cannot be used: {exc}") from exc
    except RecursionError as exc:  # the validator's own, on a $ref that loops back at once
        raise ValueError(f"{_at('')}: its $refs loop without consuming any value") from exc
    except (TypeError, AttributeError) as exc:
        # A malformed schema ({"minimum": "5"}) trips the maker; say what is malformed.
        try:
            Draft202012Validator.check_schema(root)
        except SchemaError as bad:
            raise ValueError(f"the schema is not valid JSON Schema: {bad.message}") from exc
        raise
    error = best_match(validator.iter_errors(value))
    where = "".join(f"/{token}" for token in list(error.absolute_schema_path)[:-1])
    raise ValueError(f"{_at(where)}: the value made for it fails: {error.message}")


def _at(where: str) -> str:
    return f"the schema at {where or '/'}"


class _Maker:
    """Makes one value for one root schema and seed."""

    def __init__(self, root: Any, seed: bytes, schema: Compiled) -> None:
        self.root = root
        self.seed = seed
        self.schema = schema
        self.checks = 0

    def pick(self, pointer: str, tag: str, count: int) -> int:
        """A number below ``count`` read from the seed, the value's pointer and a purpose."""
        return _pick(self.seed, pointer, tag, count)

    def order(self, pointer: str, tag: str, count: int) -> Iterator[int]:
        """0..count-1, rotated to start at a seeded place."""
        start = self.pick(pointer, tag, count) if count else 0
        return ((start + k) % count for k in range(count))

    def valid(self, schema: Any, value: Any) -> bool:
        self.checks += 1
        if self.checks > MAX_CHECKS:
            raise ValueError(f"{_at('')}: gave up after {MAX_CHECKS} tries to satisfy it")
        if schema is self.root:
            return self.schema.is_valid(value)
        return bool(self.schema.validator.evolve(schema=schema).is_valid(value))

    def resolve(self, ref: Any, where: str) -> tuple[Any, str]:
        if not isinstance(ref, str) or not ref.startswith("#"):
            raise ValueError(f"{_at(where)}: only local $refs (#/$defs/...) are supported")
        target: Any = self.root
        for raw in [token for token in ref[1:].split("/") if token]:
            token = raw.replace("~1", "/").replace("~0", "~")
            try:
                target = target[int(token) if isinstance(target, list) else token]
            except (KeyError, IndexError, ValueError, TypeError):
                raise ValueError(f"{_at(where)}: $ref {ref!r} points at nothing") from None
        return target, ref[1:]

    def flatten(self, parts: Parts) -> Flat:
        """The parts with $ref and allOf merged in, their anyOf/oneOf set apart, and where the
        first keyword about the value is (for messages)."""
        base: dict[str, Any] = {}
        choices: list[Choice] = []
        origin: str | None = None
        pending = list(parts)
        for step in itertools.count():
            if not pending:
                break
            schema, where = pending.pop(0)
            if step > 500:
                raise ValueError(f"{_at(where)}: its $refs and allOfs go round without end")
            if schema is False:
                raise ValueError(f"{_at(where)}: it is `false`, which no value satisfies")
            if not isinstance(schema, dict):
                continue  # `true`
            for key, value in schema.items():
                if key == "$ref":
                    pending.append(self.resolve(value, where))
                elif key == "allOf":
                    pending += [(s, f"{where}/allOf/{i}") for i, s in enumerate(value)]
                elif key in ("anyOf", "oneOf"):
                    choices.append((where, key, value))
                elif key not in _ANNOTATIONS:
                    origin = where if origin is None else origin
                    _merge(base, key, value)
        return base, choices, parts[0][1] if origin is None else origin

    def flat(self, schema: Any, where: str) -> Flat:
        """:meth:`flatten` of one schema, kept across calls: most values are made from the
        same few schemas over and over (one leaf, thousands of calls)."""
        key = (id(self.root), id(schema), where)
        found = _FLAT.get(key)
        if found is not None and found[0] is self.root and found[1] is schema:
            return found[2]
        result = self.flatten([(schema, where)])
        if len(_FLAT) >= _FLAT_SIZE:
            _FLAT.clear()
        # Root and schema are kept alive with the entry, so their ids are not reused meanwhile.
        _FLAT[key] = (self.root, schema, result)
        return result

    def made(self, parts: Parts, pointer: str, depth: int, nest: int = 0) -> Any:
        """A value for all ``parts`` at instance ``pointer``."""
        if depth > MAX_DEPTH or nest > MAX_DEPTH:
            raise ValueError(f"{_at(parts[0][1])}: it nests deeper than {MAX_DEPTH} levels")
        if len(parts) == 1:
            whole = parts[0][0]
            base, choices, where = self.flat(whole, parts[0][1])
        else:
            whole = {"allOf": [schema for schema, _ in parts]}
            base, choices, where = self.flatten(parts)
        if not choices:
            return self.plain(base, whole, where, pointer, depth)
        (owner, kind, branches), rest = choices[0], choices[1:]
        at = f"{owner}/{kind}"
        failures: list[str] = []
        for i, retry in itertools.product(self.order(pointer, at, len(branches)), range(3)):
            tried = [(base, where), (branches[i], f"{at}/{i}"), *(({k: b}, w) for w, k, b in rest)]
            try:  # a retry reads its choices from another pointer
                value = self.made(tried, pointer + "~" * retry, depth, nest + 1)
            except ValueError as exc:
                failures.append(str(exc))
                continue
            if self.valid(whole, value):
                return value
            failures.append(f"{_at(f'{at}/{i}')}: its value fails the rest of the schema")
        first = f" (first: {failures[0]})" if failures else ""
        raise ValueError(f"{_at(at)}: none of its {len(branches)} branches fits{first}")

    def plain(self, base: dict[str, Any], whole: Any, where: str, pointer: str, depth: int) -> Any:
        """A value for a schema without choices left but its enum, const and type."""
        if "const" in base or "enum" in base:
            members = [base["const"]] if "const" in base else list(base["enum"])
            for i in self.order(pointer, "enum", len(members)):
                if self.valid(whole, members[i]):
                    return thaw(members[i])
            raise ValueError(f"{_at(where)}: none of its allowed values fits the rest of it")
        if "type" in base:
            types = _types(base["type"])
        else:
            types = [name for name, words in _HINTS if any(w in base for w in words)]
            types = types or ["string", "integer", "boolean", "null"]
        if len(types) == 1 and types[0] in _MAKERS:  # the usual case, without the search
            return _MAKERS[types[0]](self, base, where, pointer, depth)
        failures: list[str] = []
        for i in self.order(pointer, "type", len(types)):
            maker = getattr(self, f"make_{types[i]}", None) if isinstance(types[i], str) else None
            if maker is None:
                raise ValueError(f"{_at(where)}: unknown type {types[i]!r}")
            try:
                value = maker(base, where, pointer, depth)
            except ValueError as exc:
                failures.append(str(exc))
                continue
            if len(types) == 1 or self.valid(whole, value):
                return value
        raise ValueError(failures[0] if failures else f"{_at(where)}: no type of it fits")

    def make_null(self, base: dict[str, Any], where: str, pointer: str, depth: int) -> None:
        return None

    def make_boolean(self, base: dict[str, Any], where: str, pointer: str, depth: int) -> bool:
        return self.pick(pointer, "boolean", 2) == 1

    def make_integer(self, base: dict[str, Any], where: str, pointer: str, depth: int) -> int:
        first, last, step = _integers(base, where)
        return int((first + self.pick(pointer, "integer", last - first + 1)) * step)

    def make_number(self, base: dict[str, Any], where: str, pointer: str, depth: int) -> float:
        step = base.get("multipleOf")
        if step is not None and float(step).is_integer():
            return self.make_integer(base, where, pointer, depth)
        lo, hi = _number_bounds(base)
        if lo > hi:
            raise ValueError(f"{_at(where)}: its lower bound {lo} is above its upper {hi}")
        if step is not None:
            first = math.ceil(lo / step)
            for k in range(first, min(math.floor(hi / step), first + 20) + 1):
                for value in (k * step, float(Fraction(str(step)) * k)):
                    if _fits(value, base) and (value / step).is_integer():
                        return float(value)
            raise ValueError(f"{_at(where)}: no multiple of {step} lies in [{lo}, {hi}]")
        value = _spread(base, lo, hi, self.pick(pointer, "number", 8))
        if value is None:
            raise ValueError(f"{_at(where)}: no number lies between {lo} and {hi}")
        return value

    def make_string(self, base: dict[str, Any], where: str, pointer: str, depth: int) -> str:
        low, high = base.get("minLength", 0), base.get("maxLength")
        if high is not None and low > high:
            raise ValueError(f"{_at(where)}: minLength {low} is above maxLength {high}")
        pattern = base.get("pattern")
        for text in self.strings(base, pointer, low, high):
            if _fits_length(text, low, high) and (pattern is None or re.search(pattern, text)):
                return text
        sizes = f" of {low} to {high} characters" if low or high is not None else ""
        raise ValueError(f"{_at(where)}: no string{sizes} was found for the pattern {pattern!r}")

    def strings(
        self, base: dict[str, Any], pointer: str, low: int, high: int | None
    ) -> Iterator[str]:
        """Candidates: the format's shape, hashed text, then strings built from the pattern."""
        yield from _hashed_strings(
            self.seed, pointer, _FORMATS.get(base.get("format", "")), low, high
        )
        for variant in range(4 if "pattern" in base else 0):
            text = pattern_text(base["pattern"], self.chooser(pointer, variant))
            if text is not None:
                yield text

    def chooser(self, pointer: str, variant: int) -> Callable[[int], int]:
        """Seeded choices for building a string from a pattern; the fourth try is the shortest."""
        decisions = itertools.count()
        if variant == 3:
            return lambda count: 0
        return lambda count: self.pick(pointer, f"{variant}/{next(decisions)}", count)

    def make_array(self, base: dict[str, Any], where: str, pointer: str, depth: int) -> list[Any]:
        prefix, items = base.get("prefixItems", []), base.get("items", True)
        low, high = base.get("minItems", 0), base.get("maxItems")
        if items is False:
            high = len(prefix) if high is None else min(high, len(prefix))
        if high is not None and low > high:
            raise ValueError(f"{_at(where)}: it needs {low} items but allows only {high}")
        size = low + self.pick(pointer, "size", _items_top(low, high, depth) - low + 1)
        wanted = base.get("minContains", 1) if "contains" in base else 0
        out: list[Any] = []
        seen: set[str] = set()
        for i in range(max(size, wanted)):
            parts: Parts = [(prefix[i], f"{where}/prefixItems/{i}")] if i < len(prefix) else []
            parts = parts or [(items, f"{where}/items")]
            if i < wanted:
                parts.append((base["contains"], f"{where}/contains"))
            value = self.made(parts, pointer_join(pointer, str(i)), depth + 1)
            for retry in range(1, 8) if base.get("uniqueItems") else ():
                if canonical_json(value) not in seen:
                    break
                # Another pointer, other choices.
                value = self.made(parts, pointer_join(pointer, f"{i}{'~' * retry}"), depth + 1)
            if base.get("uniqueItems"):
                if canonical_json(value) in seen and i >= low:
                    break  # fewer items rather than a repeated one
                seen.add(canonical_json(value))
            out.append(value)
        return out

    def make_object(self, base: dict[str, Any], where: str, pointer: str, depth: int) -> Any:
        properties: dict[str, Any] = base.get("properties", {})
        required: list[str] = list(base.get("required", []))
        low, high = base.get("minProperties", 0), base.get("maxProperties")
        keys = list(required)
        for name in properties if depth < OPTIONAL_DEPTH else ():
            room = high is None or len(keys) < high
            if name not in keys and room and self.pick(pointer_join(pointer, name), "has", 2):
                keys.append(name)
        closed = base.get("additionalProperties", True) is False
        for name in [*properties, *(f"extra_{i}" for i in range(low))] if low else ():
            if len(keys) < low and name not in keys and (name in properties or not closed):
                keys.append(name)
        dependent: dict[str, list[str]] = base.get("dependentRequired") or {}
        for _ in range(len(keys) + 1) if dependent else ():  # needs of needs, until none is new
            for name, needs in dependent.items():
                keys += [need for need in needs if name in keys and need not in keys]
        if high is not None and len(keys) > high:
            raise ValueError(f"{_at(where)}: it requires more than maxProperties {high} fields")
        out: dict[str, Any] = {}
        for name in keys:
            try:
                out[name] = self.made(
                    self.field(base, name, where), pointer_join(pointer, name), depth + 1
                )
            except ValueError:
                if name in required:
                    raise
        return out

    def field(self, base: dict[str, Any], name: str, where: str) -> Parts:
        """The schemas that apply to property ``name``."""
        parts: Parts = []
        if name in base.get("properties", {}):
            parts.append((base["properties"][name], pointer_join(f"{where}/properties", name)))
        for pattern, schema in base.get("patternProperties", {}).items():
            if re.search(pattern, name):
                parts.append((schema, pointer_join(f"{where}/patternProperties", pattern)))
        extra = base.get("additionalProperties", True)
        if not parts and extra is False:
            raise ValueError(f"{_at(where)}: field {name!r} is required but not allowed")
        return parts or [(extra, f"{where}/additionalProperties")]


_MAKERS: dict[str, Callable[[_Maker, dict[str, Any], str, str, int], Any]] = {
    name: getattr(_Maker, f"make_{name}")
    for name in ("null", "boolean", "integer", "number", "string", "array", "object")
}


def _merge(base: dict[str, Any], key: str, value: Any) -> None:
    """Add one keyword to a merged schema, keeping what both parts demand where that is easy."""
    mine = base.get(key)
    if mine is None:
        base[key] = value
    elif key in _LOWER or key in _UPPER:
        base[key] = max(mine, value) if key in _LOWER else min(mine, value)
    elif key == "required":
        base[key] = [*mine, *(name for name in value if name not in mine)]
    elif key == "type":
        ours, theirs = _types(mine), _types(value)
        both = [t for t in ours if t in theirs or (t == "integer" and "number" in theirs)]
        more = "integer" in theirs and "number" in ours and "integer" not in both
        base[key] = both + ["integer"] * more
    elif key == "enum":
        base[key] = [item for item in mine if item in value]
    elif key in ("properties", "patternProperties"):
        merged = {k: {"allOf": [mine[k], v]} if k in mine else v for k, v in value.items()}
        base[key] = {**mine, **merged}
    elif key in _NESTED:
        base[key] = {"allOf": [mine, value]}
    # Anything else (const, pattern, multipleOf, format...): the first part guides the making
    # and the validator holds the value to the others.


def _pick(seed: bytes, pointer: str, tag: str, count: int) -> int:
    """A number below ``count`` read from the seed, a value's pointer and a purpose."""
    if count == 1:
        return 0
    data = b"%b\0%b\0%b" % (seed, pointer.encode(), tag.encode())
    return int.from_bytes(hashlib.sha256(data).digest()[:8], "big") % count


def _integers(base: dict[str, Any], where: str) -> tuple[int, int, int]:
    """The integers an integer schema admits, as multiples ``first..last`` of ``step``."""
    lows = [math.ceil(base["minimum"])] if "minimum" in base else []
    lows += [math.floor(base["exclusiveMinimum"]) + 1] if "exclusiveMinimum" in base else []
    highs = [math.floor(base["maximum"])] if "maximum" in base else []
    highs += [math.ceil(base["exclusiveMaximum"]) - 1] if "exclusiveMaximum" in base else []
    lo, hi = max(lows, default=None), min(highs, default=None)
    step = base.get("multipleOf", 1)
    # An integer multiple of p/q (in lowest terms) is a multiple of p.
    step = Fraction(str(step)).numerator if isinstance(step, float) else int(step)
    if step <= 0:
        raise ValueError(f"{_at(where)}: multipleOf must be positive")
    lo = (0 if hi is None else hi - 100 * step) if lo is None else lo
    hi = lo + 100 * step if hi is None else hi
    first, last = -(-lo // step), hi // step
    if first > last:
        multiple = f" multiple of {step}" if step != 1 else ""
        raise ValueError(f"{_at(where)}: no integer{multiple} lies in [{lo}, {hi}]")
    return first, last, step


def _types(declared: Any) -> list[str]:
    return [declared] if isinstance(declared, str) else list(declared)


def _number_bounds(base: dict[str, Any]) -> tuple[Any, Any]:
    """The range a number is made in: its bounds, or 100 wide beside the one it has."""
    lo = max((base[k] for k in ("minimum", "exclusiveMinimum") if k in base), default=None)
    hi = min((base[k] for k in ("maximum", "exclusiveMaximum") if k in base), default=None)
    lo = (0 if hi is None else hi - 100) if lo is None else lo
    hi = lo + 100 if hi is None else hi
    return lo, hi


def _spread(base: dict[str, Any], lo: Any, hi: Any, picked: int) -> float | None:
    """The number at odd sixteenth ``picked`` (0-7) of the range, mostly not whole (integers
    are numbers already), or the middle; ``None`` when none of them fits."""
    span, share = hi - lo, (1 + 2 * picked) / 16
    value = lo + span * share if math.isfinite(span) else lo / 2 + hi / 2
    for candidate in (round(value, 2), value, lo / 2 + hi / 2):
        if _fits(candidate, base):
            return float(candidate)
    return None


def _hashed_strings(
    seed: bytes, pointer: str, shape: Callable[[str], str] | None, low: int, high: int | None
) -> Iterator[str]:
    """A string's first candidates: the format's shape, then hashed text of a seeded length."""
    digest = hashlib.sha256(b"%b\0%b" % (seed, pointer.encode())).hexdigest()
    if shape is not None:
        yield shape(digest)
    start = max(low, min(4, 4 if high is None else high))
    top = start + 8 if high is None else min(high, start + 8)
    size = start + _pick(seed, pointer, "length", top - start + 1)
    yield (digest * (size // len(digest) + 1))[:size]


def _fits_length(text: str, low: int, high: int | None) -> bool:
    return low <= len(text) and (high is None or len(text) <= high)


def _items_top(low: int, high: int | None, depth: int) -> int:
    """The most items an array is made with: up to 3 more than it needs, none past
    :data:`OPTIONAL_DEPTH`."""
    return low if depth >= OPTIONAL_DEPTH else low + 3 if high is None else min(high, low + 3)


def _fits(value: float, base: dict[str, Any]) -> bool:
    return not (
        value < base.get("minimum", -math.inf)
        or value > base.get("maximum", math.inf)
        or value <= base.get("exclusiveMinimum", -math.inf)
        or value >= base.get("exclusiveMaximum", math.inf)
    )


_FORMATS: dict[str, Callable[[str], str]] = {
    "date": lambda h: f"2024-{int(h[0], 16) % 12 + 1:02d}-{int(h[1], 16) + 1:02d}",
    "date-time": lambda h: f"2024-01-{int(h[1], 16) + 1:02d}T12:00:00Z",
    "email": lambda h: f"mock-{h[:8]}@example.com",
    "uri": lambda h: f"https://example.com/{h[:8]}",
    "uuid": lambda h: f"{h[:8]}-{h[8:12]}-4{h[13:16]}-8{h[17:20]}-{h[20:32]}",
}


# -- plans: the same values, without the search ------------------------------------------------

Plan = Callable[[bytes, str], Any]
"""Makes the value of one schema for a seed at an instance pointer, as :class:`_Maker` would
make it; raises :class:`_Off` where only the maker's search can decide."""

PLAN_DEPTH = 12
"""Schemas nesting deeper than this (or recursing) are left to the maker."""

_PLANS: dict[int, tuple[Compiled, Plan | None, bool]] = {}
"""Plans by compiled schema, with whether their values can hold a float."""


class _Off(Exception):
    """A plan met a case it does not decide: the maker makes the value instead."""


class _Unplannable(Exception):
    """A schema with keywords that need the maker's search (choices, patterns, several types)."""


def _planned(schema: Compiled) -> tuple[Compiled, Plan | None, bool]:
    """The plan of a compiled schema, made once (``None`` when it needs the search), and
    whether its values can hold a float.

    Most leaf outputs are small objects of plain fields, and the mock makes thousands of values
    for one schema: a plan decides everything that does not depend on the seed once, and makes
    each value with the same seeded picks and the same helpers as the maker, so that the two
    never differ (the property tests compare them).
    """
    found = _PLANS.get(id(schema))
    if found is not None and found[0] is schema:
        return found
    planner = _Planner(schema)
    try:
        plan: Plan | None = planner.plan(schema.plain, "", 0)
    except (_Unplannable, ValueError, TypeError, AttributeError, KeyError, Unresolvable):
        plan = None  # the maker handles it, and says what is wrong if anything is
    if len(_PLANS) >= _FLAT_SIZE:
        _PLANS.clear()
    entry = _PLANS[id(schema)] = (schema, plan, planner.floats)
    return entry


class _Planner:
    """Builds the plan of one root schema."""

    def __init__(self, schema: Compiled) -> None:
        self.maker = _Maker(schema.plain, b"", schema)
        self.floats = False
        """Whether the values can hold a float (a number, or an allowed value holding one)."""

    def plan(self, schema: Any, where: str, depth: int) -> Plan:
        """The plan of a value of ``schema`` (at ``where`` in the root) at nesting ``depth``."""
        if depth > PLAN_DEPTH:
            raise _Unplannable(where)
        base, choices, where = self.maker.flat(schema, where)
        if choices:
            raise _Unplannable(where)
        if "const" in base or "enum" in base:
            return self.members(schema, base)
        if "type" in base:
            types = _types(base["type"])
        else:
            types = [name for name, words in _HINTS if any(w in base for w in words)]
        if len(types) != 1:
            raise _Unplannable(where)
        kind = types[0]
        if kind == "object":
            return self.object(base, where, depth)
        if kind == "array":
            return self.array(base, where, depth)
        if kind == "string":
            return _string_plan(base)
        if kind == "number":
            self.floats = True
            return _number_plan(base)
        if kind == "integer":
            first, last, step = _integers(base, where)
            return lambda seed, pointer: int(
                (first + _pick(seed, pointer, "integer", last - first + 1)) * step
            )
        if kind == "boolean":
            return lambda seed, pointer: _pick(seed, pointer, "boolean", 2) == 1
        if kind == "null":
            return lambda seed, pointer: None
        raise _Unplannable(where)

    def members(self, whole: Any, base: dict[str, Any]) -> Plan:
        members = [base["const"]] if "const" in base else list(base["enum"])
        fits = [self.maker.valid(whole, member) for member in members]
        self.floats = self.floats or _holds_float(members)

        def plan(seed: bytes, pointer: str) -> Any:
            start = _pick(seed, pointer, "enum", len(members)) if members else 0
            for k in range(len(members)):
                i = (start + k) % len(members)
                if fits[i]:
                    return thaw(members[i])
            raise _Off

        return plan

    def object(self, base: dict[str, Any], where: str, depth: int) -> Plan:
        if any(k in base for k in ("patternProperties", "dependentRequired", "minProperties")):
            raise _Unplannable(where)
        properties: dict[str, Any] = base.get("properties", {})
        required: list[str] = list(base.get("required", []))
        high = base.get("maxProperties")
        optional = [name for name in properties if name not in required]
        fields: dict[str, tuple[Plan, str]] = {}
        for name in [*required, *optional]:
            parts = self.maker.field(base, name, where)
            if len(parts) != 1:
                raise _Unplannable(where)
            token = pointer_join("", name)
            fields[name] = (self.plan(parts[0][0], parts[0][1], depth + 1), token)
        choose = depth < OPTIONAL_DEPTH

        def plan(seed: bytes, pointer: str) -> Any:
            keys = list(required)
            for name in optional if choose else ():
                room = high is None or len(keys) < high
                if room and _pick(seed, pointer + fields[name][1], "has", 2):
                    keys.append(name)
            if high is not None and len(keys) > high:
                raise _Off
            out: dict[str, Any] = {}
            for name in keys:
                made, token = fields[name]
                out[name] = made(seed, pointer + token)
            return out

        return plan

    def array(self, base: dict[str, Any], where: str, depth: int) -> Plan:
        if any(k in base for k in ("prefixItems", "contains", "uniqueItems")):
            raise _Unplannable(where)
        items = base.get("items", True)
        low, high = base.get("minItems", 0), base.get("maxItems")
        if items is False or (high is not None and low > high):
            raise _Unplannable(where)
        top = _items_top(low, high, depth)
        item = self.plan(items, f"{where}/items", depth + 1)

        def plan(seed: bytes, pointer: str) -> Any:
            size = low + _pick(seed, pointer, "size", top - low + 1)
            return [item(seed, f"{pointer}/{i}") for i in range(size)]

        return plan


def _holds_float(value: Any) -> bool:
    if isinstance(value, float):
        return True
    if isinstance(value, Mapping):
        return any(_holds_float(item) for item in value.values())
    if isinstance(value, list | tuple):
        return any(_holds_float(item) for item in value)
    return False


def _string_plan(base: dict[str, Any]) -> Plan:
    if "pattern" in base:
        raise _Unplannable("pattern")
    low: int = base.get("minLength", 0)
    high: int | None = base.get("maxLength")
    if high is not None and low > high:
        raise _Unplannable("lengths")
    shape = _FORMATS.get(base.get("format", ""))

    def plan(seed: bytes, pointer: str) -> str:
        for text in _hashed_strings(seed, pointer, shape, low, high):
            if _fits_length(text, low, high):
                return text
        raise _Off

    return plan


def _number_plan(base: dict[str, Any]) -> Plan:
    if "multipleOf" in base:
        raise _Unplannable("multipleOf")
    lo, hi = _number_bounds(base)
    if lo > hi:
        raise _Unplannable("bounds")

    def plan(seed: bytes, pointer: str) -> float:
        value = _spread(base, lo, hi, _pick(seed, pointer, "number", 8))
        if value is None:
            raise _Off
        return value

    return plan
