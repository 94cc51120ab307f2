"""The generated references (workflow language, configuration, mock scripts): up to date,
complete, their examples valid and their defaults the code's."""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import starlark
import yaml
from jsonschema import Draft202012Validator

from runner import config, docgen, docgen_config
from runner.compiler.schema import load_schema, workflow_schema
from runner.compiler.starlark_loader import RESERVED_FIELDS, load_starlark
from runner.executor import calls
from runner.providers import anthropic, http, openai
from runner.providers.script import MockScript, load_script

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


# -- the configuration and mock-script references ----------------------------------------------

PAGES = {name: DOC.parent / Path(page).name for name, (_, page) in docgen_config.PAGES.items()}
REFERENCE_SCHEMAS = {name: load_schema(file) for name, (file, _) in docgen_config.PAGES.items()}
CONFIG = REFERENCE_SCHEMAS["configuration"]
SCRIPT = REFERENCE_SCHEMAS["mock-script"]


@pytest.mark.parametrize("name", sorted(PAGES))
def test_checked_in_reference_is_up_to_date(name: str) -> None:
    written = PAGES[name].read_text(encoding="utf-8") if PAGES[name].is_file() else ""
    assert written == docgen_config.page(name), (
        f"{PAGES[name].name} is out of date; run `make docs`"
    )


@pytest.mark.parametrize("name", sorted(PAGES))
def test_every_reference_field_is_described_and_on_the_page(name: str) -> None:
    schema = REFERENCE_SCHEMAS[name]
    page = docgen_config.page(name)
    found = list(_properties(schema))
    missing = [ptr for ptr, prop in found if not str(prop.get("description", ""))]
    assert not missing, f"properties without a description: {missing}"
    for pointer, _ in found:
        assert f"| `{pointer.rsplit('/', 1)[-1]}` |" in page, f"{pointer} is not on the page"
    assert all(spec.get("description") for spec in schema["$defs"].values())


@pytest.mark.parametrize("name", sorted(PAGES))
def test_every_value_meaning_names_a_value_of_its_enum(name: str) -> None:
    for pointer, prop in _properties(REFERENCE_SCHEMAS[name]):
        target = prop.get("items", prop)
        if "x-values" in target:
            assert list(target["x-values"]) == [str(v) for v in target["enum"]], pointer


def test_capability_meanings_cover_what_the_runner_knows() -> None:
    items = CONFIG["$defs"]["model"]["properties"]["capabilities"]["items"]
    assert set(items["x-values"]) == config.ALL_CAPABILITIES


def test_configuration_examples_load_as_configurations(tmp_path: Path) -> None:
    types = set()
    for index, example in enumerate(docgen_config.examples(CONFIG)):
        path = tmp_path / f"example{index}.yaml"
        path.write_text(yaml.safe_dump(example, sort_keys=False), encoding="utf-8")
        loaded = config.load_config(str(path))
        types |= {provider.type for provider in loaded.providers.values()}
        for role in example["roles"]:
            loaded.capabilities(role)
    assert {"openai", "anthropic"} <= types


def test_mock_script_example_loads_as_a_script(tmp_path: Path) -> None:
    example = docgen_config.examples(SCRIPT)[0]
    path = tmp_path / "script.yaml"
    path.write_text(yaml.safe_dump(example, sort_keys=False), encoding="utf-8")
    loaded = load_script(str(path))
    entry = loaded.entry("review_one[0]")
    assert entry is not None
    assert entry.errors == (429, "timeout")
    assert loaded.entry("review_one[1]") is not None


def _section(schema: Mapping[str, Any], title: str) -> str:
    (found,) = [s for s in docgen_config.sections(schema) if s["title"] == title]
    return " ".join(found["text"])


def test_documented_defaults_are_the_code_defaults(tmp_path: Path) -> None:
    provider = CONFIG["$defs"]["provider"]["properties"]
    assert provider["timeout_s"]["default"] == http.DEFAULT_TIMEOUT_S
    assert provider["max_retries"]["default"] == http.DEFAULT_MAX_RETRIES
    assert provider["max_retries"]["default"] == calls.DEFAULT_PROVIDER_RETRIES
    assert openai.DEFAULT_BASE_URL in provider["base_url"]["description"]
    assert anthropic.DEFAULT_BASE_URL in provider["base_url"]["description"]
    path = tmp_path / "branchleaf.yaml"
    path.write_text("providers: {p: {type: openai, models: {m: {}}}}\n", encoding="utf-8")
    model = config.load_config(str(path)).providers["p"].models["m"]
    fields = CONFIG["$defs"]["model"]["properties"]
    assert sorted(model.capabilities) == fields["capabilities"]["default"]
    prices = fields["price"]["properties"]
    assert model.input_per_mtok == prices["input_per_mtok"]["default"]
    assert model.output_per_mtok == prices["output_per_mtok"]["default"]
    latency = SCRIPT["properties"]["defaults"]["properties"]["latency_ms"]["default"]
    assert MockScript().latency_ms == latency


def test_documented_time_outs_and_backoff_are_the_code_constants() -> None:
    text = _section(CONFIG, "Time-outs and retries")
    assert f"at most {http.CONNECT_TIMEOUT_S:g} seconds to connect" in text
    assert f"(at most {http.RETRY_AFTER_CAP_S:g} seconds)" in text
    assert f"between 0 and {http.BACKOFF_BASE_S:g} \N{MULTIPLICATION SIGN} 2^n seconds" in text
    assert f"at most {http.BACKOFF_CAP_S:g} seconds." in text
    assert calls.RetryPolicy() == calls.RetryPolicy(base_s=http.BACKOFF_BASE_S, cap_s=30.0)
    assert calls.RetryPolicy().cap_s == http.BACKOFF_CAP_S
    assert calls.RETRY_AFTER_CAP_S == http.RETRY_AFTER_CAP_S
    listed = text.split("Transient failures are retried: HTTP ")[1].split(", a time-out")[0]
    assert {int(n) for n in listed.replace(" and ", ", ").split(", ")} == http.RETRYABLE_STATUSES
