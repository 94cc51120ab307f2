"""Schema instances: valid against their schema, deterministic, and varied across seeds.

Properties checked on random schemas from a small grammar (scalars with bounds, lengths,
patterns, formats, enums and consts; objects, arrays, anyOf, oneOf, allOf and local $refs over
them, every one satisfiable by construction): ``instance`` returns a value the 2020-12
validator accepts, and the same value for the same seed.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from runner.canonical import canonical_json
from runner.providers.instances import _planned, instance, instance_text, searched
from runner.schemas import compiled

PROPERTIES = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

NAMES = ("ok", "score", "reason", "files", "id", "a b", "x/y", "~t")
PATTERNS = (
    r"^[a-z]+$",
    r"^[A-Z]{2}\d{3}$",
    r"^(yes|no|maybe)$",
    r"^[0-9a-f]{4,8}$",
    r"^\w+@\w+\.com$",
    r"^[^0-9\s]+$",
    r"^v\d+\.\d+(\.\d+)?$",
    r"needle",
)
FORMATS = ("date", "date-time", "email", "uri", "uuid")
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-1000, 1000),
    st.text(max_size=6),
    st.sampled_from([0.5, -2.25, 1e3]),
)


def valid(schema: Any, value: Any) -> bool:
    return bool(Draft202012Validator(schema).is_valid(value))


@st.composite
def integers(draw: st.DrawFn) -> dict[str, Any]:
    low = draw(st.integers(-(10**6), 10**6))
    step = draw(st.sampled_from([1, 1, 2, 3, 7, 0.5, 1.5]))
    # Integer multiples of 0.5, 1.5 or 7 are multiples of 1, 3 or 7: the span holds some.
    span = draw(st.integers(0, 50)) + 3 * max(1, int(step))
    schema: dict[str, Any] = {"type": "integer"}
    if draw(st.booleans()):
        exclusive = draw(st.booleans())
        schema["exclusiveMinimum" if exclusive else "minimum"] = low - exclusive
    if draw(st.booleans()):
        exclusive = draw(st.booleans())
        schema["exclusiveMaximum" if exclusive else "maximum"] = low + span + exclusive
    if step != 1:
        schema["multipleOf"] = step
    return schema


@st.composite
def numbers(draw: st.DrawFn) -> dict[str, Any]:
    low = draw(st.floats(-1e6, 1e6))
    if draw(st.booleans()):
        step = draw(st.sampled_from([0.25, 0.5, 4]))
        return {"type": "number", "multipleOf": step, "minimum": low, "maximum": low + 8}
    span = draw(st.floats(0.01, 1e6))
    schema: dict[str, Any] = {"type": "number"}
    if draw(st.booleans()):
        schema["exclusiveMinimum" if draw(st.booleans()) else "minimum"] = low
    if draw(st.booleans()):
        schema["exclusiveMaximum" if draw(st.booleans()) else "maximum"] = low + span
    return schema


@st.composite
def strings(draw: st.DrawFn) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    kind = draw(st.sampled_from(["plain", "pattern", "format"]))
    if kind == "pattern":
        schema["pattern"] = draw(st.sampled_from(PATTERNS))
    elif kind == "format":
        schema["format"] = draw(st.sampled_from(FORMATS))
    else:
        low = draw(st.integers(0, 70))
        schema["minLength"] = low
        if draw(st.booleans()):
            schema["maxLength"] = low + draw(st.integers(0, 10))
    return schema


LEAVES = st.one_of(
    st.just(True),
    st.just({}),
    st.just({"type": "boolean"}),
    st.just({"type": "null"}),
    st.sampled_from([{"type": ["string", "null"]}, {"type": ["integer", "boolean"]}]),
    integers(),
    numbers(),
    strings(),
    st.lists(SCALARS, min_size=1, max_size=4).map(lambda v: {"enum": v}),
    SCALARS.map(lambda v: {"const": v}),
)


def extend(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(objects(children), arrays(children), choices(children))


@st.composite
def objects(draw: st.DrawFn, children: st.SearchStrategy[Any]) -> dict[str, Any]:
    properties = draw(st.dictionaries(st.sampled_from(NAMES), children, max_size=4))
    required = [name for name in properties if draw(st.booleans())]
    schema = {"type": "object", "properties": properties, "required": required}
    extra = draw(st.one_of(st.none(), st.booleans(), children))
    if extra is not None:
        schema["additionalProperties"] = extra
    return schema


@st.composite
def arrays(draw: st.DrawFn, children: st.SearchStrategy[Any]) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "array", "items": draw(children)}
    prefix = draw(st.lists(children, max_size=3))
    if prefix:
        schema["prefixItems"] = prefix
        if draw(st.booleans()):
            schema["items"] = False
    most = len(prefix) if schema["items"] is False else 6
    low = draw(st.integers(0, most))
    schema["minItems"] = low
    if draw(st.booleans()):
        schema["maxItems"] = draw(st.integers(low, most))
    return schema


@st.composite
def choices(draw: st.DrawFn, children: st.SearchStrategy[Any]) -> dict[str, Any]:
    kind = draw(st.sampled_from(["anyOf", "oneOf", "allOf"]))
    if kind == "anyOf":
        return {"anyOf": draw(st.lists(children, min_size=1, max_size=3))}
    if kind == "oneOf":
        # Branches of different types never overlap, so exactly one of them holds.
        return {"oneOf": [{"type": "null"}, draw(strings()), draw(objects(children))]}
    if draw(st.booleans()):
        return {"allOf": [draw(children), True, {"description": "merged"}]}
    low = draw(st.integers(-100, 100))
    return {"allOf": [{"type": "integer", "minimum": low}, {"maximum": low + 5}]}


SCHEMAS = st.recursive(LEAVES, extend, max_leaves=12)


@st.composite
def rooted(draw: st.DrawFn) -> Any:
    """A schema, sometimes reached through a local $ref to a definition."""
    schema = draw(SCHEMAS)
    if draw(st.booleans()):
        return {"$defs": {"body": schema, "unused": False}, "$ref": "#/$defs/body"}
    return schema


@PROPERTIES
@given(schema=rooted(), seed=st.binary(max_size=16))
def test_instances_are_valid_and_deterministic(schema: Any, seed: bytes) -> None:
    value = instance(schema, seed)
    assert valid(schema, value), (schema, value)
    assert canonical_json(instance(schema, seed)) == canonical_json(value)


@PROPERTIES
@given(schema=rooted(), seed=st.binary(max_size=16))
def test_the_reply_text_is_the_canonical_json_of_the_value(schema: Any, seed: bytes) -> None:
    assert instance_text(schema, seed) == canonical_json(instance(schema, seed))


@PROPERTIES
@given(schema=rooted(), seed=st.binary(max_size=16))
def test_a_planned_value_is_the_value_the_search_makes(schema: Any, seed: bytes) -> None:
    assert canonical_json(instance(schema, seed)) == canonical_json(
        searched(compiled(schema), seed)
    )


LOOSE_LEAVES = st.one_of(
    LEAVES,
    st.just(False),
    st.fixed_dictionaries(
        {},
        optional={
            "type": st.sampled_from(["integer", "number", "string", ["integer", "string"]]),
            "minimum": st.integers(-5, 5),
            "maximum": st.integers(-5, 5),
            "exclusiveMaximum": st.floats(-5, 5),
            "multipleOf": st.sampled_from([2, 0.5, 3]),
            "minLength": st.integers(0, 4),
            "maxLength": st.integers(0, 4),
            "pattern": st.sampled_from([*PATTERNS, r"(?=a)b", r"(a)\1", r"^$"]),
            "not": st.sampled_from([{"type": "string"}, {"const": 0}]),
            "enum": st.lists(SCALARS, max_size=3),
        },
    ),
)


def loose_extend(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    unique = st.fixed_dictionaries(
        {"type": st.just("array"), "items": children, "uniqueItems": st.booleans()},
        optional={"minItems": st.integers(0, 4), "maxItems": st.integers(0, 4)},
    )
    return st.one_of(
        extend(children),
        unique,
        st.lists(children, min_size=1, max_size=3).map(lambda c: {"allOf": c}),
        st.lists(children, min_size=1, max_size=3).map(lambda c: {"oneOf": c}),
    )


@PROPERTIES
@given(schema=st.recursive(LOOSE_LEAVES, loose_extend, max_leaves=10), seed=st.binary())
def test_any_schema_gives_a_valid_value_or_a_value_error(schema: Any, seed: bytes) -> None:
    try:
        value = instance(schema, seed)
    except ValueError as exc:
        message = str(exc)
    else:
        assert valid(schema, value), (schema, value)
        return
    assert message.startswith(("the schema at /", "the schema is not valid")), message


def plain_extend(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(objects(children), arrays(children))


@PROPERTIES
@given(schema=st.recursive(LOOSE_LEAVES, plain_extend, max_leaves=10), seed=st.binary())
def test_loose_schemas_fail_or_succeed_as_the_search_does(schema: Any, seed: bytes) -> None:
    outcomes = []
    for make in (lambda: instance(schema, seed), lambda: searched(compiled(schema), seed)):
        try:
            outcomes.append(canonical_json(make()))
        except ValueError as exc:
            outcomes.append(f"error: {exc}")
    assert outcomes[0] == outcomes[1]


PLAIN_OUTPUT = {
    "type": "object",
    "properties": {
        "ok": {"type": "boolean"},
        "score": {"type": "number", "minimum": 0, "maximum": 1},
        "count": {"type": "integer", "minimum": 1},
        "reason": {"type": "string", "maxLength": 40},
        "when": {"type": "string", "format": "date"},
        "tags": {"type": "array", "items": {"enum": ["style", "bug"]}, "maxItems": 3},
        "nothing": {"type": "null"},
    },
    "required": ["ok", "score"],
    "additionalProperties": False,
}


@pytest.mark.parametrize(
    "schema", [PLAIN_OUTPUT, {"type": "array", "items": PLAIN_OUTPUT, "minItems": 1}]
)
def test_plain_leaf_outputs_are_made_by_a_plan(schema: dict[str, Any]) -> None:
    assert _planned(compiled(schema))[1] is not None
    for seed in (b"", b"one", b"two"):
        assert instance(schema, seed) == searched(compiled(schema), seed)


REVIEW = {
    "type": "object",
    "properties": {
        "ok": {"type": "boolean"},
        "score": {"type": "number", "minimum": 0, "maximum": 1},
        "reason": {"type": "string", "maxLength": 40},
        "tags": {"type": "array", "items": {"enum": ["style", "bug", "perf"]}, "maxItems": 3},
    },
    "required": ["ok", "score", "reason"],
    "additionalProperties": False,
}


def test_different_seeds_usually_give_different_values() -> None:
    values = {canonical_json(instance(REVIEW, b"%d" % seed)) for seed in range(50)}
    assert len(values) >= 45


def test_frozen_schemas_give_the_same_values_as_plain_ones() -> None:
    from runner.canonical import freeze

    assert instance(freeze(REVIEW), b"s") == instance(REVIEW, b"s")


def test_recursive_definitions_end() -> None:
    tree = {
        "$defs": {
            "node": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "children": {"type": "array", "items": {"$ref": "#/$defs/node"}},
                },
                "required": ["name", "children"],
            }
        },
        "$ref": "#/$defs/node",
    }
    for seed in range(20):
        assert valid(tree, instance(tree, b"%d" % seed))


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "string", "pattern": r"^[A-Z]{3}-\d{2,4}$"},
        {"type": "string", "pattern": r"^(foo|bar)+baz$", "maxLength": 9},
        {"type": "string", "pattern": r"^[^a-z0-9\s]+$"},
        {"type": "array", "items": {"type": "boolean"}, "minItems": 2, "uniqueItems": True},
        {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1e-300},
        {"type": "integer", "minimum": 0.5, "exclusiveMaximum": 2.5, "multipleOf": 2},
        {"oneOf": [{"type": "integer"}, {"type": "number"}]},
        {"type": "object", "minProperties": 2, "dependentRequired": {"extra_0": ["b"]}},
        {"allOf": [{"type": ["integer", "string"]}, {"type": ["number", "null"]}]},
        {"type": "string", "format": "uuid", "maxLength": 36},
    ],
)
def test_harder_keywords_are_satisfied(schema: dict[str, Any]) -> None:
    for seed in range(10):
        assert valid(schema, instance(schema, b"%d" % seed))


@pytest.mark.parametrize(
    ("schema", "where", "why"),
    [
        (False, "/", "false"),
        (
            {
                "properties": {"n": {"type": "integer", "minimum": 5, "maximum": 3}},
                "required": ["n"],
            },
            "/properties/n",
            "no integer lies in [5, 3]",
        ),
        (
            {"properties": {"code": {"type": "string", "pattern": "(?=x)y"}}, "required": ["code"]},
            "/properties/code",
            "pattern",
        ),
        ({"type": "string", "minLength": 3, "maxLength": 2}, "/", "minLength 3 is above"),
        ({"type": "object", "required": ["x"], "additionalProperties": False}, "/", "'x'"),
        ({"type": "array", "prefixItems": [True], "items": False, "minItems": 2}, "/", "2 items"),
        ({"$ref": "#/$defs/missing"}, "/", "points at nothing"),
        ({"anyOf": [{"type": "string", "maxLength": -1}, False]}, "/anyOf", "none of its 2"),
        ({"properties": {"a": {"$ref": "#"}}, "required": ["a"]}, "/properties/a", "deeper"),
    ],
)
def test_unsatisfiable_schemas_name_the_pointer(schema: Any, where: str, why: str) -> None:
    with pytest.raises(ValueError, match="the schema") as caught:
        instance(schema, b"seed")
    assert f"the schema at {where}" in str(caught.value)
    assert why in str(caught.value)


def test_malformed_schemas_are_value_errors() -> None:
    with pytest.raises(ValueError, match="not valid JSON Schema"):
        instance({"type": "integer", "minimum": "5"}, b"seed")
    with pytest.raises(ValueError, match="not JSON"):
        instance({"enum": [{1, 2}]}, b"seed")


def test_a_reply_without_floats_is_written_with_sorted_keys() -> None:
    schema = {
        "type": "object",
        "properties": {
            "zeta": {"type": "boolean"},
            "alpha": {"type": "array", "items": {"type": "integer", "minimum": 0}},
            "mid": {"enum": ["é", "b"]},
        },
        "required": ["zeta", "alpha", "mid"],
    }
    for seed in (b"", b"one", b"two"):
        text = instance_text(schema, seed)
        assert text == canonical_json(instance(schema, seed))
        assert text.index('"alpha"') < text.index('"mid"') < text.index('"zeta"')
