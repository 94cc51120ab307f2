"""The workflow schema is a complete, closed contract."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from jsonschema import Draft202012Validator

from runner import ir
from runner.compiler.schema import CONFIG_SCHEMA, load_schema, workflow_schema
from runner.learning.lessons import LESSON_SCHEMA

DISPATCH = "/$defs/node"
"""The node dispatcher selects a kind's schema with if/then; the kind schemas are closed."""


def _objects(schema: Any, pointer: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(schema, dict):
        if "properties" in schema:
            yield pointer, schema
        for key, value in schema.items():
            yield from _objects(value, f"{pointer}/{key}")
    elif isinstance(schema, list):
        for index, value in enumerate(schema):
            yield from _objects(value, f"{pointer}/{index}")


def test_schemas_are_valid_json_schema_2020_12() -> None:
    for name in ("workflow.schema.json", CONFIG_SCHEMA, LESSON_SCHEMA):
        Draft202012Validator.check_schema(load_schema(name))


def test_every_object_is_closed() -> None:
    for name in ("workflow.schema.json", CONFIG_SCHEMA, LESSON_SCHEMA):
        for pointer, schema in _objects(load_schema(name)):
            if pointer == DISPATCH or "/if" in pointer or "/examples/" in pointer:
                continue
            assert schema.get("additionalProperties") is False, f"{name}{pointer}"


def test_schema_kinds_match_the_ir() -> None:
    kinds = workflow_schema()["$defs"]["node"]["properties"]["kind"]["enum"]
    assert set(kinds) == set(ir.NODE_TYPES)
    for kind, cls in ir.NODE_TYPES.items():
        fields = {f.metadata.get("doc", f.name) for f in cls.__dataclass_fields__.values()}
        assert fields == set(workflow_schema()["$defs"][kind]["properties"]), kind
