"""Canonical JSON: one text per value, and comparing values as their texts would."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from runner.canonical import canonical_bytes, canonical_json, compact_json, same_json

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.sampled_from([0, 1, -1, 0.0, -0.0, 1.0, 0.5, 2]),
    st.text(alphabet="ab", max_size=2),
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.tuples(inner, inner),
        st.dictionaries(st.sampled_from(["a", "b"]), inner, max_size=2),
    ),
    max_leaves=6,
)


@settings(max_examples=500, deadline=None)
@given(one=JSON_VALUES, two=JSON_VALUES)
def test_same_json_is_equality_of_canonical_json(one: object, two: object) -> None:
    assert same_json(one, two) == (canonical_json(one) == canonical_json(two))
    assert same_json(one, one)


def test_canonical_sorts_keys_and_compact_keeps_their_order() -> None:
    value = {"b": 1, "a": [True, None, "é"]}
    assert canonical_json(value) == '{"a":[true,null,"é"],"b":1}'
    assert compact_json(value) == '{"b":1,"a":[true,null,"é"]}'


ALIKE = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.text(),
        st.just(0.0),
        st.floats(min_value=1e-4, max_value=9.99e15),
        st.floats(min_value=-9.99e15, max_value=-1e-4),
    ),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(), inner)),
    max_leaves=8,
)


@settings(max_examples=500, deadline=None)
@given(value=ALIKE)
def test_canonical_bytes_by_orjson_are_those_of_canonical_json(value: object) -> None:
    try:
        expected = canonical_json(value).encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: neither writes it
        return
    assert canonical_bytes(value, floats_alike=True) == expected
