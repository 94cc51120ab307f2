"""The generated workflow language reference: up to date, complete, and its examples valid."""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import starlark
from jsonschema import Draft202012Validator

from runner import docgen
from runner.compiler.schema import workflow_schema
from runner.compiler.starlark_loader import RESERVED_FIELDS, load_starlark

DOC = Path(__file__).resolve().parent.parent / "docs" / "workflow-language.md"
SCHEMA = workflow_schema()
KINDS = docgen.node_kinds(SCHEMA)
EXAMPLES = [
    pytest.param(example, id=f"{kind}-{index}")
    for kind in KINDS
    for index, example in enumerate(SCHEMA["$defs"][kind].get("examples", ()))
]


def _properties(schema: Any, pointer: str = "") -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(pointer, schema) of every property declared anywhere in ``schema``."""
    if not isinstance(schema, Mapping):
        return
    for keyword, value in schema.items():
        if keyword == "properties":
            for name, prop in value.items():
                yield f"{pointer}/properties/{name}", prop
                yield from _properties(prop, f"{pointer}/properties/{name}")
        elif keyword == "$defs":
            for name, sub in value.items():
                yield from _properties(sub, f"{pointer}/$defs/{name}")
        elif keyword in ("allOf", "anyOf", "oneOf", "prefixItems"):
            for index, sub in enumerate(value):
                yield from _properties(sub, f"{pointer}/{keyword}/{index}")
        # `if` only selects a branch; its `properties` are conditions, not fields.
        elif keyword in ("items", "additionalProperties", "then", "else", "not", "contains"):
            yield from _properties(value, f"{pointer}/{keyword}")


def test_checked_in_page_is_up_to_date() -> None:
    written = DOC.read_text(encoding="utf-8") if DOC.is_file() else ""
    assert written == docgen.render(SCHEMA), (
        f"{DOC.name} is out of date with schemas/workflow.schema.json; run `make docs`"
    )


def test_render_is_deterministic() -> None:
    assert docgen.render(copy.deepcopy(SCHEMA)) == docgen.render(SCHEMA)


def test_every_kind_and_field_is_documented() -> None:
    page = docgen.render(SCHEMA)
    for kind in KINDS:
        assert f"### `{kind}`" in page
        for name in SCHEMA["$defs"][kind]["properties"]:
            assert f"| `{name}` |" in page, f"{kind}.{name} is not in the page"
    for name in SCHEMA["properties"]:
        assert f"| `{name}` |" in page


def test_every_property_has_a_description() -> None:
    missing = [ptr for ptr, prop in _properties(SCHEMA) if not str(prop.get("description", ""))]
    assert not missing, f"properties without a description: {missing}"
    undescribed = [name for name, spec in SCHEMA["$defs"].items() if not spec.get("description")]
    assert not undescribed, f"definitions without a description: {undescribed}"


def test_every_kind_has_an_example() -> None:
    assert [kind for kind in KINDS if not SCHEMA["$defs"][kind].get("examples")] == []


@pytest.mark.parametrize("example", EXAMPLES)
def test_example_is_a_valid_node(example: dict[str, Any]) -> None:
    validator = Draft202012Validator({"$defs": SCHEMA["$defs"], "$ref": "#/$defs/node"})
    assert [error.message for error in validator.iter_errors(example)] == []


@pytest.mark.parametrize("example", EXAMPLES)
def test_starlark_example_parses(example: dict[str, Any]) -> None:
    starlark.parse("example.star", "x = " + docgen.to_starlark(example, KINDS))


@pytest.mark.parametrize("example", EXAMPLES)
def test_starlark_example_builds_the_yaml_example(example: dict[str, Any], tmp_path: Path) -> None:
    source = tmp_path / "example.star"
    code = docgen.to_starlark(example, KINDS)
    source.write_text(f'workflow(name="example", steps={code})\n', encoding="utf-8")
    document = load_starlark(str(source))
    assert document is not None
    assert document.data["steps"] == example


def test_renames_match_the_starlark_loader() -> None:
    assert {doc: arg for arg, doc in RESERVED_FIELDS.items()} == docgen.STARLARK_RENAMES


def test_to_starlark_converts_nested_nodes() -> None:
    value = {
        "kind": "expand",
        "id": "each",
        "over": "inputs.files",
        "as": "file",
        "max_children": 2,
        "body": {
            "kind": "cond",
            "id": "check",
            "if": "file != ''",
            "then": {"kind": "leaf", "id": "yes", "role": "r", "prompt": 'Say "hi"', "sample": 0},
            "else": {"kind": "leaf", "id": "no", "role": "r", "prompt": "x", "output": None},
        },
        "fail_fast": True,
        "description": False,
    }
    code = docgen.to_starlark(value, {"expand", "cond", "leaf"})
    assert code == (
        "expand(\n"
        '    id="each",\n'
        '    over="inputs.files",\n'
        '    as_="file",\n'
        "    max_children=2,\n"
        "    body=cond(\n"
        '        id="check",\n'
        "        if_=\"file != ''\",\n"
        '        then=leaf(id="yes", role="r", prompt="Say \\"hi\\"", sample=0),\n'
        '        else_=leaf(id="no", role="r", prompt="x", output=None),\n'
        "    ),\n"
        "    fail_fast=True,\n"
        "    description=False,\n"
        ")"
    )
    starlark.parse("example.star", "x = " + code)


def test_to_starlark_keeps_plain_mappings_as_dicts() -> None:
    value = {"kind": "not_a_node", "if": [1, 2.5, None]}
    assert docgen.to_starlark(value, {"leaf"}) == '{"kind": "not_a_node", "if": [1, 2.5, None]}'


def test_table_cells_escape_pipes_and_constraints_are_worded() -> None:
    schema = {
        "description": "Tiny.",
        "properties": {"mode": {"enum": ["a", "on"], "description": "Mode a|b."}},
        "$defs": {
            "node": {"properties": {"kind": {"enum": ["one"]}}},
            "one": {
                "description": "The only kind.",
                "properties": {
                    "x": {"type": "string", "description": "X."},
                    "y": {"type": "string", "description": "Y."},
                },
                "oneOf": [{"required": ["x"]}, {"required": ["y"]}],
                "dependentRequired": {"x": ["y"]},
            },
        },
    }
    page = docgen.render(schema)
    assert "| `mode` | `a` \\| `on` | no | Mode a\\|b. In YAML, quote `on`. |" in page
    assert "- Give either `x` or `y`, not both." in page
    assert "- `x` needs `y`." in page
