"""Call keys: the same call, the same key; any field that decides the reply changes it."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runner.canonical import content_hash
from runner.keys import CALL_FIELDS, KEY_VERSION, Unkeyable, command_key, differences, key_of
from runner.providers.base import ChatMessage

BASE: dict[str, Any] = {
    "provider": "local",
    "endpoint": "http://127.0.0.1:8911/v1",
    "model": "small",
    "messages": (ChatMessage(role="user", content="Review a.py"),),
    "temperature": 0.2,
    "max_tokens": 300,
    "json_mode": True,
    "output_schema": {"type": "object"},
    "sample": 0,
}

CHANGES: dict[str, Any] = {
    "provider": "other",
    "endpoint": None,
    "model": "large",
    "messages": (ChatMessage(role="user", content="Review b.py"),),
    "temperature": 0.3,
    "max_tokens": 301,
    "json_mode": False,
    "output_schema": {"type": "array"},
    "sample": 1,
    "repeat": 1,
    "structured": True,
}


def test_the_same_call_has_the_same_key() -> None:
    assert key_of(**BASE).digest == key_of(**dict(BASE)).digest
    assert len(key_of(**BASE).digest) == 64


@pytest.mark.parametrize("field", CALL_FIELDS)
def test_every_field_changes_the_key_and_is_named_as_the_difference(field: str) -> None:
    before = key_of(**BASE)
    after = key_of(**{**BASE, field: CHANGES[field]})
    assert before.digest != after.digest
    assert differences(before.fields, after.fields) == [field]


def test_a_call_outside_repeats_keeps_the_key_it_had_before_repeats_were_keyed() -> None:
    key = key_of(**BASE)
    assert key.named()["repeat"] == 0
    assert key.digest == content_hash([KEY_VERSION, *key.fields[:-2]])  # repeat not hashed
    assert key_of(**{**BASE, "repeat": 2}).digest == content_hash(
        [KEY_VERSION, *key.fields[:-2], 2]
    )


def test_a_call_without_a_native_schema_keeps_the_key_it_had_before() -> None:
    key = key_of(**BASE)
    assert key.named()["structured"] is False
    assert key.digest == content_hash([KEY_VERSION, *key.fields[:-2]])
    assert key_of(**{**BASE, "structured": True}).digest == content_hash(
        [KEY_VERSION, *key.fields[:-1], True]
    )


def test_calls_that_cannot_be_canonicalized_have_no_key() -> None:
    with pytest.raises(Unkeyable, match="canonical JSON"):
        key_of(**{**BASE, "temperature": math.nan})
    with pytest.raises(Unkeyable, match="not JSON"):
        key_of(**{**BASE, "output_schema": {"type": {1, 2}}})


def test_command_keys_cover_argv_directory_and_env() -> None:
    base = command_key(["git", "diff"], "workspace:.", {})
    assert base == command_key(["git", "diff"], "workspace:.", {})
    assert base != command_key(["git", "diff", "--stat"], "workspace:.", {})
    assert base != command_key(["git", "diff"], "worktree:.", {})
    assert base != command_key(["git", "diff"], "workspace:.", {"A": "1"})


@settings(max_examples=400, deadline=None)
@given(
    temperature=st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False)),
    content=st.text(),
    max_tokens=st.one_of(st.none(), st.integers(min_value=-(2**70), max_value=2**70)),
)
def test_the_key_is_the_hash_of_the_canonical_json_of_its_fields(
    temperature: float | None, content: str, max_tokens: int | None
) -> None:
    fields = {
        **BASE,
        "temperature": temperature,
        "messages": (ChatMessage(role="user", content=content),),
        "max_tokens": max_tokens,
    }
    try:
        key = key_of(**fields)
    except Unkeyable:  # a lone surrogate is no UTF-8
        with pytest.raises(UnicodeEncodeError, match="surrogates"):
            content.encode("utf-8")
        return
    assert key.digest == content_hash(
        [KEY_VERSION, *key.fields[:-2]]
    )  # repeat, structured: not hashed
