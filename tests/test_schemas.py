"""Compiled checks answer exactly what the 2020-12 validator answers, on the schemas they take.

Random schemas from the supported keywords (and a few outside them, which must be declined)
are checked against random JSON values and against values close to valid: a made instance and
its mutations, so that both answers are common.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from runner.providers.instances import instance
from runner.schemas import compile_check

PROPERTIES = settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.sampled_from([0.0, 1.0, -1.0, 2.5, 1e300]),
    st.text(alphabet="ab1", max_size=3),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(["a", "b", "ok", "x"]), inner, max_size=4),
    ),
    max_leaves=10,
)
TYPES = ["object", "array", "string", "boolean", "null", "number", "integer"]

SCALAR_KEYWORDS = {
    "type": st.one_of(st.sampled_from(TYPES), st.lists(st.sampled_from(TYPES), min_size=1)),
    "enum": st.lists(VALUES, max_size=4),
    "const": VALUES,
    "minLength": st.integers(0, 3),
    "maxLength": st.integers(0, 3),
    "pattern": st.sampled_from(["^a", "b$", "[0-9]", "^$"]),
    "minimum": st.one_of(st.integers(-3, 3), st.floats(-3, 3)),
    "maximum": st.one_of(st.integers(-3, 3), st.floats(-3, 3)),
    "exclusiveMinimum": st.integers(-3, 3),
    "exclusiveMaximum": st.floats(-3, 3),
    "minItems": st.integers(0, 3),
    "maxItems": st.integers(0, 3),
    "uniqueItems": st.booleans(),
    "minProperties": st.integers(0, 2),
    "maxProperties": st.integers(0, 3),
    "description": st.just("annotated"),
    "format": st.sampled_from(["date", "email"]),
}


def extend(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.fixed_dictionaries(
            {},
            optional={
                "type": st.just("object"),
                "properties": st.dictionaries(
                    st.sampled_from(["a", "b", "ok"]), children, max_size=3
                ),
                "required": st.lists(st.sampled_from(["a", "b", "ok", "x"]), max_size=3),
                "additionalProperties": children,
            },
        ),
        st.fixed_dictionaries({"items": children}, optional={"type": st.just("array")}),
    )


LEAVES = st.one_of(st.booleans(), st.fixed_dictionaries({}, optional=SCALAR_KEYWORDS))
SCHEMAS = st.recursive(LEAVES, extend, max_leaves=8)


def reference(schema: Any, value: Any) -> bool:
    return bool(Draft202012Validator(schema).is_valid(value))


@PROPERTIES
@given(schema=SCHEMAS, value=VALUES)
def test_compiled_checks_agree_with_the_validator_on_any_value(schema: Any, value: Any) -> None:
    check = compile_check(schema)
    assert check is not None, schema
    assert check(value) == reference(schema, value), (schema, value)


@PROPERTIES
@given(schema=SCHEMAS, seed=st.binary(max_size=8), data=st.data())
def test_compiled_checks_agree_on_values_close_to_valid(
    schema: Any, seed: bytes, data: st.DataObject
) -> None:
    try:
        value = instance(schema, seed)
    except ValueError:  # a random schema that nothing satisfies
        return
    check = compile_check(schema)
    assert check is not None
    assert check(value) is True
    mutated = mutate(value, data)
    assert check(mutated) == reference(schema, mutated), (schema, mutated)


def mutate(value: Any, data: st.DataObject) -> Any:
    """The value with one part replaced, dropped or duplicated."""
    if isinstance(value, dict) and value and data.draw(st.booleans()):
        key = data.draw(st.sampled_from(sorted(value)))
        changed = dict(value)
        if data.draw(st.booleans()):
            del changed[key]
        else:
            changed[key] = mutate(value[key], data)
        return changed
    if isinstance(value, list) and value and data.draw(st.booleans()):
        return [*value, value[0]] if data.draw(st.booleans()) else value[1:]
    return data.draw(VALUES)


def combine(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    some = st.lists(children, min_size=1, max_size=3)
    return st.one_of(
        extend(children),
        st.builds(lambda parts: {"allOf": parts}, some),
        st.builds(lambda parts: {"anyOf": parts}, some),
        st.builds(lambda parts: {"oneOf": parts}, some),
        st.builds(lambda part: {"not": part}, children),
        st.lists(
            st.builds(
                lambda const, typed, then: {
                    "if": {
                        **({"type": "object"} if typed else {}),
                        "properties": {"a": {"const": const}},
                        "required": ["a"],
                    },
                    "then": then,
                },
                st.sampled_from([1, "x", True, None]),
                st.booleans(),
                children,
            ),
            min_size=1,
            max_size=3,
        ).map(lambda parts: {"allOf": parts}),  # picked by the value of "a" (runner.schemas)
        st.fixed_dictionaries({"if": children}, optional={"then": children, "else": children}),
        st.fixed_dictionaries(
            {},
            optional={
                "propertyNames": st.sampled_from([{"pattern": "^[ab]"}, {"maxLength": 1}]),
                "dependentRequired": st.dictionaries(
                    st.sampled_from(["a", "b", "ok"]),
                    st.lists(st.sampled_from(["a", "b", "x"]), max_size=2),
                    max_size=2,
                ),
            },
        ),
    )


COMBINED = st.recursive(LEAVES, combine, max_leaves=8)


@settings(PROPERTIES, max_examples=150)
@given(schema=COMBINED, defined=COMBINED, value=VALUES)
def test_combined_and_referring_schemas_agree_with_the_validator(
    schema: Any, defined: Any, value: Any
) -> None:
    # A reference reaches the root's $defs, and a definition may refer to itself.
    rooted = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$defs": {
            "d": defined,
            "self": {"anyOf": [{"type": "string"}, {"items": {"$ref": "#/$defs/self"}}]},
        },
        "allOf": [schema, {"$ref": "#/$defs/d"}],
        "properties": {"nested": {"$ref": "#/$defs/self"}},
    }
    for whole in (schema, rooted):
        check = compile_check(whole)
        assert check is not None, whole
        assert check(value) == reference(whole, value), (whole, value)
        assert check({"nested": [value]}) == reference(whole, {"nested": [value]})


@pytest.mark.parametrize(
    "schema",
    [
        {"anyOf": []},
        {"$ref": "https://example.com/other.json"},
        {"$ref": "#anchor"},
        {"$ref": "#/$defs/missing", "$defs": {}},
        {"properties": {"a": {"$id": "inner", "type": "string"}}},
        {"dependentRequired": {"a": "b"}},
        {"multipleOf": 2},
        {"type": "object", "patternProperties": {"^a": True}},
        {"prefixItems": [True]},
        {"minimum": "5"},
        {"minLength": -1},
        {"type": "strnig"},
        {"type": []},
        {"pattern": "("},
        {"enum": "abc"},
        {"required": "a"},
        {"uniqueItems": 1},
        "not a schema",
    ],
)
def test_schemas_outside_the_supported_keywords_are_declined(schema: Any) -> None:
    assert compile_check(schema) is None


def test_typical_leaf_schema() -> None:
    check = compile_check(
        {
            "type": "object",
            "required": ["verdict", "score"],
            "additionalProperties": False,
            "properties": {
                "verdict": {"enum": ["accept", "reject"]},
                "score": {"type": "number", "minimum": 0, "maximum": 1},
                "notes": {"type": "array", "items": {"type": "string"}},
            },
        }
    )
    assert check is not None
    assert check({"verdict": "accept", "score": 0.5})
    assert check({"verdict": "reject", "score": 1, "notes": ["x"]})
    assert not check({"verdict": "maybe", "score": 0.5})
    assert not check({"verdict": "accept", "score": True})
    assert not check({"verdict": "accept", "score": 0.5, "extra": 1})
    assert not check({"verdict": "accept"})
    assert not check({"verdict": "accept", "score": 0.5, "notes": [1]})
    assert not check([])
